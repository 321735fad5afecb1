"""A binary cache of parsed vocab files, so that a job's start does not re-parse 65k literals each time.

Parsing World's text form and hashing its canonical form takes ~0.25 s, which every ``rwkv-data shard`` (and
every worker started with spawn) pays before the first document. The cache holds what parsing produced, keyed
by the SHA-256 of the file's bytes, so any edit to the file misses it:

    <cache dir>/vocab/<sha256 of the file bytes>.bin
    = MAGIC | sha256 of the file (32 bytes) | canonical sha256 (32) | n (uint32) | blob length (uint64)
      | ids (uint32 x n, ascending) | lengths (uint32 x n) | token bytes, concatenated

The cache directory is ``$RWKV_DATA_CACHE`` (``off`` disables the cache), else ``$XDG_CACHE_HOME/rwkv-data``,
else ``~/.cache/rwkv-data``. Entries are written atomically (temp file + rename); a directory that cannot be
written only means no cache. An entry is read with ``struct`` and ``array`` (never unpickled) and checked
(sizes, ascending ids, distinct tokens, all 256 bytes) before use; an entry that fails a check is ignored.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import sys
from array import array
from pathlib import Path

from rwkv_data.atomic import atomic_write

log = logging.getLogger(__name__)

CACHE_ENV = "RWKV_DATA_CACHE"
MAGIC = b"rwkv-data vocab1"
_HEAD = struct.Struct("<16s32s32sIQ")


def cache_dir() -> Path | None:
    """Where cached vocabs live, or None when the cache is turned off (``RWKV_DATA_CACHE=off``)."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "no", "false") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rwkv-data"


def _entry(data: bytes, kind: str) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    key = hashlib.sha256(kind.encode() + b"\0" + data).hexdigest()
    return root / "vocab" / f"{key}.bin"


def load(data: bytes, kind: str) -> tuple[dict[int, bytes], str] | None:
    """The tokens and canonical sha256 cached for a vocab file's bytes ``data`` (``kind``: text or json)."""
    path = _entry(data, kind)
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    try:
        return _decode(raw, hashlib.sha256(data).digest())
    except (ValueError, struct.error) as exc:
        log.debug("ignoring the vocab cache entry %s: %s", path, exc)
        return None


def _decode(raw: bytes, source: bytes) -> tuple[dict[int, bytes], str]:
    magic, src, canon, n, blob_len = _HEAD.unpack_from(raw)
    if magic != MAGIC or src != source:
        raise ValueError("not an entry for this file")
    start = _HEAD.size
    if len(raw) != start + 8 * n + blob_len:
        raise ValueError("truncated")
    ids, lens = array("I"), array("I")
    ids.frombytes(raw[start:start + 4 * n])
    lens.frombytes(raw[start + 4 * n:start + 8 * n])
    if sys.byteorder != "little":  # pragma: no cover - the entry is little-endian
        ids.byteswap()
        lens.byteswap()
    from rwkv_data.tokenizer.vocab import MAX_TOKEN_ID

    if sum(lens) != blob_len or 0 in lens or (n and (ids[0] < 1 or ids[-1] > MAX_TOKEN_ID)):
        raise ValueError("inconsistent sizes")
    blob = raw[start + 8 * n:]
    tokens: dict[int, bytes] = {}
    pos = 0
    for i, k in zip(ids, lens, strict=True):
        tokens[i] = blob[pos:pos + k]
        pos += k
    ordered = all(a < b for a, b in zip(ids, ids[1:], strict=False))
    singles = sum(1 for k in lens if k == 1)
    if not ordered or len(tokens) != n or len(set(tokens.values())) != n or singles != 256:
        raise ValueError("ids not ascending, duplicate tokens or missing single bytes")
    return tokens, canon.hex()


def store(data: bytes, kind: str, tokens: dict[int, bytes], canonical_sha256: str) -> None:
    """Cache a validated parse of ``data`` (best effort: a directory that cannot be written is skipped)."""
    path = _entry(data, kind)
    if path is None:
        return
    ids = array("I", tokens)
    lens = array("I", map(len, tokens.values()))
    if sys.byteorder != "little":  # pragma: no cover
        ids.byteswap()
        lens.byteswap()
    blob = b"".join(tokens.values())
    head = _HEAD.pack(MAGIC, hashlib.sha256(data).digest(), bytes.fromhex(canonical_sha256), len(tokens), len(blob))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, head + ids.tobytes() + lens.tobytes() + blob)
    except OSError as exc:
        log.debug("vocab cache not written (%s): %s", path, exc)
