"""`evaluate`: bits-per-byte arithmetic, bootstrap intervals, document loading, chunked scoring with carried
state, and the CLI on raw text files with a tiny checkpoint written in tmp_path (the CLI on P_val shards is in
test_train.py).

Run: pytest tests/pipelines/test_evaluate.py
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rwkv_data.pipelines.train import evaluate, modelio
from rwkv_data.tokenizer.resolve import load_trie


def test_summarize_is_a_ratio_of_sums_per_language() -> None:
    rows = evaluate.summarize(["a", "b", "a"], np.array([10.0, 6.0, 30.0]), np.array([5, 3, 10]),
                              np.array([10, 4, 30]), np.array([5, 2, 10]), n_boot=200, confidence=0.9, seed=1)
    by = {r["lang"]: r for r in rows}
    assert set(by) == {"a", "b", "all"}
    assert by["a"]["bpb"] == pytest.approx(40 / 40) and by["a"]["bpc"] == pytest.approx(40 / 15)
    assert by["b"]["bpb"] == pytest.approx(1.5) and by["b"]["bits_per_token"] == pytest.approx(2.0)
    assert by["all"]["bpb"] == pytest.approx(46 / 44) and by["all"]["docs"] == 3
    # fewer than 10 documents: no interval at all (one document used to give [x, x])
    assert all(r["bpb_lo"] is None and r["bpb_hi"] is None and r["bpc_lo"] is None for r in rows)
    table = evaluate.format_table(rows, 0.9).splitlines()
    assert "bpb" in table[0] and all("n < 10" in line for line in table[2:])


def test_two_documents_get_no_interval_where_the_percentile_bootstrap_was_ten_times_too_narrow() -> None:
    # The demo's case: two documents of very different bpb. The percentile bootstrap said [lo, hi] of width
    # ~|a-b|/2 while a t-interval on 1 degree of freedom is ~12.7 standard errors wide.
    num, den = np.array([800.0, 3000.0]), np.array([1000.0, 1000.0])
    assert evaluate.bootstrap_ratio(num, den, 1000, 0.95, np.random.default_rng(0)) == (None, None)
    num10, den10 = np.tile(num, 5), np.tile(den, 5)
    lo, hi = evaluate.bootstrap_ratio(num10, den10, 1000, 0.95, np.random.default_rng(0))
    assert lo < 1.9 < hi


def test_pooled_row_is_stratified_by_language() -> None:
    rng = np.random.default_rng(3)
    langs = ["a"] * 30 + ["b"] * 12
    nll = np.concatenate([rng.normal(1000, 50, 30), rng.normal(3000, 50, 12)])
    rows = evaluate.summarize(langs, nll, np.ones(42, int), np.full(42, 1000), np.full(42, 500), 400, 0.95, 0)
    pooled = rows[-1]
    assert pooled["lang"] == "all" and pooled["bpb_lo"] < pooled["bpb"] < pooled["bpb_hi"]
    # Stratified: every resample keeps 30 a's and 12 b's, so the spread is only the within-language one (an
    # unstratified resample would also move the a/b mix, an interval ~10x wider).
    assert pooled["bpb_hi"] - pooled["bpb_lo"] < 0.05
    rows9 = evaluate.summarize(langs[:30] + ["b"] * 9 + ["c"] * 3, nll, np.ones(42, int), np.full(42, 1000),
                               np.full(42, 500), 400, 0.95, 0)
    assert rows9[-1]["bpb_lo"] is None  # a language with < 10 documents: the pooled row has no honest interval


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
    assert evaluate.bootstrap_ratio(np.ones(30), np.ones(30), 0, 0.95, np.random.default_rng(0)) == (None, None)


def test_documents_follow_the_convention() -> None:
    tok = load_trie("world")
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


def test_cli_evaluate_on_raw_text_files(tmp_path: Path) -> None:
    from click.testing import CliRunner
    from model_fixtures import byte_vocab

    from rwkv_data.cli import cli

    byte_vocab(tmp_path / "bytes.txt")
    torch.manual_seed(0)
    modelio.export_checkpoint(modelio.fresh(2, 64, 32, 320, 32), tmp_path / "m.pth")
    (tmp_path / "aa.txt").write_text("abc def " * 20, encoding="utf-8")
    (tmp_path / "docs.jsonl").write_text(json.dumps({"text": "Grüße " * 30, "lang": "de"}) + "\n"
                                         + json.dumps({"text": "Hallo", "lang": "de"}) + "\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "aa.txt"), str(tmp_path / "docs.jsonl"), "--checkpoint",
                                   str(tmp_path / "m.pth"), "--vocab", str(tmp_path / "bytes.txt"), "--ctx-len", "64",
                                   "--out-dir", str(tmp_path / "e"), "--device", "cpu", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = {r["lang"]: r for r in json.loads(res.stdout)["languages"]}
    assert set(rows) == {"aa", "de", "all"} and rows["de"]["docs"] == 2
    assert rows["de"]["bytes"] == len(("Grüße " * 30).encode()) + 5 and rows["de"]["chars"] == 185
    with (tmp_path / "e" / "eval.csv").open() as f:
        assert [r["lang"] for r in csv.DictReader(f)] == ["aa", "de", "all"]
    bad = CliRunner().invoke(cli, ["evaluate", "--checkpoint", str(tmp_path / "m.pth"), "--vocab", "world"])
    assert bad.exit_code != 0  # neither --data nor texts


def test_run_table_says_n_lt_10_instead_of_an_interval() -> None:
    from rwkv_data.pipelines.run import format_result

    row = {"name": "", "script": "", "val_bytes": 100, "bpb_untrained": None, "bpb": 1.5, "bytes_per_token": {}}
    result = {"out": "x", "seconds": 1.0, "stages": {}, "audit_summary": {}, "files": [], "languages": [
        {**row, "lang": "aa", "val_docs": 2, "bpb_lo": None, "bpb_hi": None},
        {**row, "lang": "bb", "val_docs": 12, "bpb_lo": 1.25, "bpb_hi": 1.75},
        {**row, "lang": "all", "val_docs": 14, "bpb_lo": None, "bpb_hi": None}]}
    lines = {line.split()[0]: line for line in format_result(result).splitlines()[3:6]}
    assert "n < 10" in lines["aa"] and "[1.25, 1.75]" in lines["bb"] and "n < 10" in lines["all"]
