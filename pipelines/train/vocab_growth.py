"""Vocabulary extension for fine-tuning: add tokens, keep every existing id, grow ``emb`` and ``head``.

Each new token's bytes are encoded with the *old* tokenizer; its new ``emb`` and ``head`` rows are the mean of
the rows of those old ids. Old rows are untouched, so the logits of the old ids for any old-vocab token sequence
are unchanged (the new ids only add logits). New ids start after both the old vocab's largest id and the
embedding's row count, so padding rows (World: 65530-65535) and id 0 (end of document) keep their meaning.

Two inputs: a list of tokens (a vocab file or one token per line; ids assigned here), or the id map JSON of
``rwkv-data vocab extend`` (``format: rwkv-vocab-idmap``), whose ids and decompositions are used as given; its
``replaced`` ids (unused base tokens swapped for new ones) get their rows re-initialised the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from rwkv_data.errors import ConfigError, VocabFormatError
from rwkv_data.jsonfile import read_json
from rwkv_data.tokenizer import TrieTokenizer
from rwkv_data.tokenizer.vocab import Vocab, read_vocab

log = logging.getLogger(__name__)

IDMAP_FORMAT = "rwkv-vocab-idmap"


def read_new_tokens(path: str | Path) -> list[bytes]:
    """Tokens to add, from a vocab file (World text or JSON form: every token of it) or a plain list.

    A plain list has one token per line as UTF-8 text (the line break is not part of the token; blank lines
    are skipped). Duplicates keep their first occurrence.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: new-token file not found")
    try:
        tokens = list(read_vocab(path).tokens.values())
    except VocabFormatError:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: neither a vocab file nor UTF-8 text (byte {exc.start}); list one token per "
                              "line as UTF-8, or give a vocab file") from exc
        tokens = [line.encode("utf-8") for line in text.split("\n") if line.strip("\r")]
        tokens = [t[:-1] if t.endswith(b"\r") else t for t in tokens]
    return list(dict.fromkeys(tokens))


def plan_extension(tok: TrieTokenizer, new_tokens: Sequence[bytes], n_rows: int) -> tuple[Vocab, dict[int, list[int]]]:
    """The extended vocab and, for each new id, the old ids its bytes encode to.

    Tokens already in the vocab are skipped. ``n_rows`` is the checkpoint's embedding row count.
    """
    old = tok.vocab
    known = old.token_to_id
    start = max(old.max_id + 1, n_rows)
    added = [t for t in dict.fromkeys(new_tokens) if t and t not in known]
    if len(added) < len(new_tokens):
        log.info("vocab extension: %d of %d tokens already in the vocab", len(new_tokens) - len(added), len(new_tokens))
    tokens = dict(old.tokens)
    parts: dict[int, list[int]] = {}
    for j, t in enumerate(added):
        tokens[start + j] = t
        parts[start + j] = tok.encode_bytes(t)
    return Vocab.from_tokens(tokens, name=f"{old.name}+{len(added)}"), parts


def is_idmap(path: str | Path) -> bool:
    """Whether ``path`` is a ``vocab extend`` id map (a JSON object with ``format: rwkv-vocab-idmap``)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        return read_json(path).get("format") == IDMAP_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def plan_from_idmap(tok: TrieTokenizer, path: str | Path) -> tuple[Vocab, dict[int, list[int]]]:
    """The extended vocab and decompositions from a ``vocab extend`` id map (checked against ``tok``'s vocab)."""
    path = Path(path)
    try:
        m = read_json(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the id map: {exc}") from exc
    if not isinstance(m, dict):
        raise ConfigError(f"{path}: not a {IDMAP_FORMAT} file (a JSON {type(m).__name__})")
    if m.get("format") != IDMAP_FORMAT:
        raise ConfigError(f"{path}: not a {IDMAP_FORMAT} file (format {m.get('format')!r})")
    if m.get("old_vocab_sha256") != tok.vocab.sha256:
        raise ConfigError(f"{path}: the id map extends a vocab with sha256 {str(m.get('old_vocab_sha256'))[:12]}..., "
                          f"but --vocab is {tok.vocab.sha256[:12]}...; pass the vocab the map was built from")
    tokens = dict(tok.vocab.tokens)
    try:
        for i in m.get("removed", []):
            tokens.pop(int(i), None)
        for i, old, new in m.get("replaced", []):
            if tokens.get(int(i)) != bytes.fromhex(old):
                raise ConfigError(f"{path}: replaced id {i} should hold {bytes.fromhex(old)!r} but --vocab has "
                                  f"{tokens.get(int(i))!r} there; the map conflicts with the vocab")
            tokens[int(i)] = bytes.fromhex(new)
        for i, new in m.get("added", []):
            if int(i) in tokens:
                raise ConfigError(f"{path}: added id {i} is already {tokens[int(i)]!r} in --vocab; the map "
                                  "conflicts with the vocab (regenerate it with rwkv-data vocab extend)")
            tokens[int(i)] = bytes.fromhex(new)
        parts = {int(i): [int(x) for x in ids] for i, ids in m.get("init", {}).items()}
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: malformed id map entry: {exc}") from exc
    vocab = Vocab.from_tokens(tokens, name=path.stem)
    if m.get("new_vocab_sha256") not in (None, vocab.sha256):
        raise ConfigError(f"{path}: rebuilding the new vocab from the map gives a different sha256; the map is "
                          "inconsistent (regenerate it with rwkv-data vocab extend)")
    return vocab, parts


def grow_state_dict(sd: Mapping[str, torch.Tensor], parts: Mapping[int, Sequence[int]]) -> dict[str, torch.Tensor]:
    """A copy of the official state dict whose ``emb.weight`` and ``head.weight`` rows of ``parts``' ids are the
    means of their decompositions' rows, grown to cover the largest id.

    Ids below the old row count are re-initialised (an id map's replaced tokens); rows between the old row
    count and the first new id (none with :func:`plan_extension`) are zero.
    """
    out = dict(sd)
    if not parts:
        return out
    V_new = max(max(parts) + 1, sd["emb.weight"].shape[0] if "emb.weight" in sd else 0)
    for key in ("emb.weight", "head.weight"):
        if key not in sd:
            raise ConfigError(f"checkpoint has no {key}: not an RWKV-7 state dict")
        w = sd[key]
        V, C = w.shape
        grown = torch.zeros(V_new, C, dtype=w.dtype)
        grown[:V] = w
        wf = w.float()
        for i, ids in parts.items():
            if not ids or max(ids) >= V or any(j in parts for j in ids):
                raise ConfigError(f"new id {i}: its decomposition {list(ids)} must be old ids below {V}")
            grown[i] = wf[list(ids)].mean(0).to(w.dtype)
        out[key] = grown
    return out
