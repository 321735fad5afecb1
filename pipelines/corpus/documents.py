"""What the corpus readers produce and how they treat bad records: :class:`Document` and :class:`DocBatch`, the
:class:`ReadOptions`, the :class:`ReadStats` they fill, and the :class:`Sink` that raises or counts each bad record
(``on_error``). Blank jsonl lines and empty documents are never errors but are always counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from rwkv_data.config import LANG_MAX_CHARS, MAX_RECORD_BYTES, is_language_code, short_repr
from rwkv_data.errors import InputFormatError
from rwkv_data.pipelines.corpus.streams import LineState, StreamError, Truncated

OnError = Literal["raise", "skip"]


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
        return f"{self.source}:{self.line}" if not is_table(self.source) else f"{self.source} row {self.line}"


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

    def skips(self) -> dict[str, Any]:
        """What was skipped, for a job's result and meta: ``skipped`` (reason -> count) and ``skipped_examples``
        (reason -> the first message: file and line, or byte offset)."""
        return {"skipped": dict(sorted(self.skipped.items())),
                "skipped_examples": dict(sorted(self.first_skip.items()))}

    def report(self) -> dict[str, Any]:
        """:meth:`skips` with the ``records`` and ``documents`` read."""
        return {"records": self.records, "documents": self.documents, **self.skips()}


class Sink:
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
        if text is MISSING:
            self.bad("missing_field", f"{where}: no field {self.opts.text_field!r}")
            return None
        if not isinstance(text, str):
            self.bad("non_string_text", f"{where}: field {self.opts.text_field!r} is {type(text).__name__}, not str")
            return None
        if lang is MISSING or lang is None:
            lang = self.opts.lang or "und"
        elif not isinstance(lang, str) or not is_language_code(lang):
            self.bad("bad_lang", f"{where}: field {self.opts.lang_field!r} is {short_repr(lang)}, not a language "
                     f"code (1-{LANG_MAX_CHARS} letters, digits, '-', '_' or '.', e.g. 'sw', 'zh-Hans', 'eng_Latn')")
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


def too_many_languages(where: str, count: int, limit: int,
                       holder: str = "a vocab or audit job accepts") -> InputFormatError:
    """The error for a corpus of more distinct language codes than a job can hold (``count`` > ``limit``)."""
    return InputFormatError(f"{where}: {count:,} distinct language codes, more than the {limit:,} {holder}; is "
                            "--lang-field the language field? (else group rare languages under one code)")


def skip_lines(result: dict[str, Any]) -> list[str]:
    """What a reading job skipped (``skipped``: reason -> count, ``skipped_examples``: reason -> the first message,
    naming the file and line or byte offset), as ``skipped: reason=n, ...`` and one line per reason."""
    skipped = result.get("skipped") or {}
    lines = ["skipped: " + (", ".join(f"{k}={v}" for k, v in skipped.items()) or "none")]
    lines += [f"  first {k}: {v}" for k, v in (result.get("skipped_examples") or {}).items()]
    return lines


MISSING: Any = object()  # a field the record lacks (distinct from a null value)


def is_table(source: str) -> bool:
    """Whether ``source`` is a table (parquet, arrow, hub dataset), whose records are rows, not lines."""
    return source.endswith((".parquet", ".arrow")) or source.startswith("hf:")


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

