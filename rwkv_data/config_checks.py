"""Range checks for the model jobs' configs (train, evaluate, finetune), run by their ``__post_init__``.

Every value is checked before any stage starts, so a bad flag or TOML key fails in milliseconds with one
:class:`ConfigError` that names the key (as the TOML key and the ``--flag``) and the allowed range, instead of an
``IndexError`` or a NaN loss minutes later. Checks that need the data or the checkpoint (ids against the
embedding rows, ``magic_prime`` against the token count, ``last:N`` against the layer count) run in the jobs.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rwkv_data.errors import ConfigError

PRECISIONS = ("fp32", "bf16")
DEVICE_RE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
TRAINABLE_RE = re.compile(r"all|embeddings|last:[1-9]\d*")
MAX_SEED = 2**63 - 1
MAX_BOOTSTRAP = 1_000_000  # resamples: intervals settle long before; more only costs time
MAX_THREADS = 1024  # thread counts of any job (100,000 crashed torch / hung the trainer)
FLOAT_CEILING = 1e30  # optimiser numbers become float32 tensors (max ~3.4e38): larger ones overflow in torch


def _key(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


def _value(cfg: Any, name: str) -> Any:
    return getattr(cfg, name)


def check_int(cfg: Any, name: str, lo: int, hi: int | None = None, meaning: str = "") -> None:
    """``lo <= cfg.name (<= hi)``, an integer (not a bool or a float)."""
    v = _value(cfg, name)
    allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{_key(name)} must be an integer {allowed}{meaning}, got {v!r}")
    if v < lo or (hi is not None and v > hi):
        raise ConfigError(f"{_key(name)} must be an integer {allowed}{meaning}, got {v}")


def check_float(cfg: Any, name: str, lo: float, hi: float = math.inf, lo_open: bool = False, hi_open: bool = False,
                meaning: str = "") -> None:
    """``cfg.name`` a finite number in the interval (``lo_open``/``hi_open`` exclude the ends)."""
    v = _value(cfg, name)
    left, right = "(" if lo_open else "[", ")" if hi_open or hi == math.inf else "]"
    allowed = f"in {left}{lo:g}, {hi:g}{right}" if hi != math.inf else (f"> {lo:g}" if lo_open else f">= {lo:g}")
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{_key(name)} must be a finite number {allowed}{meaning}, got {v!r}")
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        raise ConfigError(f"{_key(name)} must be a finite number {allowed}{meaning}, got {v!r}")


def check_choice(cfg: Any, name: str, choices: tuple[str, ...]) -> None:
    v = _value(cfg, name)
    if v not in choices:
        raise ConfigError(f"{_key(name)} must be one of {', '.join(choices)}; got {v!r}")


def check_str(cfg: Any, name: str, nonempty: bool = False) -> None:
    v = _value(cfg, name)
    if not isinstance(v, str) or (nonempty and not v):
        raise ConfigError(f"{_key(name)} must be a {'non-empty ' if nonempty else ''}string, got {v!r}")


def check_device(cfg: Any) -> None:
    v = cfg.device
    if not isinstance(v, str) or not DEVICE_RE.fullmatch(v):
        raise ConfigError(f"{_key('device')} must be auto, cpu, cuda or cuda:N; got {v!r}")


def check_train(cfg: Any) -> None:
    """Ranges of :class:`rwkv_data.config.TrainConfig` (and the fields FinetuneConfig inherits)."""
    for name in ("data", "val_data", "vocab", "init"):
        check_str(cfg, name)
    check_str(cfg, "out_dir", nonempty=True)
    for name in ("n_layer", "n_embd", "head_size", "ctx_len", "micro_bsz", "grad_accum"):
        check_int(cfg, name, 1)
    if cfg.n_embd % cfg.head_size:
        raise ConfigError(f"{_key('n_embd')} {cfg.n_embd} must be a multiple of {_key('head_size')} "
                          f"{cfg.head_size}")
    check_int(cfg, "vocab_size", 0, meaning=" (0 = from the shard's metadata)")
    for name, meaning in (("token_budget", " (0 = one pass over the data)"), ("max_steps", " (0 = no limit)"),
                          ("magic_prime", " (0 = computed)"), ("warmup_steps", ""),
                          ("save_every", " (0 = only at the end)"), ("eval_every", " (0 = before and after)"),
                          ("eval_docs", " (0 = all)"), ("log_every", " (0 = every step)")):
        check_int(cfg, name, 0, meaning=meaning)
    check_int(cfg, "seed", 0, MAX_SEED)
    check_float(cfg, "lr_init", 0.0, FLOAT_CEILING)
    check_float(cfg, "lr_final", 0.0, FLOAT_CEILING)
    check_float(cfg, "beta1", 0.0, 1.0, hi_open=True)
    check_float(cfg, "beta2", 0.0, 1.0, hi_open=True)
    check_float(cfg, "adam_eps", 0.0, FLOAT_CEILING, lo_open=True)
    check_float(cfg, "weight_decay", 0.0, FLOAT_CEILING)
    check_float(cfg, "grad_clip", 0.0, FLOAT_CEILING, meaning=" (0 = no clipping)")
    check_choice(cfg, "precision", PRECISIONS)
    check_choice(cfg, "save_dtype", PRECISIONS)
    check_device(cfg)
    if not isinstance(cfg.resume, bool):
        raise ConfigError(f"{_key('resume')} must be true or false, got {cfg.resume!r}")
    check_int(cfg, "world_size", 1)
    check_int(cfg, "rank", 0, cfg.world_size - 1, meaning=" (below world_size)")


def check_finetune(cfg: Any) -> None:
    """:func:`check_train` plus the fine-tuning fields of :class:`rwkv_data.config.FinetuneConfig`."""
    check_train(cfg)
    for name in ("new_tokens", "replay_data"):
        check_str(cfg, name)
    check_float(cfg, "replay_share", 0.0, 1.0, hi_open=True, meaning=" (share of samples from --replay-data)")
    if not isinstance(cfg.trainable, str) or not TRAINABLE_RE.fullmatch(cfg.trainable):
        raise ConfigError(f"{_key('trainable')} must be all, embeddings or last:N with N >= 1; got {cfg.trainable!r}")
    check_int(cfg, "lora_rank", 0, meaning=" (0 = no LoRA)")
    check_float(cfg, "lora_alpha", 0.0, FLOAT_CEILING, lo_open=True)


def check_eval(cfg: Any) -> None:
    """Ranges of :class:`rwkv_data.config.EvalConfig`."""
    for name in ("checkpoint", "vocab", "data"):
        check_str(cfg, name)
    if not isinstance(cfg.inputs, tuple | list) or not all(isinstance(t, str) for t in cfg.inputs):
        raise ConfigError(f"inputs must be a list of file names, got {cfg.inputs!r}")
    check_str(cfg, "out_dir", nonempty=True)
    check_int(cfg, "ctx_len", 1)
    check_int(cfg, "batch_size", 1)
    check_int(cfg, "max_docs", 0, meaning=" (0 = all)")
    check_int(cfg, "bootstrap", 0, MAX_BOOTSTRAP, meaning=" (0 = no intervals)")
    check_float(cfg, "confidence", 0.0, 1.0, lo_open=True, hi_open=True)
    check_int(cfg, "seed", 0, MAX_SEED)
    check_device(cfg)
    check_choice(cfg, "precision", PRECISIONS)


def check_audit(cfg: Any) -> None:
    """Ranges of :class:`rwkv_data.config.AuditConfig`."""
    check_int(cfg, "max_bytes_per_lang", 0, 2**62, meaning=" (0 = all)")
    check_int(cfg, "bootstrap", 0, MAX_BOOTSTRAP, meaning=" (0 = no intervals)")
    check_float(cfg, "confidence", 0.0, 1.0, lo_open=True, hi_open=True)
    check_int(cfg, "seed", 0, MAX_SEED)
    check_float(cfg, "alpha", 0.0, 1e3, meaning=" (the Renyi order; 1 = Shannon)")
    check_int(cfg, "vocab_size", 0, 2**32, meaning=" (0 = each tokenizer's size)")
    check_int(cfg, "threads", 0, MAX_THREADS, meaning=" (0 = the tokenizer's default)")
    check_choice(cfg, "layout", ("auto", "parallel", "mono"))
