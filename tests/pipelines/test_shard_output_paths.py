"""``-o`` spellings that cannot name a prefix end in one clear error at once (never a hang or a traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("output", "want"), [
    ("/", "give -o /NAME"),
    ("//", "give -o /NAME"),
    (".", "give -o ./NAME"),
    ("/proc/rwkv-data-test", "cannot create the lock file"),  # procfs: the lock file cannot be created
    ("{tmp}/a.jsonl/x/p", "a.jsonl is a file, not a folder"),
])
def test_outputs_that_cannot_be_a_prefix(tmp_path: Path, output: str, want: str) -> None:
    src = tmp_path / "a.jsonl"
    src.write_text('{"text": "hello", "lang": "en"}\n', encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "rwkv_data", "shard", str(src), "-o", output.format(tmp=tmp_path),
                           "--no-progress"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and want in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
