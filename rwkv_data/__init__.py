"""rwkv-data: from a multilingual corpus to a validated RWKV model.

The tokenizer is imported eagerly (it never loads torch); the model, its checkpoints and the WKV7 kernel load
lazily on first attribute access, so ``import rwkv_data`` stays light.

>>> from rwkv_data import TrieTokenizer
>>> tok = TrieTokenizer.world()          # the World vocab ships with the package
>>> tok.decode(tok.encode("Habari za asubuhi"))
'Habari za asubuhi'
"""

from __future__ import annotations

import importlib
from typing import Any

from rwkv_data.errors import RwkvDataError
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, world_vocab_path, write_vocab

__version__ = "0.1.0"

# name -> module it lives in; imported on first access (these load torch)
_LAZY = {
    "RWKV7": "rwkv_data.model",
    "RWKV7Config": "rwkv_data.model",
    "load_checkpoint": "rwkv_data.model",
    "save_checkpoint": "rwkv_data.model",
    "wkv7": "rwkv_data.kernels",
}

__all__ = [
    "RWKV7",
    "RWKV7Config",
    "RwkvDataError",
    "TrieTokenizer",
    "Vocab",
    "__version__",
    "load_checkpoint",
    "read_vocab",
    "save_checkpoint",
    "wkv7",
    "world_vocab_path",
    "write_vocab",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rwkv_data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
