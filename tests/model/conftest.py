"""Fixtures for the model tests: tiny RWKV-7 models with every parameter perturbed away from its init.

(The official init zeroes several projections and LoRA halves, which would hide bugs behind zeros.)
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rwkv_data.model import RWKV7, RWKV7Config  # noqa: E402


def perturbed(cfg: RWKV7Config, seed: int = 0, scale: float = 0.1, impl: str = "auto") -> RWKV7:
    """A model of ``cfg`` with official init plus N(0, scale^2) noise on every tensor (seeded)."""
    torch.manual_seed(seed)
    model = RWKV7(cfg, impl=impl)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * scale)
    return model


@pytest.fixture
def tiny_cfg() -> RWKV7Config:
    return RWKV7Config(vocab_size=97, n_embd=64, n_layer=3, head_size=32)


@pytest.fixture
def tiny_model(tiny_cfg: RWKV7Config) -> RWKV7:
    return perturbed(tiny_cfg)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tests run many tiny ops: one torch thread is faster than two that spin on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
