"""Fixtures for the model tests (helpers live in rwkv7_tiny.py and numpy_rwkv7.py next to this file)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rwkv7_tiny import perturbed  # noqa: E402

from rwkv_data.model import RWKV7, RWKV7Config  # noqa: E402


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
