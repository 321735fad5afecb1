"""Candidate tokens for the vocabulary trainer (step 2 of :mod:`rwkv_data.tokenizer.vocab_train`): HF
``tokenizers`` byte-level BPE and Unigram trained on the sample with the mark-aware pre-tokenizer, n-gram
counts and superwords (runs of 2-3 pre-tokens such as ``" of the"``); only whole-character (valid UTF-8)
strings, interleaved by rank.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from rwkv_data.tokenizer.pretokenize import byte_level_to_bytes, hf_pre_tokenizer, pretokenize
from rwkv_data.tokenizer.vocab_sample import LangSample
from rwkv_data.tokenizer.vocab_settings import VocabSettings

Progress = Callable[[str], None]  # called once per finished step with a short description


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


def _phrase_candidates(samples: dict[str, LangSample], cfg: VocabSettings, size: int) -> list[bytes]:
    """Superwords: runs of 2-3 consecutive pre-tokens on one line with a letter (``" of the"``, ``", and"``,
    ``" de la"``), which BPE and the n-gram counts never propose because they cross a word boundary; greedy
    longest match uses them where they fit. Ranked like the n-grams, counted per language on up to 1 M
    characters of its training text."""
    score: Counter[bytes] = Counter()
    for lang in sorted(samples):
        runs: Counter[str] = Counter()
        got = total = 0
        for chunk in samples[lang].train:
            toks = pretokenize(chunk, cfg.pretokenizer)
            total += len(toks)
            for i in range(len(toks) - 1):
                run = toks[i]
                for k in (1, 2):
                    if i + k >= len(toks):
                        break
                    run += toks[i + k]
                    if "\n" in run or len(run.encode("utf-8")) > cfg.max_token_bytes:
                        break
                    runs[run] += 1
            got += len(chunk)
            if got >= 1_000_000:
                break
        for g, n in runs.items():
            if n >= 3 and any(c.isalpha() for c in g):
                b = g.encode("utf-8")
                score[b] += n * (len(b) - 1) / max(total, 1)
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
        elif kind == "phrase":
            sources.append(_phrase_candidates(samples, cfg, size // 10))
        else:
            raise ValueError(f"unknown candidate source {kind!r}; use bpe, unigram, ngram or phrase")
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
