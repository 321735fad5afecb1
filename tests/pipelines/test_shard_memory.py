"""The shard merge holds a bounded number of document records, whatever the number of documents: the parts'
records are read CHUNK_DOCS at a time and the shuffle buckets spill every ``bucket_docs`` records.

Run: pytest tests/pipelines/test_shard_memory.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The child's own peak RSS, through a small launcher (a child forked from pytest would inherit pytest's high-water
# mark across exec).
_LAUNCHER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
             "sys.exit(rc)")


@pytest.mark.slow
def test_millions_of_tiny_documents_merge_in_bounded_memory(tmp_path: Path) -> None:
    src = tmp_path / "tiny.jsonl"
    n = 2_000_000
    with src.open("w", encoding="utf-8") as f:
        for c in range(0, n, 100_000):
            f.write("".join(f'{{"text":"d {i}","lang":"{"en" if i % 3 else "fr"}"}}\n' for i in range(c, c + 100_000)))
    peak = tmp_path / "peak_kb.txt"
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak), sys.executable, "-m", "rwkv_data", "shard",
                           str(src), "-o", str(tmp_path / "out" / "p"), "--workers", "1", "--no-progress", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RWKV_DATA_CACHE": "off"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert meta["train"]["documents"] + meta["val"]["documents"] == n
    rss_mb = int(peak.read_text()) // 1024
    assert rss_mb < 300, rss_mb  # was ~480 MB from 1M documents on (1M-record chunks); ~48 B per record in flight
