"""The page sizes of a parquet column chunk, read from the page headers, so that a cell larger than the record
limit is found *before* pyarrow decodes it (pyarrow decompresses a whole page into memory, and a page holds at
least one whole cell: a 60 KB file can hold a 2 GB cell).

A column chunk is a run of pages, each a Thrift ``PageHeader`` (compact protocol) followed by its compressed
bytes; field 2 of the header is the page's uncompressed size. Only the headers are read (through a memory map,
so the pages themselves are never loaded).
"""

from __future__ import annotations

import mmap
from typing import Any

# Thrift compact protocol field types
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)
_MAX_DEPTH = 32  # nested structs in a page header (statistics, encodings): a handful in practice


class PageHeaderError(ValueError):
    """A page header that cannot be parsed (the file is damaged)."""


class _Reader:
    def __init__(self, buf: Any, pos: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, pos, end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise PageHeaderError("page header runs past the column chunk")
        b = self.buf[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise PageHeaderError("varint too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.end:
            raise PageHeaderError("page header runs past the column chunk")
        self.pos += n

    def value(self, kind: int, depth: int) -> int | None:
        """Read (integers) or skip (everything else) one value of ``kind``."""
        if kind in (_TRUE, _FALSE):
            return None
        if kind == _BYTE:
            self.skip(1)
        elif kind in (_I16, _I32, _I64):
            return self.zigzag()
        elif kind == _DOUBLE:
            self.skip(8)
        elif kind == _BINARY:
            self.skip(self.varint())
        elif kind in (_LIST, _SET):
            head = self.byte()
            size, elem = head >> 4, head & 0x0F
            if size == 15:
                size = self.varint()
            for _ in range(size):
                if elem in (_TRUE, _FALSE):  # booleans in a list take a byte each
                    self.skip(1)
                else:
                    self.value(elem, depth + 1)
        elif kind == _MAP:
            size = self.varint()
            if size:
                kv = self.byte()
                for _ in range(size):
                    self.value(kv >> 4, depth + 1)
                    self.value(kv & 0x0F, depth + 1)
        elif kind == _STRUCT:
            self.struct(depth + 1)
        else:
            raise PageHeaderError(f"unknown thrift type {kind}")
        return None

    def struct(self, depth: int = 0) -> dict[int, int]:
        """The integer fields of one struct, by field id (other fields skipped)."""
        if depth > _MAX_DEPTH:
            raise PageHeaderError("page header nested too deeply")
        fields: dict[int, int] = {}
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == _STOP:
                return fields
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            last = fid
            v = self.value(kind, depth)
            if v is not None:
                fields[fid] = v


def largest_page(path: str, column: Any) -> int:
    """The largest uncompressed page (bytes) of a column chunk (``pyarrow``'s ``ColumnChunkMetaData``) of the
    parquet file at ``path``; raises PageHeaderError for a damaged chunk."""
    start = column.dictionary_page_offset if column.has_dictionary_page else column.data_page_offset
    if start is None or start < 0:
        raise PageHeaderError("the column chunk has no page offset")
    size = column.total_compressed_size
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        end = start + size
        if end > len(buf):
            raise PageHeaderError(f"the column chunk ends at byte {end:,}, past the end of the file")
        r = _Reader(buf, start, end)
        largest = 0
        while r.pos < end:
            header = r.struct()
            if 2 not in header or 3 not in header:
                raise PageHeaderError(f"a page header at byte {r.pos:,} lacks its sizes")
            largest = max(largest, header[2])
            r.skip(header[3])
        return largest
