"""rwkv_data.kernels: the WKV7 recurrence (reference, chunked, CUDA) behind one function, :func:`wkv7`.

Conventions (what ``w``, ``a``, ``b`` are, shapes, state layout, numerics) are in ``kernels/WKV7.md``.
Importing this package never builds or loads the CUDA extension; that happens on the first CUDA call.
"""

from __future__ import annotations

import logging

import torch

from rwkv_data.kernels.chunked import wkv7_chunked
from rwkv_data.kernels.reference import wkv7_ref

__all__ = ["IMPLS", "wkv7", "wkv7_chunked", "wkv7_ref"]

IMPLS = ("auto", "reference", "chunked", "cuda")
log = logging.getLogger(__name__)
_logged: set[str] = set()


def _log_once(msg: str) -> None:
    if msg not in _logged:
        _logged.add(msg)
        log.info(msg)


def check_inputs(
    r: torch.Tensor,
    w: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    state: torch.Tensor | None,
) -> None:
    """Raise ``ValueError``/``TypeError`` naming the offending tensor unless the inputs follow WKV7.md."""
    named = {"r": r, "w": w, "k": k, "v": v, "a": a, "b": b}
    for name, x in named.items():
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"wkv7: {name} must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 4:
            raise ValueError(f"wkv7: {name} must be [B, T, H, N], got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"wkv7: {name} must be a floating-point tensor, got {x.dtype}")
    for name, x in named.items():
        if x.shape != r.shape:
            raise ValueError(f"wkv7: {name} has shape {tuple(x.shape)} but r has {tuple(r.shape)}; all six must match")
        if x.dtype != r.dtype:
            raise TypeError(f"wkv7: {name} is {x.dtype} but r is {r.dtype}; pass all six in one dtype")
        if x.device != r.device:
            raise ValueError(f"wkv7: {name} is on {x.device} but r is on {r.device}")
    if state is not None:
        B, _, H, N = r.shape
        if not isinstance(state, torch.Tensor):
            raise TypeError(f"wkv7: state must be a torch.Tensor or None, got {type(state).__name__}")
        if tuple(state.shape) != (B, H, N, N):
            raise ValueError(f"wkv7: state must be [B, H, N, N] = {(B, H, N, N)}, got {tuple(state.shape)}")
        if state.device != r.device:
            raise ValueError(f"wkv7: state is on {state.device} but r is on {r.device}")


def wkv7(
    r: torch.Tensor,
    w: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    state: torch.Tensor | None = None,
    impl: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """The WKV7 recurrence S_t = S_{t-1} (diag(exp(-exp(w_t))) + a_t b_t^T) + v_t k_t^T, y_t = S_t r_t.

    Args:
        r, w, k, v, a, b: [B, T, H, N], one dtype (float32, bfloat16, float16 or float64), one device.
            ``w`` as RWKV-LM passes it to its kernel: decay = exp(-exp(w)) (the model computes
            w = -softplus(-w_raw) - 0.5); ``a`` = -kk and ``b`` = kk * iclr (RWKV-LM's ``-kk, kk*a``).
        state: initial state [B, H, N, N] (value index, key index), or ``None`` for zeros.
        impl: ``"auto"`` (cuda for CUDA tensors, else chunked; logged once), ``"reference"``, ``"chunked"`` or
            ``"cuda"`` (raises :class:`~rwkv_data.errors.KernelUnavailable` without a GPU or on a build failure).

    Returns:
        ``(y, final_state)``: y [B, T, H, N] in the input dtype, final_state [B, H, N, N] float32
        (float64 for float64 inputs). Differentiable in all seven inputs.

    >>> x = torch.zeros(1, 4, 2, 8)
    >>> y, s = wkv7(x, x, x, x, x, x, impl="chunked")
    >>> tuple(y.shape), tuple(s.shape)
    ((1, 4, 2, 8), (1, 2, 8, 8))
    """
    if impl not in IMPLS:
        raise ValueError(f"wkv7: impl must be one of {IMPLS}, got {impl!r}")
    check_inputs(r, w, k, v, a, b, state)
    if impl == "auto":
        impl = _choose(r)
    if impl == "reference":
        return wkv7_ref(r, w, k, v, a, b, state)
    if impl == "chunked":
        return wkv7_chunked(r, w, k, v, a, b, state)
    from rwkv_data.kernels.cuda import wkv7_cuda  # lazy: the extension is built on the first call, not here

    return wkv7_cuda(r, w, k, v, a, b, state)


def _choose(r: torch.Tensor) -> str:
    if r.device.type != "cuda":
        _log_once(f"wkv7: impl=auto -> chunked (inputs on {r.device.type})")
        return "chunked"
    from rwkv_data.kernels.cuda import cuda_unavailable_reason

    reason = cuda_unavailable_reason(r.shape[-1], r.dtype)
    if reason is None:
        _log_once("wkv7: impl=auto -> cuda")
        return "cuda"
    _log_once(f"wkv7: impl=auto -> chunked, because the CUDA kernel cannot run: {reason}")
    return "chunked"

