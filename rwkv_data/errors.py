"""Exception types raised by rwkv-data.

Every error a user can cause is an ``RwkvDataError`` (or a plain ``ValueError``/``TypeError`` for bad
arguments to a function) whose message names the file, line or record at fault and how to fix it.
The CLI prints these messages without a traceback (``--debug`` shows it).
"""

from __future__ import annotations


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
