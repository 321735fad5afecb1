"""An independent x070 specification in numpy (float64, one token at a time), written from the equations in
../shared/docs/rwkv7.md section 1.3 in the style of RWKV-LM's rwkv_v7_numpy.py. It shares no code with
rwkv_data.model: it reads the official state-dict keys and nothing else.
"""

from __future__ import annotations

import numpy as np


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean()
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean() + eps) * w + b


def group_norm(x: np.ndarray, H: int, w: np.ndarray, b: np.ndarray, eps: float = 64e-5) -> np.ndarray:
    g = x.reshape(H, -1)
    mu = g.mean(axis=1, keepdims=True)
    g = (g - mu) / np.sqrt(((g - mu) ** 2).mean(axis=1, keepdims=True) + eps)
    return g.reshape(-1) * w + b


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class NumpyRWKV7:
    """RNN-mode x070 from a state dict of numpy arrays (float64)."""

    def __init__(self, sd: dict[str, np.ndarray]) -> None:
        self.z = {k: v.astype(np.float64).squeeze() if not k.endswith("r_k") else v.astype(np.float64)
                  for k, v in sd.items()}
        self.V, self.C = sd["emb.weight"].shape
        self.H, self.N = sd["blocks.0.att.r_k"].shape
        self.L = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))

    def zero_state(self) -> list[np.ndarray]:
        s = []
        for _ in range(self.L):  # per layer: att x_prev, wkv state [H, N(value), N(key)], ffn x_prev
            s += [np.zeros(self.C), np.zeros((self.H, self.N, self.N)), np.zeros(self.C)]
        return s

    def time_mix(self, i: int, x: np.ndarray, x_prev: np.ndarray, S: np.ndarray, v_first: np.ndarray | None):
        z, H, N = self.z, self.H, self.N
        p = f"blocks.{i}.att."
        dx = x_prev - x
        xr, xw, xk, xv, xa, xg = (x + dx * z[p + "x_" + c] for c in "rwkvag")
        r = z[p + "receptance.weight"] @ xr
        k = z[p + "key.weight"] @ xk
        v = z[p + "value.weight"] @ xv
        decay = np.exp(-np.exp(-0.5) * sigmoid(z[p + "w0"] + np.tanh(xw @ z[p + "w1"]) @ z[p + "w2"]))
        iclr = sigmoid(z[p + "a0"] + (xa @ z[p + "a1"]) @ z[p + "a2"])
        gate = sigmoid(xg @ z[p + "g1"]) @ z[p + "g2"]
        if i == 0:
            v_first = v
        else:
            v = v + (v_first - v) * sigmoid(z[p + "v0"] + (xv @ z[p + "v1"]) @ z[p + "v2"])
        kk = (k * z[p + "k_k"]).reshape(H, N)
        kk = kk / np.maximum(np.linalg.norm(kk, axis=1, keepdims=True), 1e-12)
        k = k * (1 + (iclr - 1) * z[p + "k_a"])
        r_, k_, v_, d_, a_ = (t.reshape(H, N) for t in (r, k, v, decay, iclr))
        out = np.zeros((H, N))
        for h in range(H):  # S <- S (diag(d) - kk (a*kk)^T) + v k^T ; y = S r
            transition = np.diag(d_[h]) - np.outer(kk[h], a_[h] * kk[h])
            S[h] = S[h] @ transition + np.outer(v_[h], k_[h])
            out[h] = S[h] @ r_[h]
        y = group_norm(out.reshape(-1), H, z[p + "ln_x.weight"], z[p + "ln_x.bias"])
        y = y + ((r_ * k_ * z[p + "r_k"]).sum(axis=1, keepdims=True) * v_).reshape(-1)
        return z[p + "output.weight"] @ (y * gate), S, v_first

    def channel_mix(self, i: int, x: np.ndarray, x_prev: np.ndarray) -> np.ndarray:
        p = f"blocks.{i}.ffn."
        xk = x + (x_prev - x) * self.z[p + "x_k"]
        return self.z[p + "value.weight"] @ (np.maximum(self.z[p + "key.weight"] @ xk, 0) ** 2)

    def step(self, token: int, state: list[np.ndarray]) -> np.ndarray:
        """Logits [V] after ``token``; ``state`` is updated in place."""
        z = self.z
        x = layer_norm(z["emb.weight"][token], z["blocks.0.ln0.weight"], z["blocks.0.ln0.bias"])
        v_first = None
        for i in range(self.L):
            p = f"blocks.{i}."
            h = layer_norm(x, z[p + "ln1.weight"], z[p + "ln1.bias"])
            out, state[3 * i + 1], v_first = self.time_mix(i, h, state[3 * i], state[3 * i + 1], v_first)
            state[3 * i] = h
            x = x + out
            h = layer_norm(x, z[p + "ln2.weight"], z[p + "ln2.bias"])
            x = x + self.channel_mix(i, h, state[3 * i + 2])
            state[3 * i + 2] = h
        return z["head.weight"] @ layer_norm(x, z["ln_out.weight"], z["ln_out.bias"])
