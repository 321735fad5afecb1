"""RWKV7 (GPT mode, chunked WKV, float32) against the independent numpy x070 spec in tests/model/numpy_rwkv7.py.

Run: pytest tests/model/test_model_numpy_spec.py -q
"""

from __future__ import annotations

import numpy as np
import torch
from numpy_rwkv7 import NumpyRWKV7
from rwkv7_tiny import perturbed

from rwkv_data.model import RWKV7Config


def test_model_matches_the_numpy_spec() -> None:
    cfg = RWKV7Config(vocab_size=61, n_embd=128, n_layer=2, head_size=64)
    model = perturbed(cfg, seed=11)
    tokens = [0, 7, 7, 60, 1, 33, 2, 9, 9, 9, 41, 5]
    with torch.no_grad():
        ours = model(torch.tensor([tokens]))[0].double().numpy()
    spec = NumpyRWKV7({k: v.numpy() for k, v in model.state_dict().items()})
    state = spec.zero_state()
    theirs = np.stack([spec.step(t, state) for t in tokens])
    assert np.abs(theirs - ours).max() < 1e-4, np.abs(theirs - ours).max()
