"""`rwkv-data train` under torchrun: 2 CPU processes (gloo on loopback) with micro_bsz 1 each against one process
with micro_bsz 2, both with grad_accum 2, i.e. the same global batch of 4 windows per step: the logged loss
curves and the final weights agree, and only rank 0 wrote the log and checkpoints and printed the result.
Tiny model (L2, C64, head 32, byte vocab), 6 steps; about 30-40 s on 2 cores, most of it starting processes.

Run: pytest tests/pipelines/test_train_ddp.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_fixtures import make_corpus, one_thread  # noqa: F401

from rwkv_data.config import TrainConfig
from rwkv_data.pipelines.train import job as train

TINY = dict(n_layer=2, n_embd=64, head_size=32, vocab_size=320, ctx_len=32, lr_init=3e-3, lr_final=3e-4,
            warmup_steps=2, max_steps=6, token_budget=6 * 4 * 32, log_every=1, device="cpu", seed=7, grad_accum=2)
STEPS = 6

# Tolerances. The two runs read the same windows in every micro-step (tests/pipelines/test_distributed.py checks
# the sampler), so they differ only in float rounding: the logged loss is a mean over ranks of per-rank means
# instead of one mean over the micro-batch, and DDP averages two half-batch gradients instead of differentiating
# the whole micro-batch at once. Measured on CPU (torch 2.13, one thread per process): loss differences <= 4e-7
# over the 6 steps, final weights <= 2.3e-6 apart (largest |weight| 8). The bounds leave ~100x for other BLAS
# builds and thread counts, yet stay far below what one step changes (the loss moves by 0.1-0.8 per step here),
# so a rank that read other windows, skipped the gradient average or applied it twice fails at once.
FIRST_STEP_ATOL = 1e-5
LOSS_ATOL = 1e-4
WEIGHT_ATOL = 2e-4


def _losses(out_dir: Path) -> list[float]:
    rows = [json.loads(x) for x in (out_dir / "train_log.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path, one_thread) -> None:  # noqa: F811
    _, prefix, _ = make_corpus(tmp_path)
    single = tmp_path / "single"
    train.run(TrainConfig(data=str(prefix), out_dir=str(single), micro_bsz=2, **TINY), progress=False)

    ddp = tmp_path / "ddp"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "rwkv_data",
           "train", f"--data={prefix}", f"--out-dir={ddp}", "--micro-bsz=1", "--json", *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-4000:]
    stats = json.loads(out.stdout)  # rank 0 alone printed the result (one JSON document)
    assert stats["steps"] == STEPS and stats["tokens"] == STEPS * 4 * 32

    a, b = _losses(single), _losses(ddp)
    assert len(a) == len(b) == STEPS, "one log line per step: only rank 0 logged"
    assert abs(a[0] - b[0]) <= FIRST_STEP_ATOL, (a[0], b[0])
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) <= LOSS_ATOL, (a, b)
    assert a[-1] < a[0] - 0.05, "the model learned, so the comparison is not between two flat curves"
    config = json.loads((ddp / "config.json").read_text())
    assert config["world_size"] == 2 and config["rank"] == 0

    wa = torch.load(single / "rwkv-final.pth", weights_only=True)
    wb = torch.load(ddp / "rwkv-final.pth", weights_only=True)
    assert wa.keys() == wb.keys()
    worst = max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)
    assert worst <= WEIGHT_ATOL, worst
    assert sorted(p.name for p in ddp.glob("*.pth")) == sorted(p.name for p in single.glob("*.pth"))
