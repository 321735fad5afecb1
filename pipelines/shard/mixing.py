"""Language weights, document copies and the shuffle order of the shard merge (points 2 and 3 of
:mod:`rwkv_data.pipelines.shard.merge`).

A weight w keeps ``floor(w)`` copies of a document plus one more with probability ``frac(w)``, decided by a seeded
hash; every kept copy gets a 64-bit key ``r`` (splitmix64 of seed, part, document, copy) and the output is in
ascending ``r`` (:func:`output_order`): a seeded uniform permutation.
"""

from __future__ import annotations

import numpy as np

from rwkv_data.errors import ConfigError

# one shuffle record per kept copy: its key, where its tokens are, how many, its global language
REC = np.dtype([("r", "<u8"), ("off", "<u8"), ("part", "<u4"), ("ntok", "<u4"), ("lang", "<u2")])
SALT_SHUFFLE, SALT_KEEP = np.uint64(0x5EED5EED5EED5EED), np.uint64(0xC0FFEE00C0FFEE00)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser (uint64 in, uint64 out; wrap-around arithmetic)."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def lang_weights(train_tokens: dict[str, int], budgets: dict[str, int], temperature: float) -> dict[str, float]:
    """Weight per language: budget / tokens, or temperature sampling q ~ p**(1/T) at constant total."""
    if budgets and temperature:
        raise ConfigError("give either per-language token budgets or a temperature, not both")
    unknown = sorted(set(budgets) - set(train_tokens))
    if unknown:
        raise ConfigError(f"token budgets for languages not in the corpus: {unknown}; present: {sorted(train_tokens)}")
    if budgets:
        return {lg: (budgets[lg] / t if lg in budgets else 1.0) if t else 1.0 for lg, t in train_tokens.items()}
    if temperature:
        if temperature < 0:
            raise ConfigError(f"temperature must be > 0, not {temperature}")
        total = sum(train_tokens.values())
        scaled = {lg: (t / total) ** (1.0 / temperature) for lg, t in train_tokens.items() if t}
        z = sum(scaled.values())
        return {lg: (scaled[lg] / z * total / t if t else 1.0) for lg, t in train_tokens.items()}
    return dict.fromkeys(train_tokens, 1.0)


def copies_of(uid: np.ndarray, weight: np.ndarray, seed: int) -> np.ndarray:
    """How many copies each document keeps under its language weight (deterministic in seed); ``uid`` is
    ``part << 32 | document index in the part``."""
    whole = np.floor(weight).astype(np.int64)
    frac = weight - whole
    u = splitmix64(uid ^ splitmix64(np.array([seed], np.uint64) ^ SALT_KEEP)).astype(np.float64) / 2.0**64
    return whole + (u < frac)


def output_order(recs: np.ndarray) -> np.ndarray:
    """The order of shuffle records in the output: ascending ``r``, ties (two equal 64-bit keys: practically
    never, but the bytes must not depend on the sort algorithm) by part, then offset."""
    order = np.argsort(recs["r"])
    r = recs["r"][order]
    if r.size > 1 and (r[1:] == r[:-1]).any():
        order = np.lexsort((recs["off"], recs["part"], recs["r"]))
    return order

