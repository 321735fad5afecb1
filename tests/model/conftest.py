"""Fixtures for the model tests (helpers live in rwkv7_tiny.py and numpy_rwkv7.py next to this file)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

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
def one_thread(one_torch_thread: None) -> None:
    """Every test here runs with one torch thread (tests/conftest.py)."""
