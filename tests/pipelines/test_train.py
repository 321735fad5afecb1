"""`rwkv-data train`: exact resume, validation bits per byte falls in every language, CLI + TOML config.

Tiny models (L2, C64, head 32, byte vocab) on synthetic two-language shards in tmp_path; a few seconds each.

Run: pytest tests/pipelines/test_train.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from model_fixtures import make_corpus, one_thread  # noqa: F401

from rwkv_data.cli import cli
from rwkv_data.config import TrainConfig
from rwkv_data.pipelines.train import job as train
from rwkv_data.pipelines.train import modelio

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(n_layer=2, n_embd=64, head_size=32, vocab_size=320, ctx_len=32, micro_bsz=2, lr_init=3e-3,
            lr_final=3e-4, warmup_steps=3, device="cpu", log_every=1)


def _losses(out_dir: Path) -> list[tuple[int, float]]:
    rows = [json.loads(x) for x in (out_dir / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


def test_resume_reproduces_the_uninterrupted_loss_curve(tmp_path: Path) -> None:
    _, P, _ = make_corpus(tmp_path)
    base = TrainConfig(data=str(P), token_budget=2 * 32 * 2 * 10, grad_accum=2, **TINY)
    whole = train.run(dataclasses.replace(base, out_dir=str(tmp_path / "whole"), max_steps=8), progress=False)
    part = tmp_path / "part"
    train.run(dataclasses.replace(base, out_dir=str(part), max_steps=4), progress=False)
    resumed = train.run(dataclasses.replace(base, out_dir=str(part), max_steps=8, resume=True), progress=False)
    assert whole["steps"] == resumed["steps"] == 8
    assert _losses(tmp_path / "whole") == _losses(part)  # bit for bit
    a = torch.load(tmp_path / "whole" / "rwkv-final.pth", weights_only=True)
    b = torch.load(part / "rwkv-final.pth", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = torch.load(part / "rwkv-4.state.pt", weights_only=True)  # optimiser + RNG, no pickled objects
    assert state["step"] == 4 and isinstance(state["rng"]["cpu"], torch.Tensor)


def test_training_lowers_validation_bpb_in_every_language(tmp_path: Path) -> None:
    tok, P, P_val = make_corpus(tmp_path)
    cfg = TrainConfig(data=str(P), val_data=str(P_val), vocab=str(tmp_path / "bytes.txt"),
                      out_dir=str(tmp_path / "out"), max_steps=40, token_budget=40 * 64, **TINY)
    stats = train.run(cfg, progress=False)
    first, last = stats["evals"][0]["eval"], stats["evals"][-1]["eval"]
    assert set(first) == {"aa", "bb", "all"}
    assert all(last[k] < 0.8 * first[k] for k in first), (first, last)
    model = modelio.load(tmp_path / "out" / "rwkv-final.pth")  # an official-format checkpoint
    assert modelio.vocab_rows(model) == 320
    assert json.loads((tmp_path / "out" / "stats.json").read_text())["steps"] == 40


def test_cli_train_then_evaluate(tmp_path: Path) -> None:
    _, P, P_val = make_corpus(tmp_path, train_docs=10, val_docs=3)
    conf = tmp_path / "run.toml"
    conf.write_text(f'[train]\ndata = "{P}"\nn_embd = 64\nhead_size = 32\nvocab_size = 320\nctx_len = 32\n'
                    f'micro_bsz = 2\nmax_steps = 5\ndevice = "cpu"\nout_dir = "{tmp_path / "t"}"\n')
    runner = CliRunner()
    res = runner.invoke(cli, ["train", "--config", str(conf), "--max-steps", "3", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == 3
    res = runner.invoke(cli, ["evaluate", "--checkpoint", str(tmp_path / "t" / "rwkv-final.pth"), "--data", str(P_val),
                              "--vocab", str(tmp_path / "bytes.txt"), "--out-dir", str(tmp_path / "e"),
                              "--bootstrap", "50", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "aa" in res.stdout and "bpb" in res.stdout
    rows = json.loads((tmp_path / "e" / "eval.json").read_text())["languages"]
    assert [r["lang"] for r in rows] == ["aa", "bb", "all"]
    assert (tmp_path / "e" / "eval.csv").read_text().startswith("lang,docs,tokens")
    bad = runner.invoke(cli, ["train", "--config", str(conf), "--precision", "fp8"])
    assert bad.exit_code != 0


def test_bf16_autocast_trains(tmp_path: Path) -> None:
    _, P, _ = make_corpus(tmp_path, train_docs=10, val_docs=2)
    cfg = TrainConfig(data=str(P), out_dir=str(tmp_path / "o"), max_steps=3, precision="bf16",
                      save_dtype="bf16", **TINY)
    stats = train.run(cfg, progress=False)
    assert stats["steps"] == 3
    sd = torch.load(tmp_path / "o" / "rwkv-final.pth", weights_only=True)
    assert sd["emb.weight"].dtype == torch.bfloat16
