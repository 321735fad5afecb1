"""binidx writer/reader against an independent reader written here from the format spec, and magic_prime
against a brute-force search.

Run: pytest tests/pipelines/test_shard_binidx.py
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from rwkv_data.errors import ShardFormatError
from rwkv_data.pipelines.shard.binidx import BinidxReader, BinidxWriter, dtype_for_max_id, magic_prime


def spec_read(prefix: Path) -> dict:
    """MMIDIDX v1 per ../shared/docs/shards.md section 1.2, with RWKV-LM's dtype codes."""
    idx = Path(f"{prefix}.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    version, code, n, d = struct.unpack_from("<QBQQ", idx, 9)
    assert version == 1 and len(idx) == 34 + 12 * n + 8 * d
    dtype = {8: np.uint16, 4: np.int32}[code]
    sizes = np.frombuffer(idx, np.int32, n, 34)
    pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
    doc_idx = np.frombuffer(idx, np.int64, d, 34 + 12 * n)
    flat = np.frombuffer(Path(f"{prefix}.bin").read_bytes(), dtype)
    items = [flat[p // flat.itemsize:p // flat.itemsize + s] for p, s in zip(pointers, sizes, strict=True)]
    return {"code": code, "sizes": sizes, "pointers": pointers, "doc_idx": doc_idx, "flat": flat, "items": items}


def rwkv_get(flat: np.ndarray, pointers: np.ndarray, offset: int, length: int) -> np.ndarray:
    """RWKV-LM's sampler read: data.get(idx=0, offset=i, length=L) on the flat stream."""
    start = int(pointers[0]) // flat.itemsize + offset
    return flat[start:start + length]


@pytest.mark.parametrize("dtype,top", [(np.uint16, 65535), (np.int32, 70000)])
def test_writer_matches_spec_reader(tmp_path: Path, dtype: type, top: int) -> None:
    rng = np.random.default_rng(0)
    docs = [rng.integers(1, top + 1, size=int(rng.integers(1, 50))) for _ in range(200)] + [np.array([top])]
    with BinidxWriter(tmp_path / "s", dtype_for_max_id(top)) as w:
        for d in docs:
            w.add_document(d)
    got = spec_read(tmp_path / "s")
    assert got["code"] == (8 if dtype is np.uint16 else 4)
    assert len(got["items"]) == len(docs)
    for item, d in zip(got["items"], docs, strict=True):
        assert item.tolist() == d.tolist() + [0]
    assert got["doc_idx"].tolist() == list(range(len(docs) + 1))
    stream = np.concatenate([np.append(d, 0) for d in docs])
    assert rwkv_get(got["flat"], got["pointers"], 17, 300).tolist() == stream[17:317].tolist()
    r = BinidxReader(tmp_path / "s")
    assert len(r) == len(docs) and r.num_tokens == stream.size and r.dtype == np.dtype(dtype)
    assert r[3].tolist() == docs[3].tolist() + [0] and r[-1].tolist() == [top, 0]
    assert r.get(0, 17, 300).tolist() == stream[17:317].tolist()
    assert w.result["tokens"] == stream.size and w.result["max_id"] == top


def test_many_items_stream_through_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rwkv_data.pipelines.shard.binidx as bx

    monkeypatch.setattr(bx, "FLUSH_ITEMS", 7)
    monkeypatch.setattr(bx, "CHUNK_ITEMS", 5)
    sizes = np.arange(1, 40) % 6 + 1
    with BinidxWriter(tmp_path / "c", np.uint16) as w:
        w.add_items(np.ones(int(sizes.sum()), np.uint16), sizes)
    got = spec_read(tmp_path / "c")
    assert got["sizes"].tolist() == sizes.tolist()
    assert got["pointers"].tolist() == (2 * (np.cumsum(sizes) - sizes)).tolist()
    assert got["doc_idx"].tolist() == list(range(40))


def test_empty_shard_and_bad_inputs(tmp_path: Path) -> None:
    with BinidxWriter(tmp_path / "e", np.uint16):
        pass
    assert len(BinidxReader(tmp_path / "e")) == 0 and Path(f"{tmp_path}/e.idx").stat().st_size == 42
    with pytest.raises(ShardFormatError, match="outside uint16"), BinidxWriter(tmp_path / "x", np.uint16) as w:
        w.add_document(np.array([70000]))
    assert not list(tmp_path.glob("x.*")), "an aborted writer leaves nothing behind"
    with pytest.raises(ShardFormatError, match="int32"):
        dtype_for_max_id(2**31)
    idx = tmp_path / "e.idx"
    idx.write_bytes(b"NOTMAGIC!" + idx.read_bytes()[9:])
    with pytest.raises(ShardFormatError, match="bad magic"):
        BinidxReader(tmp_path / "e")


def test_truncated_idx_is_rejected(tmp_path: Path) -> None:
    with BinidxWriter(tmp_path / "t", np.uint16) as w:
        w.add_document(np.array([1, 2, 3]))
    idx = tmp_path / "t.idx"
    idx.write_bytes(idx.read_bytes()[:-4])
    with pytest.raises(ShardFormatError, match="truncated"):
        BinidxReader(tmp_path / "t")


def _brute_prime(n: int) -> bool:
    return n > 1 and all(n % k for k in range(2, int(n**0.5) + 1))


@pytest.mark.parametrize("tokens,ctx", [(10_000, 16), (123_457, 64), (99_991, 1), (5_000_000, 512), (40, 4), (7, 4)])
def test_magic_prime_equals_brute_force(tokens: int, ctx: int) -> None:
    slots = tokens // ctx
    want = max((p for p in range(2, slots) if p % 3 == 2 and _brute_prime(p) and p <= slots - 1), default=None)
    info = magic_prime(tokens, ctx)
    assert info["magic_prime"] == want and info["my_exit_tokens"] == tokens and info["slots"] == slots
    ok = want is not None and 0.9 < want / slots <= 1
    assert info["ok"] == ok
    if not ok:
        assert "problem" in info


def test_magic_prime_reports_the_rwkv_lm_constraint() -> None:
    assert magic_prime(1_498_226_207, 4096)["magic_prime"] == 365_759  # RWKV-LM README, minipile
    small = magic_prime(100, 10)  # slots 10 -> p = 5, ratio 0.5
    assert small["magic_prime"] == 5 and small["ok"] is False and "0.9" in small["problem"]


@pytest.mark.parametrize("dtype,top", [(np.uint16, 65535), (np.int32, 70000)])
def test_reserved_file_filled_in_place_equals_appending(tmp_path: Path, dtype: type, top: int) -> None:
    """reserve() + filling the file out of order (pwrite) + commit() in file order gives the bytes, index and
    digests of add_items()."""
    import os

    rng = np.random.default_rng(1)
    sizes = rng.integers(1, 30, size=120)
    flat = rng.integers(1, top + 1, size=int(sizes.sum())).astype(dtype)
    with BinidxWriter(tmp_path / "a", dtype) as wa:
        wa.add_items(flat, sizes)
    cuts = [0, 7, 50, 51, 120]
    with BinidxWriter(tmp_path / "b", dtype) as wb:
        fd = wb.reserve(flat.size)
        ends = np.cumsum(sizes)
        for lo, hi in reversed(list(zip(cuts, cuts[1:], strict=False))):  # filled back to front
            a, b = int(ends[lo - 1]) if lo else 0, int(ends[hi - 1])
            os.pwrite(fd, flat[a:b].tobytes(), a * flat.itemsize)
        mapped = np.fromfile(f"{tmp_path}/b.bin.tmp", dtype)
        for lo, hi in zip(cuts, cuts[1:], strict=False):
            a, b = int(ends[lo - 1]) if lo else 0, int(ends[hi - 1])
            wb.commit(mapped[a:b], sizes[lo:hi])
    for ext in ("bin", "idx"):
        assert Path(f"{tmp_path}/a.{ext}").read_bytes() == Path(f"{tmp_path}/b.{ext}").read_bytes()
    assert wa.result == wb.result


def test_reserve_commit_misuse_is_refused(tmp_path: Path) -> None:
    w = BinidxWriter(tmp_path / "m", np.uint16)
    with pytest.raises(ValueError, match="needs reserve"):
        w.commit(np.zeros(2, np.uint16), [2])
    w.reserve(4)
    with pytest.raises(ValueError, match="reserve\\(\\) must be"):
        w.reserve(4)
    with pytest.raises(ValueError, match="commit\\(\\) them"):
        w.add_items(np.zeros(2, np.uint16), [2])
    with pytest.raises(ValueError, match="uint16 tokens, not int64"):
        w.commit(np.zeros(2, np.int64), [2])
    with pytest.raises(ValueError, match="past the 4 reserved"):
        w.commit(np.zeros(5, np.uint16), [5])
    w.commit(np.zeros(3, np.uint16), [3])
    with pytest.raises(ValueError, match="3 tokens committed of 4 reserved"):
        w.finalize()
    w.abort()
    assert not list(tmp_path.glob("m.*")), "an aborted writer leaves nothing behind"
