"""The CUDA WKV7 kernel: an autograd.Function over kernels/csrc, built lazily and cached per (head size, dtype).

Nothing here compiles at import. The first call for a given head size and dtype builds the extension with
``torch.utils.cpp_extension.load`` from the sources next to this file (never from the working directory);
the build lands in torch's extension cache (``TORCH_EXTENSIONS_DIR``), so later processes reuse it. A failed
build is remembered and reported as :class:`~rwkv_data.errors.KernelUnavailable` with the build error.
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from rwkv_data.errors import KernelUnavailable

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = (CSRC / "wkv7_op.cpp", CSRC / "wkv7.cu")
HEAD_SIZES = (16, 32, 64)  # one thread per value row, state row in registers: at most 64
DTYPES = {torch.float32: "fp32", torch.bfloat16: "bf16"}
CHUNK_LEN = 16  # tokens between the states stored by the forward pass for the backward pass
NVCC_FLAGS = ("-O3", "-Xptxas=-O3", "--extra-device-vectorization")

_lock = threading.Lock()
_built: dict[tuple[int, str], ModuleType] = {}
_failed: dict[tuple[int, str], str] = {}


def build_flags(head_size: int, dtype_name: str) -> list[str]:
    """The -D flags shared by the .cu and the .cpp for one (head size, dtype) build."""
    return [f"-DWKV_N={head_size}", f"-DWKV_CHUNK={CHUNK_LEN}", "-DWKV_BF16" if dtype_name == "bf16" else "-DWKV_FP32"]


def load_extension(head_size: int, dtype: torch.dtype) -> ModuleType:
    """Build (first time) or fetch the extension for ``head_size`` and ``dtype``; raises KernelUnavailable."""
    if head_size not in HEAD_SIZES:
        raise KernelUnavailable(f"wkv7 cuda: head size {head_size} is not supported (supported: {HEAD_SIZES}); "
                                "use impl='chunked'")
    if dtype not in DTYPES:
        raise KernelUnavailable(f"wkv7 cuda: dtype {dtype} is not supported (bfloat16 or float32); "
                                "cast the inputs or use impl='chunked'")
    key = (head_size, DTYPES[dtype])
    with _lock:
        if key in _built:
            return _built[key]
        if key in _failed:
            raise KernelUnavailable(_failed[key])
        try:
            from torch.utils.cpp_extension import load

            flags = build_flags(*key)
            ext = load(
                name=f"rwkv_data_wkv7_n{head_size}_{key[1]}",
                sources=[str(p) for p in SOURCES],
                extra_cflags=["-O3", *flags],
                extra_cuda_cflags=[*NVCC_FLAGS, *flags],
                verbose=False,
            )
        except Exception as exc:  # noqa: BLE001 - any build error becomes KernelUnavailable, with the error attached
            _failed[key] = f"wkv7 cuda: building the extension {key} from {CSRC} failed: {exc}"
            raise KernelUnavailable(_failed[key]) from exc
        _built[key] = ext
        return ext


def cuda_unavailable_reason(head_size: int, dtype: torch.dtype) -> str | None:
    """Why the CUDA kernel cannot run for these inputs (``None`` if it can); may trigger the one-time build."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    try:
        load_extension(head_size, dtype)
    except KernelUnavailable as exc:
        return str(exc)
    return None


class WKV7Function(torch.autograd.Function):
    """Forward and backward of the CUDA kernel; inputs already checked, contiguous, on one CUDA device."""

    @staticmethod
    def forward(ctx: Any, r: torch.Tensor, w: torch.Tensor, k: torch.Tensor, v: torch.Tensor, a: torch.Tensor,
                b: torch.Tensor, s0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        B, T, H, N = r.shape
        ext = load_extension(N, r.dtype)
        n_ckpt = -(-T // CHUNK_LEN)
        y = torch.empty_like(r)
        sT = torch.empty(B, H, N, N, dtype=torch.float32, device=r.device)
        ckpt = torch.empty(B, H, n_ckpt, N, N, dtype=torch.float32, device=r.device)
        none = torch.empty(0, dtype=torch.float32, device=r.device)
        ext.forward(r, w, k, v, a, b, none if s0 is None else s0, y, sT, ckpt)
        ctx.save_for_backward(r, w, k, v, a, b, ckpt)
        ctx.has_s0 = s0 is not None
        return y, sT

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor | None, dsT: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        r, w, k, v, a, b, ckpt = ctx.saved_tensors
        B, T, H, N = r.shape
        ext = load_extension(N, r.dtype)
        dy = torch.zeros_like(r) if dy is None else dy.to(r.dtype).contiguous()
        none = torch.empty(0, dtype=torch.float32, device=r.device)
        dsT = none if dsT is None else dsT.float().contiguous()
        grads = [torch.empty_like(r) for _ in range(6)]  # dr, dw, dk, dv, da, db
        ds0 = torch.empty(B, H, N, N, dtype=torch.float32, device=r.device)
        scratch = torch.empty(B, H, CHUNK_LEN, N, N, dtype=torch.float32, device=r.device)
        ext.backward(r, w, k, v, a, b, dy, dsT, ckpt, scratch, *grads, ds0)
        return (*grads, ds0 if ctx.has_s0 else None)


def wkv7_cuda(
    r: torch.Tensor,
    w: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """WKV7 on the GPU (same contract as :func:`rwkv_data.kernels.wkv7`; inputs bf16 or fp32, contiguous).

    Args:
        r, w, k, v, a, b: [B, T, H, N] CUDA tensors, one dtype (bfloat16 or float32), contiguous; any T.
        state: initial state [B, H, N, N] (value, key), any float dtype (used as float32), or ``None``.

    Returns:
        ``(y, final_state)``: y [B, T, H, N] in the input dtype, final_state [B, H, N, N] float32.

    Raises:
        KernelUnavailable: no CUDA device, unsupported head size or dtype, or the build failed.
    """
    if not torch.cuda.is_available():
        raise KernelUnavailable("wkv7 cuda: no CUDA device (torch.cuda.is_available() is False); "
                                "use impl='chunked' on a CPU")
    named = {"r": r, "w": w, "k": k, "v": v, "a": a, "b": b}
    for name, x in named.items():
        if x.device.type != "cuda":
            raise ValueError(f"wkv7 cuda: {name} is on {x.device}; move the inputs to a CUDA device")
        if not x.is_contiguous():
            raise ValueError(f"wkv7 cuda: {name} is not contiguous (shape {tuple(x.shape)}, stride {x.stride()}); "
                             "call .contiguous() first")
    B, T, H, N = r.shape
    load_extension(N, r.dtype)  # raises KernelUnavailable with the reason
    if T == 0:
        s = torch.zeros(B, H, N, N, dtype=torch.float32, device=r.device) if state is None else state.float()
        return r.new_zeros(r.shape), s
    s0 = None if state is None else state.float().contiguous()
    y, sT = WKV7Function.apply(r, w, k, v, a, b, s0)
    return y, sT
