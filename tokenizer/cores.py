"""The two encoding cores behind :class:`~rwkv_data.tokenizer.TrieTokenizer`: native (C) and Python.

Both expose the same five methods over bytes-like input; the tokenizer class adds the user-facing checks.
``load_core(vocab, impl)`` picks one: ``"native"`` raises when the C extension is missing, ``"auto"`` falls
back to Python with a warning logged once.
"""

from __future__ import annotations

import logging
import os
from array import array
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from rwkv_data.errors import DependencyMissing
from rwkv_data.tokenizer.reference import build_trie, decode_bytes_ref, encode_bytes_ref
from rwkv_data.tokenizer.vocab import Vocab

log = logging.getLogger(__name__)
_warned = False

Doc = str | bytes | bytearray | memoryview


class Core(Protocol):
    """What a core provides (ids are validated by the core on decode)."""

    impl: str

    def encode_list(self, data: Doc) -> list[int]: ...
    def encode_array(self, data: Doc) -> np.ndarray: ...
    def encode_batch(self, docs: Sequence[Doc], num_threads: int, as_array: bool) -> list[Any]: ...
    def encode_packed(self, docs: Sequence[Doc], num_threads: int) -> tuple[np.ndarray, np.ndarray]: ...
    def decode_bytes(self, ids: Any) -> bytes: ...


def dtype_for(max_id: int) -> np.dtype[Any]:
    """uint16 when every id fits, else uint32."""
    return np.dtype(np.uint16) if max_id <= 0xFFFF else np.dtype(np.uint32)


def _as_bytes(data: Doc) -> bytes | bytearray | memoryview:
    return data.encode("utf-8") if isinstance(data, str) else data


class PythonCore:
    """The pure-Python reference (:mod:`rwkv_data.tokenizer.reference`) wrapped in the core interface."""

    impl = "python"

    def __init__(self, vocab: Vocab) -> None:
        self._tokens = vocab.tokens
        self._trie = build_trie(vocab.tokens)
        self._dtype = dtype_for(vocab.max_id)

    def encode_list(self, data: Doc) -> list[int]:
        return encode_bytes_ref(self._trie, bytes(_as_bytes(data)))

    def encode_array(self, data: Doc) -> np.ndarray:
        return np.array(self.encode_list(data), dtype=self._dtype)

    def encode_batch(self, docs: Sequence[Doc], num_threads: int, as_array: bool) -> list[Any]:
        encode = self.encode_array if as_array else self.encode_list
        return [encode(d) for d in docs]  # pure Python holds the GIL: threads would not help

    def encode_packed(self, docs: Sequence[Doc], num_threads: int) -> tuple[np.ndarray, np.ndarray]:
        lists = [self.encode_list(d) for d in docs]
        flat = [i for ids in lists for i in (*ids, 0)]
        return np.array(flat, dtype=self._dtype), np.array([len(ids) for ids in lists], dtype=np.uint32)

    def decode_bytes(self, ids: Any) -> bytes:
        if isinstance(ids, np.ndarray):
            ids = ids.tolist()
        return decode_bytes_ref(self._tokens, (_strict_int(i) for i in ids))


def _strict_int(i: Any) -> int:
    if isinstance(i, bool) or not isinstance(i, int | np.integer):
        raise ValueError(f"ids must be integers, got {i!r}")
    return int(i)


class NativeCore:
    """The C core (``_trie_native``): double-array trie, GIL released while matching."""

    impl = "native"

    def __init__(self, vocab: Vocab, module: Any) -> None:
        tokens = vocab.tokens  # in ascending id order
        lens = array("I", map(len, tokens.values()))
        self._trie = module.Trie(b"".join(tokens.values()), array("I", tokens).tobytes(), lens.tobytes())
        self._dtype = dtype_for(vocab.max_id)

    def encode_list(self, data: Doc) -> list[int]:
        return self._trie.encode_list(data)  # type: ignore[no-any-return]

    def encode_array(self, data: Doc) -> np.ndarray:
        return np.frombuffer(self._trie.encode(data), dtype=self._dtype)

    def encode_batch(self, docs: Sequence[Doc], num_threads: int, as_array: bool) -> list[Any]:
        out = self._trie.encode_batch(list(docs), num_threads, as_array)
        return [np.frombuffer(b, dtype=self._dtype) for b in out] if as_array else out

    def encode_packed(self, docs: Sequence[Doc], num_threads: int) -> tuple[np.ndarray, np.ndarray]:
        ids, sizes = self._trie.encode_packed(list(docs), num_threads)
        return np.frombuffer(ids, dtype=self._dtype), np.frombuffer(sizes, dtype=np.uint32)

    def decode_bytes(self, ids: Any) -> bytes:
        if isinstance(ids, np.ndarray) and (ids.dtype.kind not in "iu" or not ids.flags.c_contiguous):
            if ids.dtype.kind not in "iu":
                raise ValueError(f"ids must be integers, got an array of dtype {ids.dtype}")
            ids = np.ascontiguousarray(ids)
        return self._trie.decode(ids)  # type: ignore[no-any-return]


def native_module() -> Any:
    """The compiled extension, or raise ImportError with the reason."""
    from rwkv_data.tokenizer import _trie_native  # type: ignore[attr-defined]

    if not hasattr(_trie_native, "Trie"):
        raise ImportError("rwkv_data.tokenizer._trie_native is a stale build without Trie")
    return _trie_native


def load_core(vocab: Vocab, impl: str) -> Core:
    """Build the core for ``impl`` in {"auto", "native", "python"}."""
    global _warned
    if impl == "python":
        return PythonCore(vocab)
    if impl not in ("auto", "native"):
        raise ValueError(f"impl must be 'auto', 'native' or 'python', got {impl!r}")
    try:
        module = native_module()
    except ImportError as exc:
        if impl == "native":
            raise DependencyMissing(f"the native tokenizer core is not built ({exc}); rebuild it with "
                                    "pip install -e . (needs a C compiler)") from exc
        if not _warned:
            log.warning("native tokenizer core unavailable (%s); using the pure-Python reference (about 10x "
                        "slower); rebuild with pip install -e .", exc)
            _warned = True
        return PythonCore(vocab)
    return NativeCore(vocab, module)


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
