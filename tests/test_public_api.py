"""The public API of ``rwkv_data``: pinned names, lazy torch, every name resolves.

Run: pytest tests/test_public_api.py
"""

from __future__ import annotations

import subprocess
import sys

import rwkv_data

PINNED = [
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


def test_all_is_pinned() -> None:
    assert rwkv_data.__all__ == PINNED  # a change here is an API change: update the README and the changelog


def test_every_public_name_resolves() -> None:
    for name in rwkv_data.__all__:
        assert getattr(rwkv_data, name) is not None, name
    assert callable(rwkv_data.wkv7) and rwkv_data.RWKV7.__name__ == "RWKV7"


def test_top_level_import_is_light() -> None:
    code = "import sys, rwkv_data; rwkv_data.TrieTokenizer; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_name_raises_attribute_error() -> None:
    try:
        rwkv_data.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_version_matches_the_installed_distribution() -> None:
    """``__version__`` (written into every shard's meta.json) is the version pip installed."""
    from importlib import metadata

    assert rwkv_data.__version__ == metadata.version("rwkv-data")
