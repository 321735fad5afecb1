"""Extend an existing vocabulary (World by default) with tokens learned for target languages, keeping ids.

Every base token that is kept keeps its id, so a model trained on the base vocab still reads its old ids the
same way. New tokens come from the same machinery as ``vocab train`` (balanced sample, mark-aware candidates,
character completeness, greedy-in-the-loop selection with the base tokens fixed). With ``replace_unused``,
multi-byte base tokens that greedy never emits on the given corpus are replaced and their ids reused; the
single bytes are never replaced.

With ``focus`` (the default) a new token must hold a character of a target script (the scripts of the input
languages, or ``focus_scripts``): punctuation, spaces and invisible characters learned from the target corpus
(``"\\u2063"``, ``",\\u200c"``, ``".\\n\\n"``) would change how every other language is encoded, so they are not
added, and text in other scripts (English, for a non-Latin target) encodes to the same ids as before.

Id assignment: replaced ids first (ascending), then fresh ids from ``first_new_id`` (default: base ``max_id + 1``
rounded up to a multiple of 64, i.e. 65536 for World, whose embedding has 65536 rows: ids 65530-65535 stay the
padding they are).

The **id map** (JSON, written next to the new vocab) is what the embedding initialisation of ``finetune``
needs::

    {
      "format": "rwkv-vocab-idmap", "version": 1,
      "old_vocab_sha256": "...", "new_vocab_sha256": "...",   # Vocab.sha256 of both (canonical text form)
      "old_max_id": 65529, "new_max_id": 73727,
      "kept": {"count": 65529, "ranges": [[1, 65529]]},       # ids whose token is unchanged (inclusive ranges)
      "added": [[65536, "e1889b"], ...],                       # [new id, token bytes as hex]: fresh ids
      "replaced": [[4321, "<old hex>", "<new hex>"], ...],     # [id, old token, new token]: reused ids
      "init": {"65536": [1234, 88], "4321": [...]}             # for every added/replaced id: the base-vocab
    }                                                          #   greedy ids of its bytes (mean-embedding init)

>>> from rwkv_data.tokenizer import Vocab
>>> from rwkv_data.tokenizer.vocab_settings import VocabSettings
>>> base = Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)})
>>> res = extend_vocab(base, [("ሰላም ለዓለም። " * 50, "am")], VocabSettings(add_tokens=8, heldout_fraction=0.2))
>>> all(res.tokens[i] == t for i, t in base.tokens.items()), len(res.idmap["added"])
(True, 8)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rwkv_data.errors import ConfigError
from rwkv_data.tokenizer.scripts import NEUTRAL, text_scripts
from rwkv_data.tokenizer.vocab import Vocab
from rwkv_data.tokenizer.vocab_candidates import Progress, candidate_pool
from rwkv_data.tokenizer.vocab_chars import required_chars
from rwkv_data.tokenizer.vocab_coverage import script_counts_of
from rwkv_data.tokenizer.vocab_sample import LangSample, sample_corpus
from rwkv_data.tokenizer.vocab_select import select_tokens
from rwkv_data.tokenizer.vocab_settings import VocabSettings
from rwkv_data.tokenizer.vocab_train import check_config

IDMAP_FORMAT = "rwkv-vocab-idmap"


@dataclass
class ExtendResult:
    """The extended vocab's ``tokens`` (id -> bytes), its ``idmap`` (see the module docstring) and ``stats``."""

    tokens: dict[int, bytes]
    idmap: dict[str, Any]
    stats: dict[str, Any] = field(default_factory=dict)


def _ranges(ids: Iterable[int]) -> list[list[int]]:
    """Sorted ids as inclusive ``[lo, hi]`` runs."""
    out: list[list[int]] = []
    for i in sorted(ids):
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out


def focus_scripts(samples: Mapping[str, LangSample], cfg: VocabSettings) -> set[str]:
    """The scripts new tokens must touch: ``cfg.focus_scripts``, else every script that is at least 10 % of an
    input language's letters (empty when ``cfg.focus`` is off: any token may be added)."""
    if not cfg.focus:
        return set()
    if cfg.focus_scripts:
        return set(cfg.focus_scripts)
    out: set[str] = set()
    for s in samples.values():
        per = {k: n for k, n in script_counts_of(s.char_counts).items() if k not in NEUTRAL}
        total = sum(per.values())
        out.update(k for k, n in per.items() if n >= 0.1 * total)
    return out


def in_scripts(tok: bytes, scripts: set[str]) -> bool:
    """Whether ``tok`` (valid UTF-8) holds a character of one of ``scripts``."""
    try:
        return bool(text_scripts(tok.decode("utf-8")) & scripts)
    except UnicodeDecodeError:
        return False


def unused_tokens(base: Vocab, texts: Iterable[str], threads: int = 0) -> list[int]:
    """Ids of multi-byte base tokens that greedy encoding never emits on ``texts``."""
    from rwkv_data.tokenizer import TrieTokenizer

    tok = TrieTokenizer(base)
    used = np.zeros(base.max_id + 1, dtype=bool)
    for ids in tok.encode_batch(list(texts), num_threads=threads or None):
        used[np.asarray(ids, dtype=np.int64)] = True
    return [i for i, t in base.tokens.items() if len(t) > 1 and not used[i]]


def build_idmap(base: Vocab, new: Vocab) -> dict[str, Any]:
    """The id map from ``base`` to ``new`` (schema in the module docstring); ``init`` uses base greedy ids."""
    from rwkv_data.tokenizer import TrieTokenizer

    old_tok = TrieTokenizer(base)
    kept = [i for i, t in base.tokens.items() if new.tokens.get(i) == t]
    replaced = [[i, base.tokens[i].hex(), new.tokens[i].hex()] for i in base.tokens
                if i in new.tokens and new.tokens[i] != base.tokens[i]]
    added = [[i, t.hex()] for i, t in new.tokens.items() if i not in base.tokens]
    changed = [r[0] for r in replaced] + [a[0] for a in added]
    return {
        "format": IDMAP_FORMAT, "version": 1,
        "old_vocab_sha256": base.sha256, "new_vocab_sha256": new.sha256,
        "old_max_id": base.max_id, "new_max_id": new.max_id,
        "kept": {"count": len(kept), "ranges": _ranges(kept)},
        "added": added,
        "replaced": replaced,
        "removed": [i for i in base.tokens if i not in new.tokens],
        "init": {str(i): old_tok.encode_bytes(new.tokens[i]) for i in changed},
    }


def extend_vocab(base: Vocab, docs: Iterable[tuple[str, str]], cfg: VocabSettings,
                 progress: Progress | None = None) -> ExtendResult:
    """Add ``cfg.add_tokens`` tokens (plus one per replaced token) for the languages of ``docs`` to ``base``.

    Args:
        base: the vocabulary to extend (every kept token keeps its id).
        docs: ``(text, lang)`` documents of the target languages (and, with ``cfg.replace_unused``, of every
            language whose tokens must survive: "unused" is measured on this corpus).
        cfg: ``add_tokens``, ``replace_unused``, ``first_new_id`` and the training settings.
        progress: called after each step with a short description.
    """
    check_config(cfg)
    samples = sample_corpus(docs, cfg)
    if progress:
        progress(f"sampled {sum(s.chars_train for s in samples.values()):,} chars in {len(samples)} languages")
    replace: list[int] = []
    if cfg.replace_unused:
        texts = [c for s in samples.values() for c in (*s.heldout, *dict.fromkeys(s.train))]
        replace = unused_tokens(base, texts, cfg.threads)
        if progress:
            progress(f"{len(replace):,} base tokens unused on the corpus")
    gone = set(replace)
    kept = {i: t for i, t in base.tokens.items() if i not in gone}
    kept_set = set(kept.values())
    n_new = cfg.add_tokens + len(replace)
    have = sum(1 for t in kept_set if len(t) > 1 and len(t.decode("utf-8", "replace")) == 1)
    chars, char_report = required_chars(samples, cfg, extra_budget=have + n_new // 2)
    targets = focus_scripts(samples, cfg)
    new_chars = [c for c in chars if c not in kept_set and (not targets or in_scripts(c, targets))]
    if len(new_chars) > n_new:
        raise ConfigError(f"character completeness needs {len(new_chars)} new tokens but add_tokens allows "
                         f"{n_new}; raise add_tokens (or char_min_count)")
    char_set = set(new_chars)
    pool = [t for t in candidate_pool(samples, cfg, int(2 * n_new * cfg.candidate_factor), progress)
            if t not in kept_set and t not in char_set]
    if targets:
        pool = [t for t in pool if in_scripts(t, targets)]
    required = list(kept.values()) + new_chars
    selected, sel_stats = select_tokens(samples, required, pool, len(required) + n_new - len(new_chars), cfg,
                                        progress=progress)
    new_tokens = [t for t in selected if t not in kept_set]
    first = cfg.first_new_id or -(-(base.max_id + 1) // 64) * 64
    if first <= base.max_id:
        raise ConfigError(f"first_new_id {first} must be past the base vocab's max id {base.max_id}")
    ids = sorted(replace) + list(range(first, first + max(0, len(new_tokens) - len(replace))))
    tokens = dict(kept)
    tokens.update(zip(ids, new_tokens, strict=False))
    new = Vocab.from_tokens(tokens, name=f"{base.name}+{len(new_tokens)}")
    idmap = build_idmap(base, new)
    stats = {"languages": {lang: {"chars_train": s.chars_train, **sel_stats["languages"].get(lang, {})}
                           for lang, s in samples.items()},
             "scripts": char_report, "focus_scripts": sorted(targets), "new_chars": len(new_chars),
             "candidates": len(pool),
             "added": len(idmap["added"]), "replaced": len(idmap["replaced"]), "removed": len(idmap["removed"]),
             "selection": {k: v for k, v in sel_stats.items() if k != "languages"}}
    return ExtendResult(dict(new.tokens), idmap, stats)
