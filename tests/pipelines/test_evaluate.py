"""`evaluate`: bits-per-byte arithmetic, bootstrap intervals, document loading, chunked scoring with carried
state, and the CLI on a tiny checkpoint and a tiny P_val written in tmp_path.

Run: pytest tests/pipelines/test_evaluate.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from rwkv_data.pipelines import evaluate, modelio


def test_summarize_is_a_ratio_of_sums_per_language() -> None:
    rows = evaluate.summarize(["a", "b", "a"], np.array([10.0, 6.0, 30.0]), np.array([5, 3, 10]),
                              np.array([10, 4, 30]), np.array([5, 2, 10]), n_boot=200, confidence=0.9, seed=1)
    by = {r["lang"]: r for r in rows}
    assert set(by) == {"a", "b", "all"}
    assert by["a"]["bpb"] == pytest.approx(40 / 40) and by["a"]["bpc"] == pytest.approx(40 / 15)
    assert by["b"]["bpb"] == pytest.approx(1.5) and by["b"]["bits_per_token"] == pytest.approx(2.0)
    assert by["all"]["bpb"] == pytest.approx(46 / 44) and by["all"]["docs"] == 3
    assert by["b"]["bpb_lo"] == by["b"]["bpb_hi"] == pytest.approx(1.5)  # one document: no spread
    assert by["a"]["bpb_lo"] <= by["a"]["bpb"] <= by["a"]["bpb_hi"]
    assert "bpb" in evaluate.format_table(rows, 0.9).splitlines()[0]


def test_bootstrap_interval_covers_and_shrinks_with_more_documents() -> None:
    rng = np.random.default_rng(0)
    widths = []
    for n in (20, 2000):
        num = rng.gamma(2.0, 1.0, n) * 10
        den = np.full(n, 10.0)
        lo, hi = evaluate.bootstrap_ratio(num, den, 500, 0.95, np.random.default_rng(1))
        assert lo < num.sum() / den.sum() < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 5
    assert all(math.isnan(x) for x in evaluate.bootstrap_ratio(np.ones(3), np.ones(3), 0, 0.95,
                                                               np.random.default_rng(0)))


def test_documents_follow_the_convention() -> None:
    tok = evaluate.load_tokenizer("world")
    d = evaluate.doc_from_text("de", "Grüße", tok)
    assert d.tokens[-1] == 0 and d.n_bytes == len("Grüße".encode()) == 7 and d.n_chars == 5
    d2 = evaluate.doc_from_item("de", d.tokens[:-1].astype(np.uint16), tok)  # no closing 0: one is added
    assert np.array_equal(d2.tokens, d.tokens) and (d2.n_bytes, d2.n_chars) == (7, 5)


def _tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = modelio.fresh(n_layer=2, n_embd=64, head_size=32, vocab_size=300, ctx_len=32, device="cpu")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def test_chunked_scoring_equals_one_pass_and_batching_is_invisible() -> None:
    model = _tiny_model()
    rng = np.random.default_rng(0)
    items = [np.append(rng.integers(1, 300, n), 0) for n in (5, 40, 17, 1, 33)]
    one = evaluate.score_tokens(model, items, ctx_len=64, batch_size=1)
    chunked = evaluate.score_tokens(model, items, ctx_len=7, batch_size=3)
    np.testing.assert_allclose(chunked, one, rtol=1e-5)
    # Direct check of one document: sum of -log2 p over the item after a [0] prefix.
    x = torch.tensor([[0, *items[2][:-1]]])
    with torch.no_grad():
        logits = modelio.forward(model, x)[0].double()
    want = -torch.log_softmax(logits, -1)[torch.arange(len(items[2])), torch.tensor(items[2])].sum() / math.log(2)
    assert one[2] == pytest.approx(float(want), rel=1e-6)
