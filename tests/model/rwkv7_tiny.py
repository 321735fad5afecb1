"""Tiny RWKV-7 models for tests, with every parameter perturbed away from its init.

(The official init zeroes several projections and LoRA halves, which would hide bugs behind zeros.)
"""

from __future__ import annotations

import torch

from rwkv_data.model import RWKV7, RWKV7Config


def perturbed(cfg: RWKV7Config, seed: int = 0, scale: float = 0.1, impl: str = "auto") -> RWKV7:
    """A model of ``cfg`` with official init plus N(0, scale^2) noise on every tensor (seeded)."""
    torch.manual_seed(seed)
    model = RWKV7(cfg, impl=impl)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model
