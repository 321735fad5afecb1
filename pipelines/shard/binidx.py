"""Megatron MMIDIDX v1 ("binidx") writer and reader, byte-compatible with RWKV-LM's ``binidx.py``, and
RWKV-LM's ``magic_prime`` rule.

Layout (little-endian, no padding): ``.idx`` = magic ``b"MMIDIDX\\x00\\x00"`` (9 B), version uint64 = 1,
dtype code uint8 (8 = uint16, 4 = int32; the only two this writer emits), N uint64 (items), D uint64
(doc_idx length), sizes int32[N] (tokens per item), pointers int64[N] (byte offset of each item in
``.bin``, prefix sums of sizes * itemsize), doc_idx int64[D]. ``.bin`` = the concatenated tokens, nothing
else. One item per document with EOS 0 inside the item, so D = N + 1 and doc_idx = 0..N.
See docs/shard-format.md.

>>> with BinidxWriter("/tmp/demo", np.uint16) as w:              # doctest: +SKIP
...     w.add_document(np.array([5, 6, 7], np.uint16))           # stored as 5 6 7 0
>>> BinidxReader("/tmp/demo")[0].tolist()                        # doctest: +SKIP
[5, 6, 7, 0]
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from rwkv_data.errors import ShardFormatError
from rwkv_data.pipelines.shard.outputs import space_guard

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
HEADER_BYTES = 34
EOS = 0
# RWKV-LM's table for the integer codes (codes 6/7 are floats there and never written or read here).
DTYPE_OF_CODE: dict[int, np.dtype] = {1: np.dtype(np.uint8), 2: np.dtype(np.int8), 3: np.dtype(np.int16),
                                      4: np.dtype(np.int32), 5: np.dtype(np.int64), 8: np.dtype(np.uint16)}
CODE_OF_DTYPE = {np.dtype(np.uint16): 8, np.dtype(np.int32): 4}
FLUSH_ITEMS = 1 << 16  # sizes buffered in RAM before they go to the temporary sizes file
CHUNK_ITEMS = 1 << 20  # items per chunk when the index is streamed out
PARALLEL_HASH_BYTES = 1 << 20  # writes at least this large are hashed on a second thread meanwhile


def dtype_for_max_id(max_id: int) -> np.dtype:
    """uint16 when every id fits (<= 65535), else int32; ids beyond int32 have no binidx code."""
    if max_id <= 0xFFFF:
        return np.dtype(np.uint16)
    if max_id <= 0x7FFFFFFF:
        return np.dtype(np.int32)
    raise ShardFormatError(f"token id {max_id} does not fit int32, the widest binidx code RWKV-LM reads")


@dataclass(frozen=True)
class Header:
    """The fixed 34-byte head of an ``.idx`` file."""

    dtype_code: int
    num_items: int
    num_docs_plus_one: int

    @property
    def dtype(self) -> np.dtype:
        return DTYPE_OF_CODE[self.dtype_code]

    def idx_bytes(self) -> int:
        """The exact ``.idx`` length this header implies."""
        return HEADER_BYTES + 12 * self.num_items + 8 * self.num_docs_plus_one


def read_header(idx_path: str | os.PathLike[str]) -> Header:
    """Parse and check magic, version and dtype code (raises :class:`ShardFormatError` naming the fault)."""
    with open(idx_path, "rb") as f:
        head = f.read(HEADER_BYTES)
    if len(head) < HEADER_BYTES:
        raise ShardFormatError(f"{idx_path}: {len(head)} bytes, shorter than the {HEADER_BYTES}-byte header")
    if head[:9] != MAGIC:
        raise ShardFormatError(f"{idx_path}: bad magic {head[:9]!r}, expected {MAGIC!r} (not an MMIDIDX index)")
    version, code, n, d = struct.unpack("<QBQQ", head[9:])
    if version != VERSION:
        raise ShardFormatError(f"{idx_path}: version {version}, RWKV-LM reads only version 1")
    if code not in DTYPE_OF_CODE:
        raise ShardFormatError(f"{idx_path}: dtype code {code} is not an integer code RWKV-LM reads")
    return Header(code, n, d)


class BinidxWriter:
    """Streams documents into ``prefix.bin``/``prefix.idx`` with bounded memory and atomic renames.

    Tokens go to ``prefix.bin.tmp`` as they come; item sizes spill to a temporary file, and the index is
    written by :meth:`finalize`, which then renames both files into place (a killed writer leaves only
    ``*.tmp`` files); with ``rename=False`` it leaves them as ``prefix.bin.tmp`` / ``prefix.idx.tmp`` for the
    caller to publish with its other files. sha256 digests of both files are computed while writing. A full disk
    raises :class:`StorageError` naming the file.
    """

    def __init__(self, prefix: str | os.PathLike[str], dtype: np.dtype | type, rename: bool = True) -> None:
        self.prefix = Path(prefix)
        self.rename = rename
        self.dtype = np.dtype(dtype)
        if self.dtype not in CODE_OF_DTYPE:
            raise ValueError(f"binidx tokens are uint16 or int32, not {self.dtype}")
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._bin_tmp = Path(f"{self.prefix}.bin.tmp")
        self._sizes_tmp = Path(f"{self.prefix}.sizes.tmp")
        with space_guard(self._bin_tmp):
            self._bin = open(self._bin_tmp, "w+b")  # noqa: SIM115 - closed in finalize/abort; read too: reserve() maps it
        with space_guard(self._sizes_tmp):
            self._sizes_f = open(self._sizes_tmp, "wb")  # noqa: SIM115
        self._sizes: list[np.ndarray] = []
        self._buffered = 0
        self._bin_hash = hashlib.sha256()
        self._hasher: ThreadPoolExecutor | None = None
        self._reserved: int | None = None  # total tokens, in positional mode (reserve / commit)
        self.num_items = 0
        self.num_tokens = 0
        self.max_id = -1
        self.result: dict[str, object] | None = None

    def add_document(self, tokens: np.ndarray, eos: bool = True) -> None:
        """Append one document as one item (EOS 0 appended unless ``eos=False``: tokens already end in it)."""
        arr = np.asarray(tokens)
        if eos:
            arr = np.append(arr, EOS)
        self.add_items(arr, np.array([arr.size], dtype=np.int64))

    def add_items(self, flat: np.ndarray, sizes: np.ndarray) -> None:
        """Append many items at once: ``flat`` holds their tokens back to back, ``sizes`` their lengths."""
        if self._reserved is not None:
            raise ValueError("this writer was reserve()d: place the tokens in the file and commit() them")
        self._account(flat, sizes, write=True)

    def reserve(self, total_tokens: int) -> int:
        """Switch to positional mode: size ``.bin.tmp`` for ``total_tokens`` and return its file descriptor.

        The caller fills the file itself (``pwrite``, or a shared mapping written from several threads) and
        calls :meth:`commit` for each stretch in file order. The space is allocated up front
        (``posix_fallocate``, or zeros written where the file system has no fallocate), so a full disk fails here
        with :class:`StorageError` instead of later, in a mapping (where it would be a SIGBUS).
        """
        if self.num_items or self._reserved is not None:
            raise ValueError("reserve() must be the writer's first call, and only one")
        fd = self._bin.fileno()
        nbytes = total_tokens * self.dtype.itemsize
        if nbytes:
            with space_guard(self._bin_tmp, nbytes):
                try:
                    os.posix_fallocate(fd, 0, nbytes)
                except (AttributeError, OSError) as exc:  # not Linux, or a file system without fallocate
                    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                        raise
                    _write_zeros(fd, nbytes)
        self._reserved = total_tokens
        return fd

    def commit(self, flat: np.ndarray, sizes: np.ndarray, max_id: int | None = None) -> None:
        """Account for items already placed in the reserved file, in file order: ``flat`` is a view of their
        tokens as they are in the file (hashed, counted, checked), ``sizes`` their lengths; ``max_id``, when the
        caller has it, saves a pass over the tokens."""
        if self._reserved is None:
            raise ValueError("commit() needs reserve() first")
        if np.asarray(flat).dtype != self.dtype:
            raise ValueError(f"commit() takes the file's own {self.dtype} tokens, not {np.asarray(flat).dtype}")
        if self.num_tokens + np.asarray(flat).size > self._reserved:
            raise ValueError(f"committing past the {self._reserved} reserved tokens")
        self._account(flat, sizes, write=False, max_id=max_id)

    def _account(self, flat: np.ndarray, sizes: np.ndarray, write: bool, max_id: int | None = None) -> None:
        flat = np.ascontiguousarray(flat)
        if flat.dtype != self.dtype:
            if flat.size and (int(flat.max()) > np.iinfo(self.dtype).max or int(flat.min()) < 0):
                raise ShardFormatError(f"{self.prefix}: token ids outside {self.dtype} range")
            flat = flat.astype(self.dtype)
        sizes = np.asarray(sizes, dtype=np.int64)
        if int(sizes.sum()) != flat.size:
            raise ValueError(f"sizes sum to {int(sizes.sum())} but {flat.size} tokens were given")
        if sizes.size and (sizes.min() < 0 or sizes.max() > 0x7FFFFFFF):
            raise ShardFormatError(f"{self.prefix}: an item is longer than int32 sizes allow")
        mv = memoryview(flat).cast("B")
        if write and len(mv) >= PARALLEL_HASH_BYTES:  # sha256 on a thread while this one writes (no GIL held)
            if self._hasher is None:
                self._hasher = ThreadPoolExecutor(1, thread_name_prefix="binidx-sha256")
            hashed = self._hasher.submit(self._bin_hash.update, mv)
            try:
                with space_guard(self._bin_tmp):
                    self._bin.write(mv)
            finally:
                hashed.result()  # both done before returning: the caller may reuse its buffer
        else:
            if write:
                with space_guard(self._bin_tmp):
                    self._bin.write(mv)
            self._bin_hash.update(mv)
        if flat.size:
            self.max_id = max(self.max_id, int(flat.max()) if max_id is None else max_id)
        self._sizes.append(sizes.astype(np.int32))
        self._buffered += sizes.size
        self.num_items += sizes.size
        self.num_tokens += flat.size
        if self._buffered >= FLUSH_ITEMS:
            self._flush_sizes()

    def _flush_sizes(self) -> None:
        with space_guard(self._sizes_tmp):
            for s in self._sizes:
                self._sizes_f.write(memoryview(s).cast("B"))
        self._sizes, self._buffered = [], 0

    def _stop_hasher(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown()
            self._hasher = None

    def finalize(self) -> dict[str, object]:
        """Write the index, rename both files into place (unless ``rename=False``); returns counts, sha256
        digests and sizes (and, without renaming, the temporary paths ``bin_tmp`` / ``idx_tmp``)."""
        self._stop_hasher()
        if self._reserved is not None and self.num_tokens != self._reserved:
            raise ValueError(f"{self.prefix}: {self.num_tokens} tokens committed of {self._reserved} reserved")
        self._flush_sizes()
        with space_guard(self._sizes_tmp):
            self._sizes_f.close()
        with space_guard(self._bin_tmp):
            self._bin.close()
        n = self.num_items
        idx_tmp = Path(f"{self.prefix}.idx.tmp")
        h = hashlib.sha256()
        item = self.dtype.itemsize
        with space_guard(idx_tmp, HEADER_BYTES + 20 * n + 8), open(idx_tmp, "wb") as out, \
                open(self._sizes_tmp, "rb") as sizes_f:

            def put(b: bytes | memoryview) -> None:
                out.write(b)
                h.update(b)

            put(MAGIC + struct.pack("<QBQQ", VERSION, CODE_OF_DTYPE[self.dtype], n, n + 1))
            while chunk := sizes_f.read(4 * CHUNK_ITEMS):
                put(chunk)
            sizes_f.seek(0)
            carry = 0
            while chunk := sizes_f.read(4 * CHUNK_ITEMS):
                s = np.frombuffer(chunk, dtype=np.int32).astype(np.int64) * item
                ptr = np.cumsum(s) - s + carry  # exclusive prefix sum, continued across chunks
                carry += int(s.sum())
                put(memoryview(ptr).cast("B"))
            for start in range(0, n + 1, CHUNK_ITEMS):
                put(memoryview(np.arange(start, min(start + CHUNK_ITEMS, n + 1), dtype=np.int64)).cast("B"))
        os.unlink(self._sizes_tmp)
        self.result = {"items": n, "tokens": self.num_tokens, "dtype": str(self.dtype),
                       "dtype_code": CODE_OF_DTYPE[self.dtype], "max_id": self.max_id,
                       "bin_sha256": self._bin_hash.hexdigest(), "idx_sha256": h.hexdigest(),
                       "bin_bytes": self.num_tokens * item, "idx_bytes": HEADER_BYTES + 20 * n + 8}
        if self.rename:
            os.replace(self._bin_tmp, f"{self.prefix}.bin")
            os.replace(idx_tmp, f"{self.prefix}.idx")
        else:
            self.result.update(bin_tmp=str(self._bin_tmp), idx_tmp=str(idx_tmp))
        return self.result

    def abort(self) -> None:
        """Close and delete the temporary files (the final files are untouched)."""
        self._stop_hasher()
        for f in (self._bin, self._sizes_f):
            with contextlib.suppress(OSError):  # a close that flushes onto a full disk
                f.close()
        for p in (self._bin_tmp, self._sizes_tmp, Path(f"{self.prefix}.idx.tmp")):
            p.unlink(missing_ok=True)

    def __enter__(self) -> BinidxWriter:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is None:
            if self.result is None:
                try:
                    self.finalize()
                except BaseException:
                    self.abort()
                    raise
        else:
            self.abort()


class BinidxReader:
    """Memory-mapped read access to ``prefix.bin``/``prefix.idx``.

    ``len(r)`` items; ``r[i]`` the tokens of item i (a read-only view, EOS included); ``r.get(idx, offset,
    length)`` reads ``length`` tokens from item ``idx``'s start plus ``offset`` across item boundaries, as
    RWKV-LM's sampler does with ``idx=0``; ``r.tokens`` is the whole flat token stream.
    """

    def __init__(self, prefix: str | os.PathLike[str]) -> None:
        self.prefix = Path(prefix)
        idx_path, bin_path = Path(f"{self.prefix}.idx"), Path(f"{self.prefix}.bin")
        for p in (idx_path, bin_path):
            if not p.is_file():
                raise ShardFormatError(f"{p}: missing (a shard is the pair {self.prefix}.bin + .idx)")
        self.header = read_header(idx_path)
        n, d = self.header.num_items, self.header.num_docs_plus_one
        got = idx_path.stat().st_size
        if got < self.header.idx_bytes():
            raise ShardFormatError(f"{idx_path}: {got} bytes but the header promises {self.header.idx_bytes()}; "
                                   "the index is truncated")
        self.dtype = self.header.dtype
        idx = np.memmap(idx_path, dtype=np.uint8, mode="r")
        self.sizes = idx[HEADER_BYTES:HEADER_BYTES + 4 * n].view(np.int32)
        self.pointers = idx[HEADER_BYTES + 4 * n:HEADER_BYTES + 12 * n].view(np.int64)
        self.doc_idx = idx[HEADER_BYTES + 12 * n:HEADER_BYTES + 12 * n + 8 * d].view(np.int64)
        nbytes = bin_path.stat().st_size
        n_tok = nbytes // self.dtype.itemsize  # as RWKV-LM counts; a ragged tail byte is ignored (verify flags it)
        self.tokens = (np.memmap(bin_path, dtype=self.dtype, mode="r", shape=(n_tok,)) if n_tok
                       else np.zeros(0, self.dtype))

    @property
    def num_tokens(self) -> int:
        """Tokens in ``.bin`` (``len(bin) // itemsize``, as RWKV-LM counts them)."""
        return int(self.tokens.size)

    def __len__(self) -> int:
        return self.header.num_items

    def __getitem__(self, i: int) -> np.ndarray:
        if not -len(self) <= i < len(self):
            raise IndexError(f"item {i} out of range for {len(self)} items")
        i %= len(self)
        start = int(self.pointers[i]) // self.dtype.itemsize
        return self.tokens[start:start + int(self.sizes[i])]

    def get(self, idx: int, offset: int = 0, length: int | None = None) -> np.ndarray:
        """Tokens from item ``idx``'s start + ``offset``; ``length`` may run past the item (RWKV-LM ``get``)."""
        start = int(self.pointers[idx]) // self.dtype.itemsize + offset
        if length is None:
            length = int(self.sizes[idx]) - offset
        return self.tokens[start:start + length]


def _write_zeros(fd: int, nbytes: int) -> None:
    """Allocate ``nbytes`` of a file by writing zeros (where ``posix_fallocate`` is missing)."""
    zeros = bytes(min(nbytes, 1 << 24))
    done = 0
    while done < nbytes:
        done += os.pwrite(fd, zeros[:min(len(zeros), nbytes - done)], done)


def is_prime(n: int) -> bool:
    """Deterministic Miller-Rabin for n < 3.3e24 (far beyond any token count)."""
    if n < 2:
        return False
    small = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37)
    for p in small:
        if n % p == 0:
            return n == p
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for a in small:
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def magic_prime(num_tokens: int, ctx_len: int) -> dict[str, object]:
    """RWKV-LM's ``--magic_prime`` for a token count: the largest prime p, p % 3 == 2, p <= tokens//ctx_len - 1.

    Returns ``ctx_len``, ``my_exit_tokens`` (= num_tokens), ``magic_prime`` (None when no such prime
    exists), ``slots`` (tokens // ctx_len), and ``ok``: whether RWKV-LM's assertion
    ``0.9 < p / slots <= 1`` holds (it fails on tiny data), with ``problem`` explaining when not.
    """
    if ctx_len <= 0:
        raise ValueError(f"ctx_len must be positive, not {ctx_len}")
    slots = num_tokens // ctx_len
    p = next((c for c in range(slots - 1, 1, -1) if c % 3 == 2 and is_prime(c)), None)
    out: dict[str, object] = {"ctx_len": ctx_len, "my_exit_tokens": num_tokens, "magic_prime": p, "slots": slots}
    if p is None:
        out.update(ok=False, problem=f"{num_tokens} tokens give {slots} windows of {ctx_len}: no prime p % 3 == 2 "
                   "below; RWKV-LM cannot train on this file at this ctx_len")
    elif not 0.9 < p / slots <= 1:
        out.update(ok=False, problem=f"p / slots = {p}/{slots} = {p / slots:.3f} is not in (0.9, 1]: RWKV-LM's "
                   "dataset.py assertion fails (too little data for this ctx_len)")
    else:
        out["ok"] = True
    return out


def rwkv_train_args(info: dict[str, object]) -> str:
    """The RWKV-LM train.py flags for one :func:`magic_prime` result."""
    return f"--my_exit_tokens {info['my_exit_tokens']} --magic_prime {info['magic_prime']} --ctx_len {info['ctx_len']}"
