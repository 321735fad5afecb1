"""Exception types raised by rwkv-data.

Every error a user can cause is an ``RwkvDataError`` (or a plain ``ValueError``/``TypeError`` for bad
arguments to a function) whose message names the file, line or record at fault and how to fix it.
The CLI prints these messages without a traceback (``--debug`` shows it).
"""

from __future__ import annotations

import errno


class RwkvDataError(Exception):
    """Base class for every domain error of rwkv-data."""


class VocabFormatError(RwkvDataError, ValueError):
    """A vocabulary file is malformed (the message names the file and line)."""


class DependencyMissing(RwkvDataError, ImportError):
    """An optional dependency is not installed (the message names the pip package)."""


class InputFormatError(RwkvDataError, ValueError):
    """A corpus record cannot be read (the message names the file and line or row)."""


class ShardFormatError(RwkvDataError, ValueError):
    """A binidx shard fails verification or cannot be opened."""


class KernelUnavailable(RwkvDataError, RuntimeError):
    """A requested WKV kernel implementation cannot run here (no GPU, build failure)."""


class CheckpointError(RwkvDataError, ValueError):
    """A checkpoint cannot be loaded (unknown variant, missing or misshapen keys)."""


class ConfigError(RwkvDataError, ValueError):
    """A configuration file or option is invalid."""


class StorageError(RwkvDataError, OSError):
    """A write failed for lack of space (or a quota / file-size limit): the message names the path and device."""


_OS_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EMFILE: "too many open files; raise `ulimit -n`",
}


def describe(exc: BaseException) -> str:
    """One line for the user about ``exc``: the domain error's own message, ``PATH: reason (fix)`` for an OS
    error, a clear line for bad text, bad values and memory, else an internal error asking for a report."""
    if isinstance(exc, RwkvDataError):
        return str(exc)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        hint = _OS_HINTS.get(exc.errno or 0)
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{reason}" + (f" ({hint})" if hint else "")
    if isinstance(exc, UnicodeDecodeError):
        return (f"input is not UTF-8 text ({exc.reason} at byte {exc.start}); convert it to UTF-8 "
                "(run with --debug to see where)")
    if isinstance(exc, MemoryError):
        return "out of memory; use smaller inputs, batches or fewer workers"
    if isinstance(exc, ValueError):
        return f"invalid input: {exc} (run with --debug for the traceback)"
    return f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback and please report it)"
