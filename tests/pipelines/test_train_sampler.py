"""The magic_prime sampler and RWKV-LM's optimiser recipe (param groups, LR schedule, L2Wrap), no model needed.

Run: pytest tests/pipelines/test_train_sampler.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.train.optim import L2Wrap, lr_at, make_optimizer, param_groups
from rwkv_data.pipelines.train.sampler import MagicPrimeSampler, check_magic_prime, compute_magic_prime, is_prime


def test_is_prime_matches_sieve() -> None:
    n = 5000
    sieve = np.ones(n, dtype=bool)
    sieve[:2] = False
    for i in range(2, int(n**0.5) + 1):
        sieve[i * i::i] = False
    assert [i for i in range(n) if is_prime(i)] == list(np.flatnonzero(sieve))
    assert is_prime(2_926_181) and is_prime(365_759)


def test_magic_prime_matches_rwkv_lm_readme() -> None:
    # RWKV-LM README / demo-training-prepare.sh: minipile, 1,498,226,207 tokens.
    assert compute_magic_prime(1_498_226_207, 4096) == 365_759
    assert compute_magic_prime(1_498_226_207, 512) == 2_926_181
    check_magic_prime(365_759, 1_498_226_207, 4096)
    with pytest.raises(ConfigError, match="use 365759"):
        check_magic_prime(365_761, 1_498_226_207, 4096)
    with pytest.raises(ConfigError):
        compute_magic_prime(10, 4)


def _rwkv_lm_offset(p: int, ctx_len: int, epoch: int, idx: int, rank: int, world_size: int) -> int:
    # RWKV-v7/train_temp/src/dataset.py __getitem__, restated.
    ii = 1 + epoch * 40320 + (idx * world_size) + rank
    factor = int(p * ((math.sqrt(5) - 1) / 2))
    return ((factor * ii * ii * ii) % p) * ctx_len


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_sampler_equals_rwkv_lm_formula(world_size: int) -> None:
    p, ctx, micro = 2_926_181, 512, 8
    per_rank_epoch = 40320 // world_size
    for rank in range(world_size):
        s = MagicPrimeSampler(ctx_len=ctx, magic_prime=p, micro_bsz=micro, rank=rank, world_size=world_size)
        steps_per_epoch = per_rank_epoch // micro
        for epoch, step_in_epoch in [(0, 0), (0, 3), (2, 17)]:
            step = epoch * steps_per_epoch + step_in_epoch
            want = [_rwkv_lm_offset(p, ctx, epoch, step_in_epoch * micro + b, rank, world_size) for b in range(micro)]
            assert s.offsets(step) == want


def test_one_pass_visits_every_window_once_and_ranks_are_disjoint() -> None:
    p, ctx = 83, 3
    assert p % 3 == 2 and is_prime(p)
    seen: list[int] = []
    for rank in range(2):
        s = MagicPrimeSampler(ctx_len=ctx, magic_prime=p, micro_bsz=1, rank=rank, world_size=2)
        seen += [s.offset(n) for n in range((p + 1 - rank) // 2)]
    assert sorted(seen) == [i * ctx for i in range(p)]


def test_batch_reads_ctx_plus_one_tokens_and_resumes_by_step() -> None:
    tokens = np.arange(1000, dtype=np.uint16)
    p = compute_magic_prime(len(tokens), 16)
    s = MagicPrimeSampler(ctx_len=16, magic_prime=p, micro_bsz=3, grad_accum=2)
    full = [s.batch(tokens, step, m) for step in range(4) for m in range(2)]
    again = MagicPrimeSampler(ctx_len=16, magic_prime=p, micro_bsz=3, grad_accum=2)
    assert np.array_equal(again.batch(tokens, 2, 1), full[5])
    b = full[0]
    assert b.shape == (3, 17) and b.dtype == np.int64
    assert np.array_equal(b[:, 1:] - b[:, :-1], np.ones((3, 16)))


def test_lr_schedule_warmup_then_cosine() -> None:
    kw = dict(tokens_per_step=100, lr_init=1e-3, lr_final=1e-4, warmup_steps=10, token_budget=100 * 110)
    lrs = [lr_at(s, **kw) for s in range(120)]
    assert lrs[0] == pytest.approx(1e-5)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11], strict=True))
    assert lrs[10] == pytest.approx(1e-3)
    assert lrs[60] == pytest.approx(5.5e-4)  # half-way through the cosine
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[110] == pytest.approx(1e-4) and lrs[119] == pytest.approx(1e-4)
    assert lr_at(50, 100, 1e-3, 1e-3, 10, 10_000) == 1e-3


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.att = torch.nn.Module()
        self.att.w0 = torch.nn.Parameter(torch.zeros(1, 1, 4))
        self.att.w1 = torch.nn.Parameter(torch.zeros(4, 2))
        self.att.key = torch.nn.Linear(4, 4, bias=False)
        self.ln = torch.nn.LayerNorm(4)
        self.frozen = torch.nn.Parameter(torch.zeros(3, 3), requires_grad=False)


def test_param_groups_follow_rwkv_lm() -> None:
    m = _Tiny()
    names = {id(p): n for n, p in m.named_parameters()}
    groups = {g["name"]: sorted(names[id(p)] for p in g["params"]) for g in param_groups(m, 0.1)}
    assert groups == {"decay": ["att.key.weight", "emb.weight"], "1x": ["att.w1", "ln.bias", "ln.weight"],
                      "2x": ["att.w0"]}
    groups0 = {g["name"]: len(g["params"]) for g in param_groups(m, 0.0)}
    assert "decay" not in groups0 and groups0["1x"] == 5
    opt = make_optimizer(m, 1e-3, 0.1, (0.9, 0.99), 1e-18)
    assert opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["eps"] == 1e-18


def test_l2wrap_adds_gradient_to_the_argmax_logit_only() -> None:
    logits = torch.tensor([[[1.0, 3.0, 2.0], [5.0, 0.0, -1.0]]], requires_grad=True)  # B1 T2 V3
    L2Wrap.apply(torch.zeros(()) + 0 * logits.sum(), logits).backward()
    factor = 1e-4 / 2
    want = torch.tensor([[[0.0, 3.0 * factor, 0.0], [5.0 * factor, 0.0, 0.0]]])
    torch.testing.assert_close(logits.grad, want)
