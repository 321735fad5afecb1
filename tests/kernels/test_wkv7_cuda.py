"""The CUDA WKV7 kernel: it compiles (nvcc, sm_80 + sm_90), its backward algorithm is right, it builds lazily,
and (on a GPU) it matches the float64 reference in the output, the final state and every input gradient.

Without a GPU the kernel cannot run, so its math is checked by ``emulate_kernel``: the same loops as
kernels/csrc/wkv7.cu (chunk checkpoints, recompute, row phase, column phase) in float64 PyTorch.

Run: pytest tests/kernels/test_wkv7_cuda.py -q    (GPU part: pytest -m gpu tests/kernels/test_wkv7_cuda.py)
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from wkv7_cases import NAMES, make_inputs, report, run_with_grads

from rwkv_data.errors import KernelUnavailable
from rwkv_data.kernels import cuda as kcuda
from rwkv_data.kernels import wkv7, wkv7_ref


def find_nvcc() -> str | None:
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")):
        if home and (Path(home) / "bin" / "nvcc").is_file():
            return str(Path(home) / "bin" / "nvcc")
    return shutil.which("nvcc")


NVCC = find_nvcc()


@pytest.mark.skipif(NVCC is None, reason="nvcc not found (set CUDA_HOME or put nvcc on PATH)")
@pytest.mark.parametrize("dtype_name", ["fp32", "bf16"])
def test_cuda_source_compiles_for_sm80_and_sm90(dtype_name: str, tmp_path: Path) -> None:
    obj = tmp_path / f"wkv7_{dtype_name}.o"
    cmd = [NVCC, "-c", str(kcuda.CSRC / "wkv7.cu"), "-o", str(obj), "-Werror", "all-warnings",
           "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=sm_90",
           *kcuda.NVCC_FLAGS, *kcuda.build_flags(64, dtype_name)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)}\n{out.stdout}\n{out.stderr}"
    assert obj.stat().st_size > 0
    cuobjdump = Path(NVCC).with_name("cuobjdump")
    if cuobjdump.is_file():
        listing = subprocess.run([str(cuobjdump), "--list-elf", str(obj)], capture_output=True, text=True).stdout
        assert "sm_80" in listing and "sm_90" in listing, listing


def emulate_kernel(
    r: torch.Tensor, w: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
    s0: torch.Tensor, dy: torch.Tensor, dsT: torch.Tensor, chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], torch.Tensor]:
    """wkv7.cu's forward and backward, step for step, vectorised over (B, H). Inputs [B, T, H, N]."""
    T = r.shape[1]
    x = [t.transpose(1, 2) for t in (r, w, k, v, a, b, dy)]  # [B, T, H, N] -> [B, H, T, N]
    r, w, k, v, a, b, dy = x
    d = torch.exp(-torch.exp(w))
    S, ckpt, ys = s0.clone(), [], []
    for t in range(T):  # forward: thread i = row i
        if t % chunk == 0:
            ckpt.append(S.clone())
        u = S @ a[:, :, t, :, None]
        S = S * d[:, :, t, None, :] + u * b[:, :, t, None, :] + v[:, :, t, :, None] * k[:, :, t, None, :]
        ys.append((S @ r[:, :, t, :, None])[..., 0])
    y, sT = torch.stack(ys, 2).transpose(1, 2), S
    grads = [torch.zeros_like(r) for _ in range(6)]
    dr, dw, dk, dv, da, db = grads
    dS = dsT.clone()
    for c in reversed(range(len(ckpt))):
        t0, t1 = c * chunk, min(T, c * chunk + chunk)
        Sc, prev = ckpt[c].clone(), []
        for t in range(t0, t1):  # recompute the states before each token of the chunk
            prev.append(Sc.clone())
            u = Sc @ a[:, :, t, :, None]
            Sc = Sc * d[:, :, t, None, :] + u * b[:, :, t, None, :] + v[:, :, t, :, None] * k[:, :, t, None, :]
        for t in reversed(range(t0, t1)):
            Sp = prev[t - t0]
            u = (Sp @ a[:, :, t, :, None])[..., 0]  # row phase
            G = dS + dy[:, :, t, :, None] * r[:, :, t, None, :]
            dv[:, :, t] = (G @ k[:, :, t, :, None])[..., 0]
            du = (G @ b[:, :, t, :, None])[..., 0]
            p = (Sp * dy[:, :, t, :, None]).sum(-2)  # column phase: sums over value rows
            da[:, :, t] = (Sp * du[..., None]).sum(-2)
            dd = (G * Sp).sum(-2)
            dk[:, :, t] = (G * v[:, :, t, :, None]).sum(-2)
            db[:, :, t] = (G * u[..., None]).sum(-2)
            dyu = (dy[:, :, t] * u).sum(-1, keepdim=True)
            dyv = (dy[:, :, t] * v[:, :, t]).sum(-1, keepdim=True)
            dr[:, :, t] = d[:, :, t] * p + b[:, :, t] * dyu + k[:, :, t] * dyv
            dw[:, :, t] = -dd * d[:, :, t] * torch.exp(w[:, :, t])
            dS = G * d[:, :, t, None, :] + du[..., None] * a[:, :, t, None, :]
    return y, sT, [g.transpose(1, 2) for g in grads], dS


@pytest.mark.parametrize("T", [1, 16, 37])
def test_kernel_algorithm_matches_autograd(T: int) -> None:
    xs, s0 = make_inputs(2, T, 2, 8, with_state=True)
    ref = run_with_grads(wkv7_ref, xs, s0)
    g = torch.Generator().manual_seed(1)  # the same projection run_with_grads uses
    dy = torch.randn(ref["y"].shape, generator=g, dtype=torch.float64)
    dsT = torch.randn(ref["state"].shape, generator=g, dtype=torch.float64)
    y, sT, grads, ds0 = emulate_kernel(*(x.detach() for x in xs), s0.detach(), dy, dsT, chunk=16)
    got = {"y": y, "state": sT, **{"d" + n: gr for n, gr in zip(NAMES, grads, strict=True)}, "ds0": ds0}
    for name, (mx, _) in report(ref, got).items():
        assert mx < 1e-10, f"{name}: {mx}"


def test_import_and_cpu_use_never_build_or_load_the_extension() -> None:
    code = ("import sys, torch, rwkv_data.kernels as K, rwkv_data.model as M\n"
            "x = torch.zeros(1, 3, 1, 16)\nK.wkv7(*[x] * 6)\n"
            "print('rwkv_data.kernels.cuda' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_sources_are_package_relative() -> None:
    for src in kcuda.SOURCES:
        assert src.is_file() and src.is_absolute() and src.parent == Path(kcuda.__file__).resolve().parent / "csrc"


def test_build_failure_is_kernel_unavailable_and_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.utils.cpp_extension as cpp

    calls = []

    def broken_load(**kwargs: object) -> None:
        calls.append(kwargs)
        raise RuntimeError("ninja: build stopped: subcommand failed")

    monkeypatch.setattr(cpp, "load", broken_load)
    monkeypatch.setattr(kcuda, "_failed", {})
    monkeypatch.setattr(kcuda, "_built", {})
    for _ in range(2):
        with pytest.raises(KernelUnavailable, match="subcommand failed"):
            kcuda.load_extension(64, torch.float32)
    assert len(calls) == 1  # the failure is cached
    assert calls[0]["sources"] == [str(p) for p in kcuda.SOURCES]
    assert "-DWKV_N=64" in calls[0]["extra_cuda_cflags"]
    with pytest.raises(KernelUnavailable, match="head size 48"):
        kcuda.load_extension(48, torch.float32)
    with pytest.raises(KernelUnavailable, match="float16"):
        kcuda.load_extension(64, torch.float16)


GPU_CASES = [(B, T, st) for B, T in ((1, 1), (2, 15), (2, 16), (3, 63), (2, 200)) for st in (False, True)]
GPU_TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
@pytest.mark.parametrize(("B", "T", "with_state"), GPU_CASES,
                         ids=[f"B{B}-T{T}-H4-N64-{'state' if s else 'zero'}" for B, T, s in GPU_CASES])
def test_cuda_matches_fp64_reference(B: int, T: int, with_state: bool, dtype: torch.dtype) -> None:
    xs, s0 = make_inputs(B, T, 4, 64, dtype=dtype, with_state=with_state, device="cuda")
    got = run_with_grads(lambda *a, **kw: wkv7(*a, impl="cuda", **kw), xs, s0)
    # truth from the same (rounded) inputs in float64 on the CPU
    xs64 = [x.detach().double().cpu().requires_grad_() for x in xs]
    s64 = None if s0 is None else s0.detach().double().cpu().requires_grad_()
    ref = run_with_grads(wkv7_ref, xs64, s64)
    errs = report(ref, got)
    print("\n".join(f"{n}: max-abs {m:.2e} rel-rms {e:.2e}" for n, (m, e) in errs.items()))
    bad = [n for n, (_, e) in errs.items() if not e <= GPU_TOL[dtype]]
    assert not bad, f"{bad} exceed {GPU_TOL[dtype]}: {errs}"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16"])
def test_cuda_writes_every_output_element_and_nothing_beyond(dtype: torch.dtype) -> None:
    """Outputs start as NaN inside NaN guard bands: afterwards all are finite and every guard is still NaN."""
    B, T, H, N = 2, 37, 2, 64
    xs, _ = make_inputs(B, T, H, N, dtype=dtype, device="cuda")
    r, w, k, v, a, b = (x.detach() for x in xs)
    ext = kcuda.load_extension(N, dtype)
    guards = []

    def poisoned(shape: tuple[int, ...], dt: torch.dtype) -> torch.Tensor:
        n = math.prod(shape)
        buf = torch.full((n + 4096,), float("nan"), dtype=dt, device="cuda")
        guards.append(buf[n:])
        return buf[:n].view(shape)

    n_ckpt = -(-T // kcuda.CHUNK_LEN)
    none = torch.empty(0, dtype=torch.float32, device="cuda")
    y, sT = poisoned((B, T, H, N), dtype), poisoned((B, H, N, N), torch.float32)
    ckpt = poisoned((B, H, n_ckpt, N, N), torch.float32)
    ext.forward(r, w, k, v, a, b, none, y, sT, ckpt)
    grads = [poisoned((B, T, H, N), dtype) for _ in range(6)]
    ds0 = poisoned((B, H, N, N), torch.float32)
    scratch = poisoned((B, H, kcuda.CHUNK_LEN, N, N), torch.float32)
    ext.backward(r, w, k, v, a, b, torch.randn_like(r), none, ckpt, scratch, *grads, ds0)
    torch.cuda.synchronize()
    for name, t in zip(["y", "sT", "ckpt", *NAMES, "ds0"], [y, sT, ckpt, *grads, ds0], strict=True):
        assert torch.isfinite(t).all(), f"{name} has unwritten (NaN) elements"
    assert all(torch.isnan(g).all() for g in guards), "a kernel wrote past the end of an output"
