"""``TrieTokenizer``: the public RWKV World-compatible tokenizer (greedy longest match over UTF-8 bytes).

>>> tok = TrieTokenizer.world()
>>> tok.encode("Hello, world")
[33155, 45, 40213]
>>> tok.decode([33155, 45, 40213])
'Hello, world'
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from rwkv_data.tokenizer.cores import Core, Doc, default_threads, dtype_for, load_core
from rwkv_data.tokenizer.vocab import Vocab, read_vocab, world_vocab_path

IMPLS = ("auto", "native", "python")


class TokenDecodeError(ValueError):
    """Ids whose bytes are not valid UTF-8 (``start``/``end``: the span of ids, end exclusive)."""

    def __init__(self, message: str, start: int, end: int) -> None:
        super().__init__(message)
        self.start = start
        self.end = end


@lru_cache(maxsize=1)
def _world_vocab() -> Vocab:
    return read_vocab(world_vocab_path())


class TrieTokenizer:
    """Greedy longest-match trie tokenizer, id for id identical to ``rwkv``'s ``TRIE_TOKENIZER``.

    Args:
        vocab: a validated :class:`Vocab` (every single byte is a token, so any input encodes).
        impl: ``"native"`` (the C core), ``"python"`` (the reference) or ``"auto"`` (native, else Python
            with a logged warning).

    Id 0 is the end-of-document id: it is never produced and has no text.

    >>> tok = TrieTokenizer.world(impl="python")
    >>> tok.encode_bytes(b"\\xff\\xfe\\x80abc\\xc3(")
    [256, 255, 129, 6891, 196, 41]
    """

    def __init__(self, vocab: Vocab, impl: str = "auto") -> None:
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if not isinstance(vocab, Vocab):
            raise TypeError(f"vocab must be a Vocab (see read_vocab / Vocab.from_tokens), got {type(vocab)}")
        self.vocab = vocab
        self._requested = impl
        self._core: Core = load_core(vocab, impl)
        self.impl: str = self._core.impl
        self.dtype: np.dtype[Any] = dtype_for(vocab.max_id)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], impl: str = "auto") -> TrieTokenizer:
        """Load a vocab file (World ``.txt`` or ``.json``) with :func:`read_vocab`."""
        return cls(read_vocab(path), impl=impl)

    @classmethod
    def world(cls, impl: str = "auto") -> TrieTokenizer:
        """The RWKV World tokenizer (vocab from the installed ``rwkv`` package; DependencyMissing if absent)."""
        return cls(_world_vocab(), impl=impl)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TrieTokenizer, (self.vocab, self._requested))

    def __repr__(self) -> str:
        return f"TrieTokenizer(name={self.name!r}, vocab_size={self.vocab_size}, impl={self.impl!r})"

    @property
    def vocab_size(self) -> int:
        """``max_id + 1``: the embedding rows a model needs."""
        return self.vocab.max_id + 1

    @property
    def sha256(self) -> str:
        """The vocab's sha256 (of its canonical text form)."""
        return self.vocab.sha256

    @property
    def name(self) -> str:
        """The vocab's name."""
        return self.vocab.name

    # ---- encode -------------------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Ids of ``text`` (UTF-8 encoded; a lone surrogate raises UnicodeEncodeError)."""
        if not isinstance(text, str):
            raise TypeError(f"encode takes a str (use encode_bytes for bytes), got {type(text).__name__}")
        return self._core.encode_list(text)

    def encode_bytes(self, data: bytes | bytearray | memoryview) -> list[int]:
        """Ids of any byte string, invalid UTF-8 included."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"encode_bytes takes bytes (use encode for str), got {type(data).__name__}")
        return self._core.encode_list(data)

    def encode_array(self, data: str | bytes) -> np.ndarray:
        """Ids as a 1-D numpy array of :attr:`dtype` (uint16, or uint32 when an id exceeds 65535)."""
        _check_doc(data, "encode_array")
        return self._core.encode_array(data)

    def encode_batch(self, texts: Sequence[str | bytes], num_threads: int | None = None,
                     as_array: bool = False) -> list[list[int]] | list[np.ndarray]:
        """Encode many documents in parallel (native core: C threads, GIL released).

        Args:
            texts: a sequence of str or bytes documents.
            num_threads: worker threads; default: the CPUs this process may use.
            as_array: return numpy arrays (as :meth:`encode_array`) instead of lists.
        """
        return self._core.encode_batch(texts, _batch_threads(texts, num_threads, "encode_batch"), as_array)

    def encode_packed(self, texts: Sequence[str | bytes],
                      num_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Encode many documents into one array: each document's ids followed by 0 (the end-of-document id).

        The layout of a binidx shard (``rwkv-data shard``), made without a Python object per document.

        Returns:
            ``(ids, sizes)``: the ids (uint16, or uint32 for vocabs with ids above 65535) and each document's
            number of ids, without its 0 (uint32).
        """
        return self._core.encode_packed(texts, _batch_threads(texts, num_threads, "encode_packed"))

    def pieces(self, text: str | bytes) -> list[tuple[int, bytes]]:
        """Debug view: ``(id, token bytes)`` for each token of ``text``."""
        _check_doc(text, "pieces")
        tokens = self.vocab.tokens
        return [(i, tokens[i]) for i in self._core.encode_list(text)]

    # ---- decode -------------------------------------------------------------------------------------

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one id (ValueError naming the id when it is not in the vocab)."""
        token = self.vocab.tokens.get(token_id) if isinstance(token_id, int | np.integer) else None
        if token is None or isinstance(token_id, bool):
            raise ValueError(f"id {token_id!r} is not in the vocab (ids 1..{self.vocab.max_id}; 0 = end of document)")
        return token

    def decode_bytes(self, ids: Iterable[int] | np.ndarray) -> bytes:
        """Concatenated token bytes of ``ids`` (a list, tuple or integer ndarray).

        Raises:
            ValueError: naming the first id that is negative, out of range or not in the vocab (id 0 too).
        """
        if not isinstance(ids, list | tuple | np.ndarray):
            ids = list(ids)
        return self._core.decode_bytes(ids)

    def decode(self, ids: Iterable[int] | np.ndarray, errors: str = "strict") -> str:
        """Text of ``ids``.

        Args:
            ids: token ids.
            errors: ``"strict"`` raises :class:`TokenDecodeError` naming the span of ids whose bytes are not
                valid UTF-8; ``"replace"`` puts U+FFFD in place of just the bad bytes (any other codec error
                handler name works too).
        """
        if not isinstance(ids, list | tuple | np.ndarray):
            ids = list(ids)
        data = self._core.decode_bytes(ids)
        if errors != "strict":
            return data.decode("utf-8", errors)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._span_error(ids, data, exc) from None

    def _span_error(self, ids: Sequence[int] | np.ndarray, data: bytes, exc: UnicodeDecodeError) -> TokenDecodeError:
        tokens = self.vocab.tokens
        ends = np.cumsum([len(tokens[int(i)]) for i in ids])
        a = int(np.searchsorted(ends, exc.start, side="right"))
        b = int(np.searchsorted(ends, exc.end - 1, side="right")) + 1
        span = [int(i) for i in ids[a:b]]
        return TokenDecodeError(
            f"ids[{a}:{b}] = {span} give bytes {data[exc.start:exc.end]!r} (byte offset {exc.start}) that are not "
            f"valid UTF-8 ({exc.reason}); a token may be part of a character: decode more ids together, or use "
            "errors='replace' or decode_bytes()", a, b)


def _batch_threads(texts: Any, num_threads: int | None, what: str) -> int:
    """Check a batch call's documents and return its thread count (default: the CPUs this process may use)."""
    if isinstance(texts, str | bytes):
        raise TypeError(f"{what} takes a sequence of documents, not one document")
    for d in texts:
        _check_doc(d, what)
    threads = default_threads() if num_threads is None else int(num_threads)
    if threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    return threads


def _check_doc(data: Any, what: str) -> None:
    if not isinstance(data, Doc):
        raise TypeError(f"{what} takes str or bytes documents, got {type(data).__name__}")
