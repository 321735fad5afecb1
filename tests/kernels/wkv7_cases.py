"""Shared helpers for the WKV7 tests and benchmarks: realistic inputs, fp64 ground truth, error reports.

Inputs follow the model's conventions (kernels/WKV7.md): w = -softplus(-w_raw) - 0.5, a = -kk, b = kk * iclr
with kk unit-norm per head, so the decay lies in (0.545, 1) as in a trained RWKV-7.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

NAMES = ("r", "w", "k", "v", "a", "b")


def make_inputs(
    B: int, T: int, H: int, N: int, *, dtype: torch.dtype = torch.float64, seed: int = 0, with_state: bool = False,
    device: str = "cpu",
) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Six [B, T, H, N] leaf tensors (r, w, k, v, a, b) and an optional [B, H, N, N] fp32/fp64 state."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    r = rand(B, T, H, N)
    w = -F.softplus(-(rand(B, T, H, N) * 2.0 - 1.0)) - 0.5
    k = rand(B, T, H, N) * 0.3
    v = rand(B, T, H, N)
    kk = F.normalize(rand(B, T, H, N), dim=-1)
    iclr = torch.rand(B, T, H, N, generator=g, dtype=torch.float64)
    xs = [x.to(device=device, dtype=dtype).requires_grad_() for x in (r, w, k, v, -kk, kk * iclr)]
    state = None
    if with_state:
        sdt = torch.float64 if dtype == torch.float64 else torch.float32
        state = (rand(B, H, N, N) * 0.5).to(device=device, dtype=sdt).requires_grad_()
    return xs, state


def run_with_grads(
    fn: Callable[..., tuple[torch.Tensor, torch.Tensor]], xs: list[torch.Tensor], state: torch.Tensor | None,
    seed: int = 1, **kwargs: object,
) -> dict[str, torch.Tensor]:
    """y, final state and the gradient of a fixed random projection of both w.r.t. every input (float64)."""
    y, s = fn(*xs, state=state, **kwargs)
    g = torch.Generator().manual_seed(seed)
    gy = torch.randn(y.shape, generator=g, dtype=torch.float64).to(y.device)
    gs = torch.randn(s.shape, generator=g, dtype=torch.float64).to(s.device)
    loss = (y.double() * gy).sum() + (s.double() * gs).sum()
    inputs = list(xs) + ([state] if state is not None else [])
    grads = torch.autograd.grad(loss, inputs)
    out = {"y": y.detach().double().cpu(), "state": s.detach().double().cpu()}
    for name, gr in zip([*NAMES, "s0"], grads, strict=False):
        out["d" + name] = gr.double().cpu()
    return out


def rel_err(ref: torch.Tensor, got: torch.Tensor) -> float:
    """RMS of the difference over RMS of the reference (0 when both are 0)."""
    den = ref.pow(2).mean().sqrt().item()
    num = (ref - got).pow(2).mean().sqrt().item()
    return num / den if den > 0 else num


def report(ref: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Per tensor: (max abs difference, relative RMS error)."""
    return {k: ((ref[k] - got[k]).abs().max().item() if ref[k].numel() else 0.0, rel_err(ref[k], got[k]))
            for k in ref}
