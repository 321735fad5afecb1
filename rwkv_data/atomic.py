"""Atomic file writes: a temporary file in the target's folder, then a rename.

A reader (or a rerun after a kill) sees either the old file or the whole new one, never a half-written file.
Every module of rwkv-data that writes a result file goes through here; streamed outputs (shard parts, binidx
files) follow the same rule with their own ``.tmp`` names.

>>> atomic_write_json("out/stats.json", {"tokens": 3})  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rwkv_data.fsmode import publish_mode


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on a clean exit it is renamed onto ``path``, else removed.

    For writers that want a file name (``torch.save``, ``np.save``); :func:`atomic_write` covers bytes and text.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        publish_mode(tmp)  # mkstemp made it 0600; give it the mode open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes | str, fsync: bool = False) -> Path:
    """Write ``data`` (bytes, or text as UTF-8 with the line ends as given) to ``path`` atomically.

    ``fsync=True`` also flushes the file to disk before the rename (for files other jobs key on).
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> Path:
    """``obj`` as UTF-8 JSON (non-ASCII kept, a final newline; paths and other objects as strings), atomically."""
    return atomic_write(path, json.dumps(obj, ensure_ascii=False, indent=indent, default=str) + "\n")
