"""`rwkv-data finetune`: vocabulary extension leaves old-vocab logits unchanged, a reduced version of the
new-language acceptance (the full one is benchmarks/finetune_acceptance.py), freezing, LoRA merged on export.

Tiny models (L2, C64, byte vocab) on synthetic languages written to tmp_path.

Run: pytest tests/pipelines/test_finetune.py
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from model_fixtures import make_corpus, one_thread, synthetic_text, write_shard  # noqa: F401

from rwkv_data.cli import cli
from rwkv_data.config import FinetuneConfig, TrainConfig
from rwkv_data.pipelines.train import evaluate, finetune, modelio
from rwkv_data.pipelines.train import job as train
from rwkv_data.tokenizer.resolve import load_trie

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(n_layer=2, n_embd=64, head_size=32, vocab_size=320, ctx_len=32, micro_bsz=4, device="cpu")


def _noisy_checkpoint(path: Path) -> None:
    torch.manual_seed(0)
    model = modelio.fresh(2, 64, 32, 320, 32)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    modelio.export_checkpoint(model, path)


def test_vocab_extension_keeps_old_logits(tmp_path: Path) -> None:
    ckpt = tmp_path / "base.pth"
    _noisy_checkpoint(ckpt)
    (tmp_path / "bytes.txt").write_text("")
    tok, _, _ = make_corpus(tmp_path, train_docs=1, val_docs=1)
    new = tmp_path / "new.txt"
    new.write_text("αβ\nγδε\nabc\n", encoding="utf-8")
    cfg = FinetuneConfig(init=str(ckpt), vocab=str(tmp_path / "bytes.txt"), new_tokens=str(new),
                         out_dir=str(tmp_path / "ft"), device="cpu")
    (tmp_path / "ft").mkdir()
    grown, info = finetune.prepare(cfg, torch.device("cpu"))
    assert info["added_tokens"] == 3 and info["vocab_size"] == 323
    old = modelio.load(ckpt)
    reloaded = modelio.load(tmp_path / "ft" / "rwkv-init.pth")
    x = torch.tensor([tok.encode("abc αβγ δε. mnop")])
    with torch.no_grad():
        want = modelio.forward(old, x)
        for m in (grown, reloaded):
            got = modelio.forward(m, x)
            assert got.shape[-1] == 323
            torch.testing.assert_close(got[..., :320], want, rtol=0, atol=1e-6)
    ext = load_trie(str(tmp_path / "ft" / "vocab.txt"))
    assert ext.encode("αβ") == [320] and ext.encode("abc") == [322]
    emb = reloaded.emb.weight.detach()
    torch.testing.assert_close(emb[320], emb[torch.tensor(tok.encode("αβ"))].mean(0))


def _base_model(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A tiny model trained on languages aa and bb; returns (checkpoint, P_val with aa/bb/cc, vocab)."""
    tok, P, _ = make_corpus(tmp_path, langs=("aa", "bb"), train_docs=30, val_docs=1)
    rng = np.random.default_rng(7)
    write_shard(tmp_path / "V", tok, [(lg, synthetic_text(lg, rng, 40)) for _ in range(5) for lg in ("aa", "bb", "cc")])
    write_shard(tmp_path / "C", tok, [("cc", synthetic_text("cc", rng, 60)) for _ in range(30)])
    cfg = TrainConfig(data=str(P), out_dir=str(tmp_path / "base"), max_steps=60, token_budget=60 * 128,
                      lr_init=3e-3, lr_final=1e-3, warmup_steps=3, **TINY)
    train.run(cfg, progress=False)
    return tmp_path / "base" / "rwkv-final.pth", tmp_path / "V", tmp_path / "bytes.txt"


def _bpb(ckpt: Path, val: Path, vocab: Path) -> dict[str, float]:
    tok = load_trie(str(vocab))
    rows = evaluate.evaluate_docs(modelio.load(ckpt), evaluate.load_binidx_docs(val, tok), 256, 8, 0)
    return {r["lang"]: r["bpb"] for r in rows}


def test_finetune_on_an_unseen_language_with_replay(tmp_path: Path) -> None:
    ckpt, val, vocab = _base_model(tmp_path)
    before = _bpb(ckpt, val, vocab)
    cfg = FinetuneConfig(init=str(ckpt), data=str(tmp_path / "C"), replay_data=str(tmp_path / "P"),
                         replay_share=0.5, out_dir=str(tmp_path / "ft"), max_steps=20, token_budget=20 * 128,
                         vocab=str(vocab), lr_init=5e-4, lr_final=5e-5, warmup_steps=3, **TINY)
    stats = finetune.run(cfg, progress=False)
    after = _bpb(Path(stats["checkpoint"]), val, vocab)
    assert after["cc"] < 0.9 * before["cc"], (before, after)
    assert after["aa"] < 1.05 * before["aa"] and after["bb"] < 1.05 * before["bb"], (before, after)


def test_freezing_and_lora(tmp_path: Path) -> None:
    ckpt = tmp_path / "base.pth"
    _noisy_checkpoint(ckpt)
    tok, P, _ = make_corpus(tmp_path, train_docs=5, val_docs=1)
    base = FinetuneConfig(init=str(ckpt), data=str(P), max_steps=3, lr_init=1e-2, lr_final=1e-2, **TINY)
    sd0 = torch.load(ckpt, weights_only=True)

    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "emb"), trainable="embeddings"), progress=False)
    sd = torch.load(tmp_path / "emb" / "rwkv-final.pth", weights_only=True)
    assert not torch.equal(sd["emb.weight"], sd0["emb.weight"])
    assert all(torch.equal(sd[k], sd0[k]) for k in sd0 if k.startswith("blocks.") and ".ln0." not in k)

    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "last"), trainable="last:1"), progress=False)
    sd = torch.load(tmp_path / "last" / "rwkv-final.pth", weights_only=True)
    assert torch.equal(sd["blocks.0.att.key.weight"], sd0["blocks.0.att.key.weight"])
    assert not torch.equal(sd["blocks.1.att.key.weight"], sd0["blocks.1.att.key.weight"])

    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "lora"), trainable="embeddings", lora_rank=4),
                 progress=False)
    sd = torch.load(tmp_path / "lora" / "rwkv-final.pth", weights_only=True)
    assert sd.keys() == sd0.keys()  # merged: a plain official checkpoint
    assert not torch.equal(sd["blocks.0.att.key.weight"], sd0["blocks.0.att.key.weight"])
    assert torch.equal(sd["blocks.0.att.w0"], sd0["blocks.0.att.w0"])


def test_cli_finetune_with_new_tokens(tmp_path: Path) -> None:
    ckpt = tmp_path / "base.pth"
    _noisy_checkpoint(ckpt)
    _, P, _ = make_corpus(tmp_path, train_docs=5, val_docs=1)
    (tmp_path / "new.txt").write_text("abc\n", encoding="utf-8")
    res = CliRunner().invoke(cli, ["finetune", "--init", str(ckpt), "--data", str(P), "--vocab",
                                   str(tmp_path / "bytes.txt"), "--new-tokens", str(tmp_path / "new.txt"),
                                   "--max-steps", "2", "--ctx-len", "32", "--device", "cpu", "--out-dir",
                                   str(tmp_path / "ft")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert torch.load(tmp_path / "ft" / "rwkv-final.pth", weights_only=True)["emb.weight"].shape[0] == 321
    assert (tmp_path / "ft" / "vocab.txt").is_file()


def test_finetune_resume_with_replay_and_lora_is_exact(tmp_path: Path) -> None:
    ckpt = tmp_path / "base.pth"
    _noisy_checkpoint(ckpt)
    _, P, _ = make_corpus(tmp_path, langs=("aa", "bb"), train_docs=8, val_docs=1)
    (tmp_path / "c").mkdir()
    _, C, _ = make_corpus(tmp_path / "c", langs=("cc",), train_docs=8, val_docs=1, seed=3)
    base = FinetuneConfig(init=str(ckpt), data=str(C), replay_data=str(P), lora_rank=4, token_budget=8 * 128,
                          log_every=1, **TINY)
    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "whole"), max_steps=6), progress=False)
    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "part"), max_steps=3), progress=False)
    finetune.run(dataclasses.replace(base, out_dir=str(tmp_path / "part"), max_steps=6, resume=True), progress=False)
    logs = [[json.loads(x)["loss"] for x in (tmp_path / d / "train_log.jsonl").read_text().splitlines()]
            for d in ("whole", "part")]
    assert len(logs[0]) == 6 and logs[0] == logs[1]
