"""CPU speed of the WKV7 paths and of training a tiny RWKV-7, measured in one run.

1. WKV7 forward+backward at B=1, T=512, C=256 (H=4, N=64), float32: reference loop vs chunked (target >= 10x).
2. Training throughput of an L=4, C=256 model (vocab 2048, AdamW) on the CPU, tokens per second.

Run: python benchmarks/wkv7_cpu.py [--threads N]   (prints a table; about a minute on an idle core)

One thread by default: on a shared machine OpenMP threads of the per-token loop spin against other jobs and
the ratio stops meaning anything; pass --threads 0 for torch's default.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "kernels"))
from wkv7_cases import make_inputs  # noqa: E402

from rwkv_data.kernels import wkv7_chunked, wkv7_ref  # noqa: E402
from rwkv_data.model import RWKV7, RWKV7Config  # noqa: E402


def timed(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def wkv_fwd_bwd(impl: Callable[..., tuple[torch.Tensor, torch.Tensor]], **kw: object) -> Callable[[], None]:
    xs, _ = make_inputs(1, 512, 4, 64, dtype=torch.float32)

    def run() -> None:
        y, s = impl(*xs, **kw)
        (y.sum() + s.sum()).backward()

    return run


def train_tokens_per_s(B: int = 4, T: int = 256, steps: int = 3) -> float:
    torch.manual_seed(0)
    model = RWKV7(RWKV7Config(vocab_size=2048, n_embd=256, n_layer=4), impl="chunked")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, 2048, (B, T + 1))

    def step() -> None:
        logits = model(tokens[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return B * T / timed(step, steps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    t_ref = timed(wkv_fwd_bwd(wkv7_ref), repeat=3)
    rows = [("wkv7 reference (per-token loop)", t_ref, 1.0)]
    for L in (16, 32):
        t = timed(wkv_fwd_bwd(wkv7_chunked, chunk_len=L), repeat=5)
        rows.append((f"wkv7 chunked, chunk_len={L}", t, t_ref / t))
    tps = train_tokens_per_s()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, float32, CPU")
    print(f"{'WKV7 fwd+bwd, B=1 T=512 C=256 (H=4 N=64)':<44} {'ms':>9} {'speed-up':>9}")
    for name, t, ratio in rows:
        print(f"{name:<44} {t * 1e3:>9.1f} {ratio:>8.1f}x")
    print(f"{'train L=4 C=256 V=2048, B=4 T=256, AdamW':<44} {tps:>9.0f} tokens/s")


if __name__ == "__main__":
    main()
