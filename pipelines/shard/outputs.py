"""Safety of a shard job's outputs: one job per output prefix, nothing partial under a final name, no foreign
file overwritten, a clear error when the disk fills up, and no worker left behind when the job dies.

* :class:`JobLock`: ``fcntl.flock`` on ``P.shard.lock`` (and ``P_val.shard.lock``, and the work folder's lock),
  held for the job's life. The kernel drops it when the process dies, so a killed job never blocks the next
  one; a second job on the same files (any spelling of the path: ``./out/x``, ``out/x``, a symlinked folder)
  fails at once.
* :func:`check_output`: ``-o`` must name a prefix, not a folder.
* :func:`foreign_targets`: existing files at the final names that no ``P.meta.json`` of rwkv-data (nor the
  journal of an interrupted publish) recognises; the job refuses to overwrite them without ``--force``.
* :func:`retire` and :func:`publish`: when a job starts, the old meta files go (a journal in the work folder
  lists our file names, so a rerun still recognises them); every final file is first complete under a
  temporary name, then the data files are renamed into place and the meta files come last (``P.meta.json``
  very last).
* :func:`space_guard`: ENOSPC / EDQUOT / EFBIG become :class:`StorageError` naming the path, device and free
  space.
* :func:`die_with_parent`: pool workers get ``PR_SET_PDEATHSIG`` = SIGKILL (Linux) and exit when their parent is
  already gone.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rwkv_data.errors import ConfigError, StorageError
from rwkv_data.jsonfile import read_json

TOOL = "rwkv-data"
FORMAT = "rwkv-data-binidx"
EXTS = (".bin", ".idx", ".lang.npy", ".meta.json")  # the final files of one prefix
TEMP_EXTS = (".bin.tmp", ".idx.tmp", ".sizes.tmp", ".lang.npy.tmp", ".lang.npy.tmp.npy", ".meta.json.tmp")
JOURNAL = "publish.json"
LOCK_SUFFIX = ".shard.lock"
STALE_LOCK_WAIT_S = 5.0  # a killed job's children may hold its lock for a moment while they die
SPACE_ERRNOS = {errno.ENOSPC: "no space left", errno.EDQUOT: "disk quota exceeded",
                errno.EFBIG: "file too large (file-size limit)"}

_HELD: list[int] = []  # lock descriptors of this process (pool workers close their inherited copies)


# ---- locking -------------------------------------------------------------------------------------------------


class JobLock:
    """Exclusive, non-blocking ``flock`` on each of ``paths`` for the life of a job (a context manager).

    ``job`` and ``choose`` word the error a second job gets (``shard``; ``-o / --work-dir``)."""

    def __init__(self, paths: list[Path], output: str, job: str = "shard", choose: str = "-o / --work-dir") -> None:
        self.paths, self.output, self.job, self.choose = paths, output, job, choose
        self.fds: list[tuple[Path, int]] = []

    def __enter__(self) -> JobLock:
        try:
            for p in self.paths:
                self.fds.append((p, _lock_one(p, self.output, self.job, self.choose)))
        except BaseException:
            self.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        for p, fd in reversed(self.fds):
            with contextlib.suppress(OSError):
                if os.path.samestat(os.fstat(fd), os.stat(p)):
                    os.unlink(p)  # while still holding it: a waiter then sees a changed inode and retries
            os.close(fd)
            with contextlib.suppress(ValueError):
                _HELD.remove(fd)
        self.fds.clear()


LOCK_RETRIES = 50  # a lock file that keeps vanishing: the folder cannot hold files


def _lock_one(path: Path, output: str, job: str, choose: str) -> int:
    import fcntl

    deadline = time.monotonic() + STALE_LOCK_WAIT_S
    vanished = 0
    while True:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError as exc:  # the folder went away between mkdir and open (another job's clean-up)
            vanished += 1
            if vanished < LOCK_RETRIES:
                continue
            raise ConfigError(f"{output}: cannot create the lock file {path} ({exc.strerror}): the folder does not "
                              f"hold files (a /proc or /sys path?); choose another {choose}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            if holder is not None and not _alive(holder) and time.monotonic() < deadline:
                time.sleep(0.05)  # the holder is dead: its children are dying and will drop the lock
                continue
            who = f" (pid {holder})" if holder is not None else ""
            raise ConfigError(f"{output}: another rwkv-data {job} job{who} is already running on this output "
                              f"({path} is locked); wait for it to finish, or choose another {choose}") from None
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if not same:  # the previous holder removed the file after we opened it: lock the new one
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.append(fd)
        return fd


def _holder(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_paths(prefixes: list[str], work: Path) -> list[Path]:
    """The lock files of a job writing ``prefixes`` with scratch folder ``work``."""
    return [Path(p + LOCK_SUFFIX) for p in prefixes] + [work / ("job" + LOCK_SUFFIX)]


# ---- workers -------------------------------------------------------------------------------------------------


def die_with_parent(parent_pid: int) -> None:
    """In a pool worker: be killed (SIGKILL) when the parent dies, exit now if it already has, and drop the
    parent's lock descriptors inherited through fork."""
    for fd in _HELD:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD.clear()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent_pid:  # the parent died before the death signal was armed
        os._exit(1)


# ---- output names --------------------------------------------------------------------------------------------


def check_output(output: str) -> None:
    """``-o`` names a prefix P (files P.bin, P.idx, ...), never a folder."""
    base = os.path.basename(output)
    if not output or base in ("", ".", "..") or os.path.isdir(output):
        folder = output.rstrip("/" + os.sep) or ("/" if output.startswith(("/", os.sep)) else ".")
        name = folder.rstrip("/") + "/NAME"
        raise ConfigError(f"-o {output!r} names a folder, but the output is a prefix: give -o {name} to write "
                          "NAME.bin, NAME.idx, NAME.meta.json, NAME_val.* inside it")
    if os.path.exists(output) and not os.path.isfile(output):  # /dev/null, a FIFO: P.bin would land beside it
        raise ConfigError(f"-o {output!r} names a device or other special file, but the output is a prefix of "
                          "files (P.bin, P.idx, ...); give -o FOLDER/NAME")
    parent = Path(output).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"-o {output!r}: {parent} is a file, not a folder; choose a prefix in a folder")


def temp_paths(prefix: str) -> list[Path]:
    """The temporary files a job may leave next to ``prefix`` when killed."""
    return [Path(prefix + e) for e in TEMP_EXTS]


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def owned_names(prefix: str, work: Path) -> set[str]:
    """Final file names next to ``prefix`` that this tool wrote: named by a ``P.meta.json`` of rwkv-data with
    their recorded size, or by the journal of a publish that was interrupted."""
    parent = Path(prefix).parent
    meta = _read_json(Path(prefix + ".meta.json"))
    owned: set[str] = set()
    if isinstance(meta, dict) and meta.get("tool") == TOOL and meta.get("format") == FORMAT:
        owned.add(Path(prefix).name + ".meta.json")
        files, sizes = meta.get("files"), meta.get("file_sizes")
        for key, name in (files.items() if isinstance(files, dict) else ()):
            if not isinstance(name, str) or os.path.basename(name) != name:
                continue
            want = sizes.get(key) if isinstance(sizes, dict) else None
            with contextlib.suppress(OSError):
                if want is None or (parent / name).stat().st_size == want:
                    owned.add(name)
    journal = _read_json(work / JOURNAL)
    if isinstance(journal, dict) and journal.get("output") == os.path.realpath(parent):
        owned |= {n for n in journal.get("files", []) if isinstance(n, str)}
    return owned


def foreign_targets(prefixes: list[str], targets: list[str], work: Path) -> list[str]:
    """Paths among ``targets`` (final files of ``prefixes``) that exist and are not recognised as ours."""
    owned: set[str] = set()
    for p in prefixes:
        owned |= owned_names(p, work)
    return [t for t in targets if os.path.lexists(t) and (Path(t).name not in owned or not os.path.isfile(t))]


def stale_outputs(prefixes: list[str], targets: list[str], work: Path) -> list[Path]:
    """Final files of ``prefixes`` this job will not rewrite but an earlier run of ours wrote (a lang array
    from a run with ``--lang-array``, say): removed when the new files are published."""
    out = []
    for p in prefixes:
        owned = owned_names(p, work)
        for e in EXTS:
            path = Path(p + e)
            if str(path) not in targets and path.name in owned and path.is_file():
                out.append(path)
    return out


def retire(work: Path, prefixes: list[str], targets: list[str]) -> None:
    """When a job starts: record in the work folder's journal every final name of ``prefixes``
    that is ours (the old outputs and the ``targets`` about to be written), then delete the old meta files, so
    the old outputs no longer look finished and a rerun still recognises them as ours."""
    parent = Path(prefixes[0]).parent
    names = {Path(t).name for t in targets}
    for p in prefixes:
        names |= owned_names(p, work)
    journal = work / JOURNAL
    tmp = journal.with_name(JOURNAL + ".tmp")
    with space_guard(tmp):
        tmp.write_text(json.dumps({"output": os.path.realpath(parent), "files": sorted(names)}) + "\n",
                       encoding="utf-8")
        os.replace(tmp, journal)
    for p in prefixes:
        Path(p + ".meta.json").unlink(missing_ok=True)


def publish(work: Path, data: list[tuple[Path, Path]], metas: list[tuple[Path, Path]], stale: list[Path]) -> None:
    """Rename complete temporaries into place (after :func:`retire`): data files in, stale files out, the meta
    files last. ``data`` and ``metas`` are (temporary, final) pairs, ``metas`` in publishing order (the train
    meta last)."""
    for src, final in data:
        os.replace(src, final)
    for p in stale:
        p.unlink(missing_ok=True)
    for src, final in metas:
        os.replace(src, final)
    _sync_dir(metas[-1][1].parent)
    (work / JOURNAL).unlink(missing_ok=True)


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ---- disk full -----------------------------------------------------------------------------------------------


def is_out_of_space(exc: BaseException) -> bool:
    """ENOSPC, EDQUOT or EFBIG (and not already a :class:`StorageError`)."""
    return isinstance(exc, OSError) and not isinstance(exc, StorageError) and exc.errno in SPACE_ERRNOS


def space_error(exc: OSError, path: str | os.PathLike[str], needed: int | None = None) -> StorageError:
    """A :class:`StorageError` for ``exc`` raised writing ``path``: names the device, its free space and the fix."""
    where = Path(os.path.abspath(path))
    existing = where
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    device, mount = _device_of(existing)
    try:
        free = f"{shutil.disk_usage(existing).free / 1e6:.0f} MB free"
    except OSError:
        free = "free space unknown"
    what = SPACE_ERRNOS.get(exc.errno or 0, str(exc))
    need = f"; the write needs {needed / 1e6:.1f} MB" if needed else ""
    return StorageError(f"{what} on {device} (mounted at {mount}, {free}) for {path}{need}: free space there, "
                        "or write elsewhere: -o for the outputs, --work-dir for the parts and merge scratch")


def _device_of(path: Path) -> tuple[str, str]:
    """(device, mount point) of ``path``, from /proc/mounts when readable."""
    mount = Path(os.path.realpath(path))
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    device = str(mount)
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            f = line.split()
            if len(f) > 1 and f[1] == str(mount):
                device = f[0]
    return device, str(mount)


@contextlib.contextmanager
def space_guard(path: str | os.PathLike[str], needed: int | None = None) -> Iterator[None]:
    """Turn an out-of-space OSError raised inside into a :class:`StorageError` naming ``path``."""
    try:
        yield
    except OSError as exc:
        if is_out_of_space(exc):
            raise space_error(exc, exc.filename or path, needed) from exc
        raise
