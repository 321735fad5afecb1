"""Train a vocabulary for greedy longest-match (RWKV trie) inference from a multilingual corpus.

The method (docs/vocab.md):

1. **Language-balanced sampling** (:func:`sample_corpus`): documents are cut into paragraph chunks, a held-out
   slice per language is set aside, and each language gets a character budget by UniMax or temperature
   sampling, capped per language and at ``max_epochs`` repetitions.
2. **Candidates** (:func:`candidate_pool`): HF ``tokenizers`` byte-level BPE (and optionally Unigram) trained on
   the sample with the mark-aware pre-tokenizer, plus n-gram counts; only whole-character (valid UTF-8) strings.
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

import heapq
import json
import logging
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rwkv_data.errors import ConfigError
from rwkv_data.tokenizer.pretokenize import byte_level_to_bytes, hf_pre_tokenizer, pretokenize
from rwkv_data.tokenizer.vocab_chars import required_chars
from rwkv_data.tokenizer.vocab_coverage import coverage_floor, script_counts_of
from rwkv_data.tokenizer.vocab_settings import VocabSettings

log = logging.getLogger(__name__)

Progress = Callable[[str], None]  # called once per finished step with a short description
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


@dataclass
class TrainResult:
    """What :func:`train_vocab` returns: ``tokens`` (id -> bytes, ids 1..n) and JSON-ready ``stats``."""

    tokens: dict[int, bytes]
    stats: dict[str, Any] = field(default_factory=dict)


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


def _whole_chars(tok: bytes, max_bytes: int) -> bool:
    """Multi-byte, at most ``max_bytes`` and valid UTF-8 (so a token never ends inside a character)."""
    if not 2 <= len(tok) <= max_bytes:
        return False
    try:
        tok.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _training_iter(samples: dict[str, LangSample]) -> Iterable[str]:
    for lang in sorted(samples):
        yield from samples[lang].train


def _hf_candidates(samples: dict[str, LangSample], cfg: VocabSettings, size: int, kind: str) -> list[bytes]:
    """Tokens of an HF byte-level BPE or Unigram model trained on the sample, best first."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if kind == "bpe":
        tok = Tokenizer(models.BPE())
        trainer: Any = trainers.BpeTrainer(vocab_size=size + len(alphabet), min_frequency=2, show_progress=False,
                                           initial_alphabet=alphabet, max_token_length=cfg.max_token_bytes)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=size + len(alphabet), show_progress=False,
                                          initial_alphabet=alphabet, max_piece_length=cfg.max_token_bytes)
    tok.pre_tokenizer = hf_pre_tokenizer(cfg.pretokenizer)  # type: ignore[assignment]
    tok.decoder = decoders.ByteLevel()  # type: ignore[assignment]
    tok.train_from_iterator(_training_iter(samples), trainer=trainer,
                            length=sum(len(s.train) for s in samples.values()))
    if kind == "bpe":  # ids follow merge order: earlier merges are more frequent pairs
        ranked = sorted(tok.get_vocab().items(), key=lambda kv: kv[1])
        pieces = [p for p, _ in ranked]
    else:  # Unigram: by log-probability
        vocab = tok.get_vocab()
        scores = dict(json.loads(tok.to_str())["model"]["vocab"])
        pieces = sorted(vocab, key=lambda p: (-scores.get(p, -1e9), p))
    out = []
    for p in pieces:
        try:
            b = byte_level_to_bytes(p)
        except ValueError:
            continue
        if _whole_chars(b, cfg.max_token_bytes):
            out.append(b)
    return out


def _ngram_candidates(samples: dict[str, LangSample], cfg: VocabSettings, size: int) -> list[bytes]:
    """Frequent pre-tokens and, inside long pre-tokens (unspaced scripts), character n-grams of 2-8 chars,
    ranked by count x (bytes - 1): the bytes a token would save if it were always matched. Counted per
    language on up to 300k characters and normalised, so every language proposes its own strings."""
    score: Counter[bytes] = Counter()
    for lang in sorted(samples):
        words: Counter[str] = Counter()
        got = 0
        for chunk in samples[lang].train:
            words.update(pretokenize(chunk, cfg.pretokenizer))
            got += len(chunk)
            if got >= 300_000:
                break
        grams: Counter[str] = Counter()
        for w, n in words.items():
            if len(w) <= 8:
                grams[w] += n
            else:
                for k in range(2, 9):
                    for i in range(len(w) - k + 1):
                        grams[w[i:i + k]] += n
        total = sum(words.values()) or 1
        for g, n in grams.items():
            if n >= 3:
                b = g.encode("utf-8")
                if _whole_chars(b, cfg.max_token_bytes):
                    score[b] += n * (len(b) - 1) / total
    return [b for b, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:size]]


def candidate_pool(samples: dict[str, LangSample], cfg: VocabSettings, size: int,
                   progress: Progress | None = None) -> list[bytes]:
    """The union of the configured candidate sources, interleaved by rank (deterministic, duplicates dropped)."""
    sources = []
    for kind in cfg.candidates:
        if kind in ("bpe", "unigram"):
            sources.append(_hf_candidates(samples, cfg, size, kind))
        elif kind == "ngram":
            sources.append(_ngram_candidates(samples, cfg, size // 4))
        else:
            raise ValueError(f"unknown candidate source {kind!r}; use bpe, unigram or ngram")
        if progress:
            progress(f"candidates: {kind} ({len(sources[-1])})")
    seen: set[bytes] = set()
    out: list[bytes] = []
    for k in range(max(map(len, sources), default=0)):
        for src in sources:
            if k < len(src) and src[k] not in seen:
                seen.add(src[k])
                out.append(src[k])
    return out


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
    bad = [c for c in cfg.candidates if c not in ("bpe", "unigram", "ngram")]
    if bad or not cfg.candidates:
        problems.append(f"candidates={list(cfg.candidates)!r} (use some of 'bpe', 'unigram', 'ngram')")
    if cfg.vocab_size < 258:
        problems.append(f"vocab_size={cfg.vocab_size} (id 0 and the 256 bytes need 257 ids)")
    if not 0 <= cfg.heldout_fraction < 1:
        problems.append(f"heldout_fraction={cfg.heldout_fraction} (use 0 <= f < 1)")
    if not 0 <= cfg.coverage_share <= 1:
        problems.append(f"coverage_share={cfg.coverage_share} (use 0 <= share <= 1)")
    if cfg.max_epochs <= 0 or cfg.sample_chars <= 0 or cfg.temperature <= 0:
        problems.append("max_epochs, sample_chars and temperature must be > 0")
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
    chars, char_report = required_chars(samples, cfg)
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
