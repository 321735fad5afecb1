"""The merge's native range copy (``_native.gather``) and the part reader around it.

Run: pytest tests/pipelines/test_shard_gather.py
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import rwkv_data.pipelines.shard.merge as merge
import rwkv_data.pipelines.shard.mixing as mixing
import rwkv_data.pipelines.shard.window_copy as window_copy
from rwkv_data.pipelines._native import gather


def _u64(*x: int) -> np.ndarray:
    return np.array(x, np.uint64)


def test_gather_reads_ranges_to_their_destinations(tmp_path: Path) -> None:
    files = [tmp_path / "a", tmp_path / "b"]
    files[0].write_bytes(b"0123456789")
    files[1].write_bytes(b"abcdefghij")
    fds = np.array([os.open(f, os.O_RDONLY) for f in files], np.int32)
    try:
        out = bytearray(9)
        n = gather(fds, np.array([1, 0, 1], np.uint32), _u64(7, 2, 0), _u64(3, 4, 2), _u64(0, 5, 3), out)
        assert n == 3 and out == bytearray(b"hij" + b"ab" + b"2345")
        # a range past the end of its file stops the copy there and says which
        assert gather(fds, np.array([0, 0, 0], np.uint32), _u64(0, 8, 0), _u64(1, 5, 1), _u64(0, 1, 6), out) == 1
        with pytest.raises(ValueError, match="range 0 names file 2"):
            gather(fds, np.array([2], np.uint32), _u64(0), _u64(1), _u64(0), out)
        with pytest.raises(ValueError, match="does not fit"):
            gather(fds, np.array([0], np.uint32), _u64(0), _u64(5), _u64(5), out)
        with pytest.raises(ValueError, match="differ in length"):
            gather(fds, np.array([0, 0], np.uint32), _u64(0), _u64(1), _u64(0), out)
        assert gather(fds, np.array([], np.uint32), _u64(), _u64(), _u64(), out) == 0
    finally:
        for fd in fds:
            os.close(int(fd))
    with pytest.raises(OSError, match="Bad file descriptor"):
        gather(np.array([int(fds[0])], np.int32), np.array([0], np.uint32), _u64(0), _u64(1), _u64(0), out)


@pytest.mark.parametrize("limit", [1, 2, 256])
def test_parts_gather_in_groups_and_names_a_short_part(tmp_path: Path, limit: int,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(window_copy, "OPEN_PARTS", limit)
    rng = np.random.default_rng(0)
    data = {i: rng.integers(0, 256, 100, dtype=np.uint8).tobytes() for i in range(5)}
    for i, b in data.items():
        (tmp_path / f"part-{i}.bin").write_bytes(b)
    parts = window_copy.PartFiles([merge.PartRef(i, str(tmp_path / f"part-{i}"), 1, np.zeros(1, np.int64))
                                   for i in data])
    part = np.array([3, 0, 4, 3, 1, 2, 0], np.uint32)
    off = _u64(10, 0, 50, 90, 5, 7, 99)
    size = _u64(5, 3, 20, 10, 1, 8, 1)
    dest = np.cumsum(size) - size
    out = bytearray(int(size.sum()))
    try:
        parts.gather(part, off, size, dest, out)
        assert bytes(out) == b"".join(data[int(p)][int(o):int(o + s)] for p, o, s in zip(part, off, size, strict=True))
        assert len(parts.open) <= limit
        (tmp_path / "part-4.bin").write_bytes(data[4][:30])  # truncated: range 2 reads 50..70
        parts.close()
        with pytest.raises(OSError, match=r"part-4\.bin: short read \(20 bytes at 50\)"):
            parts.gather(part, off, size, dest, out)
    finally:
        parts.close()


def test_fd_budget_raises_the_soft_open_file_limit() -> None:
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2000:
        pytest.skip(f"hard open-file limit {hard} too low to test")
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (400, hard))
        assert window_copy.fd_budget(100) == 400 - window_copy.FD_RESERVE  # enough already: unchanged
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 400
        assert window_copy.fd_budget(1000) == 1000  # raised to what 1000 parts need
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == 1000 + window_copy.FD_RESERVE
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_output_order_is_ascending_r_then_part_then_offset() -> None:
    rng = np.random.default_rng(3)
    recs = np.zeros(5000, mixing.REC)
    recs["r"] = rng.integers(0, 2**64 - 1, recs.size, dtype=np.uint64)
    recs["part"], recs["off"] = rng.integers(0, 50, recs.size), rng.integers(0, 10**6, recs.size)
    want = np.lexsort((recs["off"], recs["part"], recs["r"]))
    assert np.array_equal(mixing.output_order(recs), want), "no ties: the order of r"
    recs["r"][rng.integers(0, recs.size, 2000)] = 7  # many ties on r, in any part and at any offset
    recs["r"][:3], recs["part"][:3], recs["off"][:3] = 5, (2, 1, 1), (0, 9, 4)  # ties broken by part, then off
    got = mixing.output_order(recs)
    assert np.array_equal(recs[got], recs[np.lexsort((recs["off"], recs["part"], recs["r"]))])
    assert got[:3].tolist() == [2, 1, 0]
    assert mixing.output_order(recs[:0]).size == 0 and mixing.output_order(recs[:1]).tolist() == [0]
