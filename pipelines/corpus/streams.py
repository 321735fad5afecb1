"""Byte streams of corpus files, in bounded memory: plain, zstd (concatenated frames) and gzip (multi-member)
decoded piece by piece, split into blocks of whole lines no longer than a record limit; and the optional
orjson fast path for JSON lines.

Memory: the decoders are fed a bounded piece of compressed bytes per call. For zstd the frame and block headers
are read ahead (:class:`_ZstdWalk`), so a piece holds at most WALK_BLOCKS blocks of at most 128 KiB of output
each (about 1 MiB per call, in pieces of a few hundred KB for text); where the headers cannot be read ahead
(damage), pieces of :data:`ZSTD_PIECE` bytes bound a call to 64 MiB (a 4-byte RLE block holds 128 KiB). For
deflate, pieces of :data:`GZIP_PIECE` expand at most 1032-fold (64 MiB). :func:`line_blocks` keeps at most one
unfinished line, and drops (without buffering) a line longer than the record limit.

Damage: every byte decoded before a corrupt or truncated spot is delivered before :class:`Corrupt` or
:class:`Truncated` is raised, with the byte offset of the damage in the compressed file. A failing piece is
replayed one byte at a time from the last restart point (the frame start for zstd, a decoder copy for gzip),
so the output of the blocks before the damage is not lost with the piece that contains it.
"""

from __future__ import annotations

import os
import stat
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, NamedTuple

from rwkv_data.errors import DependencyMissing, InputFormatError

CHUNK = 1 << 20  # decoded bytes per chunk handed to the line splitter
ZSTD_PIECE = 2048  # compressed bytes per zstd call: at most 64 MiB of output
GZIP_PIECE = 65536  # per zlib call: at most 64 MiB (smaller pieces cost zlib a window copy per call)
CHECKPOINT_BYTES = 1 << 17  # gzip: a decoder copy every 128 KiB of input, where a replay after damage starts
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
GZIP_MAGIC = b"\x1f\x8b"


class StreamError(Exception):
    """A compressed stream cannot be read to its end; ``offset`` is the byte of the file where it failed."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class Truncated(StreamError):
    """The compressed stream ends before its end marker (message names the file and byte)."""


class Corrupt(StreamError):
    """The compressed stream cannot be decoded (message names the file and byte)."""


def open_chunks(path: str) -> Iterator[bytes]:
    """Decoded byte chunks of a file; damage is reported (Corrupt/Truncated) after every byte decoded before it.

    Raises InputFormatError for a path that cannot be opened or is not a regular file (a folder, a FIFO,
    /dev/zero): those have no end or no size and cannot be split into resumable work.
    """
    name = path.lower()
    try:
        mode = os.stat(path).st_mode  # before open(): opening a FIFO would wait for a writer
        if not stat.S_ISREG(mode):
            raise InputFormatError(f"{path}: not a regular file ({file_kind(mode)}); copy the data to a file first")
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputFormatError(f"{path}: cannot open: {exc.strerror or exc}") from exc
    with f:
        if name.endswith((".zst", ".zstd")):
            yield from _decoded(f, path, _zstd_codec(path))
        elif name.endswith(".gz"):
            yield from _decoded(f, path, _Codec("gzip", lambda: zlib.decompressobj(wbits=31), (zlib.error,), True,
                                                GZIP_PIECE))
        else:
            try:
                chunk = f.read(CHUNK)
                if chunk.startswith((ZSTD_MAGIC, GZIP_MAGIC)):  # never the start of text
                    raise Corrupt(f"{path}: compressed data in a file named as plain text ({_what_it_is(chunk)})", 0)
                while chunk:
                    yield chunk
                    chunk = f.read(CHUNK)
            except OSError as exc:
                raise Corrupt(f"{path}: read error at byte {f.tell():,}: {exc.strerror or exc}", f.tell()) from exc


def file_kind(mode: int) -> str:
    """What a non-regular file is, from its ``st_mode`` ("a FIFO", "a character device", ...)."""
    for test, what in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return what
    return "not a plain file"


@dataclass(frozen=True)
class _Codec:
    name: str
    new: Callable[[], Any]  # a fresh decoder (decompress(data) -> bytes, eof, unused_data)
    errors: tuple[type[BaseException], ...]
    copyable: bool  # decoder.copy() exists (zlib), so replays can start at a checkpoint
    piece: int  # compressed bytes per decoder call


def _zstd_codec(path: str) -> _Codec:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - zstandard is a core dependency
        raise DependencyMissing(f"{path}: reading .zst needs zstandard: pip install zstandard") from exc
    dctx = zstandard.ZstdDecompressor()  # refuses windows over 128 MiB (zstd's default limit)
    return _Codec("zstd", dctx.decompressobj, (zstandard.ZstdError,), False, ZSTD_PIECE)


def _what_it_is(head: bytes) -> str:
    if head.startswith(ZSTD_MAGIC):
        return "it is zstd data: its name should end in .zst"
    if head.startswith(GZIP_MAGIC):
        return "it is gzip data: its name should end in .gz"
    if head.startswith(b"PAR1"):
        return "it is a parquet file: its name should end in .parquet"
    return "it looks like uncompressed data: drop the .zst/.gz suffix, or compress it"


def _magic_ok(codec: _Codec, head: bytes) -> bool:
    if codec.name == "gzip":
        return head.startswith(GZIP_MAGIC)
    skippable = len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"
    return head.startswith(ZSTD_MAGIC) or skippable


class _Feeder:
    """A decoder over consecutive frames/members: ``feed`` decodes bytes at ``pos`` and advances ``pos``."""

    def __init__(self, codec: _Codec, pos: int, decoder: Any, fed: bool) -> None:
        self.codec, self.pos, self.d, self.fed = codec, pos, decoder, fed
        self.frame_start = pos if not fed else -1  # where the current frame/member began (-1: unknown)
        self.restart: tuple[int, Callable[[], Any], bool] = (pos, self._snapshot(), fed)

    def _snapshot(self) -> Callable[[], Any]:
        if self.codec.copyable:
            saved = self.d.copy()
            return saved.copy
        return self.codec.new  # zstd: only a frame start is a restart point (a fresh decoder)

    def feed(self, data: bytes | memoryview) -> bytes:
        """The output of ``data``; on a decoder error the restart point is still one before ``data``."""
        if not data:
            return b""
        out = self.d.decompress(data)
        if not self.d.eof:  # the common case: the frame/member goes on
            self.pos += len(data)
            self.fed = True
            return out
        outs = [out]
        end = self.pos + len(data)
        restart = None
        while True:  # another frame/member may follow: a fresh decoder for the rest
            data = self.d.unused_data
            self.d = self.codec.new()
            self.fed = False
            self.frame_start = end - len(data)
            restart = (self.frame_start, self.codec.new, False)
            if not data:
                break
            outs.append(self.d.decompress(data))
            if not self.d.eof:
                self.fed = True
                break
        self.pos = end
        self.restart = restart
        return b"".join(outs)

    def checkpoint(self) -> None:
        if self.codec.copyable:
            self.restart = (self.pos, self._snapshot(), self.fed)


WALK_BLOCKS = 8  # zstd: blocks per decoder call when their headers were read ahead (each at most 128 KiB of output)
ZSTD_BLOCK_MAX = 128 << 10


class _ZstdWalk:
    """Reads zstd frame and block headers ahead of the decoder (``pread``, a few bytes per block), so that a
    piece fed to it holds at most WALK_BLOCKS block headers: at most (WALK_BLOCKS + 1) x 128 KiB of output per
    call, in pieces of hundreds of KB for ordinary text instead of ZSTD_PIECE. Anything it cannot parse
    (damage, garbage, a truncated header) turns it off: from there on the pieces are ZSTD_PIECE and the decoder
    finds and reports the damage."""

    def __init__(self, fd: int) -> None:
        self.fd, self.next, self.in_frame, self.checksum, self.ok = fd, 0, False, False, True

    def piece(self, pos: int, avail: int) -> int:
        """Bytes to feed from file offset ``pos`` (at most ``avail``)."""
        end = pos + avail
        blocks = 0
        while self.ok and self.next < end and blocks < WALK_BLOCKS:
            step = self._step()
            if step is None:
                self.ok = False
            else:
                blocks += step
        if not self.ok:
            return min(ZSTD_PIECE, avail)
        return max(1, min(self.next, end) - pos)

    def _step(self) -> int | None:
        """Pass one header: 1 for a block, 0 for a frame header or skippable frame, None if it cannot."""
        hdr = os.pread(self.fd, 18, self.next)
        if self.in_frame:
            if len(hdr) < 3:
                return None
            h = int.from_bytes(hdr[:3], "little")
            kind, size = h >> 1 & 3, h >> 3
            if kind == 3 or size > ZSTD_BLOCK_MAX:
                return None
            self.next += 3 + (1 if kind == 1 else size)
            if h & 1:  # the frame's last block
                self.in_frame = False
                self.next += 4 if self.checksum else 0
            return 1
        if hdr[:4] == ZSTD_MAGIC and len(hdr) >= 6:
            fhd = hdr[4]
            if fhd & 0x08:  # reserved bit
                return None
            single = fhd >> 5 & 1
            self.checksum = bool(fhd & 4)
            self.next += 5 + (1 - single) + (0, 1, 2, 4)[fhd & 3] + (single, 2, 4, 8)[fhd >> 6]
            self.in_frame = True
            return 0
        if len(hdr) >= 8 and hdr[0] & 0xF0 == 0x50 and hdr[1:4] == b"\x2a\x4d\x18":  # a skippable frame
            self.next += 8 + int.from_bytes(hdr[4:8], "little")
            return 0
        return None


def _decoded(f: BinaryIO, path: str, codec: _Codec) -> Iterator[bytes]:
    head = f.read(4)
    f.seek(0)
    if head and not _magic_ok(codec, head):
        raise Corrupt(f"{path}: not {codec.name} data ({_what_it_is(head)})", 0)
    s = _Feeder(codec, 0, codec.new(), False)
    out: list[bytes] = []
    size = 0
    pieces = 0
    every = max(1, CHECKPOINT_BYTES // codec.piece)
    walk = _ZstdWalk(f.fileno()) if codec.name == "zstd" else None
    while True:
        try:
            block = f.read(CHUNK)  # read in large blocks, decoded a piece at a time (a view: no copies)
        except OSError as exc:
            raise Corrupt(f"{path}: read error at byte {s.pos:,}: {exc.strerror or exc}", s.pos) from exc
        if not block:
            break
        view = memoryview(block)
        at = 0
        while at < len(block):
            n = walk.piece(s.pos, len(block) - at) if walk is not None else codec.piece
            raw = view[at:at + n]
            at += n
            try:
                o = s.feed(raw)
            except codec.errors as exc:
                if out:
                    yield b"".join(out)
                offset, frame_start = yield from _replay(f, codec, s.restart, s.pos, s.pos + len(raw))
                if 0 < frame_start <= offset < frame_start + 4:
                    raise Corrupt(f"{path}: the {codec.name} data ends at byte {frame_start:,} and what follows is "
                                  f"not {codec.name} data (garbage appended to the file?)", frame_start) from exc
                raise Corrupt(f"{path}: damaged {codec.name} data at byte {offset:,} of the file ({exc})",
                              offset) from exc
            if len(o) >= CHUNK // 2:  # handed on as it is (a highly compressed piece: in CHUNK slices)
                if out:
                    yield b"".join(out)
                    out, size = [], 0
                if len(o) <= 2 * CHUNK:
                    yield o
                else:
                    for i in range(0, len(o), CHUNK):
                        yield o[i:i + CHUNK]
            elif o:
                out.append(o)
                size += len(o)
                if size >= CHUNK:
                    yield b"".join(out)
                    out, size = [], 0
            pieces += 1
            if pieces % every == 0:
                s.checkpoint()
    if out:
        yield b"".join(out)
    if s.fed:
        unit = "frame" if codec.name == "zstd" else "member"
        raise Truncated(f"{path}: the file ends inside a {codec.name} {unit} at byte {s.pos:,}: it is truncated "
                        "(an interrupted download or copy?)", s.pos)


def _replay(f: BinaryIO, codec: _Codec, restart: tuple[int, Callable[[], Any], bool], fail_pos: int,
            fail_end: int) -> Generator[bytes, None, tuple[int, int]]:
    """Decode again from ``restart`` (what was decoded before ``fail_pos`` is not yielded again), then the
    failing piece one byte at a time, yielding its output up to the damage; returns the damaged byte's offset
    and where its frame/member began."""
    bad = _first_bad_piece(f, codec, restart, fail_pos, fail_end)
    offset, make, fed = restart
    s = _Feeder(codec, offset, make(), fed)
    f.seek(offset)
    try:
        while s.pos < bad:  # silent up to fail_pos (already delivered), then the output up to the bad piece
            piece = f.read(min(codec.piece, (fail_pos if s.pos < fail_pos else bad) - s.pos))
            if not piece:  # the file shrank under us
                return fail_pos, -1
            out = s.feed(piece)
            if out and s.pos > fail_pos:
                yield out
        fail_end = min(fail_end, bad + codec.piece)
        while s.pos < fail_end:
            byte = f.read(1)
            if not byte:
                break
            out = s.feed(byte)
            if out:
                yield out
    except codec.errors:
        return s.pos, s.frame_start
    except OSError:
        pass
    return fail_pos, -1


def _first_bad_piece(f: BinaryIO, codec: _Codec, restart: tuple[int, Callable[[], Any], bool], fail_pos: int,
                     fail_end: int) -> int:
    """Where the ``codec.piece``-sized piece that fails begins, within a larger failing piece [fail_pos, fail_end)
    (decoded again from ``restart``, silently); ``fail_pos`` when it cannot tell."""
    offset, make, fed = restart
    s = _Feeder(codec, offset, make(), fed)
    f.seek(offset)
    try:
        while s.pos < fail_end:
            piece = f.read(min(codec.piece, (fail_pos if s.pos < fail_pos else fail_end) - s.pos))
            if not piece:
                return fail_pos
            start = s.pos
            s.feed(piece)
    except codec.errors:
        return max(fail_pos, start)
    except OSError:
        pass
    return fail_pos


class Oversize(NamedTuple):
    """A line longer than the record limit (1-based ``line``); its bytes were dropped, never buffered."""

    line: int


@dataclass
class LineState:
    """Where :func:`line_blocks` is: complete lines so far (the consumer sets ``lines`` after each block) and
    the bytes of the unfinished line being read."""

    lines: int = 0
    partial: int = 0


Block = tuple[int, "bytes | memoryview"]


def line_blocks(chunks: Iterable[bytes], limit: int, st: LineState) -> Iterator[Block | Oversize]:
    """Blocks of whole lines out of byte chunks, each line at most ``limit`` bytes (without its newline).

    Yields ``(lines_before, block)``: consecutive complete lines, each ending in a newline but for the last line
    of the input; the consumer must set ``st.lines`` to ``lines_before`` plus the lines of the block before it
    asks for the next item. Yields :class:`Oversize` for a line over the limit (``st.lines`` is then that line);
    at most ``limit`` bytes of an unfinished line are held.
    """
    carry = bytearray()  # the unfinished line
    dropping = False  # inside an oversized line: its bytes are discarded up to its newline
    for chunk in chunks:
        cut = chunk.rfind(b"\n") + 1
        if not cut:  # no line ends in this chunk
            if dropping:
                continue
            if len(carry) + len(chunk) > limit:
                carry.clear()
                dropping = True
                st.partial = 0
                yield Oversize(st.lines + 1)
                continue
            carry += chunk
            st.partial = len(carry)
            continue
        start = 0
        if carry or dropping:  # the line begun in earlier chunks ends here
            start = chunk.find(b"\n") + 1
            if dropping:
                dropping = False
            elif len(carry) + start - 1 > limit:
                carry.clear()
                yield Oversize(st.lines + 1)
            else:
                carry += memoryview(chunk)[:start]
                line = bytes(carry)
                carry.clear()
                yield st.lines, line
        if start < cut:
            if limit < cut - start - 1:  # (only with limits below CHUNK) some line in the block may be too long
                yield from _long_lines(chunk, start, cut, limit, st)
            else:
                yield st.lines, memoryview(chunk)[start:cut]
        if cut < len(chunk):
            if len(chunk) - cut > limit:
                dropping = True
                st.partial = 0
                yield Oversize(st.lines + 1)
            else:
                carry += memoryview(chunk)[cut:]
        st.partial = len(carry)
    if carry:
        line = bytes(carry)
        carry.clear()
        st.partial = 0
        yield st.lines, line


def numbered_lines(chunks: Iterable[bytes], limit: int, st: LineState) -> Iterator[tuple[int, bytes | Oversize]]:
    """(1-based line number, line without its newline) out of byte chunks, each line at most ``limit`` bytes; a
    longer line comes as its :class:`Oversize` (its bytes were dropped). ``st.lines`` follows the lines delivered,
    so a :class:`StreamError` raised from ``chunks`` can name the last complete line."""
    for item in line_blocks(chunks, limit, st):
        if type(item) is Oversize:
            st.lines = item.line
            yield item.line, item
            continue
        n, block = item
        parts = bytes(block).split(b"\n")
        if block[-1] == 10:
            parts.pop()
        st.lines = n + len(parts)
        for p in parts:
            n += 1
            yield n, p


def _long_lines(chunk: bytes, start: int, cut: int, limit: int, st: LineState) -> Iterator[Block | Oversize]:
    """The lines of ``chunk[start:cut]`` as runs of lines within the limit and Oversize items."""
    run = pos = start  # run: start of the current run of lines within the limit
    while pos < cut:
        nl = chunk.find(b"\n", pos, cut)
        if nl - pos > limit:
            if run < pos:
                yield st.lines, memoryview(chunk)[run:pos]
            yield Oversize(st.lines + 1)
            run = nl + 1
        pos = nl + 1
    if run < cut:
        yield st.lines, memoryview(chunk)[run:cut]


def fast_json_object(raw: bytes) -> dict[str, Any] | None:
    """orjson's parse of a valid JSON object line, or None (not installed, invalid, or not an object).

    orjson reads the bytes without a separate UTF-8 decode (~1.7x faster here) and rejects invalid UTF-8, lone
    surrogates, NaN and a BOM, so every line it accepts gives the same dict as ``json.loads`` (but for integers
    beyond 64 bits, which it turns into floats); everything else takes the standard path.
    """
    if _orjson_loads is None or raw.startswith(b"\xef\xbb\xbf"):  # json.loads refuses a BOM; keep its verdict
        return None
    try:
        rec = _orjson_loads(raw)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


try:  # an optional accelerator: same results, see fast_json_object
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - depends on the environment
    _orjson_loads = None
