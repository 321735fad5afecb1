"""Vocabulary extension for fine-tuning: add tokens, keep every existing id, grow ``emb`` and ``head``.

Each new token's bytes are encoded with the *old* tokenizer; its new ``emb`` and ``head`` rows are the mean of
the rows of those old ids. Old rows are untouched, so the logits of the old ids for any old-vocab token sequence
are unchanged (the new ids only add logits). New ids start after both the old vocab's largest id and the
embedding's row count, so padding rows (World: 65530-65535) and id 0 (end of document) keep their meaning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from rwkv_data.tokenizer import TrieTokenizer
from rwkv_data.tokenizer.vocab import Vocab, read_vocab

from rwkv_data.errors import ConfigError, VocabFormatError

log = logging.getLogger(__name__)


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
        text = path.read_text(encoding="utf-8")
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


def grow_state_dict(sd: Mapping[str, torch.Tensor], parts: Mapping[int, Sequence[int]]) -> dict[str, torch.Tensor]:
    """A copy of the official state dict with ``emb.weight`` and ``head.weight`` grown to cover ``parts``' ids.

    Rows between the old row count and the first new id (none with :func:`plan_extension`) are zero.
    """
    out = dict(sd)
    if not parts:
        return out
    V_new = max(parts) + 1
    for key in ("emb.weight", "head.weight"):
        if key not in sd:
            raise ConfigError(f"checkpoint has no {key}: not an RWKV-7 state dict")
        w = sd[key]
        V, C = w.shape
        if V_new <= V:
            raise ConfigError(f"new ids must lie past the {V} rows of {key}")
        grown = torch.zeros(V_new, C, dtype=w.dtype)
        grown[:V] = w
        wf = w.float()
        for i, ids in parts.items():
            if not ids or max(ids) >= V:
                raise ConfigError(f"new id {i}: its decomposition {list(ids)} is not covered by {key}")
            grown[i] = wf[list(ids)].mean(0).to(w.dtype)
        out[key] = grown
    return out
