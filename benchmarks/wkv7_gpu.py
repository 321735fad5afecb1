"""GPU check of the WKV7 CUDA kernel in one run: build, correctness against the fp64 reference, speed.

1. Builds the extension for head size 64 in fp32 and bf16 (timed; cached by torch afterwards).
2. Compares impl="cuda" with the float64 reference loop (run on the GPU from the same, rounded inputs): output,
   final state and the gradient of every input, relative RMS error per tensor, at T = 1, 63, 4096 with B = 2,
   H = 4, with and without an initial state, fp32 and bf16. Tolerances: fp32 2e-5, bf16 2e-2.
3. Times forward and forward+backward at B=8, T=4096, C=4096 (H=64, N=64) for the CUDA kernel, the chunked
   PyTorch form on the GPU and fla's chunk_rwkv7 when fla imports.

Run (one GPU, < 5 minutes on an H100):   python benchmarks/wkv7_gpu.py
Exit status 1 if any correctness case fails, 2 without a GPU.
"""

from __future__ import annotations

import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "kernels"))
try:
    import rwkv_data.kernels  # noqa: F401
except ImportError:  # not installed (a bare GPU machine): map the two folders needed by hand
    for _name in [m for m in sys.modules if m == "rwkv_data" or m.startswith("rwkv_data.")]:
        del sys.modules[_name]
    _pkg = types.ModuleType("rwkv_data")
    _pkg.__path__ = [str(ROOT / "rwkv_data"), str(ROOT)]  # rwkv_data.errors, rwkv_data.kernels -> ROOT/kernels
    sys.modules["rwkv_data"] = _pkg

from wkv7_cases import make_inputs, report, run_with_grads  # noqa: E402

from rwkv_data.errors import KernelUnavailable  # noqa: E402
from rwkv_data.kernels import wkv7, wkv7_ref  # noqa: E402
from rwkv_data.kernels.cuda import load_extension  # noqa: E402

TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2}
DT_NAME = {torch.float32: "fp32", torch.bfloat16: "bf16"}
CHECK_TS = (1, 63, 4096)  # sequence lengths of the correctness cases (B=2, H=4, N=64)
SPEED_SHAPE = (8, 4096, 64, 64)  # B, T, H, N of the timing runs
DEVICE = "cuda"


def check_correctness() -> bool:
    ok = True
    print("\n## CUDA vs float64 reference (relative RMS error per tensor)")
    cols = ["y", "state", "dr", "dw", "dk", "dv", "da", "db", "ds0"]
    print(f"{'case':<30}" + "".join(f"{c:>9}" for c in cols) + "  result")
    for dtype in (torch.float32, torch.bfloat16):
        for T in CHECK_TS:
            for with_state in (False, True):
                B, H, N = 2, 4, 64
                xs, s0 = make_inputs(B, T, H, N, dtype=dtype, with_state=with_state, device=DEVICE, seed=T)
                got = run_with_grads(lambda *a, **kw: wkv7(*a, impl="cuda", **kw), xs, s0)
                xs64 = [x.detach().double().requires_grad_() for x in xs]
                s64 = None if s0 is None else s0.detach().double().requires_grad_()
                ref = run_with_grads(wkv7_ref, xs64, s64)
                errs = report(ref, got)
                bad = [n for n, (_, e) in errs.items() if not e <= TOL[dtype]]
                ok &= not bad
                name = f"B{B}-T{T}-H{H}-N{N}-{DT_NAME[dtype]}-{'state' if with_state else 'zero'}"
                cells = "".join(f"{errs[c][1]:>9.1e}" if c in errs else f"{'-':>9}" for c in cols)
                print(f"{name:<30}{cells}  {'ok' if not bad else 'FAIL ' + ','.join(bad)}", flush=True)
    return ok


def cuda_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 2) -> float:
    """Median milliseconds of ``fn`` measured with CUDA events."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def fla_fn() -> Callable[..., tuple[torch.Tensor, torch.Tensor]] | None:
    try:
        from fla.ops.rwkv7 import chunk_rwkv7
    except Exception as exc:  # noqa: BLE001 - any import problem means "not available here"
        print(f"(fla not timed: {type(exc).__name__}: {exc})")
        return None

    def run(r, w, k, v, a, b, state=None):  # fla: log-decay input, state [B, H, K, V]
        y, s = chunk_rwkv7(r, -torch.exp(w.float()).to(r.dtype), k, v, a, b, scale=1.0,
                           initial_state=None if state is None else state.transpose(-1, -2),
                           output_final_state=True)
        return y, s.transpose(-1, -2)

    return run


def time_impls() -> None:
    B, T, H, N = SPEED_SHAPE
    print(f"\n## Speed, B={B} T={T} C={H * N} (H={H}, N={N}), milliseconds (median of 5, CUDA events)")
    print(f"{'impl':<22}{'dtype':>6}{'fwd':>10}{'fwd+bwd':>10}  notes")
    impls: list[tuple[str, Callable[..., tuple[torch.Tensor, torch.Tensor]] | None]] = [
        ("cuda (this repo)", lambda *a, **kw: wkv7(*a, impl="cuda", **kw)),
        ("chunked PyTorch", lambda *a, **kw: wkv7(*a, impl="chunked", **kw)),
        ("fla chunk_rwkv7", fla_fn()),
    ]
    y_cuda = None
    for name, fn in impls:
        if fn is None:
            continue
        for dtype in (torch.bfloat16, torch.float32):
            if name.startswith("fla") and dtype == torch.float32:
                continue  # fla warns fp32 is unsupported on some platforms; bf16 is its format
            note = ""
            try:
                xs, _ = make_inputs(B, T, H, N, dtype=dtype, device=DEVICE, seed=0)
                with torch.no_grad():
                    fwd = cuda_time(lambda fn=fn, xs=xs: fn(*xs))
                    y = fn(*xs)[0].float()
                if name.startswith("cuda") and dtype == torch.bfloat16:
                    y_cuda = y
                elif y_cuda is not None and dtype == torch.bfloat16:
                    note = f"y rel-RMS vs cuda bf16: {((y - y_cuda).pow(2).mean() / y_cuda.pow(2).mean()).sqrt():.1e}"

                def fb(fn=fn, xs=xs) -> None:
                    y, s = fn(*xs)
                    (y.float().sum() + s.float().sum()).backward()

                both = cuda_time(fb, repeat=3, warmup=1)
                print(f"{name:<22}{DT_NAME[dtype]:>6}{fwd:>10.2f}{both:>10.2f}  {note}", flush=True)
            except torch.cuda.OutOfMemoryError:
                print(f"{name:<22}{DT_NAME[dtype]:>6}{'OOM':>10}{'OOM':>10}", flush=True)
            finally:
                xs = None
                torch.cuda.empty_cache()


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device: this script checks the GPU kernel; run it on a machine with one")
        return 2
    t_start = time.time()
    prop = torch.cuda.get_device_properties(0)
    print(f"# WKV7 GPU check: {prop.name}, sm_{prop.major}{prop.minor}, torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}")
    for dtype in (torch.float32, torch.bfloat16):
        t0 = time.time()
        try:
            load_extension(64, dtype)
        except KernelUnavailable as exc:
            print(f"BUILD FAILED ({DT_NAME[dtype]}): {exc}")
            return 1
        print(f"built/loaded extension N=64 {DT_NAME[dtype]} in {time.time() - t0:.1f} s", flush=True)
    ok = check_correctness()
    time_impls()
    print(f"\ncorrectness: {'all cases ok' if ok else 'FAILURES above'}; total {time.time() - t_start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
