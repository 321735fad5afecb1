"""Make tests/kernels/wkv7_cases.py importable as ``wkv7_cases`` (shared with benchmarks/wkv7_*.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """These tests run many tiny ops: one torch thread is faster than two that spin on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
