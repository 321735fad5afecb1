"""Stage 1 of ``rwkv-data shard``: one reader unit (file / row group / arrow file) -> one tokenized part.

A part in the work folder is four files, each written under a temporary name and renamed:
``part-NNNNNN.bin`` (tokens of every document, EOS 0 appended, in the final dtype), ``.docs`` (one
:data:`DOC_RECORD` per document), ``.json`` (summary: unit, language table, counts, skips) and last the
completion marker ``.done`` holding the part key. A rerun reuses a part only when its marker holds the same
key (input fingerprint + every option that changes the part's bytes), so a killed job continues where it
stopped and a changed input or option redoes its part.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.errors import InputFormatError
from rwkv_data.pipelines.corpus.documents import DocBatch, ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.documents import too_many_languages as _language_limit
from rwkv_data.pipelines.corpus.inputs import Unit
from rwkv_data.pipelines.corpus.readers import iter_unit_batches
from rwkv_data.pipelines.shard.outputs import space_guard

PART_FORMAT = 1
# key: 64-bit content hash (validation split); ntok includes the EOS; lang: index into the part's table
MAX_LANGS = 1 << 16  # a shard stores each document's language as a uint16 index (P.lang.npy)


def too_many_languages(where: str, n: int) -> InputFormatError:
    """The error for a corpus of more distinct language codes than a shard can index."""
    return _language_limit(where, n, MAX_LANGS, "a shard can record (P.lang.npy holds a uint16 index per "
                                 "document)")


DOC_RECORD = np.dtype([("key", "<u8"), ("ntok", "<u4"), ("nbytes", "<u4"), ("nchars", "<u4"), ("lang", "<u2"),
                       ("pad", "<u2")])
BATCH_BYTES = 1 << 20  # text per encode_batch call: large enough to amortise the call, small for RAM
BATCH_DOCS = 1024

Progress = Callable[[int, int, int], None]  # (documents, text bytes, tokens) since the last call


@dataclass(frozen=True)
class PartTask:
    """Everything a worker needs to build one part (picklable)."""

    index: int
    unit: Unit
    opts: ReadOptions
    work_dir: str
    key: str
    dtype: str

    @property
    def stem(self) -> Path:
        return Path(self.work_dir) / f"part-{self.index:06d}"


def part_key(unit: Unit, opts: ReadOptions, tokenizer_sha256: str, dtype: str) -> str:
    """Hash of what determines a part's bytes: the unit's fingerprint, read options, tokenizer, dtype."""
    blob = json.dumps({"format": PART_FORMAT, "unit": unit.fingerprint(), "opts": asdict(opts),
                       "tokenizer": tokenizer_sha256, "dtype": dtype}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def is_done(task: PartTask) -> bool:
    """The part's marker exists and holds this task's key."""
    try:
        return Path(f"{task.stem}.done").read_text() == task.key
    except OSError:
        return False


def load_summary(task: PartTask) -> dict[str, Any]:
    """The ``.json`` summary of a finished part."""
    return json.loads(Path(f"{task.stem}.json").read_text(encoding="utf-8"))


def doc_key(data: bytes) -> int:
    """The document's 64-bit content hash (first 8 bytes of sha256, little-endian; sha256 is hardware-accelerated
    on current x86/ARM, ~2x blake2b here): decides the validation split, so identical texts agree."""
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little")


def doc_keys(datas: list[bytes]) -> np.ndarray:
    """:func:`doc_key` of every document, as uint64 (without a Python int per document)."""
    sha = hashlib.sha256
    return np.frombuffer(b"".join([sha(d).digest()[:8] for d in datas]), dtype="<u8")


class _Part:
    """Open temporary files of a part being built."""

    def __init__(self, task: PartTask) -> None:
        self.task = task
        self.tmp = {ext: Path(f"{task.stem}.{ext}.tmp") for ext in ("bin", "docs", "json", "done")}
        with space_guard(self.tmp["bin"]):
            self.bin = open(self.tmp["bin"], "wb")  # noqa: SIM115 - closed in finish/abort
        with space_guard(self.tmp["docs"]):
            self.docs = open(self.tmp["docs"], "wb")  # noqa: SIM115
        self.langs: dict[str, int] = {}
        self.table = np.zeros((0, 4), np.int64)  # per local language: docs, tokens, bytes, chars
        self.dtype = np.dtype(task.dtype)

    def write(self, ids: np.ndarray, sizes: np.ndarray, datas: list[bytes], nchars: list[int], langs: list[str]) -> int:
        """Append documents: ``ids`` packed with a 0 after each (TrieTokenizer.encode_packed), ``sizes`` their
        id counts without the 0."""
        n = len(datas)
        rec = np.zeros(n, DOC_RECORD)
        ntok = sizes.astype(np.int64) + 1
        nbytes = np.fromiter(map(len, datas), dtype=np.int64, count=n)
        if int(nbytes.max()) > 0xFFFFFFFF:
            raise ValueError(f"{self.task.unit.describe()}: a document over 4 GiB")
        rec["key"] = doc_keys(datas)
        rec["ntok"], rec["nbytes"] = ntok, nbytes
        rec["nchars"] = nchars
        codes = [self.langs.setdefault(lg, len(self.langs)) for lg in langs]
        if len(self.langs) > MAX_LANGS:
            raise too_many_languages(self.task.unit.describe(), len(self.langs))
        rec["lang"] = codes
        with space_guard(self.tmp["bin"]):
            self.bin.write(memoryview(np.ascontiguousarray(ids, dtype=self.dtype)).cast("B"))
        with space_guard(self.tmp["docs"]):
            self.docs.write(memoryview(rec).cast("B"))
        li = rec["lang"].astype(np.int64)
        k = len(self.langs)
        if self.table.shape[0] < k:
            self.table = np.vstack([self.table, np.zeros((k - self.table.shape[0], 4), np.int64)])
        self.table[:, 0] += np.bincount(li, minlength=k)
        for j, col in enumerate((ntok, nbytes, rec["nchars"].astype(np.int64)), start=1):
            self.table[:, j] += np.bincount(li, weights=col, minlength=k).round().astype(np.int64)
        return int(ids.size)

    def finish(self, stats: ReadStats) -> dict[str, Any]:
        with space_guard(self.tmp["bin"]):
            self.bin.close()
        with space_guard(self.tmp["docs"]):
            self.docs.close()
        order = sorted(self.langs)
        summary = {
            "index": self.task.index, "key": self.task.key, "unit": self.task.unit.fingerprint(),
            "langs": list(self.langs), "records": stats.records, "documents": stats.documents,
            "tokens": int(self.table[:, 1].sum()),
            "per_language": {lg: dict(zip(("documents", "tokens", "bytes", "characters"),
                                          self.table[self.langs[lg]].tolist(), strict=True)) for lg in order},
            "skipped": dict(sorted(stats.skipped.items())), "first_skip": stats.first_skip,
        }
        with space_guard(self.tmp["json"]):
            self.tmp["json"].write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
        for ext in ("bin", "docs", "json"):
            os.replace(self.tmp[ext], f"{self.task.stem}.{ext}")
        with space_guard(self.tmp["done"]):
            self.tmp["done"].write_text(self.task.key)
        os.replace(self.tmp["done"], f"{self.task.stem}.done")  # the marker goes last
        return summary

    def abort(self) -> None:
        for f in (self.bin, self.docs):
            with contextlib.suppress(OSError):  # a close that flushes onto a full disk
                f.close()
        for p in self.tmp.values():
            p.unlink(missing_ok=True)


def build_part(task: PartTask, tokenizer: Any, progress: Progress | None = None) -> dict[str, Any]:
    """Read, tokenize and write one part; returns its summary. Raises InputFormatError in raise mode."""
    Path(f"{task.stem}.done").unlink(missing_ok=True)  # stale marker of an older key
    stats = ReadStats()
    part = _Part(task)
    pending = DocBatch()
    size = 0

    def flush() -> None:
        nonlocal pending, size
        ids, sizes = tokenizer.encode_packed(pending.datas, num_threads=1)
        tokens = part.write(ids, sizes, pending.datas, pending.nchars, pending.langs)
        if progress is not None:
            progress(len(pending.datas), size, tokens)
        pending, size = DocBatch(), 0

    try:
        for batch in iter_unit_batches(task.unit, task.opts, stats):
            pending.datas += batch.datas
            pending.nchars += batch.nchars
            pending.langs += batch.langs
            size += sum(map(len, batch.datas))
            if size >= BATCH_BYTES or len(pending.datas) >= BATCH_DOCS:
                flush()
        if pending.datas:
            flush()
        return part.finish(stats)
    except BaseException:
        part.abort()
        raise
