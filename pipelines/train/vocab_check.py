"""The model jobs' guard against a wrong tokenizer: one place where train, evaluate and finetune check that the
vocab they are given is the one a shard was made with, and that the shard's ids fit the model.

A shard records its tokenizer in ``P.meta.json`` (``tokenizer.sha256``: the vocab's canonical sha256, and
``tokenizer.vocab``: the vocab as the shard job was given it). Evaluating with another vocab decodes the ids into
the wrong bytes (bits per byte of 9-10 instead of 2, exit 0); training with it gives a model whose ids mean
nothing to the tokenizer users will pair it with. So a mismatch is refused, naming both vocabs. Without
``--vocab`` the shard's recorded vocab is used; a shard without metadata then needs ``--vocab``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.config import short_repr
from rwkv_data.errors import CheckpointError, ConfigError, ShardFormatError
from rwkv_data.pipelines.shard.meta import FORMAT, describe_recorded, read_shard_meta, recorded_tokenizer
from rwkv_data.tokenizer.resolve import load_trie

log = logging.getLogger(__name__)

WORLD_NAMES = ("", "world")
SCAN_CHUNK = 1 << 24  # tokens per slice when finding a shard's largest id (bounded memory on huge shards)


def load_tokenizer(vocab: str) -> Any:
    """The tokenizer of spec ``vocab`` (``world``, ``""`` or a vocab file; tokenizer/resolve.py)."""
    return load_trie(vocab or "world")


_SOUND: set[tuple[str, tuple[int, ...]]] = set()  # (prefix, sizes and times of its files) found sound already


def require_shard(prefix: str | Path) -> None:
    """ConfigError when ``prefix`` names no shard (neither ``P.bin`` nor ``P.idx``), with the likely fix;
    ShardFormatError when its files contradict each other (``verify(quick=True)``: a truncated ``.bin``, edited
    sizes or pointers, a damaged language array or meta), before a model job reads it."""
    if Path(f"{prefix}.bin").is_file() or Path(f"{prefix}.idx").is_file():
        _require_sound(prefix)
        return
    text = str(prefix)
    hint = "pass the prefix P given to `rwkv-data shard -o P`"
    for ext in (".bin", ".idx", ".meta.json"):
        if text.endswith(ext) and Path(text[: -len(ext)] + ".bin").is_file():
            hint = f"pass the prefix without {ext}: {text[: -len(ext)]}"
    raise ConfigError(f"{prefix}: no shard there ({prefix}.bin and {prefix}.idx are missing); {hint}")


def _require_sound(prefix: str | Path) -> None:
    from rwkv_data.pipelines.shard.check import verify  # noqa: PLC0415

    stamp = []
    for ext in (".bin", ".idx", ".meta.json", ".lang.npy"):
        try:
            st = os.stat(f"{prefix}{ext}")
            stamp += [st.st_size, st.st_mtime_ns, st.st_ino]
        except OSError:
            stamp.append(-1)
    key = (str(prefix), tuple(stamp))
    if key in _SOUND:
        return
    meta = read_shard_meta(prefix)  # ConfigError when unreadable
    full = meta is not None and meta.get("format") == FORMAT  # a meta of this tool: checked field by field
    if meta is not None and not full:  # another tool's or an older one: the fields the jobs read
        tok, langs = meta.get("tokenizer"), meta.get("languages")
        if (tok is not None and not isinstance(tok, dict)) or (langs is not None and not (
                isinstance(langs, list) and all(isinstance(x, str) for x in langs))):
            raise ShardFormatError(f"{prefix}.meta.json: 'tokenizer' must be an object and 'languages' a list of "
                                   f"strings, got {short_repr(tok)} and {short_repr(langs)}; write the shard again "
                                   "with `rwkv-data shard`")
    report = verify(prefix, require_meta=full, quick=True)
    if not report["ok"]:
        first = report["failures"][0]
        names = ", ".join(f["check"] for f in report["failures"])
        raise ShardFormatError(f"{prefix}: a damaged shard (failed {names}): {first['message']}; `rwkv-data verify "
                               f"{prefix}` lists every problem; write it again with `rwkv-data shard`")
    _SOUND.add(key)


def shard_tokenizer_meta(prefix: str | Path) -> dict[str, Any] | None:
    """``P.meta.json``'s ``tokenizer`` entry (None when the shard has no metadata file)."""
    require_shard(prefix)
    meta = read_shard_meta(prefix)
    if meta is None:
        return None
    tok = meta.get("tokenizer")
    return dict(tok) if isinstance(tok, Mapping) else {}


def describe(tok: Any, spec: str) -> str:
    """``'vocab.txt' (name, sha256 0123456789ab, 4096 ids)`` for messages."""
    shown = "world" if spec in WORLD_NAMES else spec
    return f"{shown!r} ({tok.name}, sha256 {tok.sha256[:12]}, {tok.vocab_size} ids)"


def check_shard_vocab(prefix: str | Path, tok: Any, spec: str, flag: str = "--vocab",
                      also: Sequence[Any] = ()) -> Any:
    """Refuse ``tok`` (given as ``spec``) unless ``prefix`` was made with it (or with one of ``also``).

    Returns the tokenizer the shard was made with (``tok`` or the one of ``also`` that matched). A shard
    without a recorded sha256 (older metadata) is checked on its vocab size only; one without metadata
    is accepted with a warning (nothing to compare with).
    """
    tmeta = shard_tokenizer_meta(prefix)
    if tmeta is None:
        log.warning("%s.meta.json not found: cannot check that %s %s is the shard's vocab", prefix, flag, spec)
        return tok
    candidates = [tok, *also]
    want = tmeta.get("sha256")
    if want:
        for t in candidates:
            if t.sha256 == want:
                return t
    else:
        size = tmeta.get("vocab_size")
        if not isinstance(size, int) or any(t.vocab_size == size for t in candidates):
            return tok
    others = "".join(f" or {describe(t, t.name)}" for t in also)
    raise ConfigError(f"{prefix} was made with the vocab {describe_recorded(prefix, tmeta)}, but {flag} is "
                      f"{describe(tok, spec)}{others}; pass {flag} with the shard's vocab (or omit it to use "
                      "the recorded one), or re-shard the data with this vocab")


def recorded(prefix: str | Path, flag: str = "--vocab") -> tuple[Any, str]:
    """The shard's recorded tokenizer (shard/meta.py: recorded_tokenizer), once ``prefix`` is known to be a shard."""
    require_shard(prefix)
    return recorded_tokenizer(prefix, flag)


def shard_tokenizer(prefix: str | Path, vocab: str, flag: str = "--vocab", also: Sequence[Any] = ()) -> Any:
    """The tokenizer for shard ``prefix``: ``vocab`` checked against the shard's metadata, or the shard's
    recorded vocab when ``vocab`` is empty."""
    if not vocab:
        tok, found = recorded(prefix, flag)
        log.info("%s: using the vocab recorded in its metadata: %s", prefix, describe(tok, found))
        return tok
    return check_shard_vocab(prefix, load_tokenizer(vocab), vocab, flag, also)


def max_token_id(tokens: np.ndarray) -> int:
    """The largest id of a flat token array (-1 when empty), read in slices."""
    top = -1
    for s in range(0, len(tokens), SCAN_CHUNK):
        top = max(top, int(np.max(tokens[s:s + SCAN_CHUNK])))
    return top


def check_ids_fit(prefix: str | Path, tokens: np.ndarray, rows: int, model_desc: str) -> None:
    """CheckpointError when an id of the shard ``prefix`` (flat ``tokens``) is not below the model's ``rows``."""
    top = max_token_id(tokens)
    if top >= rows:
        raise CheckpointError(f"{prefix} holds token id {top} but {model_desc} has {rows} embedding rows "
                              f"(ids 0..{rows - 1}); use a model (or --vocab-size) with more than {top} rows, or "
                              "the vocab the model was trained with")


def check_checkpoint_vocab(checkpoint: str | Path, tok: Any, spec: str, flag: str = "--vocab",
                           also: Sequence[Any] = ()) -> None:
    """Refuse ``tok`` when ``checkpoint``'s ``.json`` records another vocab (checkpoints trained here record
    theirs; official ones record none and are not checked)."""
    from rwkv_data.pipelines.train.modelio import checkpoint_vocab  # noqa: PLC0415 (modelio loads torch)

    rec = checkpoint_vocab(checkpoint)
    if rec is None or any(t.sha256 == rec["sha256"] for t in (tok, *also)):
        return
    raise ConfigError(f"{checkpoint} was trained with the vocab {rec.get('name', '?')!r} (sha256 "
                      f"{rec['sha256'][:12]}, {rec.get('vocab_size', '?')} ids; from its .json), but {flag} is "
                      f"{describe(tok, spec)}; pass {flag} with the vocab the checkpoint was trained with")
