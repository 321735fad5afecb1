"""Table readers behind :mod:`rwkv_data.pipelines.corpus.readers`: parquet row groups, the arrow files of a
datasets ``save_to_disk`` folder (read with pyarrow directly, no ``datasets`` import), and hub datasets
streamed with ``datasets.load_dataset(..., streaming=True)``.

Rows are numbered from 0 within the file (parquet: across row groups; arrow: within the arrow file).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rwkv_data.errors import DependencyMissing, InputFormatError
from rwkv_data.pipelines.corpus.documents import MISSING, Document, ReadOptions, Sink

if TYPE_CHECKING:
    from rwkv_data.pipelines.corpus.inputs import Unit

BATCH_ROWS = 2048
BATCH_BYTES = 32 << 20  # parquet: fewer rows per batch when rows are large, so a batch stays near this size
PAGE_BYTES = 256 << 20  # parquet: the largest page decoded when the record limit is below it (see page_bound)


def iter_table_unit(unit: Unit, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    """Documents of a parquet row group, an arrow file or a hub dataset."""
    if unit.kind == "parquet":
        yield from _iter_parquet(unit, opts, sink)
    elif unit.kind == "arrow":
        yield from _iter_arrow(unit, opts, sink)
    elif unit.kind == "hub":
        yield from _iter_hub(unit, opts, sink)
    else:  # pragma: no cover - internal invariant
        raise ValueError(f"not a table unit: {unit}")


def _rows(batches: Iterator[Any], unit: Unit, first_row: int, opts: ReadOptions, sink: Sink,
          reason: str) -> Iterator[Document]:
    """Documents out of record batches; a batch that fails to decode is reported under ``reason``."""
    row = first_row
    where = unit.describe()
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for corrupt data
            sink.bad(reason, f"{where}: cannot read rows from {row} on: {type(exc).__name__}: {exc}")
            return
        names = batch.schema.names
        n = batch.num_rows
        if opts.text_field not in names:
            sink.stats.records += n
            sink.bad("missing_field", f"{where}: no column {opts.text_field!r} (columns: {names}); "
                     "set --text-field", count=n)
            row += n
            continue
        column = batch.column(names.index(opts.text_field))
        too_long = _oversize_mask(column, opts.max_record_bytes)
        oversize: set[int] = set()
        if too_long is not None:  # those cells are never made into Python strings
            import pyarrow.compute as pc

            oversize = set(pc.indices_nonzero(too_long).to_pylist())
            column = pc.if_else(too_long, None, column)
        texts = column.to_pylist()
        langs = (batch.column(names.index(opts.lang_field)).to_pylist() if opts.lang_field in names
                 else [MISSING] * n)
        for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if i in oversize:
                sink.stats.records += 1
                sink.too_large(f"{unit.path} row {row}", "text")
                row += 1
                continue
            doc = sink.emit(text, lang, unit.path, row, f"{unit.path} row {row}")
            row += 1
            if doc is not None:
                yield doc


def _oversize_mask(column: Any, limit: int) -> Any:
    """Which cells of a text column are longer than ``limit`` bytes (a boolean array, checked on the arrow
    lengths without making Python strings), or None when none is, or the column is not strings (``Sink.emit``
    reports those)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            or pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
        return None
    lengths = pc.binary_length(column)
    if (pc.max(lengths).as_py() or 0) <= limit:
        return None
    return pc.greater(lengths, limit)


def _iter_parquet(unit: Unit, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(unit.path)
        first = sum(pf.metadata.row_group(i).num_rows for i in range(max(unit.index, 0)))
        present = set(pf.schema_arrow.names)
    except Exception as exc:  # noqa: BLE001 - a bad footer raises ArrowInvalid, OSError, ...
        sink.bad("unreadable_parquet", f"{unit.path}: not a readable parquet file ({type(exc).__name__}: {exc})")
        return
    if unit.index < 0:  # the footer was unreadable when the units were listed but reads now
        raise InputFormatError(f"{unit.path}: the file changed while it was being read; run again")
    cols = [c for c in (opts.text_field, opts.lang_field) if c in present] or None
    try:
        rg = pf.metadata.row_group(unit.index)
        size = sum(rg.column(j).total_uncompressed_size for j in range(rg.num_columns)
                   if cols is None or rg.column(j).path_in_schema in cols)
        batch_rows = max(1, min(BATCH_ROWS, BATCH_BYTES * max(rg.num_rows, 1) // max(size, 1)))
    except Exception:  # noqa: BLE001 - odd metadata: the default batch size
        batch_rows = BATCH_ROWS
    if not _pages_fit(unit, pf, cols, opts, sink):
        return
    batches = iter(pf.iter_batches(batch_size=batch_rows, row_groups=[unit.index], columns=cols))
    yield from _rows(batches, unit, first, opts, sink, "unreadable_parquet")


def page_bound(opts: ReadOptions) -> int:
    """The largest parquet page read: pyarrow decodes a whole page at once, and a page holds whole cells."""
    return max(opts.max_record_bytes, PAGE_BYTES)


def _pages_fit(unit: Unit, pf: Any, cols: list[str] | None, opts: ReadOptions, sink: Sink) -> bool:
    """Whether every page of the row group's columns that are read is within :func:`page_bound` (checked on the
    page headers, before pyarrow decodes anything); else its rows are one bad record each (record_too_large)."""
    from rwkv_data.pipelines.corpus.parquet_pages import PageHeaderError, largest_page

    rg = pf.metadata.row_group(unit.index)
    bound = page_bound(opts)
    for j in range(rg.num_columns):
        col = rg.column(j)
        if cols is not None and col.path_in_schema not in cols:
            continue
        try:
            largest = largest_page(unit.path, col)
        except (PageHeaderError, OSError, ValueError) as exc:
            sink.bad("unreadable_parquet", f"{unit.describe()}: column {col.path_in_schema!r}: damaged page headers "
                     f"({exc})")
            return False
        if largest > bound:
            sink.stats.records += rg.num_rows
            sink.bad("record_too_large", f"{unit.describe()}: column {col.path_in_schema!r} has a page of "
                     f"{largest:,} bytes, so one of its cells may be longer than the --max-record-bytes limit "
                     f"({opts.max_record_bytes:,}); its {rg.num_rows:,} rows are not read (pages are read whole, "
                     f"up to {bound:,} bytes): raise --max-record-bytes if cells this large are intended, or "
                     "rewrite the file with smaller cells", count=rg.num_rows)
            return False
    return True


def _iter_arrow(unit: Unit, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    import pyarrow as pa

    try:
        reader = pa.ipc.open_stream(pa.memory_map(unit.path))
    except Exception as exc:  # noqa: BLE001
        sink.bad("unreadable_arrow", f"{unit.path}: not a readable arrow stream ({type(exc).__name__}: {exc})")
        return
    yield from _rows(iter(reader), unit, 0, opts, sink, "unreadable_arrow")


def _iter_hub(unit: Unit, opts: ReadOptions, sink: Sink) -> Iterator[Document]:
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise DependencyMissing("hf: inputs need the datasets package: pip install datasets") from exc
    name, _, config = unit.path[3:].partition(":")
    ds = datasets.load_dataset(name, config or None, split=opts.hf_split, streaming=True)
    for row, rec in enumerate(ds):
        doc = sink.emit(rec.get(opts.text_field, MISSING), rec.get(opts.lang_field, MISSING), unit.path, row,
                        f"{unit.path} ({opts.hf_split}) row {row}")
        if doc is not None:
            yield doc
