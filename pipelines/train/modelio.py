"""The model jobs' one seam to :mod:`rwkv_data.model`: build, load, run and export RWKV-7 models.

Train, evaluate and finetune call these few functions and nothing else of the model package, so its API is
adapted in one place. Export writes the official checkpoint format: a plain ``torch.save`` of the state dict with
RWKV-LM's key names (LoRA parametrizations merged), fp32 or bf16, atomically, plus the model package's JSON
config next to it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from rwkv_data.errors import CheckpointError, ConfigError
from rwkv_data.jsonfile import read_json
from rwkv_data.model import RWKV7, RWKV7Config, load_checkpoint, save_checkpoint
from rwkv_data.model.checkpoint import FORMAT, infer_config

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a cuda request without CUDA is a ConfigError."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"--device {name!r}: not a device (auto, cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s) "
                          f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} requested but MPS is not available; use --device cpu")
    return dev


def autocast_dtype(precision: str) -> torch.dtype | None:
    """``fp32`` -> None (no autocast), ``bf16`` -> torch.bfloat16."""
    if precision not in DTYPES:
        raise ConfigError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.bfloat16 if precision == "bf16" else None


def output_dir(path: str | Path) -> Path:
    """``path`` created if needed; ConfigError when it is a file or cannot be created (before any work)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {out}: exists and is not a folder; pass a folder (it is created if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out-dir {out}: cannot create it: {exc.strerror or exc}") from exc
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out-dir {out}: not writable")
    return out


LOCK_NAME = ".rwkv-data.lock"


@contextlib.contextmanager
def job_lock(out_dir: Path, job: str) -> Iterator[None]:
    """Hold ``out_dir``'s lock for the job's life, so that a second train/finetune on the same folder fails at once
    instead of interleaving its checkpoints and log with the first's. Under torchrun only rank 0 takes it (every
    rank shares the folder; rank 0 alone writes there)."""
    from rwkv_data.pipelines.shard.outputs import JobLock
    from rwkv_data.pipelines.train.distributed import launch_info

    info = launch_info()
    if info is not None and info.rank != 0:
        yield
        return
    with JobLock([out_dir / LOCK_NAME], f"--out-dir {out_dir}", job=job, choose="--out-dir"):
        yield


def memory_bytes(device: str | torch.device = "cpu") -> int:
    """Total memory of ``device``: the GPU's, or this machine's RAM."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return int(torch.cuda.get_device_properties(dev).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _refuse_if_too_big(need: int, device: str | torch.device, what: str) -> None:
    have = memory_bytes(device)
    if need > have:
        raise ConfigError(f"{what} needs about {need / 2**30:,.1f} GiB but {resolve_device(device)} has "
                          f"{have / 2**30:,.1f} GiB")


def fresh(n_layer: int, n_embd: int, head_size: int, vocab_size: int, ctx_len: int,
          device: str | torch.device = "cpu") -> torch.nn.Module:
    """A new model with RWKV-LM's initialisation (uses the global torch RNG: seed before calling).

    A model whose fp32 weights alone would not fit the device is refused before anything is allocated.
    """
    if n_embd % head_size:
        raise ConfigError(f"n_embd {n_embd} must be a multiple of head_size {head_size}")
    params = 2 * vocab_size * n_embd + n_layer * 13 * n_embd * n_embd  # emb + head, ~13 C^2 per block
    _refuse_if_too_big(4 * params, device, f"a model of --n-layer {n_layer}, --n-embd {n_embd} and "
                       f"{vocab_size} embedding rows")
    cfg = RWKV7Config(n_layer=n_layer, n_embd=n_embd, head_size=head_size, vocab_size=vocab_size)
    return RWKV7(cfg).to(resolve_device(device))


def check_batch_memory(model: torch.nn.Module, micro_bsz: int, ctx_len: int) -> None:
    """Refuse a micro-batch whose training step clearly cannot fit the device: weights, gradients and Adam
    moments (16 bytes per parameter) plus fp32 logits, their softmax and gradient (12 bytes per logit)."""
    params = sum(p.numel() for p in model.parameters())
    logits = micro_bsz * ctx_len * vocab_rows(model)
    need = 16 * params + 12 * logits
    _refuse_if_too_big(need, next(model.parameters()).device,
                       f"a training step of --micro-bsz {micro_bsz} x --ctx-len {ctx_len}")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """An official checkpoint's state dict in fp32 (validated by loading it as a model)."""
    return {k: v.detach().clone() for k, v in load(path).state_dict().items()}


def from_state_dict(sd: Mapping[str, torch.Tensor], device: str | torch.device = "cpu") -> torch.nn.Module:
    """A model built from an official state dict (shapes give the config), in fp32.

    Goes through a temporary file so the model package's checkpoint validation (variant sniffing, shape
    inference, missing-key checks) applies to grown or edited state dicts too.
    """
    fd, tmp = tempfile.mkstemp(suffix=".pth")
    os.close(fd)
    try:
        torch.save(dict(sd), tmp)
        model, _ = load_checkpoint(tmp, device=resolve_device(device))
    finally:
        Path(tmp).unlink(missing_ok=True)
    return model


def load(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load an official-format checkpoint in fp32 on ``device`` (``weights_only=True`` inside).

    CheckpointError when a tensor holds NaN or inf (it would only surface later as a NaN loss or bpb), or
    when the checkpoint's ``.json`` config (written next to it by :func:`export_checkpoint`) disagrees
    with the shapes of its tensors.
    """
    model, cfg = load_checkpoint(path, device=resolve_device(device))
    check_finite(model, path)
    check_sidecar(path, cfg.to_dict())
    return model


def check_finite(model: torch.nn.Module, where: str | Path) -> None:
    """CheckpointError naming ``where`` and the first tensor holding NaN or inf."""
    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{where}: {name} holds {bad} NaN/inf value(s); the checkpoint is damaged "
                                  "(or was saved after training diverged)")


def check_sidecar(path: str | Path, shapes: Mapping[str, Any]) -> None:
    """CheckpointError when ``path``'s ``.json`` config (if any, in this package's format) names another shape."""
    side = Path(path).with_suffix(".json")
    try:
        meta = read_json(side) if side.is_file() else None
    except (OSError, ValueError):
        return  # not ours (or unreadable): the tensors' shapes are the truth
    cfg = meta.get("config") if isinstance(meta, dict) and meta.get("format") == FORMAT else None
    if not isinstance(cfg, dict):
        return
    diff = {k: (cfg[k], v) for k, v in shapes.items() if k in cfg and cfg[k] != v}
    if diff:
        shown = ", ".join(f"{k} {a} in {side.name} but {b} in the tensors" for k, (a, b) in sorted(diff.items()))
        raise CheckpointError(f"{path}: its config does not match its weights ({shown}); the two files come from "
                              "different models: re-export the checkpoint or remove the stale .json")


def official_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict under RWKV-LM's names, parametrizations (LoRA) merged into their weights."""
    out: dict[str, torch.Tensor] = {}
    merged = {}
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod):
            for pname in mod.parametrizations:
                merged[f"{name}.parametrizations.{pname}.original"] = (f"{name}.{pname}", getattr(mod, pname))
    for k, v in model.state_dict().items():
        if k in merged:
            key, value = merged[k]
            out[key] = value.detach()
        elif ".parametrizations." not in k:
            out[k] = v.detach()
    return out


def export_checkpoint(model: torch.nn.Module, path: str | Path, dtype: str = "fp32", vocab: Any = None) -> Path:
    """Write ``path`` (official .pth) and ``path.with_suffix('.json')`` (config, and the name, sha256 and size
    of the ``vocab`` tokenizer when given), atomically, via the model package; a LoRA-parametrized model is
    first rebuilt as a plain one with the merged weights."""
    if dtype not in DTYPES:
        raise ConfigError(f"save dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    plain = model
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        plain = RWKV7(model.config)  # type: ignore[arg-type]
        plain.load_state_dict(official_state_dict(model))
    extra = None if vocab is None else {"vocab": {"name": vocab.name, "sha256": vocab.sha256,
                                                  "vocab_size": vocab.vocab_size}}
    return save_checkpoint(plain, path, dtype=DTYPES[dtype], extra=extra)  # type: ignore[arg-type]


def checkpoint_vocab(path: str | Path) -> dict[str, Any] | None:
    """The ``vocab`` entry :func:`export_checkpoint` wrote next to ``path`` (None for other checkpoints)."""
    side = Path(path).with_suffix(".json")
    try:
        meta = read_json(side) if side.is_file() else None
    except (OSError, ValueError):
        return None
    vocab = meta.get("vocab") if isinstance(meta, dict) and meta.get("format") == FORMAT else None
    return vocab if isinstance(vocab, dict) and isinstance(vocab.get("sha256"), str) else None


def forward(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """GPT-mode logits [B, T, V] of tokens [B, T] from a zero state."""
    out = model(tokens)
    return out[0] if isinstance(out, tuple) else out


def forward_with_state(model: torch.nn.Module, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """Logits [B, T, V] of tokens [B, T] continuing from ``state`` (``None`` = zero), and the state after them."""
    logits, new_state = model(tokens, state=state, return_state=True)
    return logits, new_state


def shape_of(sd: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """``n_layer``, ``n_embd``, ``head_size`` and ``vocab_size`` of an official state dict."""
    cfg = infer_config(sd)
    return {"n_layer": cfg.n_layer, "n_embd": cfg.n_embd, "head_size": cfg.head_size, "vocab_size": cfg.vocab_size}


def vocab_rows(model: torch.nn.Module) -> int:
    """Rows of the embedding (the largest token id + 1 the model accepts)."""
    return int(model.emb.weight.shape[0])


def padded_rows(n_ids: int) -> int:
    """Embedding rows for a fresh model: a tokenizer's ``max_id + 1`` rounded up to a multiple of 64 (World:
    65530 -> 65536, as the official checkpoints have)."""
    return -(-n_ids // 64) * 64
