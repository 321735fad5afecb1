"""The pure-Python reference tokenizer: the specification that the native core must match id for id.

Greedy longest match over UTF-8 bytes, exactly as ``rwkv``'s ``TRIE_TOKENIZER``: from position ``pos``
walk the trie byte by byte while a child exists, remember the last node that ends a token, emit that
token's id and continue right after it. No normalization, no pre-splitting; tokens may cross spaces,
newlines and UTF-8 character boundaries. Every single byte is a token (the vocab guarantees it), so
any byte string encodes. About 4-5 MB/s; used only when asked for or when the native core is missing.

>>> tokens = {i + 1: bytes([i]) for i in range(256)} | {257: b"ab", 258: b"abc"}
>>> trie = build_trie(tokens)
>>> encode_bytes_ref(trie, b"abcab!")   # 'abc', 'ab', '!' (0x21 -> id 34)
[258, 257, 34]
>>> decode_bytes_ref(tokens, [258, 257, 34])
b'abcab!'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

END = 256  # the key under which a trie node keeps the id of the token ending there (bytes are 0..255)

Trie = dict[int, Any]


def build_trie(tokens: Mapping[int, bytes]) -> Trie:
    """A trie of nested dicts: ``node[byte]`` is the child node, ``node[END]`` the id ending at ``node``."""
    root: Trie = {}
    for token_id, token in tokens.items():
        node = root
        for byte in token:
            node = node.setdefault(byte, {})
        node[END] = token_id
    return root


def encode_bytes_ref(trie: Trie, data: bytes) -> list[int]:
    """Greedy longest-match ids of ``data`` (any bytes)."""
    ids: list[int] = []
    pos, n = 0, len(data)
    while pos < n:
        node, i = trie, pos
        best_id, best_end = 0, pos
        while i < n:
            node = node.get(data[i])
            if node is None:
                break
            i += 1
            if END in node:
                best_id, best_end = node[END], i
        if best_end == pos:  # cannot happen with a validated vocab (all 256 bytes are tokens)
            raise ValueError(f"no token starts with byte 0x{data[pos]:02x} at offset {pos}")
        ids.append(best_id)
        pos = best_end
    return ids


def decode_bytes_ref(tokens: Mapping[int, bytes], ids: Iterable[int]) -> bytes:
    """Concatenate the tokens of ``ids``; ValueError naming the first id that is not in the vocab."""
    out = []
    for k, token_id in enumerate(ids):
        token = tokens.get(token_id)  # type: ignore[call-overload]
        if token is None:
            raise ValueError(f"id {token_id!r} at position {k} is not in the vocab"
                             f"{' (0 is the end-of-document id and has no text)' if token_id == 0 else ''}")
        out.append(token)
    return b"".join(out)
