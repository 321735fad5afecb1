"""Train a vocabulary for greedy longest-match (RWKV trie) inference from a multilingual corpus.

The method (docs/vocab.md):

1. **Language-balanced sampling** (:func:`~rwkv_data.tokenizer.vocab_sample.sample_corpus`): documents are cut
   into paragraph chunks, a held-out slice per language is set aside, and each language gets a character budget
   by UniMax or temperature sampling, capped per language and at ``max_epochs`` repetitions.
2. **Candidates** (:func:`~rwkv_data.tokenizer.vocab_candidates.candidate_pool`): HF ``tokenizers`` byte-level BPE
   (and optionally Unigram) trained on the sample with the mark-aware pre-tokenizer, plus n-gram counts and
   superwords (runs of 2-3 pre-tokens such as ``" of the"``); only whole-character (valid UTF-8) strings.
3. **Character completeness** (:func:`~rwkv_data.tokenizer.vocab_chars.required_chars`): every character above a
   frequency floor in its script gets its own token, so no script falls back to raw bytes; and the **coverage
   floor** (:func:`~rwkv_data.tokenizer.vocab_coverage.coverage_floor`): World's characters, the letters and
   marks of their scripts, its partial-UTF-8 tokens and its tokens of scripts thin in the corpus, so a script the
   corpus lacks is never encoded worse than World encodes it.
4. **Selection with greedy encoding in the loop** (:mod:`rwkv_data.tokenizer.vocab_select`): the held-out text
   (topped up with training text) is encoded with our trie tokenizer; tokens are pruned by their measured greedy
   saving, weighted by a fairness knob; then tokens greedy never uses are dropped and refilled, repeatedly.

Everything is deterministic for a seed. The output keeps id 0 free, puts byte ``b`` at id ``b + 1`` (as World
does) and sorts the remaining tokens by byte length, then bytes.

>>> from rwkv_data.tokenizer.vocab_settings import VocabSettings
>>> docs = [("the cat sat on the mat. " * 20, "en"), ("der Hund und die Katze. " * 20, "de")]
>>> result = train_vocab(docs, VocabSettings(vocab_size=320, heldout_fraction=0.2, sample_chars=10_000))
>>> len(result.tokens) <= 319 and result.tokens[1] == b"\\x00"
True
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rwkv_data.errors import ConfigError
from rwkv_data.tokenizer.vocab import MAX_TOKEN_ID
from rwkv_data.tokenizer.vocab_candidates import Progress, candidate_pool
from rwkv_data.tokenizer.vocab_chars import required_chars
from rwkv_data.tokenizer.vocab_coverage import coverage_floor, script_counts_of
from rwkv_data.tokenizer.vocab_sample import sample_corpus
from rwkv_data.tokenizer.vocab_settings import VocabSettings, range_problems

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train_vocab` returns: ``tokens`` (id -> bytes, ids 1..n) and JSON-ready ``stats``."""

    tokens: dict[int, bytes]
    stats: dict[str, Any] = field(default_factory=dict)


def assign_ids(tokens: Iterable[bytes]) -> dict[int, bytes]:
    """World-style ids: byte ``b`` at ``b + 1``, then the other tokens by (byte length, bytes) from 257."""
    rest = sorted({t for t in tokens if len(t) > 1}, key=lambda t: (len(t), t))
    out = {b + 1: bytes([b]) for b in range(256)}
    out.update({257 + k: t for k, t in enumerate(rest)})
    return out


def check_config(cfg: VocabSettings) -> None:
    """Reject bad settings before any text is read (ConfigError naming the field and the valid values)."""
    from rwkv_data.tokenizer.pretokenize import PATTERNS

    problems = []
    if cfg.sampling not in ("unimax", "temperature"):
        problems.append(f"sampling={cfg.sampling!r} (use 'unimax' or 'temperature')")
    if cfg.pretokenizer not in PATTERNS:
        problems.append(f"pretokenizer={cfg.pretokenizer!r} (use one of {sorted(PATTERNS)})")
    bad = [c for c in cfg.candidates if c not in ("bpe", "unigram", "ngram", "phrase")]
    if bad or not cfg.candidates:
        problems.append(f"candidates={list(cfg.candidates)!r} (use some of 'bpe', 'unigram', 'ngram', 'phrase')")
    if cfg.vocab_size < 258:
        problems.append(f"vocab_size={cfg.vocab_size} (id 0 and the 256 bytes need 257 ids)")
    if not 0 <= cfg.heldout_fraction < 1:
        problems.append(f"heldout_fraction={cfg.heldout_fraction} (use 0 <= f < 1)")
    if not 0 <= cfg.coverage_share <= 1:
        problems.append(f"coverage_share={cfg.coverage_share} (use 0 <= share <= 1)")
    if not isinstance(cfg.vocab_size, int) or cfg.vocab_size > MAX_TOKEN_ID + 1:
        problems.append(f"vocab_size={cfg.vocab_size!r:.40} (at most {MAX_TOKEN_ID + 1:,}: ids 0..vocab_size-1)")
    problems += range_problems(cfg)
    from rwkv_data.tokenizer.scripts import SCRIPTS

    unknown = [x for x in cfg.focus_scripts if x and x not in SCRIPTS]
    if unknown:
        problems.append(f"focus_scripts={unknown!r:.80} (ISO 15924 codes such as Latn, Cyrl, Ethi; known: "
                        f"{', '.join(sorted(SCRIPTS))})")
    if problems:
        raise ConfigError("invalid vocab settings: " + "; ".join(problems))


def train_vocab(docs: Iterable[tuple[str, str]], cfg: VocabSettings, progress: Progress | None = None) -> TrainResult:
    """Train a vocabulary of at most ``cfg.vocab_size - 1`` tokens (ids 1..vocab_size-1) from ``(text, lang)``.

    Args:
        docs: documents with their language code (read once).
        cfg: sampling, candidate and selection settings (:class:`~rwkv_data.tokenizer.vocab_settings.VocabSettings`).
        progress: called after each step with a short description (the CLI drives a progress bar with it).
    """
    from rwkv_data.tokenizer.vocab_select import select_tokens

    check_config(cfg)
    samples = sample_corpus(docs, cfg)
    if progress:
        progress(f"sampled {sum(s.chars_train for s in samples.values()):,} chars in {len(samples)} languages")
    chars, char_report = required_chars(samples, cfg, floor=True)
    required = [bytes([b]) for b in range(256)] + chars
    all_chars: Counter[str] = Counter()
    for s in samples.values():
        all_chars.update(s.char_counts)
    floor, floor_report = coverage_floor(script_counts_of(all_chars), set(required), cfg,
                                         room=cfg.vocab_size - 1 - len(required))
    required += floor
    if progress:
        progress(f"coverage floor: {len(floor):,} tokens ({floor_report['share']:.1%} of the vocab)")
    n_tokens = cfg.vocab_size - 1
    if len(required) > n_tokens:
        raise ConfigError(f"character completeness needs {len(required)} tokens but vocab_size allows {n_tokens}; "
                         "raise vocab_size or char_min_count (or lower coverage_share)")
    free = n_tokens - len(required)
    char_set = set(required)
    pool = [t for t in candidate_pool(samples, cfg, int(free * cfg.candidate_factor), progress)
            if t not in char_set]
    selected, sel_stats = select_tokens(samples, required, pool, n_tokens, cfg, progress=progress)
    tokens = assign_ids(selected)
    stats = {
        "languages": {lang: {"chars_available": s.chars_available, "chars_train": s.chars_train,
                             "epochs": round(s.epochs, 3), "heldout_chars": sum(map(len, s.heldout)),
                             **sel_stats["languages"].get(lang, {})} for lang, s in samples.items()},
        "scripts": char_report,
        "required_chars": len(chars),
        "coverage_floor": floor_report,
        "candidates": len(pool),
        "tokens": len(tokens),
        "selection": {k: v for k, v in sel_stats.items() if k != "languages"},
    }
    return TrainResult(tokens, stats)
