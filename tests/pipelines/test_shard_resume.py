"""A shard job killed with SIGKILL (while tokenizing with 2 workers, or while merging) and then rerun gives
the same bytes as an uninterrupted run, reusing the parts that were finished.

Run: pytest tests/pipelines/test_shard_resume.py
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shard_testlib import assert_same_output, write_corpus, write_vocab

from rwkv_data.config import ShardConfig, to_dict
from rwkv_data.pipelines.shard.job import run

# The child runs the real job; the test doubles only slow it down (parts) or kill it from inside (merge).
CHILD = r"""
import json, os, signal, sys, time
import rwkv_data.pipelines.shard.executors as executors
import rwkv_data.pipelines.shard.job as shard
import rwkv_data.pipelines.shard.binidx as bx
from rwkv_data.config import ShardConfig

mode, cfg = sys.argv[1], json.loads(sys.argv[2])
cfg = ShardConfig(**{**cfg, "inputs": tuple(cfg["inputs"]), "ctx_lens": tuple(cfg["ctx_lens"])})
if mode == "slow-parts":
    orig = executors.build_part
    def slow(task, tok, progress=None):
        out = orig(task, tok, progress)
        time.sleep(0.3)
        return out
    executors.build_part = slow  # what the local executor's workers call
elif mode == "die-in-merge":
    orig_commit = bx.BinidxWriter.commit  # the merge fills the reserved .bin, then commits each window
    calls = [0]
    def commit(self, flat, sizes, **kw):
        orig_commit(self, flat, sizes, **kw)
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGKILL)
    bx.BinidxWriter.commit = commit
shard.run(cfg)
"""


def _cfg(inputs: list[Path], out: Path, vocab: Path, **kw: object) -> ShardConfig:
    return ShardConfig(inputs=tuple(map(str, inputs)), output=str(out), vocab=str(vocab), val_fraction=0.1,
                       val_min_docs=2, ctx_lens=(16,), progress=False, **kw)


def _child(mode: str, cfg: ShardConfig) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, json.dumps(to_dict(cfg))], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Path]:
    root = tmp_path_factory.mktemp("resume")
    inputs, _ = write_corpus(root / "in", n=200)
    extra = []
    for i in range(6):  # more units, so the kill lands between parts
        p = root / "in" / f"x{i}.jsonl"
        p.write_text("".join(json.dumps({"text": f"extra {i} doc {j} " * (j + 1), "lang": "en"}) + "\n"
                             for j in range(12)), encoding="utf-8")
        extra.append(p)
    inputs = inputs + extra
    vocab = write_vocab(root / "vocab.txt")
    ref = root / "ref" / "P"
    run(_cfg(inputs, ref, vocab, workers=1))
    return inputs, vocab, ref


def test_sigkill_while_tokenizing_then_rerun(setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=2)
    parts = tmp_path / "P.work" / "parts"
    proc = _child("slow-parts", cfg)
    deadline = time.monotonic() + 60
    while len(list(parts.glob("*.done"))) < 3:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "no part finished within 60 s"
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("*.done")))
    assert 3 <= done < 12, "killed midway"
    assert not Path(f"{tmp_path}/P.bin").exists()
    stamps = {p.name: p.with_suffix(".bin").stat().st_mtime_ns for p in parts.glob("*.done")}
    run(dataclasses.replace(cfg, keep_work=True))
    assert_same_output(ref, tmp_path / "P")
    after = {p.name: p.with_suffix(".bin").stat().st_mtime_ns for p in parts.glob("*.done")}
    assert all(after[k] == v for k, v in stamps.items()), "finished parts were reused, not redone"
    run(cfg)  # a rerun after success only redoes the merge, then removes the work folder
    assert_same_output(ref, tmp_path / "P")
    assert not (tmp_path / "P.work").exists()


def test_finished_parts_are_reused(setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, keep_work=True)
    run(cfg)
    parts = tmp_path / "P.work" / "parts"
    stamps = {p.name: p.stat().st_mtime_ns for p in parts.glob("*.bin")}
    run(cfg)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in parts.glob("*.bin")}, "nothing re-tokenized"
    assert_same_output(ref, tmp_path / "P")


def test_sigkill_while_merging_then_rerun(setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=1, bucket_docs=4)
    proc = _child("die-in-merge", cfg)
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert Path(f"{tmp_path}/P.bin.tmp").exists() and not Path(f"{tmp_path}/P.meta.json").exists()
    run(cfg)
    assert_same_output(ref, tmp_path / "P")
    assert not list(tmp_path.glob("*.tmp"))
