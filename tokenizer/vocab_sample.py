"""Language-balanced sampling for the vocabulary trainer (step 1 of :mod:`rwkv_data.tokenizer.vocab_train`).

Documents are cut into paragraph chunks, a held-out slice per language is set aside, and each language gets a
character budget by UniMax or temperature sampling, capped per language and at ``max_epochs`` repetitions. The
corpus is streamed: each language keeps only the part of its shuffled chunks the sample can use.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from rwkv_data.errors import ConfigError
from rwkv_data.tokenizer.vocab_settings import VocabSettings

CHUNK_CHARS = 2000  # documents are cut at paragraph breaks into chunks of about this many characters
_RESIZE_CHARS = 20_000_000  # the sampler lowers its per-language memory limits after this much new text


@dataclass
class LangSample:
    """One language's share of the corpus: training chunks (repeated for epochs > 1) and held-out chunks."""

    lang: str
    train: list[str]
    heldout: list[str]
    chars_available: int  # characters outside the held-out slice
    chars_train: int  # characters in ``train`` (with repetitions)
    char_counts: Counter[str] = field(default_factory=Counter)  # over all of the language's text
    score: list[str] = field(default_factory=list)  # held-out text, topped up with training text

    @property
    def epochs(self) -> float:
        """How many times the available text is repeated in the sample."""
        return self.chars_train / self.chars_available if self.chars_available else 0.0


def _chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """Cut ``text`` after blank-line paragraph breaks into pieces of about ``size`` characters (lossless)."""
    if len(text) <= size:
        return [text] if text else []
    out, start = [], 0
    while start < len(text):
        cut = text.find("\n\n", start + size)
        end = len(text) if cut < 0 else cut + 2
        out.append(text[start:end])
        start = end
    return out


def _budgets(sizes: dict[str, int], cfg: VocabSettings) -> dict[str, int]:
    """Characters per language: UniMax or temperature shares of ``cfg.sample_chars``, capped."""
    weight = {lang: float(cfg.lang_weights.get(lang, 1.0)) for lang in sizes}
    cap = {lang: min(int(n * cfg.max_epochs), cfg.lang_caps.get(lang, 1 << 62)) for lang, n in sizes.items()}
    if cfg.sampling == "unimax":
        # Ascending by (cap / weight): small languages take what they have (up to max_epochs or their cap),
        # the rest is shared evenly (by weight) among the larger ones.
        out, left = {}, float(cfg.sample_chars)
        order = sorted(sizes, key=lambda lang: (cap[lang] / max(weight[lang], 1e-9), lang))
        for k, lang in enumerate(order):
            rest_weight = sum(weight[x] for x in order[k:])
            share = left * weight[lang] / rest_weight if rest_weight else 0.0
            out[lang] = int(min(share, cap[lang]))
            left -= out[lang]
        return out
    if cfg.sampling == "temperature":
        p = {lang: weight[lang] * n ** (1.0 / cfg.temperature) for lang, n in sizes.items()}
        total = sum(p.values()) or 1.0
        return {lang: int(min(cfg.sample_chars * p[lang] / total, cap[lang])) for lang in sizes}
    raise ValueError(f"sampling must be 'unimax' or 'temperature', not {cfg.sampling!r}")


class _Reservoir:
    """One language's chunks in a random order, of which only a prefix of about ``limit`` characters is kept.

    Each chunk draws a key from a generator seeded with ``(seed, lang)``; sorting by key is a shuffle, and only
    the chunks with the smallest keys are kept (a max-heap drops the largest), so memory is bounded by the limit,
    not by the input. ``total`` and ``counts`` cover every chunk seen.
    """

    def __init__(self, seed: int, lang: str) -> None:
        self.rng = random.Random(f"{seed}:{lang}")
        self.heap: list[tuple[float, int, str]] = []  # (-key, arrival, chunk)
        self.kept = 0  # characters in the heap
        self.total = 0  # characters seen
        self.counts: Counter[str] = Counter()
        self.limit = 1 << 62

    def add(self, text: str) -> None:
        cp = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        low = np.bincount(np.minimum(cp, 0x80), minlength=0x81)  # ASCII by counting, the rest by sorting
        for c in np.flatnonzero(low[:0x80]).tolist():
            self.counts[chr(c)] += int(low[c])
        if low[0x80]:
            values, n = np.unique(cp[cp >= 0x80], return_counts=True)
            for c, k in zip(values.tolist(), n.tolist(), strict=True):
                self.counts[chr(c)] += k
        for chunk in _chunks(text):
            key = self.rng.random()
            self.total += len(chunk)
            if self.kept >= self.limit and -self.heap[0][0] < key:
                continue  # past the kept prefix
            heapq.heappush(self.heap, (-key, self.total, chunk))
            self.kept += len(chunk)
            self.shrink(self.limit)

    def shrink(self, limit: int) -> None:
        """Drop the largest keys while the rest still holds ``limit`` characters."""
        self.limit = limit
        while self.heap and self.kept - len(self.heap[0][2]) >= limit:
            self.kept -= len(heapq.heappop(self.heap)[2])

    def ordered(self) -> list[str]:
        """The kept chunks by key: a prefix of the shuffled chunks."""
        return [c for _, _, c in sorted(self.heap, reverse=True)]


def _heldout_limit(total: int, cfg: VocabSettings) -> int:
    return int(min(cfg.heldout_chars, cfg.heldout_fraction * total))


def _keep_limits(res: dict[str, _Reservoir], cfg: VocabSettings) -> dict[str, int]:
    """Characters each language must keep so that the final sample is the same as with every chunk in memory.

    UniMax only: the water level (budget per unit of weight) never rises as more text arrives, so a language
    needs at most its held-out slice, plus the larger of the scoring text and its budget at today's level.
    Temperature shares are not monotone in the input: every chunk is kept.
    """
    if cfg.sampling != "unimax":
        return {}
    sizes = {lang: r.total - _heldout_limit(r.total, cfg) for lang, r in res.items()}
    budgets = _budgets(sizes, cfg)
    weight = {lang: float(cfg.lang_weights.get(lang, 1.0)) for lang in sizes}
    open_ = [budgets[lang] / max(weight[lang], 1e-9) for lang in sizes
             if budgets[lang] < min(sizes[lang] * cfg.max_epochs, cfg.lang_caps.get(lang, 1 << 62))]
    if not open_:
        return {}  # every language takes all it has
    level = max(open_) + 1
    return {lang: cfg.heldout_chars + max(cfg.score_chars, int(weight[lang] * level)) + 2 * CHUNK_CHARS
            for lang in sizes}


def sample_corpus(docs: Iterable[tuple[str, str]], cfg: VocabSettings) -> dict[str, LangSample]:
    """Group ``(text, lang)`` documents by language, set held-out text aside and sample the training text.

    Deterministic for ``cfg.seed`` and the document order: each language's chunks are shuffled by keys from a
    generator seeded with ``(seed, lang)``, so adding a language never changes another's sample. Documents are
    streamed: memory holds each language's character counts and the part of its shuffle the sample can use
    (:class:`_Reservoir`, :func:`_keep_limits`), not the corpus.
    """
    res: dict[str, _Reservoir] = {}
    keep = set(cfg.languages)
    since = 0
    for text, lang in docs:
        if keep and lang not in keep:
            continue
        r = res.get(lang)
        if r is None:
            r = res[lang] = _Reservoir(cfg.seed, lang)
        r.add(text)
        since += len(text)
        if since >= _RESIZE_CHARS:  # lower the limits as the water level falls
            since = 0
            for lang_, lim in _keep_limits(res, cfg).items():
                res[lang_].shrink(lim)
    if not res:
        raise ConfigError("no documents to train on" + (f" in languages {sorted(keep)}: check --languages against "
                                                         "the corpus's language field" if keep else ""))
    for lang_, lim in _keep_limits(res, cfg).items():
        res[lang_].shrink(lim)
    held: dict[str, list[str]] = {}
    pool: dict[str, list[str]] = {}
    sizes: dict[str, int] = {}
    for lang in sorted(res):
        chunks = res[lang].ordered()
        limit = _heldout_limit(res[lang].total, cfg)
        k, got = 0, 0
        while k < len(chunks) - 1 and got + len(chunks[k]) <= limit:
            got += len(chunks[k])
            k += 1
        if k == 0 and len(chunks) > 1 and cfg.heldout_fraction > 0:
            k = 1  # every language gets some held-out text to be scored on
        held[lang], pool[lang] = chunks[:k], chunks[k:]
        sizes[lang] = res[lang].total - sum(map(len, held[lang]))
    budgets = _budgets(sizes, cfg)
    out = {}
    for lang in sorted(pool):
        train, got, chunks = [], 0, pool[lang]
        while chunks and got < budgets[lang]:
            for c in chunks:
                if got >= budgets[lang]:
                    break
                train.append(c)
                got += len(c)
        score, n = list(held[lang]), sum(map(len, held[lang]))
        for c in chunks:  # top up with training text: rare tokens need more text than a held-out slice
            if n >= cfg.score_chars:
                break
            score.append(c)
            n += len(c)
        out[lang] = LangSample(lang, train, held[lang], sizes[lang], got, res[lang].counts, score)
    return out
