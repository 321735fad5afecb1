"""The WKV7 recurrence as a per-token loop: the specification every other implementation is tested against.

Conventions (shapes, what ``w``, ``a`` and ``b`` are, the state layout) are in ``kernels/WKV7.md``. The loop
runs in float32, or in float64 when any input is float64 (the tests use that as the ground truth).
"""

from __future__ import annotations

import torch


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 if any given tensor is float64, else float32 (the state is never kept in a narrower type)."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def wkv7_ref(
    r: torch.Tensor,
    w: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    b: torch.Tensor,
    state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the WKV7 recurrence one token at a time (differentiable by autograd, slow).

    Args:
        r, w, k, v, a, b: [B, T, H, N]; ``w`` is RWKV-LM's kernel input (decay = exp(-exp(w))), ``a`` = -kk and
            ``b`` = kk * iclr as RWKV-LM passes them.
        state: optional initial state [B, H, N, N] (value index, key index); zeros when ``None``.

    Returns:
        ``(y, final_state)``: y [B, T, H, N] in the dtype of ``r``; final_state [B, H, N, N] in float32
        (float64 when an input is float64).

    >>> x = torch.zeros(1, 3, 1, 4)
    >>> y, s = wkv7_ref(x, x, x, x, x, x)
    >>> tuple(y.shape), tuple(s.shape)
    ((1, 3, 1, 4), (1, 1, 4, 4))
    """
    B, T, H, N = r.shape
    dt = compute_dtype(r, w, k, v, a, b, state)
    S = torch.zeros(B, H, N, N, dtype=dt, device=r.device) if state is None else state.to(dt)
    decay = torch.exp(-torch.exp(w.to(dt)))  # [B, T, H, N], per key channel
    r_, k_, v_, a_, b_ = (x.to(dt) for x in (r, k, v, a, b))
    ys = []
    for t in range(T):
        sa = S @ a_[:, t, :, :, None]  # [B, H, N, 1]: S_{t-1} a_t, one number per value row
        S = (
            S * decay[:, t, :, None, :]  # scale key column j by d_j
            + sa @ b_[:, t, :, None, :]  # (S a) b^T
            + v_[:, t, :, :, None] @ k_[:, t, :, None, :]  # v k^T
        )
        ys.append((S @ r_[:, t, :, :, None]).squeeze(-1))  # y_t = S_t r_t -> [B, H, N]
    y = torch.stack(ys, dim=1) if ys else torch.zeros(B, 0, H, N, dtype=dt, device=r.device)  # [B, T, H, N]
    return y.to(r.dtype), S
