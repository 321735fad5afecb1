"""`rwkv-data compare`: the paired statistics, the config checks, and the whole pipeline on small real text.

The pipeline test (three languages of ../shared/corpus/mono, cut to 40 documents of 1,500 characters, written to
tmp_path; skipped when the corpus is absent) trains tiny models (2 layers x 32, ctx 64, 16 steps) for three
variants: bytes (the baseline), bytes again (same seed) and World (its 65,536 embedding rows make it the slow one).
Acceptance checks:
- null: the second bytes variant shows no detectable difference in every language;
- power: bytes is detected as worse than World in English and German (World's ~4 bytes per token there: World
  "better" against the bytes baseline) and better in Amharic (World falls back to about one token per byte and,
  with 65,536 rows to train, lags: World "worse");
- parity: the World variant's checkpoint scores the same bits per byte in the `rwkv` pip package (1e-3);
- resume: a second run redoes nothing.
Run: pytest tests/pipelines/test_compare.py -q
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rwkv_data.config import CompareVariant
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.compare import stats
from rwkv_data.pipelines.compare.spec import load_compare_config

MONO = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "mono"
TOML = """
inputs = ["{corpus}/*.jsonl"]
budgets = {budgets}
train_tokens = 4096
heldout_chars = 400
{variants}
[shard]
val_min_docs = 10
ctx_lens = [64]
[train]
n_layer = 2
n_embd = 32
head_size = 32
ctx_len = 64
micro_bsz = 4
[evaluate]
ctx_len = 64
bootstrap = 400
"""


def _variants(*pairs: tuple[str, str]) -> str:
    return "".join(f'[[variants]]\nname = "{n}"\ntokenizer = "{t}"\n' for n, t in pairs)


# ---- statistics -------------------------------------------------------------------------------------------


def test_paired_differences_verdicts_and_small_languages() -> None:
    rng = np.random.default_rng(0)
    langs = ["a"] * 30 + ["b"] * 30 + ["c"] * 4
    nbytes = rng.integers(500, 1500, 64).astype(float)
    base = nbytes * rng.normal(2.0, 0.3, 64)
    same = stats.differences(langs, nbytes, [base.copy()], [base], 400, 0.95)
    assert [d["verdict"] for d in same] == [stats.NO_DIFF] * 4 and all(d["delta_bpb"] == 0 for d in same)
    worse = base + nbytes * 0.1 * np.r_[np.ones(30), -np.ones(30), np.ones(4)]  # +0.1 bpb in a, -0.1 in b
    d = {r["lang"]: r for r in stats.differences(langs, nbytes, [worse], [base], 400, 0.95)}
    assert d["a"]["verdict"] == "worse" and d["a"]["delta_lo"] > 0 and d["a"]["delta_bpb"] == pytest.approx(0.1)
    assert d["b"]["verdict"] == "better" and d["b"]["delta_hi"] < 0
    # 4 documents: no interval and no verdict either way, however large the difference
    assert d["c"]["delta_lo"] is None and d["c"]["few_docs"] and d["c"]["verdict"] == stats.NO_DIFF
    assert d["all"]["delta_lo"] is None  # the pooled row resamples within each language: c has too few
    counts = stats.verdict_counts(list(d.values()))
    assert counts == {"better": 1, "worse": 1, stats.NO_DIFF: 1}


def test_seed_spread_and_seed_averaged_interval() -> None:
    langs = ["a"] * 12
    nbytes = np.full(12, 100.0)
    seeds = [np.full(12, 200.0), np.full(12, 220.0), np.full(12, 240.0)]
    row = stats.variant_rows(langs, nbytes, seeds, np.full(12, 50.0), 200, 0.95)[0]
    assert row["bpb"] == pytest.approx(2.2) and row["bpb_seeds"] == pytest.approx([2.0, 2.2, 2.4])
    assert (row["seed_min"], row["seed_max"]) == pytest.approx((2.0, 2.4)) and row["seed_sd"] == pytest.approx(0.2)
    assert row["tokens_per_byte"] == pytest.approx(0.5) and row["bpb_lo"] == pytest.approx(2.2)


# ---- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("toml", "message"), [
    ('[[variants]]\nname = "w"\n', "at least 2"),
    ('[[variants]]\nname = "w"\n[[variants]]\nname = "w"\n', "appear twice"),
    ('baseline = "x"\n[[variants]]\nname = "w"\n[[variants]]\nname = "b"\ntokenizer = "bytes"\n', "baseline 'x'"),
    ('[[variants]]\nname = "w"\n[[variants]]\nname = "b"\ntokenizer = "nope.txt"\n', "not a vocab file"),
    ('[[variants]]\nname = "w"\ncolour = 1\n[[variants]]\nname = "b"\n', "unknown key(s) ['colour']"),
    ('budgets = ["flops"]\n[[variants]]\nname = "w"\n[[variants]]\nname = "b"\n', "budgets"),
    ('[[variants]]\nname = "w"\nreplay_share = 0.5\n[[variants]]\nname = "b"\n', "need init"),
    ('skip = ["report"]\n[[variants]]\nname = "w"\n[[variants]]\nname = "b"\n', "use redo"),
])
def test_config_errors_name_the_fix(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_compare_config(path)


def test_config_sections_override_the_shared_jobs(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('seeds = [1, 2]\n[[variants]]\ntokenizer = "world"\n[[variants]]\ntokenizer = "bytes"\n'
                    "[train]\nn_embd = 64\n")
    cfg = load_compare_config(path)
    assert cfg.variants == (CompareVariant(name="world"), CompareVariant(name="bytes", tokenizer="bytes"))
    assert cfg.seeds == (1, 2) and cfg.train.n_embd == 64 and cfg.train.n_layer == 2


# ---- the pipeline -------------------------------------------------------------------------------------------

NULL_AND_POWER = 'baseline = "bytes"\n' + _variants(("bytes", "bytes"), ("bytes-again", "bytes"), ("world", "world"))


def _small_mono(root: Path, langs: tuple[str, ...]) -> Path:
    import zstandard

    root.mkdir()
    for lang in langs:
        with (MONO / f"{lang}.jsonl.zst").open("rb") as f, (root / f"{lang}.jsonl").open("w") as out:
            lines = io.TextIOWrapper(zstandard.ZstdDecompressor().stream_reader(f), encoding="utf-8")
            for _, line in zip(range(40), lines, strict=False):
                out.write(json.dumps({"lang": lang, "text": json.loads(line)["text"][:1500]}, ensure_ascii=False)
                          + "\n")
    return root


def _run(tmp: Path, corpus: Path, variants: str, budgets: str = '["compute"]') -> dict[str, Any]:
    from rwkv_data.pipelines.compare.job import run

    path = tmp / "c.toml"
    path.write_text(TOML.format(corpus=corpus, variants=variants, budgets=budgets))
    cfg = load_compare_config(path, out=str(tmp / "run"), threads=1)
    return run(cfg, progress=False)


@pytest.fixture(scope="module")
def mono_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if not MONO.is_dir():
        pytest.skip(f"{MONO} not present")
    tmp = tmp_path_factory.mktemp("compare")
    corpus = _small_mono(tmp / "corpus", ("en", "de", "am"))
    return tmp, _run(tmp, corpus, NULL_AND_POWER)


def test_null_check_identical_variants_show_no_difference(mono_run: tuple[Path, dict[str, Any]]) -> None:
    _, result = mono_run
    t = result["budgets"]["compute"]
    assert t["what"].startswith("equal compute") and set(t["train_tokens"].values()) == {4096}
    held = result["heldout"]["per_language"]
    assert held == {"am": 10, "de": 10, "en": 10}  # >= 10 each: every language gets an interval
    for d in t["differences"]["bytes-again"]:
        assert d["verdict"] == stats.NO_DIFF and d["delta_lo"] <= 0 <= d["delta_hi"], d


def test_power_check_bytes_against_world(mono_run: tuple[Path, dict[str, Any]]) -> None:
    _, result = mono_run
    d = {r["lang"]: r for r in result["budgets"]["compute"]["differences"]["world"]}  # world - bytes
    assert d["en"]["verdict"] == d["de"]["verdict"] == "better", d
    assert d["am"]["verdict"] == "worse", d
    world = {r["lang"]: r for r in result["budgets"]["compute"]["variants"]["world"]}
    assert world["en"]["tokens_per_byte"] < 0.35 < 0.8 < world["am"]["tokens_per_byte"]


def test_outputs_and_resume(mono_run: tuple[Path, dict[str, Any]]) -> None:
    tmp, result = mono_run
    rep = tmp / "run" / "report"
    assert {p.name for p in rep.iterdir()} >= {"compare.json", "compare.csv", "report.html", "table.txt"}
    html = (rep / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg data-plot=") == 3 and not re.search(r"""(?:src|href)\s*=""", html)
    rows = (rep / "compare.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 1 + 3 * 4 and rows[0].startswith("budget,variant,lang")
    assert "equal compute" in result["table"] and "no detectable difference" in result["table"]
    again = _run(tmp, tmp / "corpus", NULL_AND_POWER)
    assert {s["status"] for s in again["stages"].values()} == {"finished earlier"}
    assert again["budgets"] == result["budgets"]


PIP_SCRIPT = r"""
import json, math, os, sys
import torch
from rwkv.model import RWKV
model = RWKV(model=sys.argv[1], strategy="cpu fp32")
out = []
for item in json.load(open(sys.argv[2])):
    inp = [0] + item[:-1]
    logits, _ = model.forward(inp, None, full_output=True)
    logits = logits.reshape(len(inp), -1).double()
    out.append(torch.nn.functional.cross_entropy(logits, torch.tensor(item), reduction="sum").item() / math.log(2))
print(json.dumps(out))
"""


def test_variant_bpb_matches_the_rwkv_pip_package(mono_run: tuple[Path, dict[str, Any]]) -> None:
    pytest.importorskip("rwkv")
    tmp, _ = mono_run
    folder = tmp / "run" / "world" / "t4096-s0"
    scores = json.loads((folder / "score" / "scores.json").read_text())
    from rwkv_data.pipelines.compare.heldout import load
    from rwkv_data.pipelines.train.evaluate import doc_from_text, load_tokenizer

    # The pip package steps through a sequence slowly on a busy CPU: the shortest document of each language.
    held, tok = load(tmp / "run" / "heldout" / "heldout.jsonl"), load_tokenizer("world")
    langs_all = np.array(scores["langs"])
    pick = [min(np.flatnonzero(langs_all == g), key=lambda i: scores["tokens"][i]) for g in ("am", "de", "en")]
    items = [doc_from_text(held[i]["lang"], held[i]["text"], tok).tokens.tolist() for i in pick]
    assert [len(x) for x in items] == [scores["tokens"][i] for i in pick]
    (tmp / "items.json").write_text(json.dumps(items))
    env = {**os.environ, "RWKV_V7_ON": "1", "RWKV_JIT_ON": "0", "RWKV_CUDA_ON": "0"}
    res = subprocess.run([sys.executable, "-c", PIP_SCRIPT, str(folder / "train" / "rwkv-final"),
                          str(tmp / "items.json")], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    theirs = np.array(json.loads(res.stdout.strip().splitlines()[-1]))
    ours, nbytes = np.array(scores["bits"])[pick], np.array(scores["bytes"], float)[pick]
    np.testing.assert_allclose(ours / nbytes, theirs / nbytes, atol=1e-3)  # one document per language: its bpb
    assert (ours / nbytes > 1.0).all()  # a 16-step model is far from perfect: the comparison is not vacuous
