"""Tokenization metrics, each defined once (docs/metrics.md states the same definitions).

Everything here is a pure function of token ids, token byte boundaries, texts and vocabularies, so the audit
job and the vocabulary trainer share one implementation:

>>> parity({"eng": 100, "deu": 130}, reference="eng")
{'eng': 1.0, 'deu': 1.3}
>>> gini([1.0, 1.0, 1.0])
0.0

Per-text counts (:class:`TextCounts`) are additive, so every ratio metric is a ratio of sums and the
bootstrap resamples texts (articles, sentences, documents) and recomputes the ratio.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import regex

from rwkv_data.tokenizer.reference import END, build_trie, encode_bytes_ref
from rwkv_data.tokenizer.scripts import (  # noqa: F401  (the one classifier, re-exported for the audit)
    SCRIPTS,
    char_script,
    dominant_script,
    script_allocation,
    token_category,
)

# ---- word segmentation (scripts: tokenizer/scripts.py, one classifier for audit, vocab info and training) ----

# Scripts written without spaces between words: their "words" are characters (a base plus its marks), as
# tokka-bench does for zh/ja/th/km/lo/my; Tibetan and Tai scripts mark syllables, not words.
NO_SPACE_SCRIPTS: tuple[str, ...] = ("Hani", "Hira", "Kana", "Thai", "Khmr", "Laoo", "Mymr", "Tibt", "Lana", "Tavt",
                                     "Java", "Bali", "Yiii")
_NS = "".join(rf"\p{{Script={SCRIPTS[s]}}}" for s in NO_SPACE_SCRIPTS)
# U+1361 ETHIOPIC WORDSPACE separates words like a space (the Amharic UDHR has no spaces at all).
WORD_RE = regex.compile(rf"[{_NS}]\p{{M}}*|[^\s\u1361{_NS}]+")


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Character start/end offsets of the words of ``text``: whitespace-separated runs, except that each
    character of a :data:`NO_SPACE_SCRIPTS` script (with its combining marks) is a word of its own."""
    spans = [m.span() for m in WORD_RE.finditer(text)]
    arr = np.array(spans, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def char_byte_offsets(text: str) -> np.ndarray:
    """UTF-8 byte offset of every character boundary of ``text`` (length ``len(text) + 1``)."""
    cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    width = 1 + (cp >= 0x80).astype(np.int64) + (cp >= 0x800) + (cp >= 0x10000)
    out = np.zeros(len(cp) + 1, dtype=np.int64)
    np.cumsum(width, out=out[1:])
    return out


# ---- per-text counts --------------------------------------------------------------------------------------


@dataclasses.dataclass
class TextCounts:
    """Additive counts for one text (or a sum of texts); every ratio metric is a ratio of two fields."""

    tokens: int = 0          # |T(x)|
    bytes: int = 0           # UTF-8 bytes of x
    chars: int = 0           # code points of x
    words: int = 0           # words (see word_spans)
    word_tokens: int = 0     # sum over words of the tokens overlapping the word
    continued: int = 0       # words overlapped by >= 2 tokens
    fallback_tokens: int = 0  # byte-fallback tokens (single bytes >= 0x80, or <0xNN> pieces)
    nonascii_chars: int = 0  # characters of >= 2 UTF-8 bytes
    split_chars: int = 0     # non-ASCII characters whose bytes are split across tokens
    min_tokens: int = 0      # minimum-token segmentation length (trie vocabularies; 0 when not computed)

    def __add__(self, other: TextCounts) -> TextCounts:
        return TextCounts(*(a + b for a, b in zip(dataclasses.astuple(self), dataclasses.astuple(other),
                                                    strict=True)))


FIELDS = tuple(f.name for f in dataclasses.fields(TextCounts))


def text_counts(text: str, token_ends: np.ndarray, fallback: np.ndarray | None = None,
                min_tokens: int = 0) -> TextCounts:
    """Counts for ``text`` encoded into tokens whose UTF-8 byte end offsets are ``token_ends``.

    A token belongs to a word when their byte spans overlap, so a token that crosses a word boundary counts
    for both words, and whitespace-only tokens belong to none (greedy longest match has no pre-tokenizer, so
    words are measured in the running-text encoding). ``fallback`` is a per-token boolean array.
    """
    ends = np.asarray(token_ends, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    cbo = char_byte_offsets(text)
    ws, we = word_spans(text)
    bws, bwe = cbo[ws], cbo[we]
    per_word = np.searchsorted(starts, bwe, "left") - np.searchsorted(ends, bws, "right")
    width = np.diff(cbo)
    multi = width > 1
    cs, ce = cbo[:-1][multi], cbo[1:][multi]
    split = np.searchsorted(ends, ce, "left") - np.searchsorted(ends, cs, "right")
    return TextCounts(
        tokens=len(ends), bytes=int(cbo[-1]), chars=len(text), words=len(ws), word_tokens=int(per_word.sum()),
        continued=int((per_word >= 2).sum()), fallback_tokens=int(fallback.sum()) if fallback is not None else 0,
        nonascii_chars=int(multi.sum()), split_chars=int((split > 0).sum()), min_tokens=min_tokens)


def _ratio(num: float, den: float) -> float:
    return num / den if den else math.nan


def bytes_per_token(c: TextCounts) -> float:
    """UTF-8 bytes per token: Σ bytes(x) / Σ |T(x)|."""
    return _ratio(c.bytes, c.tokens)


def chars_per_token(c: TextCounts) -> float:
    """Characters (code points) per token: Σ chars(x) / Σ |T(x)|."""
    return _ratio(c.chars, c.tokens)


def fertility(c: TextCounts) -> float:
    """Tokens per word: Σ_w |T(w)| / #words, with T(w) the tokens overlapping word w."""
    return _ratio(c.word_tokens, c.words)


def continued_words(c: TextCounts) -> float:
    """Proportion of continued words (PCW): #{w : |T(w)| >= 2} / #words."""
    return _ratio(c.continued, c.words)


def byte_fallback_share(c: TextCounts | Sequence[int], fallback: np.ndarray | Mapping[int, bytes] | None = None
                        ) -> float:
    """Share of tokens that are byte-fallback tokens.

    Either a :class:`TextCounts`, or token ids plus a per-id boolean mask (or a vocabulary ``{id: bytes}``,
    where fallback tokens are the single bytes >= 0x80).
    """
    if isinstance(c, TextCounts):
        return _ratio(c.fallback_tokens, c.tokens)
    if fallback is None:
        raise TypeError("byte_fallback_share(ids, fallback): pass a boolean mask or a {id: bytes} vocabulary")
    mask = fallback_mask(fallback) if isinstance(fallback, Mapping) else np.asarray(fallback, dtype=bool)
    ids = np.asarray(c, dtype=np.int64)
    return _ratio(int(mask[ids].sum()), len(ids))


def split_char_share(c: TextCounts) -> float:
    """Character-level byte fallback: share of non-ASCII characters whose bytes are split across tokens."""
    return _ratio(c.split_chars, c.nonascii_chars) if c.nonascii_chars else 0.0


def fallback_mask(tokens: Mapping[int, bytes], size: int | None = None) -> np.ndarray:
    """Boolean mask over ids: True for single-byte tokens >= 0x80 (the byte fallback of byte-level vocabs)."""
    n = size if size is not None else max(tokens, default=-1) + 1
    mask = np.zeros(n, dtype=bool)
    for i, b in tokens.items():
        if len(b) == 1 and b[0] >= 0x80:
            mask[i] = True
    return mask


# ---- cross-language and distributional metrics --------------------------------------------------------


def parity(token_counts: Mapping[str, float], reference: str) -> dict[str, float]:
    """Premium per language on parallel text: |T(x_l)| / |T(x_ref)|."""
    if reference not in token_counts:
        raise ValueError(f"reference language {reference!r} is not among the languages {sorted(token_counts)[:20]}")
    ref = token_counts[reference]
    return {k: _ratio(v, ref) for k, v in token_counts.items()}


def gini(values: Iterable[float]) -> float:
    """Gini coefficient Σ_i Σ_j |c_i − c_j| / (2 n² μ) (the Tokenizer Fairness Gini when c_l are per-unit costs)."""
    x = np.sort(np.asarray(list(values), dtype=np.float64))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return math.nan if n == 0 else 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * x.sum()))


def gini_rows(x: np.ndarray) -> np.ndarray:
    """:func:`gini` of every row of a 2-D array (used by the bootstrap)."""
    x = np.sort(np.asarray(x, dtype=np.float64), axis=1)
    n = x.shape[1]
    i = np.arange(1, n + 1)
    return ((2 * i - n - 1) * x).sum(axis=1) / (n * x.sum(axis=1))


def renyi_efficiency(counts: np.ndarray | Mapping[int, int], vocab_size: int, alpha: float = 2.5) -> float:
    """Rényi efficiency H_α(p) / log |V| of the unigram token distribution ``counts`` (α = 1: Shannon).

    ``vocab_size`` is the explicit |V| (not the number of observed types, the tokenization-scorer default).
    """
    c = np.asarray(list(counts.values()) if isinstance(counts, Mapping) else counts, dtype=np.float64)
    c = c[c > 0]
    if vocab_size < 2:
        raise ValueError(f"vocab_size must be >= 2, got {vocab_size}")
    if c.size == 0:
        return math.nan
    p = c / c.sum()
    h = float(-(p * np.log(p)).sum()) if alpha == 1 else float(np.log((p ** alpha).sum()) / (1 - alpha))
    return h / math.log(vocab_size)


def vocab_utilisation(used_ids: Iterable[int], n_entries: int) -> float:
    """#distinct token ids used / number of vocabulary entries."""
    return _ratio(len(set(used_ids)), n_entries)


def dead_tokens(used_ids: Iterable[int], all_ids: Iterable[int]) -> list[int]:
    """Vocabulary ids never used on the corpus, ascending."""
    used = set(used_ids)
    return sorted(i for i in all_ids if i not in used)


# ---- greedy optimality (trie vocabularies) --------------------------------------------------------------


class VocabTrie:
    """Byte trie of a vocabulary for greedy (longest-match) and minimum-token segmentation counts.

    The trie and the greedy walk are the tokenizer's pure-Python reference (:mod:`rwkv_data.tokenizer.reference`);
    only the minimum-token DP is the audit's own.
    """

    def __init__(self, tokens: Iterable[bytes]) -> None:
        self.root = build_trie({i: tok for i, tok in enumerate(tokens, start=1) if tok})

    def min_tokens(self, data: bytes) -> int:
        """Fewest tokens that spell ``data`` (DP over byte positions: best[j] = min best[i] + 1)."""
        n = len(data)
        best = [n + 1] * (n + 1)
        best[0] = 0
        for i in range(n):
            bi = best[i] + 1
            node, j = self.root, i
            while j < n:
                node = node.get(data[j])
                if node is None:
                    break
                j += 1
                if END in node and bi < best[j]:
                    best[j] = bi
        if best[n] > n:
            raise ValueError("the vocabulary cannot spell this text: a single byte is missing from it")
        return best[n]

    def greedy_tokens(self, data: bytes) -> int:
        """Token count of greedy longest-match encoding (the RWKV trie rule)."""
        return len(encode_bytes_ref(self.root, data))


def greedy_optimality_gap(texts: Iterable[str | bytes], vocab: VocabTrie | Mapping[int, bytes] | Iterable[bytes]
                          ) -> float:
    """Σ |T_greedy(x)| / Σ |T_min(x)| − 1 over ``texts`` for a longest-match vocabulary."""
    trie = vocab if isinstance(vocab, VocabTrie) else VocabTrie(vocab.values() if isinstance(vocab, Mapping)
                                                                 else vocab)
    greedy = best = 0
    for t in texts:
        data = t.encode("utf-8") if isinstance(t, str) else t
        greedy += trie.greedy_tokens(data)
        best += trie.min_tokens(data)
    return _ratio(greedy, best) - 1 if best else 0.0


# ---- vocabulary structure (script_allocation, token_category: tokenizer/scripts.py) ------------------------


def variant_share(tokens: Mapping[int, bytes] | Iterable[bytes]) -> dict[str, float]:
    """Case/leading-space variants: alphabetic entries (``strip()`` is all letters) minus their distinct
    ``strip().lower()`` keys, as a count and a share of all entries."""
    toks = list(tokens.values() if isinstance(tokens, Mapping) else tokens)
    keys: set[str] = set()
    alpha = 0
    for tok in toks:
        try:
            s = tok.decode("utf-8").strip()
        except UnicodeDecodeError:
            continue
        if s.isalpha():
            alpha += 1
            keys.add(s.lower())
    return {"alphabetic": alpha, "keys": len(keys), "variants": alpha - len(keys),
            "share": _ratio(alpha - len(keys), len(toks))}


# ---- uncertainty ------------------------------------------------------------------------------------------


MIN_UNITS = 10  # fewer units in a language: no bootstrap interval (a percentile bootstrap over 2 is ~10x too narrow)


def bootstrap_weights(n_units: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n_units] resampling counts (each row: n_units draws with replacement)."""
    if n_units == 0:
        return np.zeros((n_boot, 0), dtype=np.int64)
    return rng.multinomial(n_units, np.full(n_units, 1.0 / n_units), size=n_boot)


def interval(samples: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """Percentile interval of bootstrap samples (NaNs dropped)."""
    s = np.asarray(samples, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        return (math.nan, math.nan)
    lo, hi = np.quantile(s, [(1 - ci) / 2, 1 - (1 - ci) / 2])
    return (float(lo), float(hi))


def ratio_ci(num: np.ndarray, den: np.ndarray, weights: np.ndarray, ci: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of Σ num / Σ den over resampled units (``weights`` from :func:`bootstrap_weights`);
    NaN (reported as null) with fewer than ``MIN_UNITS`` units."""
    if weights.shape[1] < MIN_UNITS:
        return (math.nan, math.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return interval((weights @ np.asarray(num, np.float64)) / (weights @ np.asarray(den, np.float64)), ci)


def paired_comparison(tokens_a: np.ndarray, tokens_b: np.ndarray, weights: np.ndarray, ci: float = 0.95
                      ) -> dict[str, float]:
    """Paired comparison of two tokenizers on the same units: ratio Σ a / Σ b, its bootstrap interval, and a
    two-sided bootstrap p-value for ratio = 1 (units resampled jointly, so the pairing is kept); interval and
    p-value NaN with fewer than ``MIN_UNITS`` units."""
    a, b = np.asarray(tokens_a, np.float64), np.asarray(tokens_b, np.float64)
    if weights.shape[1] < MIN_UNITS:
        return {"ratio": _ratio(a.sum(), b.sum()), "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan}
    with np.errstate(divide="ignore", invalid="ignore"):
        samples = (weights @ a) / (weights @ b)
    lo, hi = interval(samples, ci)
    finite = samples[np.isfinite(samples)]
    p = min(1.0, 2 * min((finite <= 1).mean(), (finite >= 1).mean())) if finite.size else math.nan
    return {"ratio": _ratio(a.sum(), b.sum()), "ci_low": lo, "ci_high": hi, "p_value": float(p)}
