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
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import mmap
import os
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.errors import ConfigError
from rwkv_data.pipelines._native import gather as _gather
from rwkv_data.pipelines.shard.binidx import BinidxWriter
from rwkv_data.pipelines.shard.outputs import space_guard
from rwkv_data.pipelines.shard.parts import DOC_RECORD, doc_key

CHUNK_DOCS = 1 << 20  # .docs records read per step
REC = np.dtype([("r", "<u8"), ("off", "<u8"), ("part", "<u4"), ("ntok", "<u4"), ("lang", "<u2")])
COPY_BYTES = 16 << 20  # output bytes per mapped window of the merge copy
COPY_THREADS = 2  # threads filling windows (each mostly in pread, without the GIL)
OPEN_PARTS = 1 << 16  # cap on part files open at once while copying (the open-file limit may set a lower one)
FD_RESERVE = 256  # descriptors left for everything else
SALT_SHUFFLE, SALT_KEEP = np.uint64(0x5EED5EED5EED5EED), np.uint64(0xC0FFEE00C0FFEE00)
SPLITS = ("train", "val")


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser (uint64 in, uint64 out; wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


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


def val_threshold(fraction: float) -> int:
    """The key below which every document is validation: ``fraction * 2**64`` (capped at ``2**64 - 1``)."""
    return min(int(fraction * 2.0**64), 2**64 - 1)


def val_mask(rec: np.ndarray, glang: np.ndarray, threshold: int, cutoff: np.ndarray, has: np.ndarray) -> np.ndarray:
    """True where a document belongs to the validation split (``rec`` needs a ``key`` field)."""
    return (rec["key"] < np.uint64(threshold)) | (has[glang] & (rec["key"] <= cutoff[glang]))


def cutoffs_of(chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_langs: int,
               min_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per language, from ``(keys, global language)`` chunks: document count, the key at or below which its
    ``k`` smallest lie (k = min(min_docs, docs // 2)), and whether that cutoff applies (k > 0).

    ``n_langs`` is the least number of languages; a larger language index in a chunk adds languages."""
    best: list[np.ndarray] = []
    counts = np.zeros(0, np.int64)
    for keys, glang in chunks:
        n_langs = max(n_langs, int(glang.max()) + 1 if glang.size else 0)
        here = np.bincount(glang, minlength=n_langs)
        counts = np.pad(counts, (0, n_langs - counts.size)) + here
        if min_docs <= 0 or not glang.size:
            continue
        best += [np.zeros(0, np.uint64)] * (n_langs - len(best))
        order = np.argsort(glang.astype(np.uint16 if n_langs <= 1 << 16 else np.int64), kind="stable")  # radix
        ends = np.cumsum(here)
        for lg in np.flatnonzero(here):
            mine = keys[order[(ends[lg - 1] if lg else 0):ends[lg]]]
            if mine.size > min_docs:
                mine = np.partition(mine, min_docs - 1)[:min_docs]
            best[lg] = np.sort(np.concatenate([best[lg], mine]))[:min_docs]
    counts = np.pad(counts, (0, n_langs - counts.size))
    cutoff = np.zeros(n_langs, np.uint64)
    has = np.zeros(n_langs, bool)
    for lg in range(n_langs):
        k = min(min_docs, int(counts[lg]) // 2)
        if k > 0:
            cutoff[lg], has[lg] = best[lg][k - 1], True
    return counts, cutoff, has


def val_cutoffs(records: PartRecords, n_langs: int, min_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cutoffs_of` over the documents of finished parts."""
    return cutoffs_of(((c.rec["key"], c.glang) for c in records.chunks()), n_langs, min_docs)


@dataclass(frozen=True)
class ValidationSplit:
    """The validation rule applied to one corpus (module docstring, point 1): which documents go to ``P_val``.

    Built by the shard merge from its parts and by :func:`validation_split` from documents, both with
    :func:`cutoffs_of` and :func:`val_threshold`, and applied with :func:`val_mask`: they agree on every document.
    """

    langs: tuple[str, ...]  # index = global language
    documents: np.ndarray  # per language
    threshold: int
    cutoff: np.ndarray  # per language: the key of its min_docs-th smallest document ...
    has_cutoff: np.ndarray  # ... when the per-language minimum applies

    def mask(self, rec: np.ndarray, glang: np.ndarray) -> np.ndarray:
        """True where a record (``key`` field) of global language ``glang`` is a validation document."""
        return val_mask(rec, glang, self.threshold, self.cutoff, self.has_cutoff)

    def is_validation(self, text: str | bytes, lang: str) -> bool:
        """Whether the shard job puts this document (its text, or the text's UTF-8 bytes) in ``P_val``.

        Exact for the documents of the corpus the split was made from; for other text it applies the same
        rule (a language absent from that corpus has no per-language minimum, only the hash fraction).
        """
        rec = np.zeros(1, [("key", "<u8")])
        rec["key"] = doc_key(text.encode("utf-8") if isinstance(text, str) else text)
        if lang not in self.langs:
            return bool(rec["key"][0] < np.uint64(self.threshold))
        return bool(self.mask(rec, np.array([self.langs.index(lang)]))[0])


def validation_split(docs: Iterable[tuple[str | bytes, str]], fraction: float, min_docs: int) -> ValidationSplit:
    """The shard job's validation split of ``(text, language)`` documents (text as str or its UTF-8 bytes).

    Streams: only each language's ``min_docs`` smallest keys are kept.
    """
    index: dict[str, int] = {}

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        keys: list[int] = []
        langs: list[int] = []
        for text, lang in docs:
            keys.append(doc_key(text.encode("utf-8") if isinstance(text, str) else text))
            langs.append(index.setdefault(lang, len(index)))
            if len(keys) >= CHUNK_DOCS:
                yield np.array(keys, np.uint64), np.array(langs, np.int64)
                keys, langs = [], []
        if keys:
            yield np.array(keys, np.uint64), np.array(langs, np.int64)

    counts, cutoff, has = cutoffs_of(chunks(), 0, min_docs)
    return ValidationSplit(tuple(index), counts, val_threshold(fraction), cutoff, has)


def lang_weights(train_tokens: dict[str, int], budgets: dict[str, int], temperature: float) -> dict[str, float]:
    """Weight per language: budget / tokens, or temperature sampling q ~ p**(1/T) at constant total."""
    if budgets and temperature:
        raise ConfigError("give either per-language token budgets or a temperature, not both")
    unknown = sorted(set(budgets) - set(train_tokens))
    if unknown:
        raise ConfigError(f"token budgets for languages not in the corpus: {unknown}; present: {sorted(train_tokens)}")
    if budgets:
        return {lg: (budgets[lg] / t if lg in budgets else 1.0) if t else 1.0 for lg, t in train_tokens.items()}
    if temperature:
        if temperature < 0:
            raise ConfigError(f"temperature must be > 0, not {temperature}")
        total = sum(train_tokens.values())
        scaled = {lg: (t / total) ** (1.0 / temperature) for lg, t in train_tokens.items() if t}
        z = sum(scaled.values())
        return {lg: (scaled[lg] / z * total / t if t else 1.0) for lg, t in train_tokens.items()}
    return dict.fromkeys(train_tokens, 1.0)


def copies_of(uid: np.ndarray, weight: np.ndarray, seed: int) -> np.ndarray:
    """How many copies each document keeps under its language weight (deterministic in seed); ``uid`` is
    ``part << 32 | document index in the part``."""
    whole = np.floor(weight).astype(np.int64)
    frac = weight - whole
    u = splitmix64(uid ^ splitmix64(np.array([seed], np.uint64) ^ SALT_KEEP)).astype(np.float64) / 2.0**64
    return whole + (u < frac)


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


class _Parts:
    """Part token files read with pread (not mmap: mapped pages would count toward this process's RSS and make
    it grow with the corpus). Every part stays open when the open-file limit allows (raised toward its hard
    limit if need be); otherwise at most ``limit`` descriptors are open at a time."""

    def __init__(self, plan: MergePlan) -> None:
        self.stems = {p.index: p.stem for p in plan.parts}
        self.limit = min(OPEN_PARTS, _fd_budget(len(self.stems)))
        self.open: OrderedDict[int, int] = OrderedDict()
        self.all_fds: np.ndarray | None = None  # part index -> descriptor, when every part fits

    def fd(self, part: int) -> int:
        fd = self.open.pop(part, None)
        if fd is None:
            fd = os.open(f"{self.stems[part]}.bin", os.O_RDONLY)
            if len(self.open) >= self.limit:
                os.close(self.open.popitem(last=False)[1])
        self.open[part] = fd
        return fd

    def shareable(self) -> bool:
        """Every part is open (opened now): :meth:`gather` may then run on several threads at once (the
        descriptor table no longer changes)."""
        if len(self.stems) > self.limit:
            return False
        if self.all_fds is None:
            fds = np.full(max(self.stems) + 1, -1, np.int32)
            for i in self.stems:
                fds[i] = self.fd(i)
            self.all_fds = fds
        return True

    def gather(self, part: np.ndarray, offset: np.ndarray, size: np.ndarray, dest: np.ndarray,
               out: bytearray | mmap.mmap) -> None:
        """Read ``size`` bytes at ``offset`` of each range's part into ``out[dest:]`` (native, GIL released)."""
        offset, size, dest = (np.ascontiguousarray(a, np.uint64) for a in (offset, size, dest))
        if self.shareable():
            assert self.all_fds is not None
            self._gather(self.all_fds, part.astype(np.uint32), offset, size, dest, out, lambda k: int(part[k]))
            return
        uniq, which = np.unique(part, return_inverse=True)
        for g in range(0, uniq.size, self.limit):
            sel = (which >= g) & (which < g + self.limit)
            fds = np.array([self.fd(int(p)) for p in uniq[g:g + self.limit]], np.int32)
            w = (which[sel] - g).astype(np.uint32)
            self._gather(fds, w, offset[sel], size[sel], dest[sel], out, lambda k, w=w, g=g: int(uniq[g + w[k]]))

    def _gather(self, fds: np.ndarray, which: np.ndarray, offset: np.ndarray, size: np.ndarray, dest: np.ndarray,
                out: bytearray | mmap.mmap, part_of: Callable[[int], int]) -> None:
        done = _gather(fds, which, offset, size, dest, out)
        if done < which.size:
            stem = self.stems[part_of(done)]
            raise OSError(f"{stem}.bin: short read ({int(size[done])} bytes at {int(offset[done])}): the part is "
                          f"damaged; delete {stem}.done (or the whole work folder) and rerun to rebuild it")

    def close(self) -> None:
        self.all_fds = None
        while self.open:
            os.close(self.open.popitem()[1])


def _fd_budget(wanted: int) -> int:
    """Descriptors the merge may keep open for ``wanted`` parts: the soft open-file limit (raised toward the hard
    one when ``wanted`` needs it) less a reserve for everything else."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need and (hard == resource.RLIM_INFINITY or hard > soft):
        target = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(16, (wanted if soft == resource.RLIM_INFINITY else soft - FD_RESERVE))


def write_split(plan: MergePlan, work: Path, split: str, bits: int, total: int, tokens: int, prefix: str,
                dtype: np.dtype, lang_path: str | None) -> dict[str, Any]:
    """Sort each bucket by r and copy its documents into ``prefix.bin/.idx`` (+ the language array), all under
    temporary names (``*.tmp``): the caller publishes them with the other files once everything is complete.

    ``total`` records and ``tokens`` tokens are expected (from :func:`distribute`): the ``.bin`` is allocated at
    its final size and filled in place (see :func:`_copy_docs`). Returns the writer's result plus ``lang_tmp``,
    ``lang_sha256`` and ``lang_bytes`` (None without a language array).
    """
    parts = _Parts(plan)
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
                base = _copy_docs(recs["part"][order], recs["off"][order], recs["ntok"][order], parts, item, w, fd,
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


def output_order(recs: np.ndarray) -> np.ndarray:
    """The order of shuffle records in the output: ascending ``r``, ties (two equal 64-bit keys: practically
    never, but the bytes must not depend on the sort algorithm) by part, then offset."""
    order = np.argsort(recs["r"])
    r = recs["r"][order]
    if r.size > 1 and (r[1:] == r[:-1]).any():
        order = np.lexsort((recs["off"], recs["part"], recs["r"]))
    return order


def _copy_docs(part: np.ndarray, off: np.ndarray, ntok: np.ndarray, parts: _Parts, item: int, w: BinidxWriter,
               fd: int, base: int) -> int:
    """Copy documents, given in output order by part index, token offset in the part and token count, into the
    reserved ``.bin`` (descriptor ``fd``) from byte ``base`` on; returns the byte offset after them.

    The output goes in windows of whole documents, about COPY_BYTES each: a window is mapped (MAP_SHARED) and
    filled by the native gather, one pread per document straight into the mapping (one copy, no write call, and
    no inode lock, so COPY_THREADS threads fill windows at once); this thread hashes and commits the finished
    windows in file order and unmaps them. At most COPY_THREADS + 1 windows are mapped at a time, which bounds
    the mapped pages in this process's RSS.
    """
    if part.size == 0:
        return base
    sizes = ntok.astype(np.int64)
    nbytes = sizes * item
    starts = np.cumsum(nbytes) - nbytes  # from base
    cuts = np.flatnonzero(np.diff(starts // COPY_BYTES)) + 1  # a window: the documents starting in one stretch
    bounds = [0, *cuts.tolist(), part.size]
    offsets = off * np.uint64(item)
    threads = COPY_THREADS if parts.shareable() else 1

    def fill(lo: int, hi: int) -> tuple[mmap.mmap, int, int, int]:
        first, end = base + int(starts[lo]), base + int(starts[hi - 1] + nbytes[hi - 1])
        aligned = first - first % mmap.ALLOCATIONGRANULARITY
        m = mmap.mmap(fd, end - aligned, offset=aligned)
        try:
            parts.gather(part[lo:hi], offsets[lo:hi], nbytes[lo:hi], starts[lo:hi] + (base - aligned), m)
            view = np.frombuffer(m, w.dtype, (end - first) // item, first - aligned)
            top = int(view.max())  # here, on this thread, while the window is still in cache
            del view
        except BaseException:
            with contextlib.suppress(BufferError):  # a view may still be alive in the traceback
                m.close()
            raise
        return m, first - aligned, end - first, top

    pending: deque[tuple[Future[tuple[mmap.mmap, int, int, int]], int, int]] = deque()

    def commit_next() -> None:
        future, lo, hi = pending.popleft()
        m, skip, length, top = future.result()
        try:
            view = np.frombuffer(m, w.dtype, length // item, skip)
            w.commit(view, sizes[lo:hi], max_id=top)
            del view  # the mapping cannot close while a view exports it
        finally:
            with contextlib.suppress(BufferError):  # after an error a traceback may still hold a view
                m.close()

    with ThreadPoolExecutor(threads, thread_name_prefix="shard-copy") as pool:
        try:
            for c in range(len(bounds) - 1):
                pending.append((pool.submit(fill, bounds[c], bounds[c + 1]), bounds[c], bounds[c + 1]))
                if len(pending) > threads:
                    commit_next()
            while pending:
                commit_next()
        except BaseException:
            for future, _, _ in pending:  # unmap what the other windows mapped
                if not future.cancel() and future.exception() is None:
                    future.result()[0].close()
            raise
    return base + int(starts[-1] + nbytes[-1])
