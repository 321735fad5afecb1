"""CPU training and evaluation throughput of the tiny model (L2, C128, head 64) through the real jobs.

    python benchmarks/train_speed.py                 # byte vocab and World vocab, ctx 256, batch 8
    python benchmarks/train_speed.py --threads 1 --steps 10

Training: ``train.run`` on a binidx of random tokens (magic_prime windows, AdamW, L2Wrap, fp32), tokens/s over
the timed steps (after one warm-up run). Evaluation: ``evaluate.score_tokens`` (GPT mode, 1024-token chunks with
the state carried, batch 8) on random documents of 2,000 tokens. Prints a table; ``--json`` for machines.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rwkv_data.config import TrainConfig
from rwkv_data.pipelines.shard.binidx import BinidxWriter
from rwkv_data.pipelines.train import evaluate, modelio
from rwkv_data.pipelines.train import job as train


def bench(vocab_size: int, steps: int, ctx_len: int, micro_bsz: int, work: Path) -> dict[str, float]:
    rng = np.random.default_rng(0)
    prefix = work / f"rand{vocab_size}"
    with BinidxWriter(prefix, np.uint16) as w:
        for _ in range(64):
            w.add_document(rng.integers(1, min(vocab_size, 65530), 4000).astype(np.uint16))
    cfg = TrainConfig(data=str(prefix), out_dir=str(work / f"out{vocab_size}"), n_layer=2, n_embd=128, head_size=64,
                      vocab_size=vocab_size, ctx_len=ctx_len, micro_bsz=micro_bsz, device="cpu", log_every=1000,
                      save_every=0)
    train.run(TrainConfig(**{**cfg.__dict__, "max_steps": 1}), progress=False)  # warm-up (allocator, caches)
    stats = train.run(TrainConfig(**{**cfg.__dict__, "max_steps": steps}), progress=False)
    model = modelio.load(stats["checkpoint"])
    items = [np.append(rng.integers(1, min(vocab_size, 65530), 1999), 0) for _ in range(8)]
    evaluate.score_tokens(model, items[:1], ctx_len=1024, batch_size=8)
    t0 = time.perf_counter()
    evaluate.score_tokens(model, items, ctx_len=1024, batch_size=8)
    eval_s = time.perf_counter() - t0
    return {"vocab_size": vocab_size, "train_tok_s": stats["tokens_per_s"], "eval_tok_s": 8 * 2000 / eval_s,
            "params_M": sum(p.numel() for p in model.parameters()) / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--ctx-len", type=int, default=256)
    ap.add_argument("--micro-bsz", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for V in (320, 65536):
            rows.append(bench(V, args.steps, args.ctx_len, args.micro_bsz, Path(tmp)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    load = os.getloadavg()[0]
    print(f"tiny RWKV-7 L2 C128 on CPU, {torch.get_num_threads()} thread(s), ctx {args.ctx_len}, batch "
          f"{args.micro_bsz}, fp32 (load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"{'vocab':>8} {'params':>8} {'train tok/s':>12} {'eval tok/s':>11}")
    for r in rows:
        print(f"{r['vocab_size']:>8} {r['params_M']:>7.2f}M {r['train_tok_s']:>12,.0f} {r['eval_tok_s']:>11,.0f}")


if __name__ == "__main__":
    main()
