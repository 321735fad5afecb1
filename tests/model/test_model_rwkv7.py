"""RWKV7 (x070): official parameter names, shapes, count and init; GPT mode equals RNN mode; state handling.

Run: pytest tests/model/test_model_rwkv7.py -q
"""

from __future__ import annotations

import math

import pytest
import torch
from rwkv7_tiny import perturbed

from rwkv_data.model import RWKV7, RWKV7Config, RWKV7State

ATT_VECTORS = ["x_r", "x_w", "x_k", "x_v", "x_a", "x_g", "w0", "a0", "v0", "k_k", "k_a"]


def official_shapes(cfg: RWKV7Config) -> dict[str, tuple[int, ...]]:
    """Key -> shape of an official x070 checkpoint (../shared/docs/rwkv7.md section 3.2), layer-0 v* included."""
    V, C, H, N, F = cfg.vocab_size, cfg.n_embd, cfg.n_head, cfg.head_size, cfg.dim_ffn
    dw, da, dv, dg = cfg.lora_ranks
    out: dict[str, tuple[int, ...]] = {"emb.weight": (V, C), "blocks.0.ln0.weight": (C,), "blocks.0.ln0.bias": (C,)}
    for i in range(cfg.n_layer):
        p = f"blocks.{i}."
        for ln in ("ln1", "ln2"):
            out[p + ln + ".weight"] = out[p + ln + ".bias"] = (C,)
        out.update({p + "att." + n: (1, 1, C) for n in ATT_VECTORS})
        for name, rank in (("w", dw), ("a", da), ("v", dv), ("g", dg)):
            out[f"{p}att.{name}1"], out[f"{p}att.{name}2"] = (C, rank), (rank, C)
        out[p + "att.r_k"] = (H, N)
        for lin in ("receptance", "key", "value", "output"):
            out[f"{p}att.{lin}.weight"] = (C, C)
        out[p + "att.ln_x.weight"] = out[p + "att.ln_x.bias"] = (C,)
        out[p + "ffn.x_k"] = (1, 1, C)
        out[p + "ffn.key.weight"], out[p + "ffn.value.weight"] = (F, C), (C, F)
    out.update({"ln_out.weight": (C,), "ln_out.bias": (C,), "head.weight": (V, C)})
    return out


def test_state_dict_has_the_official_names_and_shapes() -> None:
    cfg = RWKV7Config(vocab_size=100, n_embd=128, n_layer=3, head_size=64)
    got = {k: tuple(v.shape) for k, v in RWKV7(cfg).state_dict().items()}
    assert got == official_shapes(cfg)


def test_parameter_count_matches_the_rwkv_lm_formula() -> None:
    cfg = RWKV7Config(vocab_size=300, n_embd=128, n_layer=2, head_size=32, d_mv_lora=48)
    V, D, L = cfg.vocab_size, cfg.n_embd, cfg.n_layer
    formula = 2 * V * D + 4 * D + L * (19 * D + 12 * D * D + 2 * D * sum(cfg.lora_ranks))
    assert sum(p.numel() for p in RWKV7(cfg).parameters()) == formula
    # the 0.1B World model: L12 D768, ranks 64/64/32/128 -> 191.08 M parameters
    big = RWKV7Config(vocab_size=65536, n_embd=768, n_layer=12)
    V, D, L = big.vocab_size, big.n_embd, big.n_layer
    assert big.lora_ranks == (64, 64, 32, 128) and big.dim_ffn == 4 * 768
    assert round((2 * V * D + 4 * D + L * (19 * D + 12 * D * D + 2 * D * sum(big.lora_ranks))) / 1e6, 2) == 191.08


def test_config_validates_and_round_trips() -> None:
    cfg = RWKV7Config(vocab_size=10, n_embd=64, n_layer=1, head_size=32)
    assert RWKV7Config.from_dict(cfg.to_dict()) == cfg and cfg.n_head == 2
    with pytest.raises(ValueError, match="not a multiple of head_size"):
        RWKV7Config(vocab_size=10, n_embd=100, n_layer=1)
    with pytest.raises(ValueError, match="n_layer"):
        RWKV7Config(vocab_size=10, n_embd=64, n_layer=0)
    with pytest.raises(ValueError, match="unknown key"):
        RWKV7Config.from_dict({**cfg.to_dict(), "ctx_len": 4})


def test_official_init() -> None:
    cfg = RWKV7Config(vocab_size=100, n_embd=128, n_layer=4, head_size=64)
    m = RWKV7(cfg)
    C, L = cfg.n_embd, cfg.n_layer
    i = torch.arange(C, dtype=torch.float32)
    att0, att2 = m.blocks[0].att, m.blocks[2].att
    torch.testing.assert_close(att0.x_r.flatten(), 1 - (i / C) ** 0.2)
    torch.testing.assert_close(att2.x_w.flatten(), 1 - (i / C) ** (0.9 * (1 - 2 / L)))
    torch.testing.assert_close(m.blocks[2].ffn.x_k.flatten(), 1 - (i / C) ** ((1 - 2 / L) ** 4))
    n = 100  # w0 at one channel, layer 2: ramp + 0.5 + 2.5 * zigzag
    zig = ((n % 64) - 31.5) / 31.5
    want = -6 + 6 * (n / (C - 1)) ** (1 + (2 / (L - 1)) ** 0.3) + 0.5 + 2.5 * zig * abs(zig)
    assert att2.w0.flatten()[n].item() == pytest.approx(want, rel=1e-5)
    assert torch.all(att0.r_k == -0.04) and torch.all(att0.k_a == 1.02)
    torch.testing.assert_close(att2.ln_x.weight.detach(), torch.full((C,), ((2 + 1) / L) ** 0.7))
    for w in (att0.output.weight, m.blocks[1].ffn.value.weight, att0.w1, att0.a1, att0.v1, att0.g1):
        assert torch.all(w == 0)
    w2 = att0.w2  # orthogonal rows scaled by 0.1
    torch.testing.assert_close(w2 @ w2.T, 0.01 * torch.eye(w2.shape[0]), atol=1e-5, rtol=0)
    assert m.emb.weight.abs().max() <= 1e-4
    assert abs(att0.receptance.weight).max() <= 0.5 / C**0.5 and abs(att0.key.weight).max() <= 0.05 / C**0.5


@pytest.mark.parametrize("B,T", [(1, 1), (2, 37)], ids=["B1-T1", "B2-T37"])
def test_gpt_mode_equals_rnn_mode(tiny_model: RWKV7, B: int, T: int) -> None:
    tokens = torch.randint(0, tiny_model.config.vocab_size, (B, T), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits, state = tiny_model(tokens, return_state=True)
        s = tiny_model.init_state(B)
        steps = []
        for t in range(T):
            out, s = tiny_model.step(tokens[:, t], s)
            steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), logits, atol=2e-5, rtol=1e-5)
    for name in ("att_x_prev", "att_kv", "ffn_x_prev"):
        torch.testing.assert_close(getattr(s, name), getattr(state, name), atol=2e-5, rtol=1e-5)


def test_state_continues_and_is_not_modified(tiny_model: RWKV7) -> None:
    tokens = torch.randint(0, 97, (2, 40), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full = tiny_model(tokens)
        a, s = tiny_model(tokens[:, :23], return_state=True)
        before = s.clone()
        b = tiny_model(tokens[:, 23:], state=s)
        out, _ = tiny_model.step(tokens[:, 23], s)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(out, full[:, 23], atol=2e-5, rtol=1e-5)
    for name in ("att_x_prev", "att_kv", "ffn_x_prev"):
        assert torch.equal(getattr(s, name), getattr(before, name))


def test_reference_and_chunked_impls_agree(tiny_cfg: RWKV7Config) -> None:
    tokens = torch.randint(0, 97, (2, 33), generator=torch.Generator().manual_seed(5))
    ref, chunked = perturbed(tiny_cfg, impl="reference"), perturbed(tiny_cfg, impl="chunked")
    with torch.no_grad():
        torch.testing.assert_close(chunked(tokens), ref(tokens), atol=2e-5, rtol=1e-5)


def test_backward_reaches_every_used_parameter(tiny_model: RWKV7) -> None:
    tokens = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(6))
    logits = tiny_model(tokens[:, :-1])
    torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()
    unused = {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"}  # layer 0 has no value residual
    for name, p in tiny_model.named_parameters():
        if name in unused:
            assert p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_init_state_and_bf16(tiny_model: RWKV7) -> None:
    s = tiny_model.init_state(3)
    assert isinstance(s, RWKV7State)
    assert tuple(s.att_kv.shape) == (3, 3, 2, 32, 32) and s.att_kv.dtype == torch.float32
    assert tuple(s.att_x_prev.shape) == tuple(s.ffn_x_prev.shape) == (3, 3, 64)
    tokens = torch.randint(0, 97, (1, 24), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = tiny_model(tokens)
        low = tiny_model.to(torch.bfloat16)(tokens)
    assert low.dtype == torch.bfloat16
    assert (low.float() - ref).abs().max() / ref.abs().max() < 0.1
    assert math.isfinite(low.float().sum().item())


def test_bf16_autocast_forward_and_backward(tiny_model: RWKV7) -> None:
    tokens = torch.randint(0, 97, (2, 20), generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        ref = tiny_model(tokens)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = tiny_model(tokens)
    assert (logits.float() - ref).abs().max() / ref.abs().max() < 0.1
    logits.float().sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in tiny_model.parameters())


def test_empty_input(tiny_model: RWKV7) -> None:
    empty = torch.zeros(2, 0, dtype=torch.long)
    assert tuple(tiny_model(empty).shape) == (2, 0, 97)
    s = tiny_model.init_state(2)
    _, s2 = tiny_model(empty, state=s, return_state=True)
    assert s2 is not s and torch.equal(s2.att_kv, s.att_kv)
