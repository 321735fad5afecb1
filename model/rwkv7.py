"""RWKV-7 "Goose" (x070) as in RWKV-LM's train_temp, with the parameter names of the official World checkpoints.

GPT mode (``forward``) runs every projection over [B, T] at once and the WKV recurrence through
``rwkv_data.kernels.wkv7`` (chunked on a CPU, the CUDA kernel on a GPU); RNN mode (``step``) runs one token
with an explicit state update. Both carry the same state (``RWKV7State``), so a prompt can be read in GPT mode
and continued token by token. The recurrence and its conventions: kernels/WKV7.md.
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from rwkv_data.kernels import wkv7
from rwkv_data.model.config import RWKV7Config

# d = exp(-exp(-0.5) * sigmoid(w_raw)) = exp(-exp(w)) with w = -softplus(-w_raw) - 0.5: the decay stays in
# (0.545, 1), which bounds the chunked form's exponents and the error of backstepping kernels (WKV7.md).
DECAY_OFFSET = 0.5
LN_X_EPS = 64e-5  # GroupNorm eps of RWKV-LM's ln_x (head_size_divisor 8 squared, times 1e-5)


@dataclasses.dataclass
class RWKV7State:
    """Recurrent state of the whole model for a batch (what RNN mode carries between tokens).

    att_x_prev [L, B, C] and ffn_x_prev [L, B, C]: the previous token's normed input of each time-mix and
    channel-mix (the token shift); att_kv [L, B, H, N, N] float32: the WKV state, value index by key index.
    """

    att_x_prev: torch.Tensor
    att_kv: torch.Tensor
    ffn_x_prev: torch.Tensor

    def detach(self) -> RWKV7State:
        """The same state cut from the autograd graph (for truncated BPTT)."""
        return RWKV7State(self.att_x_prev.detach(), self.att_kv.detach(), self.ffn_x_prev.detach())

    def clone(self) -> RWKV7State:
        """A copy that later in-place edits of either side do not reach."""
        return RWKV7State(self.att_x_prev.clone(), self.att_kv.clone(), self.ffn_x_prev.clone())


def _ortho(shape: tuple[int, int], scale: float) -> torch.Tensor:
    # RWKV-LM's ortho_init: orthogonal with gain sqrt(rows/cols) when tall, times scale
    x = torch.empty(shape)
    gain = math.sqrt(shape[0] / shape[1]) if shape[0] > shape[1] else 1.0
    return nn.init.orthogonal_(x, gain=gain * scale)


class TimeMix(nn.Module):
    """``blocks.i.att``: token shift, r/w/k/v/a/g projections, WKV7, GroupNorm, r_k bonus, output gate."""

    def __init__(self, cfg: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        C, H, N, L = cfg.n_embd, cfg.n_head, cfg.head_size, cfg.n_layer
        self.layer_id, self.n_head, self.head_size = layer_id, H, N
        ratio_0_to_1 = layer_id / (L - 1) if L > 1 else 0.0
        ratio_1_to_almost0 = 1.0 - layer_id / L
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        n = torch.arange(C, dtype=torch.float32)
        linear = n / (C - 1) - 0.5 if C > 1 else torch.zeros(C)
        zigzag = ((n % N) - (N - 1) / 2) / ((N - 1) / 2) if N > 1 else torch.zeros(C)
        zigzag = zigzag * zigzag.abs()
        www = -6 + 6 * (n / max(C - 1, 1)) ** (1 + 1 * ratio_0_to_1**0.3)

        def mix(p: float) -> nn.Parameter:
            return nn.Parameter(1.0 - torch.pow(ddd, p * ratio_1_to_almost0))

        self.x_r, self.x_w, self.x_k = mix(0.2), mix(0.9), mix(0.7)
        self.x_v, self.x_a, self.x_g = mix(0.7), mix(0.9), mix(0.2)
        dw, da, dv, dg = cfg.lora_ranks
        self.w0 = nn.Parameter((www + 0.5 + zigzag * 2.5).view(1, 1, C))  # 0.5 undoes the softplus offset
        self.w1 = nn.Parameter(torch.zeros(C, dw))
        self.w2 = nn.Parameter(_ortho((dw, C), 0.1))
        self.a0 = nn.Parameter((-0.19 + zigzag * 0.3 + linear * 0.4).view(1, 1, C))
        self.a1 = nn.Parameter(torch.zeros(C, da))
        self.a2 = nn.Parameter(_ortho((da, C), 0.1))
        # value residual; present (unused) in layer 0 too, as train_temp writes them
        self.v0 = nn.Parameter((0.73 - linear * 0.4).view(1, 1, C))
        self.v1 = nn.Parameter(torch.zeros(C, dv))
        self.v2 = nn.Parameter(_ortho((dv, C), 0.1))
        self.g1 = nn.Parameter(torch.zeros(C, dg))
        self.g2 = nn.Parameter(_ortho((dg, C), 0.1))
        self.k_k = nn.Parameter((0.71 - linear * 0.1).view(1, 1, C))
        self.k_a = nn.Parameter(torch.full((1, 1, C), 1.02))
        self.r_k = nn.Parameter(torch.full((H, N), -0.04))

        self.receptance = nn.Linear(C, C, bias=False)
        self.key = nn.Linear(C, C, bias=False)
        self.value = nn.Linear(C, C, bias=False)
        self.output = nn.Linear(C, C, bias=False)
        self.ln_x = nn.GroupNorm(H, C, eps=LN_X_EPS)
        with torch.no_grad():
            self.receptance.weight.uniform_(-0.5 / C**0.5, 0.5 / C**0.5)
            self.key.weight.uniform_(-0.05 / C**0.5, 0.05 / C**0.5)
            self.value.weight.uniform_(-0.5 / C**0.5, 0.5 / C**0.5)
            self.output.weight.zero_()
            self.ln_x.weight.fill_(((1 + layer_id) / L) ** 0.7)

    def _project(
        self, x: torch.Tensor, x_prev: torch.Tensor, v_first: torch.Tensor | None
    ) -> tuple[torch.Tensor, ...]:
        """Everything before the recurrence, for any leading shape [..., C] (x_prev: the shifted input)."""
        xx = x_prev - x
        C = x.shape[-1]  # the [1, 1, C] parameters below are viewed as [C] so that x may be [B, C] or [B, T, C]
        xr, xw, xk = x + xx * self.x_r.view(C), x + xx * self.x_w.view(C), x + xx * self.x_k.view(C)
        xv, xa, xg = x + xx * self.x_v.view(C), x + xx * self.x_a.view(C), x + xx * self.x_g.view(C)
        r = self.receptance(xr)
        w_raw = self.w0.view(C) + torch.tanh(xw @ self.w1) @ self.w2
        w = -F.softplus(-w_raw) - DECAY_OFFSET  # decay = exp(-exp(w)) in (0.545, 1)
        k = self.key(xk)
        v = self.value(xv)
        if self.layer_id == 0:
            v_first = v
        else:
            assert v_first is not None
            v = v + (v_first - v) * torch.sigmoid(self.v0.view(C) + (xv @ self.v1) @ self.v2)
        a = torch.sigmoid(self.a0.view(C) + (xa @ self.a1) @ self.a2)  # in-context learning rate
        g = torch.sigmoid(xg @ self.g1) @ self.g2
        shape = x.shape[:-1] + (self.n_head, self.head_size)
        kk = F.normalize((k * self.k_k.view(C)).view(shape), dim=-1, p=2.0).view(x.shape)  # [..., H, N] -> [..., C]
        k = k * (1 + (a - 1) * self.k_a.view(C))
        return r, w, k, v, a, g, kk, v_first

    def _finish(
        self, y: torch.Tensor, r: torch.Tensor, k: torch.Tensor, v: torch.Tensor, g: torch.Tensor
    ) -> torch.Tensor:
        """GroupNorm per head, the r_k bonus, the output gate and projection; all [..., C]."""
        C = y.shape[-1]
        lead = y.shape[:-1]
        y = self.ln_x(y.reshape(-1, C)).view(y.shape)  # [..., C] -> [M, C] for GroupNorm -> back
        heads = lead + (self.n_head, self.head_size)
        bonus = (r.view(heads) * k.view(heads) * self.r_k).sum(dim=-1, keepdim=True)  # [..., H, 1]
        y = y + (bonus * v.view(heads)).view(y.shape)  # [..., H, N] -> [..., C]
        return self.output(y * g)

    def forward(
        self, x: torch.Tensor, v_first: torch.Tensor | None, x_prev: torch.Tensor, kv: torch.Tensor | None,
        impl: str,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, T, C], x_prev [B, C] (token before x[:, 0]), kv [B, H, N, N] or None -> (out, v_first, kv)."""
        B, T, C = x.shape
        shifted = torch.cat([x_prev.unsqueeze(1), x[:, :-1]], dim=1)  # [B, T, C]: token shift by one
        r, w, k, v, a, g, kk, v_first = self._project(x, shifted, v_first)
        heads = (B, T, self.n_head, self.head_size)  # [B, T, C] -> [B, T, H, N] for the kernel
        # Under autocast r, k, v come out of the Linears in bf16 while w, kk, a stay fp32; the kernel takes one
        # dtype, and like RWKV-LM we feed it the projections' dtype (the CUDA kernel then runs in bf16).
        dt = r.dtype
        r_, w_, k_, v_, a_, b_ = (t.to(dt).view(heads) for t in (r, w, k, v, -kk, kk * a))
        y, kv = wkv7(r_, w_, k_, v_, a_, b_, state=kv, impl=impl)
        return self._finish(y.reshape(B, T, C), r, k, v, g), v_first, kv  # y: [B, T, H, N] -> [B, T, C]

    def step(
        self, x: torch.Tensor, v_first: torch.Tensor | None, x_prev: torch.Tensor, kv: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One token: x [B, C], x_prev [B, C], kv [B, H, N, N] float32 -> (out [B, C], v_first, new kv)."""
        B, C = x.shape
        H, N = self.n_head, self.head_size
        r, w, k, v, a, g, kk, v_first = self._project(x, x_prev, v_first)
        f32 = [t.float().view(B, H, N) for t in (r, w, k, v, -kk, kk * a)]  # [B, C] -> [B, H, N]
        r_, w_, k_, v_, a_, b_ = f32
        decay = torch.exp(-torch.exp(w_))
        sa = kv @ a_.unsqueeze(-1)  # [B, H, N, 1]: S a
        kv = kv * decay.unsqueeze(-2) + sa @ b_.unsqueeze(-2) + v_.unsqueeze(-1) @ k_.unsqueeze(-2)
        y = (kv @ r_.unsqueeze(-1)).view(B, C).to(x.dtype)  # [B, H, N, 1] -> [B, C]
        return self._finish(y, r, k, v, g), v_first, kv


class ChannelMix(nn.Module):
    """``blocks.i.ffn``: token shift, then value(relu(key(x))^2) with a 4*C hidden layer.

    4*C is hard-coded in RWKV-LM's x070 (train.py's dim_ffn = 3.5*C is computed but unused) and every official
    checkpoint has ffn.key [4C, C]; dim_ffn is still read from the checkpoint. No receptance gate (x060 had one).
    """

    def __init__(self, cfg: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        C = cfg.n_embd
        ratio_1_to_almost0 = 1.0 - layer_id / cfg.n_layer
        ddd = (torch.arange(C, dtype=torch.float32) / C).view(1, 1, C)
        self.x_k = nn.Parameter(1.0 - torch.pow(ddd, ratio_1_to_almost0**4))
        self.key = nn.Linear(C, cfg.dim_ffn, bias=False)  # type: ignore[arg-type]
        self.value = nn.Linear(cfg.dim_ffn, C, bias=False)  # type: ignore[arg-type]
        with torch.no_grad():
            self.key.weight.uniform_(-0.5 / C**0.5, 0.5 / C**0.5)
            self.value.weight.zero_()

    def forward(self, x: torch.Tensor, x_prev: torch.Tensor) -> torch.Tensor:
        """x [..., C] with x_prev the previous token's input, same shape -> [..., C]."""
        k = x + (x_prev - x) * self.x_k.view(-1)  # [1, 1, C] as [C]: x may be [B, C] or [B, T, C]
        return self.value(torch.relu(self.key(k)) ** 2)


class Block(nn.Module):
    """``blocks.i``: pre-LN residual block; layer 0 also owns ``ln0`` (applied to the embeddings)."""

    def __init__(self, cfg: RWKV7Config, layer_id: int) -> None:
        super().__init__()
        C = cfg.n_embd
        if layer_id == 0:
            self.ln0 = nn.LayerNorm(C)
        self.ln1 = nn.LayerNorm(C)
        self.ln2 = nn.LayerNorm(C)
        self.att = TimeMix(cfg, layer_id)
        self.ffn = ChannelMix(cfg, layer_id)


class RWKV7(nn.Module):
    """RWKV-7 x070 language model; ``state_dict()`` keys and shapes are those of official checkpoints.

    Args:
        config: the architecture (:class:`RWKV7Config`).
        impl: WKV implementation for GPT mode, passed to :func:`rwkv_data.kernels.wkv7` (``"auto"``: CUDA
            kernel on a GPU, chunked PyTorch elsewhere). An attribute; may be changed later.

    >>> m = RWKV7(RWKV7Config(vocab_size=50, n_embd=64, n_layer=2, head_size=32))
    >>> tuple(m(torch.tensor([[1, 2, 3]])).shape)
    (1, 3, 50)
    """

    def __init__(self, config: RWKV7Config, impl: str = "auto") -> None:
        super().__init__()
        self.config, self.impl = config, impl
        C, V = config.n_embd, config.vocab_size
        self.emb = nn.Embedding(V, C)
        self.blocks = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.ln_out = nn.LayerNorm(C)
        self.head = nn.Linear(C, V, bias=False)
        # RWKV-LM generate_init_weight: tiny embeddings (ln0 follows), orthogonal head with gain 0.5*sqrt(V/C).
        # The README warns that training is sensitive to this init (fla's default init: loss 3.67 vs 2.97).
        with torch.no_grad():
            nn.init.uniform_(self.emb.weight, a=-1e-4, b=1e-4)
            nn.init.orthogonal_(self.head.weight, gain=0.5 * math.sqrt(V / C) if V > C else 0.5)

    def init_state(self, batch: int) -> RWKV7State:
        """A zero state for ``batch`` sequences on the model's device (token shifts in the model dtype)."""
        cfg, p = self.config, self.emb.weight
        L, C, H, N = cfg.n_layer, cfg.n_embd, cfg.n_head, cfg.head_size
        return RWKV7State(
            att_x_prev=torch.zeros(L, batch, C, dtype=p.dtype, device=p.device),
            att_kv=torch.zeros(L, batch, H, N, N, dtype=torch.float32, device=p.device),
            ffn_x_prev=torch.zeros(L, batch, C, dtype=p.dtype, device=p.device),
        )

    def forward(
        self, tokens: torch.Tensor, state: RWKV7State | None = None, return_state: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, RWKV7State]:
        """GPT mode. tokens [B, T] int -> logits [B, T, V] (and the state after the last token if asked).

        Args:
            tokens: [B, T] token ids.
            state: where to continue from (``None``: zeros, as in training, where no state crosses samples).
            return_state: also return the :class:`RWKV7State` after ``tokens`` (a new object; ``state`` is not
                modified). Without it only the logits are returned.
        """
        B, T = tokens.shape
        if T == 0:  # nothing to read: empty logits, the state unchanged
            logits = self.head.weight.new_zeros(B, 0, self.config.vocab_size)
            if not return_state:
                return logits
            return logits, (state.clone() if state is not None else self.init_state(B))
        # ln0 right after the embedding is why RWKV-LM can init emb at +-1e-4: the norm rescales it; inference
        # code folds ln0 into emb.weight once, we keep it as a module so state_dict stays the official one
        x = self.blocks[0].ln0(self.emb(tokens))  # [B, T, C]
        zeros = x.new_zeros(B, x.shape[-1])
        # v_first: layer 0's values, mixed into every later layer's v (value residual); threaded, not stored
        v_first = None
        att_x, att_kv, ffn_x = [], [], []
        for i, blk in enumerate(self.blocks):
            h = blk.ln1(x)
            prev = state.att_x_prev[i] if state is not None else zeros
            kv0 = state.att_kv[i] if state is not None else None
            out, v_first, kv = blk.att(h, v_first, prev.to(h.dtype), kv0, self.impl)
            x = x + out
            att_x.append(h[:, -1])
            att_kv.append(kv)
            h = blk.ln2(x)
            prev = state.ffn_x_prev[i] if state is not None else zeros
            shifted = torch.cat([prev.to(h.dtype).unsqueeze(1), h[:, :-1]], dim=1)  # [B, T, C]
            x = x + blk.ffn(h, shifted)
            ffn_x.append(h[:, -1])
        logits = self.head(self.ln_out(x))
        if not return_state:
            return logits
        new = RWKV7State(torch.stack(att_x), torch.stack(att_kv).float(), torch.stack(ffn_x))  # [L, B, ...]
        return logits, new

    def step(self, token: torch.Tensor, state: RWKV7State | None = None) -> tuple[torch.Tensor, RWKV7State]:
        """RNN mode: one token per sequence. token [B] int -> (logits [B, V], new state); ``state`` is kept."""
        B = token.shape[0]
        state = self.init_state(B) if state is None else state
        x = self.blocks[0].ln0(self.emb(token))  # [B, C]
        v_first = None
        att_x, att_kv, ffn_x = [], [], []
        for i, blk in enumerate(self.blocks):
            h = blk.ln1(x)
            out, v_first, kv = blk.att.step(h, v_first, state.att_x_prev[i].to(h.dtype), state.att_kv[i].float())
            x = x + out
            att_x.append(h)
            att_kv.append(kv)
            h = blk.ln2(x)
            x = x + blk.ffn(h, state.ffn_x_prev[i].to(h.dtype))
            ffn_x.append(h)
        logits = self.head(self.ln_out(x))
        return logits, RWKV7State(torch.stack(att_x), torch.stack(att_kv), torch.stack(ffn_x))
