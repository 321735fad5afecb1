"""RWKV7Config: the architecture of an RWKV-7 (x070) model, with RWKV-LM's field names and default formulas."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


def suggested_lora_rank(n_embd: int, factor: float) -> int:
    """RWKV-LM train_temp's suggestion: max(32, round(factor * sqrt(C) / 32) * 32) (Python's round)."""
    return max(32, int(round(factor * math.sqrt(n_embd) / 32) * 32))


@dataclasses.dataclass(frozen=True)
class RWKV7Config:
    """Shape of an x070 model. Field names follow RWKV-LM's arguments so checkpoints map one to one.

    Args:
        vocab_size: rows of ``emb.weight`` / ``head.weight`` (65536 for World models).
        n_embd: C, the model width; a multiple of ``head_size``.
        n_layer: number of blocks.
        head_size: N, channels per head (64 in every official model); H = n_embd // head_size.
        dim_ffn: channel-mix hidden size; ``None`` -> 4 * n_embd (hard-coded in RWKV-LM's x070).
        d_decay_lora, d_aaa_lora, d_mv_lora, d_gate_lora: LoRA ranks of w, a, v (value residual) and g;
            ``None`` -> RWKV-LM's suggestions (factors 2.5, 2.5, 1.7, 5 of sqrt(C), rounded to 32, at least 32:
            64/64/32/128 for C=768). Official checkpoints do not always follow them: load reads them from shapes.

    >>> RWKV7Config(vocab_size=65536, n_embd=768, n_layer=12).lora_ranks
    (64, 64, 32, 128)
    """

    vocab_size: int
    n_embd: int
    n_layer: int
    head_size: int = 64
    dim_ffn: int | None = None
    d_decay_lora: int | None = None
    d_aaa_lora: int | None = None
    d_mv_lora: int | None = None
    d_gate_lora: int | None = None

    def __post_init__(self) -> None:
        for name in ("vocab_size", "n_embd", "n_layer", "head_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"RWKV7Config.{name} must be a positive int, got {value!r}")
        if self.n_embd % self.head_size:
            raise ValueError(f"RWKV7Config: n_embd={self.n_embd} is not a multiple of head_size={self.head_size}")
        defaults = {
            "dim_ffn": 4 * self.n_embd,
            "d_decay_lora": suggested_lora_rank(self.n_embd, 2.5),
            "d_aaa_lora": suggested_lora_rank(self.n_embd, 2.5),
            "d_mv_lora": suggested_lora_rank(self.n_embd, 1.7),
            "d_gate_lora": suggested_lora_rank(self.n_embd, 5.0),
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            if value is None:
                object.__setattr__(self, name, default)
            elif not isinstance(value, int) or value <= 0:
                raise ValueError(f"RWKV7Config.{name} must be a positive int or None, got {value!r}")

    @property
    def n_head(self) -> int:
        """H = n_embd // head_size."""
        return self.n_embd // self.head_size

    @property
    def lora_ranks(self) -> tuple[int, int, int, int]:
        """(decay, aaa, mv, gate) LoRA ranks."""
        return (self.d_decay_lora, self.d_aaa_lora, self.d_mv_lora, self.d_gate_lora)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (every field resolved)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RWKV7Config:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"RWKV7Config: unknown key(s) {unknown}; valid keys: {sorted(names)}")
        return cls(**data)
