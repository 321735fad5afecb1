"""The merge's document copy: part token files read by the native gather into mapped windows of the output.

:class:`PartFiles` keeps the parts' ``.bin`` files open (within the open-file limit) and reads byte ranges of them
with pread; :func:`copy_docs` fills the reserved ``.bin`` window by window on COPY_THREADS threads and commits the
windows in file order.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from rwkv_data.pipelines._native import gather as _gather
from rwkv_data.pipelines.shard.binidx import BinidxWriter

if TYPE_CHECKING:
    from rwkv_data.pipelines.shard.merge import PartRef

COPY_BYTES = 16 << 20  # output bytes per mapped window of the merge copy
COPY_THREADS = 2  # threads filling windows (each mostly in pread, without the GIL)
OPEN_PARTS = 1 << 16  # cap on part files open at once while copying (the open-file limit may set a lower one)
FD_RESERVE = 256  # descriptors left for everything else


class PartFiles:
    """Part token files read with pread (not mmap: mapped pages would count toward this process's RSS and make
    it grow with the corpus). Every part stays open when the open-file limit allows (raised toward its hard
    limit if need be); otherwise at most ``limit`` descriptors are open at a time."""

    def __init__(self, parts: list[PartRef]) -> None:
        self.stems = {p.index: p.stem for p in parts}
        self.limit = min(OPEN_PARTS, fd_budget(len(self.stems)))
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


def fd_budget(wanted: int) -> int:
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


def copy_docs(part: np.ndarray, off: np.ndarray, ntok: np.ndarray, parts: PartFiles, item: int, w: BinidxWriter,
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
