"""RWKV-LM's magic_prime window sampler: a stateless, deterministic permutation of ctx_len-aligned windows.

RWKV-LM (``RWKV-v7/train_temp/src/dataset.py``) reads sample ``ii = 1 + epoch*40320 + idx*world_size + rank``
from offset ``((floor(p*(sqrt(5)-1)/2) * ii**3) mod p) * ctx_len`` of the flat token stream, ``ctx_len + 1``
tokens long. For a prime ``p = 2 (mod 3)`` cubing is a bijection on Z/p, so ``ii = 1..p`` visits every window
slot ``0..p-1`` once. Here the mini-epoch bookkeeping is folded into one per-rank sample counter ``n``
(``ii = 1 + n*world_size + rank``), which gives the same ``ii`` as RWKV-LM's for every rank, step and batch row
(with ``n = epoch*40320/world_size + idx``), and needs no 40320 divisibility. Resuming needs only the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.shard.binidx import is_prime, magic_prime

# RWKV-LM asserts 0.9 < p / (tokens // ctx_len) <= 1: at most 10% of the windows are never visited.
MIN_PRIME_FILL = 0.9


def compute_magic_prime(n_tokens: int, ctx_len: int) -> int:
    """The largest prime p = 2 (mod 3) with p <= n_tokens // ctx_len - 1 (RWKV-LM ``compute_magic_prime.py``).

    Raises:
        ConfigError: the data holds fewer than about 3 windows of ``ctx_len + 1`` tokens.
    """
    p = magic_prime(n_tokens, ctx_len)["magic_prime"]
    if p is None:
        raise ConfigError(f"{n_tokens} tokens hold too few ctx_len={ctx_len} windows for magic_prime sampling; "
                          f"lower ctx_len or add data")
    return int(p)  # type: ignore[call-overload]


def check_magic_prime(p: int, n_tokens: int, ctx_len: int, strict: bool = True) -> None:
    """Validate ``p`` the way RWKV-LM's dataset does (prime, p % 3 == 2, fills 90-100% of the windows).

    With ``strict=False`` the fill ratio may be below 0.9 (tiny corpora); the windows must still fit.
    """
    slots = n_tokens // ctx_len
    # The last window starts at (p-1)*ctx_len and reads ctx_len+1 tokens. (Checked first: cheap for any p.)
    if p * ctx_len + 1 > n_tokens:
        raise ConfigError(f"magic_prime {p} * ctx_len {ctx_len} + 1 exceeds the {n_tokens} tokens of the data; "
                          f"use {compute_magic_prime(n_tokens, ctx_len)}")
    if not is_prime(p) or p % 3 != 2:
        raise ConfigError(f"magic_prime {p} must be a prime with p % 3 == 2; "
                          f"use {compute_magic_prime(n_tokens, ctx_len)}")
    if strict and not (MIN_PRIME_FILL < p / slots <= 1):
        raise ConfigError(f"magic_prime {p} covers {p / slots:.1%} of the {slots} windows (RWKV-LM needs > 90%); "
                          f"use {compute_magic_prime(n_tokens, ctx_len)}")


@dataclass(frozen=True)
class MagicPrimeSampler:
    """Maps (optimizer step, micro-step, batch row) to a window start, for one rank of ``world_size``.

    A step consumes ``micro_bsz * grad_accum`` samples per rank; rank ``r`` gets every ``world_size``-th ``ii``,
    so the ranks of one step read disjoint windows and a single rank with ``world_size=1`` reads them all.

    >>> s = MagicPrimeSampler(ctx_len=4, magic_prime=11, micro_bsz=2)
    >>> sorted(s.offset(n) // 4 for n in range(11)) == list(range(11))
    True
    """

    ctx_len: int
    magic_prime: int
    micro_bsz: int = 1
    grad_accum: int = 1
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} must lie in [0, world_size={self.world_size})")
        if self.micro_bsz < 1 or self.grad_accum < 1 or self.ctx_len < 1:
            raise ConfigError("ctx_len, micro_bsz and grad_accum must be >= 1")

    @property
    def factor(self) -> int:
        """RWKV-LM's golden-ratio multiplier ``int(p * (sqrt(5) - 1) / 2)`` (float math, as RWKV-LM does)."""
        return int(self.magic_prime * ((math.sqrt(5) - 1) / 2))

    def ii(self, n: int) -> int:
        """RWKV-LM's 1-based sample number of this rank's ``n``-th sample."""
        return 1 + n * self.world_size + self.rank

    def offset(self, n: int) -> int:
        """Token offset of this rank's ``n``-th sample (python ints: ii**3 overflows int64 beyond ~2e6)."""
        ii = self.ii(n)
        return (self.factor * ii * ii * ii % self.magic_prime) * self.ctx_len

    def sample_index(self, step: int, micro: int = 0, row: int = 0) -> int:
        """Per-rank sample counter of batch row ``row`` of micro-step ``micro`` of optimizer step ``step``."""
        return (step * self.grad_accum + micro) * self.micro_bsz + row

    def offsets(self, step: int, micro: int = 0) -> list[int]:
        """Window starts of the ``micro_bsz`` rows of one micro-batch."""
        base = self.sample_index(step, micro)
        return [self.offset(base + b) for b in range(self.micro_bsz)]

    def batch(self, tokens: np.ndarray, step: int, micro: int = 0) -> np.ndarray:
        """int64 [micro_bsz, ctx_len + 1] read from the flat token stream (x = [:, :-1], y = [:, 1:])."""
        L = self.ctx_len + 1
        rows = [np.asarray(tokens[o:o + L], dtype=np.int64) for o in self.offsets(step, micro)]
        if any(len(r) != L for r in rows):
            raise ConfigError(f"window past the end of the {len(tokens)}-token stream: magic_prime "
                              f"{self.magic_prime} does not fit ctx_len {self.ctx_len}")
        return np.stack(rows)

    def samples_per_step(self) -> int:
        """Samples per optimizer step over all ranks."""
        return self.micro_bsz * self.grad_accum * self.world_size
