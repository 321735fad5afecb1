"""Session-wide test setting: the vocab cache (rwkv_data.tokenizer.vocab_cache) lives in a temporary folder
for the run, so tests never write to ~/.cache and always start from an empty cache. Set here, at import,
so subprocesses started by tests inherit it."""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE = tempfile.mkdtemp(prefix="rwkv-data-test-cache-")
os.environ["RWKV_DATA_CACHE"] = _CACHE


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    shutil.rmtree(_CACHE, ignore_errors=True)
