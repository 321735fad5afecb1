"""rwkv_data.model: the bundled RWKV-7 (x070) model and its checkpoint format.

>>> from rwkv_data.model import RWKV7, RWKV7Config
>>> model = RWKV7(RWKV7Config(vocab_size=50, n_embd=64, n_layer=2, head_size=32))
>>> tuple(model(torch.tensor([[1, 2]])).shape)
(1, 2, 50)

Public API: :class:`RWKV7` (``forward(tokens, state=None, return_state=False)``, ``step(token, state)``,
``init_state(batch)``), :class:`RWKV7Config`, :class:`RWKV7State`, :func:`load_checkpoint` (returns
``(model, config)``) and :func:`save_checkpoint`.
"""

from __future__ import annotations

import torch  # noqa: F401  (for the doctest above)

from rwkv_data.model.checkpoint import load_checkpoint, save_checkpoint
from rwkv_data.model.config import RWKV7Config
from rwkv_data.model.rwkv7 import RWKV7, RWKV7State

__all__ = ["RWKV7", "RWKV7Config", "RWKV7State", "load_checkpoint", "save_checkpoint"]
