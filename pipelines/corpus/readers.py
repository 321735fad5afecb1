"""Corpus readers: stream documents (text + language) out of txt, jsonl(.zst/.gz), parquet and HF datasets.

The public entry point is :func:`iter_documents`; the shard job works on units (``inputs.Unit``: one file, one
parquet row group, one arrow file of a ``save_to_disk`` folder) so parts can be processed in parallel. The
inputs are resolved in ``inputs``, the documents, options, stats and error policy are in ``documents``, the
jsonl and txt readers in ``text_readers`` and the table readers in ``tables``.

Bad records either raise :class:`~rwkv_data.errors.InputFormatError` naming the file and line (or row), or,
with ``on_error="skip"``, are counted per reason in a :class:`ReadStats`. Blank jsonl lines and empty
documents are never errors but are always counted, so nothing is dropped silently. Line numbers are
1-based, parquet/arrow row numbers 0-based (as pyarrow and pandas count).

>>> docs = iter_documents(["corpus/en.jsonl.zst", "notes.txt"], lang="en")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from rwkv_data.config import MAX_RECORD_BYTES
from rwkv_data.pipelines.corpus.documents import DocBatch, Document, OnError, ReadOptions, ReadStats, Sink
from rwkv_data.pipelines.corpus.inputs import Unit, expand_inputs
from rwkv_data.pipelines.corpus.text_readers import HAVE_SCANNER, iter_jsonl, iter_txt, jsonl_batches


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
    sink = Sink(opts, stats)
    if unit.kind == "jsonl":
        yield from iter_jsonl(unit.path, opts, sink)
    elif unit.kind == "txt":
        yield from iter_txt(unit.path, opts, sink)
    else:
        from rwkv_data.pipelines.corpus.tables import iter_table_unit

        yield from iter_table_unit(unit, opts, sink)


BATCH_DOCS = 1024  # documents per DocBatch on the general path


def iter_unit_batches(unit: Unit, opts: ReadOptions, stats: ReadStats) -> Iterator[DocBatch]:
    """The documents of :func:`iter_unit` (same order, same errors and counts) as UTF-8 batches.

    For JSON Lines the native scanner (``_native.scan_jsonl``) turns whole blocks of lines into bytes without
    making a Python str per document; every line it does not accept goes through the general parser, which
    classifies it as before. Other formats batch :func:`iter_unit`'s documents.
    """
    if unit.kind == "jsonl" and HAVE_SCANNER and opts.text_field != opts.lang_field:
        yield from jsonl_batches(unit.path, opts, Sink(opts, stats))
        return
    batch = DocBatch()
    for doc in iter_unit(unit, opts, stats):
        batch.add(doc)
        if len(batch.datas) >= BATCH_DOCS:
            yield batch
            batch = DocBatch()
    if batch.datas:
        yield batch
