"""The line readers of the corpus: JSON Lines (the general parser, and the native scanner for whole blocks of
lines) and .txt (one document per file, or per blank-line separated paragraph), compressed or not.

Line numbers are 1-based; every bad line goes to the :class:`~rwkv_data.pipelines.corpus.documents.Sink`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from rwkv_data.config import is_language_code
from rwkv_data.pipelines.corpus.documents import MISSING, DocBatch, Document, ReadOptions, Sink
from rwkv_data.pipelines.corpus.streams import (
    LineState,
    Oversize,
    StreamError,
    fast_json_object,
    line_blocks,
    numbered_lines,
    open_chunks,
)

try:  # the JSON Lines fast path (built with the package; the general parser gives the same documents)
    from rwkv_data.pipelines._native import scan_jsonl as _scan
except ImportError:  # pragma: no cover - a source tree without the built extension
    _scan = None


HAVE_SCANNER = _scan is not None
UTF8_BOM = b"\xef\xbb\xbf"


def _lines(path: str, opts: ReadOptions, sink: Sink) -> Iterator[tuple[int, bytes | Oversize | None]]:
    """(1-based line number, line without newline), each line at most ``opts.max_record_bytes``; a longer line
    comes as an :class:`Oversize` (its bytes were dropped). A broken stream is reported to ``sink`` after every
    complete line before it, and ``(n, None)`` is yielded so callers can drop a half-read document."""
    st = LineState()
    try:
        yield from numbered_lines(open_chunks(path), opts.max_record_bytes, st)
    except StreamError as exc:
        sink.broken(exc, st)
        yield st.lines, None


def iter_jsonl(path: str, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    """The documents of a JSON Lines file, one line at a time through the general parser."""
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


def _jsonl_record(raw: bytes, n: int, path: str, opts: ReadOptions, sink: Sink) -> Document | None:
    """The general parser of one JSON line (``n``: its 1-based number): a Document, or None (counted/raised)."""
    if raw.startswith(UTF8_BOM):  # a byte order mark written by an editor (or files joined): not JSON, not text
        raw = raw[len(UTF8_BOM):]
    if not raw or raw.isspace():
        sink.skip("blank_line", f"{path}:{n}: blank line")
        return None
    tf, lf = opts.text_field, opts.lang_field
    rec = fast_json_object(raw)
    if rec is not None:
        return sink.emit(rec.get(tf, MISSING), rec.get(lf, MISSING), path, n, f"{path}:{n}")
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
    return sink.emit(rec.get(tf, MISSING), rec.get(lf, MISSING), path, n, f"{path}:{n}")


def jsonl_batches(path: str, opts: ReadOptions, sink: Sink) -> Iterator[DocBatch]:
    """The documents of a JSON Lines file in batches, block by block through the native scanner."""
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
                sink: Sink) -> tuple[DocBatch, int]:
    """One block of complete lines through the native scanner, its refused lines through the general parser."""
    assert _scan is not None
    datas, nchars, langs, lines, fallback = _scan(block, *keys)
    if not all(lg is None or is_language_code(lg) for lg in set(langs)):  # the general parser names the line
        return _parse_block(block, done, path, opts, sink), lines
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


def _parse_block(block: bytes | memoryview, done: int, path: str, opts: ReadOptions, sink: Sink) -> DocBatch:
    """A block of complete lines (``done`` lines before it) through the general parser alone."""
    batch = DocBatch()
    lines = bytes(block).split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for n, raw in enumerate(lines, done + 1):
        doc = _jsonl_record(raw, n, path, opts, sink)
        if doc is not None:
            batch.add(doc)
    return batch


def iter_txt(path: str, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    """The documents of a .txt file: the whole file, or one per paragraph (``opts.split_paragraphs``)."""
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
        doc = sink.emit(text, MISSING, path, 1, f"{path}:1")
        if doc is not None:
            yield doc
        return
    yield from _iter_paragraphs(path, opts, sink)


def _iter_paragraphs(path: str, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
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
                    doc = sink.emit("\n".join(para), MISSING, path, start, f"{path}:{start}")
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
        doc = sink.emit("\n".join(para), MISSING, path, start, f"{path}:{start}")
        if doc is not None:
            yield doc
