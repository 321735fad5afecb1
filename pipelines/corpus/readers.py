"""Corpus readers: stream documents (text + language) out of txt, jsonl(.zst/.gz), parquet and HF datasets.

The public entry point is :func:`iter_documents`; the shard job works on :class:`Unit` s (one file, one
parquet row group, one arrow file of a ``save_to_disk`` folder) so parts can be processed in parallel.

Bad records either raise :class:`~rwkv_data.errors.InputFormatError` naming the file and line (or row), or,
with ``on_error="skip"``, are counted per reason in a :class:`ReadStats`. Blank jsonl lines and empty
documents are never errors but are always counted, so nothing is dropped silently. Line numbers are
1-based, parquet/arrow row numbers 0-based (as pyarrow and pandas count).

>>> docs = iter_documents(["corpus/en.jsonl.zst", "notes.txt"], lang="en")   # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rwkv_data.config import MAX_RECORD_BYTES
from rwkv_data.errors import DependencyMissing, InputFormatError
from rwkv_data.pipelines.corpus.streams import (
    LineState,
    Oversize,
    StreamError,
    Truncated,
    fast_json_object,
    file_kind,
    line_blocks,
    numbered_lines,
    open_chunks,
)

try:  # the JSON Lines fast path (built with the package; the general parser gives the same documents)
    from rwkv_data.pipelines._native import scan_jsonl as _scan
except ImportError:  # pragma: no cover - a source tree without the built extension
    _scan = None

OnError = Literal["raise", "skip"]
TEXT_SUFFIXES = (".jsonl", ".jsonl.zst", ".jsonl.zstd", ".jsonl.gz", ".txt", ".txt.zst", ".txt.gz")
SUPPORTED = (*TEXT_SUFFIXES, ".parquet")


@dataclass(frozen=True, slots=True)
class Document:
    """One document: its text, language code, source (file or dataset) and line (or 0-based row).

    ``data`` is the text's UTF-8 encoding, kept from validation so consumers need not encode again.
    """

    text: str
    lang: str
    source: str
    line: int
    data: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def location(self) -> str:
        """``file:line`` for text formats, ``file row N`` for tables."""
        return f"{self.source}:{self.line}" if not _is_table(self.source) else f"{self.source} row {self.line}"


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How records become documents (field names, language fallback, error policy)."""

    text_field: str = "text"
    lang_field: str = "lang"
    lang: str | None = None  # language for records without the field (and for .txt); else "und"
    on_error: OnError = "raise"
    split_paragraphs: bool = False  # .txt: one document per blank-line separated paragraph
    hf_split: str = "train"
    max_record_bytes: int = MAX_RECORD_BYTES  # a longer line / document / cell is an error (or a counted skip)


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of reading work: a file, one parquet row group, one arrow file, or a streamed hub dataset."""

    kind: Literal["jsonl", "txt", "parquet", "arrow", "hub"]
    path: str
    index: int = -1  # parquet row group (-1: the whole file, used when its footer cannot be read)
    rows: int = -1  # rows in the row group / arrow file when known

    def describe(self) -> str:
        """Human-readable name used in progress and error messages."""
        return f"{self.path} row group {self.index}" if self.kind == "parquet" and self.index >= 0 else self.path

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the unit's input: path, size and mtime (hub datasets: name only)."""
        fp: dict[str, Any] = {"kind": self.kind, "path": self.path, "index": self.index}
        if self.kind != "hub":
            st = os.stat(self.path)
            fp.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
        return fp


@dataclass
class ReadStats:
    """Counts of what was read and what was skipped, by reason (record-level reasons count records;
    ``truncated_stream``, ``corrupt_stream`` and ``unreadable_parquet`` count files or row groups)."""

    records: int = 0
    documents: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_skip: dict[str, str] = field(default_factory=dict)  # reason -> first message, for the report

    def merge(self, other: ReadStats) -> None:
        """Add another stats object into this one."""
        self.records += other.records
        self.documents += other.documents
        self.skipped.update(other.skipped)
        for k, v in other.first_skip.items():
            self.first_skip.setdefault(k, v)


class _Sink:
    """Raises or counts a bad record according to the error policy."""

    def __init__(self, opts: ReadOptions, stats: ReadStats) -> None:
        self.opts, self.stats = opts, stats

    def bad(self, reason: str, message: str, count: int = 1) -> None:
        if self.opts.on_error == "raise":
            raise InputFormatError(f"{message} [{reason}]; fix the input or pass --on-error skip")
        self.skip(reason, message, count)

    def skip(self, reason: str, message: str, count: int = 1) -> None:
        self.stats.skipped[reason] += count
        self.stats.first_skip.setdefault(reason, message)

    def too_large(self, where: str, what: str = "record") -> None:
        """Raise or count a record over ``max_record_bytes`` (the caller counts the record)."""
        self.bad("record_too_large", f"{where}: {what} longer than {self.opts.max_record_bytes:,} bytes (the "
                 "--max-record-bytes limit; raise it if documents this large are intended)")

    def broken(self, exc: StreamError, st: LineState) -> None:
        """Raise or count a damaged/truncated stream, saying which lines were read before it."""
        reason = "truncated_stream" if isinstance(exc, Truncated) else "corrupt_stream"
        read = f"lines 1-{st.lines} were read" if st.lines else "no complete line was read"
        lost = f"; the partial line {st.lines + 1} and everything after it are lost" if st.partial else ""
        self.bad(reason, f"{exc}; {read}{lost}")

    def emit(self, text: Any, lang: Any, source: str, line: int, where: str) -> Document | None:
        """Validate one record's fields; a Document, or None when it was skipped."""
        self.stats.records += 1
        if text is _MISSING:
            self.bad("missing_field", f"{where}: no field {self.opts.text_field!r}")
            return None
        if not isinstance(text, str):
            self.bad("non_string_text", f"{where}: field {self.opts.text_field!r} is {type(text).__name__}, not str")
            return None
        if lang is _MISSING or lang is None:
            lang = self.opts.lang or "und"
        elif not isinstance(lang, str) or not lang:
            self.bad("bad_lang", f"{where}: field {self.opts.lang_field!r} is {lang!r}, not a language code")
            return None
        if not text or text.isspace():
            self.skip("empty_text", f"{where}: empty document")
            return None
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from JSON \ud800 escapes
            self.bad("invalid_utf8", f"{where}: text is not valid Unicode ({exc.reason} at char {exc.start})")
            return None
        if len(data) > self.opts.max_record_bytes:
            self.too_large(where, "text")
            return None
        self.stats.documents += 1
        return Document(text, lang, source, line, data)


_MISSING: Any = object()


def _is_table(source: str) -> bool:
    return source.endswith((".parquet", ".arrow")) or source.startswith("hf:")


def _hf_folder(path: Path) -> bool:
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def expand_inputs(inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]], opts: ReadOptions) -> list[Unit]:
    """Resolve files, folders, globs and ``hf:name[:config]`` into an ordered, de-duplicated unit list.

    Folders are walked recursively in sorted order (hidden entries skipped); a folder holding a
    ``save_to_disk`` dataset becomes its arrow files (``opts.hf_split`` picks the split of a DatasetDict).
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    units: list[Unit] = []
    seen: set[tuple[str, int]] = set()
    for raw in inputs:
        spec = os.fspath(raw)
        if spec.startswith("hf:"):
            found = [Unit("hub", spec)]
        elif any(c in spec for c in "*?["):
            matches = sorted(glob.glob(spec, recursive=True))
            if not matches:
                raise InputFormatError(f"{spec}: the pattern matches no file")
            found = [u for m in matches for u in _expand_path(Path(m), opts, explicit=False)]
        else:
            found = _expand_path(Path(spec), opts, explicit=True)
        for u in found:
            if (u.path, u.index) not in seen:
                seen.add((u.path, u.index))
                units.append(u)
    return units


def _expand_path(path: Path, opts: ReadOptions, explicit: bool) -> list[Unit]:
    if path.is_dir():
        if _hf_folder(path):
            return _arrow_units(path, opts)
        out: list[Unit] = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            rootp = Path(root)
            if rootp != path and _hf_folder(rootp):
                out += _arrow_units(rootp, opts)
                dirs[:] = []
                continue
            out += [u for f in sorted(files) if not f.startswith(".") and f.endswith(SUPPORTED)
                    for u in _expand_path(rootp / f, opts, explicit=False)]
        return out
    if not path.exists():
        raise InputFormatError(f"{path}: no such file or folder")
    if not path.is_file():  # a FIFO, a device, a socket: no end, or no size to resume by
        raise InputFormatError(f"{path}: not a regular file ({file_kind(path.stat().st_mode)}); copy the data to a "
                               "file first")
    name = path.name
    if name.endswith(".parquet"):
        return _parquet_units(path)
    if name.endswith(TEXT_SUFFIXES):
        return [Unit("txt" if ".txt" in name else "jsonl", str(path))]
    if explicit:
        raise InputFormatError(f"{path}: unsupported input type; supported: {', '.join(SUPPORTED)}, a "
                               "datasets save_to_disk folder, or hf:NAME[:CONFIG]")
    return []


def _parquet_units(path: Path) -> list[Unit]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - pyarrow is a core dependency
        raise DependencyMissing("reading .parquet needs pyarrow: pip install pyarrow") from exc
    try:
        md = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - any footer failure: surfaced with the file name when the unit is read
        return [Unit("parquet", str(path), -1)]
    return [Unit("parquet", str(path), i, md.row_group(i).num_rows) for i in range(md.num_row_groups)]


def _arrow_units(path: Path, opts: ReadOptions) -> list[Unit]:
    if (path / "dataset_dict.json").is_file():
        splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        if opts.hf_split not in splits:
            raise InputFormatError(f"{path}: no split {opts.hf_split!r}; it has {splits} (use --hf-split)")
        path = path / opts.hf_split
    state = json.loads((path / "state.json").read_text())
    if state.get("_indices_data_files"):
        raise InputFormatError(f"{path}: dataset has an indices mapping; save it with flatten_indices() first")
    return [Unit("arrow", str(path / f["filename"])) for f in state["_data_files"]]


def iter_documents(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    text_field: str = "text",
    lang_field: str = "lang",
    lang: str | None = None,
    on_error: OnError = "raise",
    stats: ReadStats | None = None,
    split_paragraphs: bool = False,
    hf_split: str = "train",
    max_record_bytes: int = MAX_RECORD_BYTES,
) -> Iterator[Document]:
    """Stream the documents of every input, in input order.

    Args:
        inputs: files, folders, glob patterns, ``save_to_disk`` folders or ``hf:name[:config]`` (streamed).
        text_field / lang_field: record fields (jsonl keys, parquet/arrow columns).
        lang: language for records without ``lang_field`` and for .txt files (default ``und``).
        on_error: ``raise`` stops at the first bad record (InputFormatError naming file and line/row);
            ``skip`` counts it in ``stats.skipped`` under its reason.
        stats: filled in place when given.
        split_paragraphs: .txt files become one document per blank-line separated paragraph.
        hf_split: split of a DatasetDict folder or a hub dataset.
        max_record_bytes: the longest line, .txt document or cell read; a longer one is a bad record
            (``record_too_large``), never held in memory beyond the limit.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    if max_record_bytes < 1:
        raise ValueError(f"max_record_bytes must be >= 1, not {max_record_bytes}")
    opts = ReadOptions(text_field, lang_field, lang, on_error, split_paragraphs, hf_split, max_record_bytes)
    st = stats if stats is not None else ReadStats()
    for unit in expand_inputs(inputs, opts):
        yield from iter_unit(unit, opts, st)


def iter_unit(unit: Unit, opts: ReadOptions, stats: ReadStats) -> Iterator[Document]:
    """Documents of one unit (see :func:`iter_documents` for the error policy)."""
    sink = _Sink(opts, stats)
    if unit.kind == "jsonl":
        yield from _iter_jsonl(unit.path, opts, sink)
    elif unit.kind == "txt":
        yield from _iter_txt(unit.path, opts, sink)
    else:
        from rwkv_data.pipelines.corpus.tables import iter_table_unit

        yield from iter_table_unit(unit, opts, sink)


def _lines(path: str, opts: ReadOptions, sink: _Sink) -> Iterator[tuple[int, bytes | Oversize | None]]:
    """(1-based line number, line without newline), each line at most ``opts.max_record_bytes``; a longer line
    comes as an :class:`Oversize` (its bytes were dropped). A broken stream is reported to ``sink`` after every
    complete line before it, and ``(n, None)`` is yielded so callers can drop a half-read document."""
    st = LineState()
    try:
        yield from numbered_lines(open_chunks(path), opts.max_record_bytes, st)
    except StreamError as exc:
        sink.broken(exc, st)
        yield st.lines, None


def _iter_jsonl(path: str, opts: ReadOptions, sink: _Sink) -> Iterator[Document]:
    for n, raw in _lines(path, opts, sink):
        if raw is None:
            return
        if type(raw) is Oversize:
            sink.stats.records += 1
            sink.too_large(f"{path}:{n}", "line")
            continue
        doc = _jsonl_record(raw, n, path, opts, sink)
        if doc is not None:
            yield doc


def _jsonl_record(raw: bytes, n: int, path: str, opts: ReadOptions, sink: _Sink) -> Document | None:
    """The general parser of one JSON line (``n``: its 1-based number): a Document, or None (counted/raised)."""
    if not raw or raw.isspace():
        sink.skip("blank_line", f"{path}:{n}: blank line")
        return None
    tf, lf = opts.text_field, opts.lang_field
    rec = fast_json_object(raw)
    if rec is not None:
        return sink.emit(rec.get(tf, _MISSING), rec.get(lf, _MISSING), path, n, f"{path}:{n}")
    try:  # the standard path; it also classifies what the fast parser refused
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        sink.stats.records += 1
        sink.bad("invalid_utf8", f"{path}:{n}: invalid UTF-8 at byte {exc.start} of the line")
        return None
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as exc:
        sink.stats.records += 1
        sink.bad("invalid_json", f"{path}:{n}: invalid JSON ({exc.msg} at column {exc.colno})")
        return None
    if not isinstance(rec, dict):
        sink.stats.records += 1
        sink.bad("invalid_json", f"{path}:{n}: a JSON {type(rec).__name__}, not an object")
        return None
    return sink.emit(rec.get(tf, _MISSING), rec.get(lf, _MISSING), path, n, f"{path}:{n}")


@dataclass(slots=True)
class DocBatch:
    """Consecutive documents of one unit in bulk: UTF-8 texts, lengths in characters, languages."""

    datas: list[bytes] = field(default_factory=list)
    nchars: list[int] = field(default_factory=list)
    langs: list[str] = field(default_factory=list)

    def add(self, doc: Document) -> None:
        """Append one document."""
        self.insert(len(self.datas), doc)

    def insert(self, pos: int, doc: Document) -> None:
        """Put one document at position ``pos``."""
        self.datas.insert(pos, doc.data if doc.data is not None else doc.text.encode("utf-8"))
        self.nchars.insert(pos, len(doc.text))
        self.langs.insert(pos, doc.lang)


BATCH_DOCS = 1024  # documents per DocBatch on the general path


def iter_unit_batches(unit: Unit, opts: ReadOptions, stats: ReadStats) -> Iterator[DocBatch]:
    """The documents of :func:`iter_unit` (same order, same errors and counts) as UTF-8 batches.

    For JSON Lines the native scanner (``_native.scan_jsonl``) turns whole blocks of lines into bytes without
    making a Python str per document; every line it does not accept goes through the general parser, which
    classifies it as before. Other formats batch :func:`iter_unit`'s documents.
    """
    if unit.kind == "jsonl" and _scan is not None and opts.text_field != opts.lang_field:
        yield from _jsonl_batches(unit.path, opts, _Sink(opts, stats))
        return
    batch = DocBatch()
    for doc in iter_unit(unit, opts, stats):
        batch.add(doc)
        if len(batch.datas) >= BATCH_DOCS:
            yield batch
            batch = DocBatch()
    if batch.datas:
        yield batch


def _jsonl_batches(path: str, opts: ReadOptions, sink: _Sink) -> Iterator[DocBatch]:
    keys = (opts.text_field.encode("utf-8"), opts.lang_field.encode("utf-8"))
    st = LineState()
    try:
        for item in line_blocks(open_chunks(path), opts.max_record_bytes, st):
            if type(item) is Oversize:
                st.lines = item.line
                sink.stats.records += 1
                sink.too_large(f"{path}:{item.line}", "line")
                continue
            done, block = item
            batch, lines = _scan_block(block, done, keys, path, opts, sink)
            st.lines = done + lines
            if batch.datas:
                yield batch
    except StreamError as exc:
        sink.broken(exc, st)


def _scan_block(block: bytes | memoryview, done: int, keys: tuple[bytes, bytes], path: str, opts: ReadOptions,
                sink: _Sink) -> tuple[DocBatch, int]:
    """One block of complete lines through the native scanner, its refused lines through the general parser."""
    assert _scan is not None
    datas, nchars, langs, lines, fallback = _scan(block, *keys)
    if None in langs:
        default = opts.lang or "und"
        langs = [default if lg is None else lg for lg in langs]
    sink.stats.records += len(datas)
    sink.stats.documents += len(datas)
    batch = DocBatch(datas, nchars, langs)
    extra = []
    for line, before, start, end in fallback:
        doc = _jsonl_record(bytes(block[start:end]), done + line + 1, path, opts, sink)
        if doc is not None:
            extra.append((before, doc))
    for before, doc in reversed(extra):  # back to front, so earlier positions stay valid
        batch.insert(before, doc)
    return batch, lines


def _iter_txt(path: str, opts: ReadOptions, sink: _Sink) -> Iterator[Document]:
    if not opts.split_paragraphs:  # the whole file is one document, kept byte-exact
        data = bytearray()
        try:
            for chunk in open_chunks(path):
                if len(data) + len(chunk) > opts.max_record_bytes:
                    sink.stats.records += 1
                    sink.too_large(f"{path}:1", "the file is one document (no --split-paragraphs) and is")
                    return
                data += chunk
        except StreamError as exc:
            sink.stats.records += 1
            sink.broken(exc, LineState(data.count(b"\n"), len(data) - data.rfind(b"\n") - 1))
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            sink.stats.records += 1
            line = data.count(b"\n", 0, exc.start) + 1
            sink.bad("invalid_utf8", f"{path}:{line}: invalid UTF-8 at byte {exc.start} of the file")
            return
        doc = sink.emit(text, _MISSING, path, 1, f"{path}:1")
        if doc is not None:
            yield doc
        return
    yield from _iter_paragraphs(path, opts, sink)


def _iter_paragraphs(path: str, opts: ReadOptions, sink: _Sink) -> Iterator[Document]:
    """One document per blank-line separated paragraph; a paragraph over the record limit is one bad record,
    and its lines are dropped as they come."""
    para: list[str] = []
    size = 0  # bytes of the paragraph so far (its lines and the newlines between them)
    start, bad = 1, False
    for n, raw in _lines(path, opts, sink):
        if raw is None:  # broken stream: the paragraph being read is incomplete
            return
        line = None
        if type(raw) is not Oversize:
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if not bad:  # one skip per paragraph, reported at its first bad line
                    sink.stats.records += 1
                    sink.bad("invalid_utf8", f"{path}:{n}: invalid UTF-8 at byte {exc.start} of the line")
                para, bad = [], True
                continue
            if not line.strip():
                if para and not bad:
                    doc = sink.emit("\n".join(para), _MISSING, path, start, f"{path}:{start}")
                    if doc is not None:
                        yield doc
                para, size, start, bad = [], 0, n + 1, False
                continue
            if bad:
                continue
            size += len(raw) + (1 if para else 0)
        if line is None or size > opts.max_record_bytes:
            if not bad:
                sink.stats.records += 1
                sink.too_large(f"{path}:{start}", "paragraph")
            para, bad = [], True
            continue
        para.append(line)
    if para and not bad:
        doc = sink.emit("\n".join(para), _MISSING, path, start, f"{path}:{start}")
        if doc is not None:
            yield doc
