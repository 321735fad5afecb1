"""Helpers for the shard tests: a tiny vocab file, a small multi-format multilingual corpus, and a binidx
reader written from the format spec (../shared/docs/shards.md section 1.2), independent of pipelines.binidx.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

WORDS = {
    "en": ["the", "cat", "sat", "on", "mat", "and", "dog", "ran"],
    "de": ["der", "Hund", "läuft", "über", "die", "Straße", "schön"],
    "ja": ["猫", "が", "座", "った", "犬", "走", "る"],
    "sw": ["paka", "aliketi", "juu", "ya", "mkeka", "na", "mbwa"],
}


def write_vocab(path: Path, big: bool = False) -> Path:
    """``<id> <python literal> <byte length>`` per line: ids 1..256 are the bytes, a few merges follow;
    ``big`` adds tokens with ids above 65535 (the int32 case). Id 0 is never used (end of document)."""
    tokens: dict[int, bytes] = {i + 1: bytes([i]) for i in range(256)}
    merges = [b"the", b" the", b"at", b" c", "ä".encode(), "Straße".encode(), "猫".encode(), b"ka", b" m"]
    for j, m in enumerate(merges):
        tokens[300 + j] = m
    if big:
        tokens[70_000] = b"cat"
        tokens[70_001] = "犬".encode()
    lines = []
    for i, b in sorted(tokens.items()):
        try:
            lit = repr(b.decode("utf-8"))
        except UnicodeDecodeError:
            lit = repr(b)
        lines.append(f"{i} {lit} {len(b)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_docs(n: int, seed: int = 0) -> list[dict[str, str]]:
    """``n`` short documents round-robin over the languages, with a few exact duplicates."""
    rng = np.random.default_rng(seed)
    langs = sorted(WORDS)
    docs = []
    for i in range(n):
        lang = langs[i % len(langs)]
        words = WORDS[lang]
        sep = "" if lang == "ja" else " "
        docs.append({"text": sep.join(words[int(k)] for k in rng.integers(0, len(words), int(rng.integers(3, 30)))),
                     "lang": lang})
    docs[7] = dict(docs[3])  # a duplicate: it must land on the same side of the validation split
    return docs


def write_corpus(root: Path, n: int = 160, hf: bool = False) -> tuple[list[Path], list[dict[str, str]]]:
    """The docs spread over .jsonl, .jsonl.zst, .jsonl.gz, .parquet (2 row groups), .txt and optionally a
    ``save_to_disk`` folder; returns (inputs, every document as the job should see it)."""
    import gzip

    root.mkdir(parents=True, exist_ok=True)
    docs = make_docs(n)
    q = n // 5
    chunks = [docs[:q], docs[q:2 * q], docs[2 * q:3 * q], docs[3 * q:4 * q], docs[4 * q:]]

    def jsonl(recs: list[dict[str, str]]) -> bytes:
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs).encode()

    (root / "a.jsonl").write_bytes(jsonl(chunks[0]))
    (root / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl(chunks[1])))
    (root / "c.jsonl.gz").write_bytes(gzip.compress(jsonl(chunks[2])))
    pq.write_table(pa.table({"text": [d["text"] for d in chunks[3]], "lang": [d["lang"] for d in chunks[3]]}),
                   root / "d.parquet", row_group_size=max(1, q // 2 + 1))
    inputs = [root / "a.jsonl", root / "b.jsonl.zst", root / "c.jsonl.gz", root / "d.parquet"]
    rest = chunks[4]
    if hf:
        import datasets

        half = len(rest) // 2
        datasets.Dataset.from_dict({"text": [d["text"] for d in rest[:half]],
                                    "lang": [d["lang"] for d in rest[:half]]}).save_to_disk(str(root / "hf"))
        inputs.append(root / "hf")
        rest = rest[half:]
    (root / "e.jsonl").write_bytes(jsonl(rest))
    inputs.append(root / "e.jsonl")
    (root / "f.txt").write_text("a plain text file is one document", encoding="utf-8")
    inputs.append(root / "f.txt")
    return inputs, docs + [{"text": "a plain text file is one document", "lang": "und"}]


def spec_read(prefix: Path | str) -> dict:
    """Parse P.idx/P.bin from the spec: header, sizes, pointers, doc_idx, items, flat stream."""
    idx = Path(f"{prefix}.idx").read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00", "magic"
    version, code, n, d = struct.unpack_from("<QBQQ", idx, 9)
    assert version == 1 and len(idx) == 34 + 12 * n + 8 * d
    dtype = {8: np.dtype(np.uint16), 4: np.dtype(np.int32)}[code]
    sizes = np.frombuffer(idx, np.int32, n, 34)
    pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
    doc_idx = np.frombuffer(idx, np.int64, d, 34 + 12 * n)
    flat = np.frombuffer(Path(f"{prefix}.bin").read_bytes(), dtype)
    items = [flat[p // dtype.itemsize:p // dtype.itemsize + s] for p, s in zip(pointers, sizes, strict=True)]
    return {"code": code, "dtype": dtype, "sizes": sizes, "pointers": pointers, "doc_idx": doc_idx, "flat": flat,
            "items": items}


def rwkv_windows(flat: np.ndarray, ctx_len: int) -> list[np.ndarray]:
    """Every ctx_len-aligned window of ctx_len+1 tokens, read as RWKV-LM's sampler reads (idx=0, offset=i)."""
    return [flat[i * ctx_len:i * ctx_len + ctx_len + 1] for i in range((flat.size - 1) // ctx_len)]


def output_bytes(prefix: Path | str) -> dict[str, bytes]:
    """Every output file of a shard job (both prefixes), by suffix."""
    out = {}
    for p in (str(prefix), f"{prefix}_val"):
        for ext in (".bin", ".idx", ".lang.npy", ".meta.json"):
            f = Path(p + ext)
            if f.exists():
                out[Path(p).name + ext] = f.read_bytes()
    return out


def assert_same_output(a: Path | str, b: Path | str) -> None:
    """Two jobs wrote the same 8 files byte for byte; the meta files are equal once their own output path (which
    differs between the two jobs) is set aside."""
    ba, bb = output_bytes(a), output_bytes(b)
    assert ba.keys() == bb.keys() and len(ba) == 8
    for k in ba:
        if k.endswith(".meta.json"):
            ma, mb = json.loads(ba[k]), json.loads(bb[k])
            assert ma["config"].pop("output") != mb["config"].pop("output")
            assert ma == mb, k
        else:
            assert ba[k] == bb[k], f"{k} differs"
