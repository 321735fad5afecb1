"""Stage 2 of ``rwkv-data shard``: validation split, language weighting, streamed shuffle, merge.

Everything here reads the parts' small ``.docs`` records in chunks and never holds the corpus in RAM:

1. Validation split (per document, by its content hash ``key``): a document goes to ``P_val`` when
   ``key < fraction * 2**64``, or when its key is among the ``min_docs`` smallest of its language
   (capped at half the language's documents, so training keeps most of a small language).
   Identical texts share a key, so they land on the same side.
2. Weights per language (training side only) from token budgets or a temperature; a weight w keeps
   ``floor(w)`` copies of each document plus one more with probability ``frac(w)`` (w < 1 subsamples),
   decided by a seeded hash of (part, document, copy).
3. Shuffle: every kept copy gets a 64-bit key ``r`` = splitmix64 of (seed, part, document, copy); the
   output order is ascending ``r`` (ties: part, offset), i.e. a seeded uniform permutation. It is produced
   by an external distribution sort: records go to ``2**k`` bucket files by the top ``k`` bits of ``r``,
   then each bucket is sorted in RAM and its documents copied from the parts. ``k`` only bounds memory
   (``bucket_docs`` records per bucket on average); it never changes the output.

This module reads the parts' records and runs the merge (:func:`distribute`, :func:`write_split`); the rules live
in ``validation`` (point 1) and ``mixing`` (points 2 and 3), the document copy in ``window_copy``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.pipelines.shard.binidx import BinidxWriter
from rwkv_data.pipelines.shard.mixing import REC, SALT_SHUFFLE, copies_of, output_order, splitmix64
from rwkv_data.pipelines.shard.outputs import space_guard
from rwkv_data.pipelines.shard.parts import DOC_RECORD
from rwkv_data.pipelines.shard.validation import ValidationSplit, cutoffs_of
from rwkv_data.pipelines.shard.window_copy import PartFiles, copy_docs

CHUNK_DOCS = 1 << 18  # .docs records read per step
SPLITS = ("train", "val")


@dataclass
class PartRef:
    """A finished part: where it is, its documents, and its language table mapped to global indices."""

    index: int
    stem: str
    documents: int
    lang_map: np.ndarray  # part-local language index -> global index


@dataclass
class SplitCounts:
    """Per-language [documents, tokens, bytes, characters] of one output split."""

    table: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))

    def add(self, lang: np.ndarray, rec: np.ndarray, copies: np.ndarray, n_langs: int) -> None:
        if self.table.shape[0] < n_langs:
            self.table = np.vstack([self.table, np.zeros((n_langs - self.table.shape[0], 4), np.int64)])
        for j, col in enumerate((None, "ntok", "nbytes", "nchars")):
            w = copies if col is None else copies * rec[col].astype(np.int64)
            self.table[:, j] += np.bincount(lang, weights=w, minlength=n_langs).astype(np.int64)


@dataclass(frozen=True)
class DocChunk:
    """Records of consecutive documents (part order, then document order); small parts share a chunk, so the
    merge's numpy work runs once per chunk rather than once per part."""

    part: np.ndarray  # uint64: the document's part index
    local: np.ndarray  # uint64: its index within the part
    off: np.ndarray  # uint64: its first token's position in the part's .bin
    rec: np.ndarray  # DOC_RECORD
    glang: np.ndarray  # int64: its global language


def iter_doc_chunks(parts: list[PartRef]) -> Iterator[DocChunk]:
    """The ``.docs`` records of ``parts``, CHUNK_DOCS at a time (a large part spans several chunks)."""
    pieces: list[tuple[PartRef, int, int, np.ndarray]] = []  # part, first local index, its token offset, records
    n = 0
    for part in parts:
        with open(f"{part.stem}.docs", "rb") as f:
            left = os.fstat(f.fileno()).st_size // DOC_RECORD.itemsize
            start = off = 0
            while left:
                rec = np.fromfile(f, dtype=DOC_RECORD, count=min(left, CHUNK_DOCS - n))
                if rec.size == 0:  # the file shrank under us
                    break
                pieces.append((part, start, off, rec))
                n, left, start = n + rec.size, left - rec.size, start + rec.size
                off += int(rec["ntok"].sum(dtype=np.uint64))
                if n >= CHUNK_DOCS:
                    yield _chunk(pieces)
                    pieces, n = [], 0
    if pieces:
        yield _chunk(pieces)


def _chunk(pieces: list[tuple[PartRef, int, int, np.ndarray]]) -> DocChunk:
    sizes = np.array([p[3].size for p in pieces], np.int64)
    rec = pieces[0][3] if len(pieces) == 1 else np.concatenate([p[3] for p in pieces])
    first = np.cumsum(sizes) - sizes  # of each piece, within the chunk
    ntok = rec["ntok"].astype(np.int64)
    before = np.cumsum(ntok) - ntok  # tokens before each record, within the chunk
    pos = np.arange(rec.size, dtype=np.int64)
    local = pos - np.repeat(first - np.array([p[1] for p in pieces], np.int64), sizes)
    off = before - np.repeat(before[first] - np.array([p[2] for p in pieces], np.int64), sizes)
    maps = [p[0].lang_map for p in pieces]
    map_base = np.cumsum([m.size for m in maps]) - np.array([m.size for m in maps])
    glang = np.concatenate(maps)[rec["lang"].astype(np.int64) + np.repeat(map_base, sizes)]
    part = np.repeat(np.array([p[0].index for p in pieces], np.uint64), sizes)
    return DocChunk(part, local.astype(np.uint64), off.astype(np.uint64), rec, glang.astype(np.int64))


class PartRecords:
    """The document records of finished parts, as :class:`DocChunk` s. The merge reads them two or three times;
    when they fit in one chunk they are read from disk once and kept (at most CHUNK_DOCS records in RAM)."""

    def __init__(self, parts: list[PartRef]) -> None:
        self.parts = parts
        self._only: DocChunk | None = None

    def chunks(self) -> Iterator[DocChunk]:
        if self._only is not None:
            yield self._only
            return
        it = iter_doc_chunks(self.parts)
        first = next(it, None)
        if first is None:
            return
        second = next(it, None)
        if second is None:
            self._only = first
        yield first
        if second is not None:
            yield second
            yield from it


def val_cutoffs(records: PartRecords, n_langs: int, min_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cutoffs_of` over the documents of finished parts."""
    return cutoffs_of(((c.rec["key"], c.glang) for c in records.chunks()), n_langs, min_docs)


@dataclass
class MergePlan:
    """The decisions of one merge (inputs to :func:`merge`)."""

    parts: list[PartRef]
    langs: list[str]
    split: ValidationSplit
    weights: np.ndarray  # per global language
    seed: int
    bucket_docs: int
    records: PartRecords | None = None  # the parts' document records (made from ``parts`` when not given)

    def __post_init__(self) -> None:
        if self.records is None:
            self.records = PartRecords(self.parts)


def distribute(plan: MergePlan, work: Path, expected: dict[str, int]) -> dict[str, tuple[int, SplitCounts, int]]:
    """Write the shuffle records of each split in ``expected`` (``val`` and/or ``train``, with its expected record
    count, which sizes its buckets) to bucket files, in one pass over the parts' records; returns per split
    (records, counts, bucket bits). The train side needs ``plan.weights`` final."""
    seedmix = splitmix64(np.array([plan.seed], np.uint64) ^ SALT_SHUFFLE)
    n_langs = len(plan.langs)
    outs = {split: _SplitRecords(work, split, n, plan.bucket_docs) for split, n in expected.items()}
    assert plan.records is not None
    for c in plan.records.chunks():
        isval = plan.split.mask(c.rec, c.glang)
        uid = (c.part << np.uint64(32)) | c.local
        for split, out in outs.items():
            if split == "val":
                copies = isval.astype(np.int64)
            else:
                copies = np.where(isval, 0, copies_of(uid, plan.weights[c.glang], plan.seed))
            out.counts.add(c.glang, c.rec, copies, n_langs)
            if (copies == 1).all():
                idx: np.ndarray | slice = slice(None)
                copy_no = np.zeros(c.rec.size, np.uint64)
            else:
                idx = np.repeat(np.arange(c.rec.size), copies)
                if idx.size == 0:
                    continue
                copy_no = (np.arange(idx.size) - np.repeat(np.cumsum(copies) - copies, copies)).astype(np.uint64)
            recs = np.empty(copy_no.size, REC)
            recs["r"] = splitmix64(splitmix64(uid[idx] ^ seedmix) + copy_no)
            recs["off"], recs["part"] = c.off[idx], c.part[idx]
            recs["ntok"], recs["lang"] = c.rec["ntok"][idx], c.glang[idx]
            out.add(recs)
    for out in outs.values():
        out.spill()
    return {split: (out.total, out.counts, out.bits) for split, out in outs.items()}


class _SplitRecords:
    """One split's shuffle records on their way to ``2**bits`` bucket files (by the top bits of r)."""

    def __init__(self, work: Path, split: str, expected: int, bucket_docs: int) -> None:
        self.work, self.split, self.bucket_docs = work, split, bucket_docs
        self.bits = min(16, max(0, math.ceil(math.log2(max(1.0, expected / max(1, bucket_docs))))))
        self.buffers: dict[int, list[np.ndarray]] = {}
        self.pending = self.total = 0
        self.counts = SplitCounts()

    def add(self, recs: np.ndarray) -> None:
        if self.bits:
            bucket = (recs["r"] >> np.uint64(64 - self.bits)).astype(np.int64)
            order = np.argsort(bucket, kind="stable")
            recs, bucket = recs[order], bucket[order]
            bounds = np.flatnonzero(np.diff(bucket)) + 1
            for seg in np.split(np.arange(recs.size), bounds):
                self.buffers.setdefault(int(bucket[seg[0]]), []).append(recs[seg])
        else:  # one bucket
            self.buffers.setdefault(0, []).append(recs)
        self.total += recs.size
        self.pending += recs.size
        if self.pending >= self.bucket_docs:
            self.spill()

    def spill(self) -> None:
        for b, arrs in self.buffers.items():
            path = self.work / f"{self.split}-{b:05d}.rec"
            with space_guard(path), open(path, "ab") as f:
                for a in arrs:
                    f.write(memoryview(a).cast("B"))
        self.buffers.clear()
        self.pending = 0


def write_split(plan: MergePlan, work: Path, split: str, bits: int, total: int, tokens: int, prefix: str,
                dtype: np.dtype, lang_path: str | None) -> dict[str, Any]:
    """Sort each bucket by r and copy its documents into ``prefix.bin/.idx`` (+ the language array), all under
    temporary names (``*.tmp``): the caller publishes them with the other files once everything is complete.

    ``total`` records and ``tokens`` tokens are expected (from :func:`distribute`): the ``.bin`` is allocated at
    its final size and filled in place (see ``window_copy.copy_docs``). Returns the writer's result plus ``lang_tmp``,
    ``lang_sha256`` and ``lang_bytes`` (None without a language array).
    """
    parts = PartFiles(plan.parts)
    langs_out = None
    lang_tmp = f"{lang_path}.tmp" if lang_path is not None else None
    lang_hash = hashlib.sha256()
    lang_bytes = 0
    done = 0
    item = dtype.itemsize
    w = BinidxWriter(prefix, dtype, rename=False)
    try:
        with w:
            if lang_tmp is not None:  # a .npy written as a stream (a memmap's dirty pages would grow the RSS)
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, {"descr": "<u2", "fortran_order": False, "shape": (total,)})
                with space_guard(lang_tmp):
                    langs_out = open(lang_tmp, "wb")  # noqa: SIM115 - closed below
                    langs_out.write(head.getvalue())
                lang_hash.update(head.getvalue())
                lang_bytes += len(head.getvalue())
            fd = w.reserve(tokens)
            base = 0
            for b in range(1 << bits):
                path = work / f"{split}-{b:05d}.rec"
                if not path.exists():
                    continue
                recs = np.fromfile(path, REC)
                order = output_order(recs)
                base = copy_docs(recs["part"][order], recs["off"][order], recs["ntok"][order], parts, item, w, fd,
                                  base)
                if langs_out is not None:
                    chunk = memoryview(np.ascontiguousarray(recs["lang"][order], dtype="<u2")).cast("B")
                    with space_guard(lang_tmp or ""):
                        langs_out.write(chunk)
                    lang_hash.update(chunk)
                    lang_bytes += len(chunk)
                done += recs.size
                path.unlink()
            if langs_out is not None:
                with space_guard(lang_tmp or ""):
                    langs_out.close()
    except BaseException:
        if langs_out is not None:
            with contextlib.suppress(OSError):
                langs_out.close()
        for p in (lang_tmp, (w.result or {}).get("bin_tmp"), (w.result or {}).get("idx_tmp")):
            if p:
                Path(str(p)).unlink(missing_ok=True)
        raise
    finally:
        parts.close()
    assert done == total, (done, total)  # internal invariant
    return {**(w.result or {}), "lang_tmp": lang_tmp, "lang_sha256": lang_hash.hexdigest() if lang_tmp else None,
            "lang_bytes": lang_bytes if lang_tmp else None}
