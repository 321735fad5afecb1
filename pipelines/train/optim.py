"""RWKV-LM's optimiser recipe: parameter groups, the warm-up + cosine schedule, and L2Wrap.

Follows ``RWKV-v7/train_temp`` (``src/model.py configure_optimizers``, ``src/trainer.py``): Adam(W) with
betas (0.9, 0.99) and eps 1e-18; weight decay only on >= 2-D ``.weight`` tensors (embedding, head, projections;
not the LoRA factors ``w1``/``a1``/..., which carry no ``.weight`` suffix); ``att.w0`` at 2x the learning rate;
the learning rate ramps 0.01 -> 1 over ``warmup_steps`` and follows a cosine from ``lr_init`` to ``lr_final`` over
the token budget (progress measured in tokens after warm-up, as RWKV-LM does with ``my_exit_tokens``).
"""

from __future__ import annotations

import math
from typing import Any

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Three groups of trainable parameters: ``decay`` (matrices), ``1x`` (the rest) and ``2x`` (``att.w0``).

    Each group carries ``lr_scale`` (1 or 2) which :func:`set_lr` multiplies into the scheduled rate. Frozen
    parameters (``requires_grad=False``) are left out; empty groups are dropped.
    """
    decay, one, two = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith("att.w0"):
            two.append(p)
        elif p.squeeze().dim() >= 2 and name.endswith(".weight") and weight_decay > 0:
            decay.append(p)
        else:
            one.append(p)
    groups = [
        {"name": "decay", "params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
        {"name": "1x", "params": one, "weight_decay": 0.0, "lr_scale": 1.0},
        {"name": "2x", "params": two, "weight_decay": 0.0, "lr_scale": 2.0},
    ]
    return [g for g in groups if g["params"]]


def make_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                   eps: float) -> torch.optim.Optimizer:
    """AdamW over :func:`param_groups` (RWKV-LM uses DeepSpeed's FusedAdam with ``adam_w_mode`` when wd > 0)."""
    groups = param_groups(model, weight_decay)
    if not groups:
        raise ValueError("the model has no trainable parameters: check the freezing options")
    # foreach=False: the per-tensor loop gives the same bits on every run and after a resume.
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, weight_decay=0.0, foreach=False)


def lr_at(step: int, tokens_per_step: int, lr_init: float, lr_final: float, warmup_steps: int,
          token_budget: int) -> float:
    """Learning rate of optimizer step ``step`` (0-based), as RWKV-LM's ``train_callback.on_train_batch_start``.

    >>> lr_at(0, 100, 1e-3, 1e-4, 10, 10_000)  # first warm-up step: 1% of lr_init
    1e-05
    >>> round(lr_at(10_000, 100, 1e-3, 1e-4, 10, 10_000), 12)  # past the budget: lr_final
    0.0001
    """
    if lr_final == lr_init or token_budget <= 0:
        lr = lr_init
    else:
        tokens = step * tokens_per_step
        warm = warmup_steps * tokens_per_step
        progress = (tokens - warm) / max(1, token_budget - warm)
        progress = min(1.0, max(0.0, progress))
        f = lr_final / lr_init
        lr = lr_init * ((0.5 + f / 2) + (0.5 - f / 2) * math.cos(math.pi * progress))
    if step < warmup_steps:
        lr *= 0.01 + 0.99 * step / warmup_steps
    return lr


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to ``lr * lr_scale``."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)


class L2Wrap(torch.autograd.Function):
    """Identity on the loss; in backward adds ``1e-4 / (B*T) * max_logit`` to each position's arg-max logit.

    This keeps logits from drifting large (RWKV-LM ``L2Wrap``). Unlike RWKV-LM the extra gradient is scaled by
    the incoming gradient, so dividing the loss for gradient accumulation scales it too (identical at scale 1).
    """

    @staticmethod
    def forward(ctx: Any, loss: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(logits)
        return loss

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        (logits,) = ctx.saved_tensors
        factor = 1e-4 / (logits.shape[0] * logits.shape[1])
        maxx, ids = torch.max(logits, -1, keepdim=True)
        gy = torch.zeros_like(logits)
        gy.scatter_(-1, ids, maxx * factor * grad_output)
        return grad_output, gy


def lm_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean token cross-entropy of logits [B, T, V] against targets [B, T] (fp32), wrapped in L2Wrap."""
    loss = torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1))
    return L2Wrap.apply(loss, logits)
