"""The validation split of the shard job (point 1 of :mod:`rwkv_data.pipelines.shard.merge`).

A document goes to ``P_val`` when its content hash ``key < fraction * 2**64``, or when its key is among the
``min_docs`` smallest of its language (capped at half the language's documents). :func:`cutoffs_of` finds those
per-language cutoffs from streamed keys; the merge applies them to its parts, :func:`validation_split` to
documents read before tokenizing, both through :class:`ValidationSplit`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from rwkv_data.pipelines.shard.parts import doc_key

KEYS_PER_STEP = 1 << 20  # document keys hashed before each cutoff update in validation_split


def val_threshold(fraction: float) -> int:
    """The key below which every document is validation: ``fraction * 2**64`` (capped at ``2**64 - 1``)."""
    return min(int(fraction * 2.0**64), 2**64 - 1)


def val_mask(rec: np.ndarray, glang: np.ndarray, threshold: int, cutoff: np.ndarray, has: np.ndarray) -> np.ndarray:
    """True where a document belongs to the validation split (``rec`` needs a ``key`` field)."""
    return (rec["key"] < np.uint64(threshold)) | (has[glang] & (rec["key"] <= cutoff[glang]))


def cutoffs_of(chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_langs: int,
               min_docs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per language, from ``(keys, global language)`` chunks: document count, the key at or below which its
    ``k`` smallest lie (k = min(min_docs, docs // 2)), and whether that cutoff applies (k > 0).

    ``n_langs`` is the least number of languages; a larger language index in a chunk adds languages."""
    best: list[np.ndarray] = []
    counts = np.zeros(0, np.int64)
    for keys, glang in chunks:
        n_langs = max(n_langs, int(glang.max()) + 1 if glang.size else 0)
        here = np.bincount(glang, minlength=n_langs)
        counts = np.pad(counts, (0, n_langs - counts.size)) + here
        if min_docs <= 0 or not glang.size:
            continue
        best += [np.zeros(0, np.uint64)] * (n_langs - len(best))
        order = np.argsort(glang.astype(np.uint16 if n_langs <= 1 << 16 else np.int64), kind="stable")  # radix
        ends = np.cumsum(here)
        for lg in np.flatnonzero(here):
            mine = keys[order[(ends[lg - 1] if lg else 0):ends[lg]]]
            if mine.size > min_docs:
                mine = np.partition(mine, min_docs - 1)[:min_docs]
            best[lg] = np.sort(np.concatenate([best[lg], mine]))[:min_docs]
    counts = np.pad(counts, (0, n_langs - counts.size))
    cutoff = np.zeros(n_langs, np.uint64)
    has = np.zeros(n_langs, bool)
    for lg in range(n_langs):
        k = min(min_docs, int(counts[lg]) // 2)
        if k > 0:
            cutoff[lg], has[lg] = best[lg][k - 1], True
    return counts, cutoff, has


@dataclass(frozen=True)
class ValidationSplit:
    """The validation rule applied to one corpus (this module's docstring): which documents go to ``P_val``.

    Built by the shard merge from its parts and by :func:`validation_split` from documents, both with
    :func:`cutoffs_of` and :func:`val_threshold`, and applied with :func:`val_mask`: they agree on every document.
    """

    langs: tuple[str, ...]  # index = global language
    documents: np.ndarray  # per language
    threshold: int
    cutoff: np.ndarray  # per language: the key of its min_docs-th smallest document ...
    has_cutoff: np.ndarray  # ... when the per-language minimum applies

    def mask(self, rec: np.ndarray, glang: np.ndarray) -> np.ndarray:
        """True where a record (``key`` field) of global language ``glang`` is a validation document."""
        return val_mask(rec, glang, self.threshold, self.cutoff, self.has_cutoff)

    def is_validation(self, text: str | bytes, lang: str) -> bool:
        """Whether the shard job puts this document (its text, or the text's UTF-8 bytes) in ``P_val``.

        Exact for the documents of the corpus the split was made from; for other text it applies the same
        rule (a language absent from that corpus has no per-language minimum, only the hash fraction).
        """
        rec = np.zeros(1, [("key", "<u8")])
        rec["key"] = doc_key(text.encode("utf-8") if isinstance(text, str) else text)
        if lang not in self.langs:
            return bool(rec["key"][0] < np.uint64(self.threshold))
        return bool(self.mask(rec, np.array([self.langs.index(lang)]))[0])


def validation_split(docs: Iterable[tuple[str | bytes, str]], fraction: float, min_docs: int) -> ValidationSplit:
    """The shard job's validation split of ``(text, language)`` documents (text as str or its UTF-8 bytes).

    Streams: only each language's ``min_docs`` smallest keys are kept.
    """
    index: dict[str, int] = {}

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        keys: list[int] = []
        langs: list[int] = []
        for text, lang in docs:
            keys.append(doc_key(text.encode("utf-8") if isinstance(text, str) else text))
            langs.append(index.setdefault(lang, len(index)))
            if len(keys) >= KEYS_PER_STEP:
                yield np.array(keys, np.uint64), np.array(langs, np.int64)
                keys, langs = [], []
        if keys:
            yield np.array(keys, np.uint64), np.array(langs, np.int64)

    counts, cutoff, has = cutoffs_of(chunks(), 0, min_docs)
    return ValidationSplit(tuple(index), counts, val_threshold(fraction), cutoff, has)
