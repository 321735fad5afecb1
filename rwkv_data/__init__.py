"""rwkv-data: from a multilingual corpus to a validated RWKV model.

The tokenizer is imported eagerly (it never loads torch); the model and kernels load lazily on first
attribute access, so ``import rwkv_data`` stays light.

>>> from rwkv_data import TrieTokenizer
"""

from __future__ import annotations

import importlib
from typing import Any

from rwkv_data.errors import RwkvDataError
from rwkv_data.tokenizer import TrieTokenizer

__version__ = "0.1.0"

_LAZY = {
    "kernels": "rwkv_data.kernels",
    "model": "rwkv_data.model",
    "pipelines": "rwkv_data.pipelines",
}

__all__ = ["RwkvDataError", "TrieTokenizer", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return importlib.import_module(_LAZY[name])
    raise AttributeError(f"module 'rwkv_data' has no attribute {name!r}")
