"""Session-wide test setting: the vocab cache (rwkv_data.tokenizer.vocab_cache) lives in a temporary folder
for the run, so tests never write to ~/.cache and always start from an empty cache. Set here, at import,
so subprocesses started by tests inherit it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

_CACHE = tempfile.mkdtemp(prefix="rwkv-data-test-cache-")
os.environ["RWKV_DATA_CACHE"] = _CACHE


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the test (tests of many tiny ops: two threads that spin on a shared machine are slower).
    The kernel and model folders make it autouse; torch is imported here only when a test asks for it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
