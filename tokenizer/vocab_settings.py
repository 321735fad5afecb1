"""Settings of the vocabulary trainer and extender (:mod:`.vocab_train`, :mod:`.vocab_extend`).

The tokenizer owns this dataclass so that it depends on nothing above it; the ``vocab`` job's config
(``rwkv_data.config.VocabConfig``) adds the corpus and the output paths to it. Sizes of text are in characters;
the design and its measurements are in docs/vocab.md.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class VocabSettings:
    """Sampling, candidate and selection settings of a greedy-longest-match vocabulary."""

    vocab_size: int = 65536  # ids 0..vocab_size-1; id 0 is reserved (end of document), ids 1..256 the bytes
    languages: tuple[str, ...] = ()  # train on these languages only (empty: every language in the input)
    # language-balanced sampling of the training text
    sampling: str = "unimax"  # "unimax" (Chung et al. 2023) or "temperature" (p ~ n^(1/T))
    sample_chars: int = 40_000_000  # total characters fed to the candidate trainers
    max_epochs: float = 3.0  # no language is repeated more than this (UniMax's cap; also caps temperature)
    temperature: float = 3.33  # mT5's tau for sampling="temperature"
    lang_caps: dict[str, int] = dataclasses.field(default_factory=dict)  # per-language character caps
    lang_weights: dict[str, float] = dataclasses.field(default_factory=lambda: {"en": 6.0})  # budget x utility
    heldout_chars: int = 150_000  # per language, set aside (never trained on) to score tokens with greedy encoding
    heldout_fraction: float = 0.1  # ... but at most this share of a language
    score_chars: int = 1_000_000  # per language, text encoded when scoring: the held-out, topped up with training
    # coverage floor (tokenizer/vocab_coverage.py, docs/vocab.md): text in scripts the corpus lacks stays encodable
    coverage: str = "world"  # keep this vocab's characters, their scripts' letters and marks, its partial-UTF-8
    #   tokens and its tokens of scripts thin in the corpus ("world", a vocab file, or "" = off)
    coverage_thin_chars: int = 1_000_000  # a script with fewer corpus characters than this is "thin"
    coverage_share: float = 0.25  # the floor's tokens not otherwise required take at most this share of vocab_size
    # candidates
    pretokenizer: str = "mark-aware"  # "mark-aware" (combining marks stay with their letter) or "gpt2"
    candidates: tuple[str, ...] = ("bpe", "ngram", "phrase")  # any of "bpe", "unigram" (slow), "ngram", "phrase"
    candidate_factor: float = 2.2  # candidate pool = factor x free slots; greedy pruning removes the rest
    max_token_bytes: int = 32
    char_min_count: int = 3  # character completeness: a character seen this often gets its own token ...
    char_min_share: float = 1e-6  # ... if it is also at least this share of its script's characters
    script_closure: int = 400  # scripts seen in the corpus with at most this many characters get all of them
    char_seed: str = "auto"  # + level-1 Han/Hangul of GB2312, Big5, JIS, KS X 1001 ("charsets"), "world", a vocab,
    #   "" = off; "auto": "charsets", except in `train` with the coverage floor on (it keeps World's characters)
    # selection with greedy encoding in the loop
    rounds: int = 8  # pruning rounds from the pool down to vocab_size
    refill_rounds: int = 2  # then: drop tokens greedy never uses, refill with the best removed ones
    max_variants: int = 4  # cap on case/leading-space variants (same strip().lower()) per family
    chunk_cap: int = 4  # count a token at most this often per ~2,000-character chunk when scoring (0 = no cap)
    fairness: float = 0.5  # 0: every language's relative cost counts equally; higher favours the worst
    reference_lang: str = "en"  # parity reference (falls back to the median language when absent)
    seed: int = 0
    threads: int = 0  # encoder and HF trainer threads (0: all cores)
    # vocab extend
    add_tokens: int = 8192  # new tokens (they take the ids of replaced tokens first, then max_id+1, ...)
    replace_unused: bool = False  # also replace base tokens greedy never uses on the input corpus
    first_new_id: int = 0  # 0: past the base max_id, rounded up to 64 (World: 65536, its embedding rows)
    focus: bool = True  # extend: add only tokens with a character of the target scripts (no punctuation-only ones)
    focus_scripts: tuple[str, ...] = ()  # ISO 15924 codes ("" = each input language's scripts with >= 10 % of it)


_BIG = 2**62  # beyond any corpus, within int64 arithmetic
_INT_RANGES: dict[str, tuple[int, int]] = {
    "sample_chars": (1, _BIG), "heldout_chars": (0, _BIG), "score_chars": (0, _BIG), "coverage_thin_chars": (0, _BIG),
    "max_token_bytes": (1, 4096), "char_min_count": (0, _BIG), "script_closure": (0, _BIG), "rounds": (0, 10_000),
    "refill_rounds": (0, 10_000), "max_variants": (0, 10_000), "chunk_cap": (0, _BIG), "seed": (0, 2**63 - 1),
    "threads": (0, 1024), "add_tokens": (0, (1 << 24) - 1), "first_new_id": (0, (1 << 24) - 1),
}
_FLOAT_RANGES: dict[str, tuple[float, float, bool]] = {  # (low, high, low excluded)
    "max_epochs": (0.0, 1e9, True), "temperature": (0.0, 1e9, True), "candidate_factor": (0.0, 1e3, True),
    "fairness": (0.0, 1e9, False), "char_min_share": (0.0, 1.0, False),
}


def range_problems(cfg: VocabSettings) -> list[str]:
    """Each numeric setting outside its range (NaN and infinity included), as ``name=value (the range)``."""
    import math

    out = []
    for name, (lo, hi) in _INT_RANGES.items():
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            out.append(f"{name}={v!r:.40} (an integer in [{lo:,}, {hi:,}])")
    for name, (lo, hi, lo_open) in _FLOAT_RANGES.items():
        v = getattr(cfg, name)
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and \
            (v > lo if lo_open else v >= lo) and v <= hi
        if not ok:
            out.append(f"{name}={v!r:.40} (a number {'>' if lo_open else '>='} {lo:g} and <= {hi:g})")
    for field, kind in (("lang_weights", float), ("lang_caps", int)):
        for lang, v in getattr(cfg, field).items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0 or v > _BIG \
                    or (kind is int and not isinstance(v, int)):
                out.append(f"{field}[{lang!r:.40}]={v!r:.40} (a {'count' if kind is int else 'weight'} >= 0)")
    return out
