"""Per-language bits per byte of each variant, paired differences against the baseline, verdicts, seed spread.

Every variant is scored on the same held-out documents, so a document's UTF-8 bytes are the same for all of
them and the difference of two ratios of sums is one ratio of sums: ``Δbpb = Σ(bits_v - bits_b) / Σ bytes``.
Its interval is the percentile bootstrap of that ratio over documents resampled with replacement, within the
language (and within each language for the pooled ``all`` row: stratified), by :func:`bootstrap_ratio`, the one
interval function of ``evaluate``. With several seeds, a document's bits are first averaged over the seeds.
Verdict: ``better`` when the interval lies below 0, ``worse`` when above, else ``no detectable difference``
(also when a language has fewer than 10 documents: no interval, ``n < 10``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rwkv_data.pipelines.train.evaluate import MIN_DOCS, bootstrap_ratio

NO_DIFF = "no detectable difference"


def verdict(lo: float | None, hi: float | None) -> str:
    """``better`` (interval below 0: fewer bits), ``worse`` (above 0) or ``no detectable difference``."""
    if lo is None or hi is None:
        return NO_DIFF
    if hi < 0:
        return "better"
    if lo > 0:
        return "worse"
    return NO_DIFF


def _groups(langs: np.ndarray) -> list[tuple[str, np.ndarray]]:
    names = sorted(set(langs.tolist()))
    out = [(g, langs == g) for g in names]
    return out + [("all", np.ones(len(langs), bool))] if len(names) > 1 else out


def _rng(seed: int, lang: str) -> np.random.Generator:
    return np.random.default_rng([seed, *lang.encode()])  # a language's interval does not depend on the others


def variant_rows(langs: Sequence[str], n_bytes: np.ndarray, bits: Sequence[np.ndarray], tokens: np.ndarray,
                 n_boot: int, confidence: float, seed: int = 0) -> list[dict[str, Any]]:
    """Per language (and ``all``): bpb of the seed-averaged bits with its interval, each seed's bpb, spread.

    ``bits`` holds one array of per-document bits per seed; ``tokens`` the variant's tokens per document
    (closing end-of-document token included), for tokens per byte.
    """
    la = np.asarray(langs)
    nb = np.asarray(n_bytes, np.float64)
    per_seed = np.stack([np.asarray(b, np.float64) for b in bits])  # [S, D]
    mean = per_seed.mean(0)
    rows = []
    for lang, m in _groups(la):
        lo, hi = bootstrap_ratio(mean[m], nb[m], n_boot, confidence, _rng(seed, lang), la[m] if lang == "all" else None)
        seeds = per_seed[:, m].sum(1) / nb[m].sum()
        rows.append({"lang": lang, "docs": int(m.sum()), "bytes": int(nb[m].sum()),
                     "tokens_per_byte": float(tokens[m].sum() / nb[m].sum()),
                     "bpb": float(mean[m].sum() / nb[m].sum()), "bpb_lo": lo, "bpb_hi": hi,
                     "few_docs": _fewest(la, m, lang) < MIN_DOCS, "bpb_seeds": [float(x) for x in seeds],
                     "seed_min": float(seeds.min()),
                     "seed_max": float(seeds.max()), "seed_sd": float(seeds.std(ddof=1)) if len(seeds) > 1 else None})
    return rows


def differences(langs: Sequence[str], n_bytes: np.ndarray, bits: Sequence[np.ndarray],
                base_bits: Sequence[np.ndarray], n_boot: int, confidence: float, seed: int = 0) -> list[dict[str, Any]]:
    """Per language (and ``all``): Δbpb = variant − baseline on the same documents, interval and verdict."""
    la = np.asarray(langs)
    nb = np.asarray(n_bytes, np.float64)
    diff = np.stack(bits).mean(0) - np.stack(base_bits).mean(0)  # seed-averaged bits per document
    base = np.stack(base_bits).mean(0)
    rows = []
    for lang, m in _groups(la):
        lo, hi = bootstrap_ratio(diff[m], nb[m], n_boot, confidence, _rng(seed, lang), la[m] if lang == "all" else None)
        d = float(diff[m].sum() / nb[m].sum())
        rows.append({"lang": lang, "docs": int(m.sum()), "delta_bpb": d, "delta_lo": lo, "delta_hi": hi,
                     "relative": d / float(base[m].sum() / nb[m].sum()), "verdict": verdict(lo, hi),
                     "few_docs": _fewest(la, m, lang) < MIN_DOCS})
    return rows


def _fewest(la: np.ndarray, m: np.ndarray, lang: str) -> int:
    if lang != "all":
        return int(m.sum())
    return min(int((la == g).sum()) for g in set(la.tolist()))


def verdict_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many languages (the ``all`` row left out) got each verdict."""
    out = {"better": 0, "worse": 0, NO_DIFF: 0}
    for r in rows:
        if r["lang"] != "all":
            out[r["verdict"]] += 1
    return out
