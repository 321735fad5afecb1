"""The model jobs' one seam to :mod:`rwkv_data.model`: build, load, run and export RWKV-7 models.

Train, evaluate and finetune call these few functions and nothing else of the model package, so its API is
adapted in one place. Export writes the official checkpoint format: a plain ``torch.save`` of the state dict with
RWKV-LM's key names (LoRA parametrizations merged), fp32 or bf16, atomically, plus the model package's JSON
config next to it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from rwkv_data.errors import ConfigError
from rwkv_data.model import RWKV7, RWKV7Config, load_checkpoint, save_checkpoint

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def resolve_device(name: str | torch.device) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a cuda request without CUDA is a ConfigError."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available; use --device cpu")
    return dev


def autocast_dtype(precision: str) -> torch.dtype | None:
    """``fp32`` -> None (no autocast), ``bf16`` -> torch.bfloat16."""
    if precision not in DTYPES:
        raise ConfigError(f"precision must be fp32 or bf16, got {precision!r}")
    return torch.bfloat16 if precision == "bf16" else None


def fresh(n_layer: int, n_embd: int, head_size: int, vocab_size: int, ctx_len: int,
          device: str | torch.device = "cpu") -> torch.nn.Module:
    """A new model with RWKV-LM's initialisation (uses the global torch RNG: seed before calling)."""
    if n_embd % head_size:
        raise ConfigError(f"n_embd {n_embd} must be a multiple of head_size {head_size}")
    cfg = RWKV7Config(n_layer=n_layer, n_embd=n_embd, head_size=head_size, vocab_size=vocab_size)
    return RWKV7(cfg).to(resolve_device(device))


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
    """Load an official-format checkpoint in fp32 on ``device`` (``weights_only=True`` inside)."""
    model, _ = load_checkpoint(path, device=resolve_device(device))
    return model


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


def export_checkpoint(model: torch.nn.Module, path: str | Path, dtype: str = "fp32") -> Path:
    """Write ``path`` (official .pth) and ``path.with_suffix('.json')`` (config), atomically, via the model
    package; a LoRA-parametrized model is first rebuilt as a plain one with the merged weights."""
    if dtype not in DTYPES:
        raise ConfigError(f"save dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    plain = model
    if any(parametrize.is_parametrized(m) for m in model.modules()):
        plain = RWKV7(model.config)  # type: ignore[arg-type]
        plain.load_state_dict(official_state_dict(model))
    return save_checkpoint(plain, path, dtype=DTYPES[dtype])  # type: ignore[arg-type]


def forward(model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """GPT-mode logits [B, T, V] of tokens [B, T] from a zero state."""
    out = model(tokens)
    return out[0] if isinstance(out, tuple) else out


def forward_with_state(model: torch.nn.Module, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    """Logits [B, T, V] of tokens [B, T] continuing from ``state`` (``None`` = zero), and the state after them."""
    logits, new_state = model(tokens, state=state, return_state=True)
    return logits, new_state


def vocab_rows(model: torch.nn.Module) -> int:
    """Rows of the embedding (the largest token id + 1 the model accepts)."""
    return int(model.emb.weight.shape[0])


def vocab_size_for(meta: Mapping[str, Any], vocab: str) -> int:
    """Embedding rows for a fresh model: the tokenizer's ``max_id + 1`` rounded up to a multiple of 64 (World:
    65530 -> 65536, as the official checkpoints have), from the shard metadata or the vocab."""
    n = 0
    tok_meta = meta.get("tokenizer")
    if isinstance(tok_meta, Mapping):
        n = int(tok_meta.get("vocab_size") or 0)
    if n <= 0:
        from rwkv_data.tokenizer import TrieTokenizer  # noqa: PLC0415

        tok = TrieTokenizer.world() if vocab in ("", "world") else TrieTokenizer.from_file(vocab)
        n = tok.vocab_size
    return -(-n // 64) * 64
