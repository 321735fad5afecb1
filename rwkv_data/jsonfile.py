"""Bounded reading of the small JSON files rwkv-data writes beside its outputs (shard meta, checkpoint sidecars,
resume state, run markers, id maps).

Such a file replaced by something else must not hang or exhaust memory: a FIFO or a device (``/dev/zero``) is
refused before it is opened, a file over the limit before it is read, and deep nesting is a ``ValueError`` like
any other malformed JSON (``json.loads`` raises ``RecursionError``).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from typing import Any

SIDE_FILE_LIMIT = 64 << 20  # far above any meta or sidecar this tool writes (a shard meta of 65,536 languages: ~20 MB)


def read_small(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of a small file (a config or a side file). ``OSError`` when it cannot be opened; ``ValueError``
    saying why (without the path) when it is not a regular file or is over ``limit`` bytes (checked on its size
    before reading, and on what a read returns, for files whose size lies)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ValueError("not a regular file")
    if st.st_size > limit:
        raise ValueError(f"{st.st_size:,} bytes, more than the {limit:,} such a file can have")
    with open(path, "rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"more than the {limit:,} bytes such a file can have")
    return raw


def read_json(path: str | os.PathLike[str], limit: int = SIDE_FILE_LIMIT,
              parse_constant: Callable[[str], Any] | None = None) -> Any:
    """The parsed JSON of ``path``. ``OSError`` when it cannot be opened (``FileNotFoundError`` when missing);
    ``ValueError`` saying why (without the path) when it is not a regular file, is over ``limit`` bytes, is not
    UTF-8 or is not JSON."""
    raw = read_small(path, limit)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start:,})") from None
    try:
        return json.loads(text, parse_constant=parse_constant)
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except ValueError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
