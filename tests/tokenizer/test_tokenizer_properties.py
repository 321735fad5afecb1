"""Property tests (hypothesis): native == Python reference == a naive greedy matcher; lossless round trips.

Run: pytest tests/tokenizer/test_tokenizer_properties.py
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizer_testlib import byte_vocab, world

from rwkv_data.tokenizer import TrieTokenizer

# bytes that often form World tokens: ASCII letters and space, plus UTF-8 pieces of CJK and emoji
_pieces = st.sampled_from([b" ", b"the", b"\n", b"\xe4\xb8\xad", b"\xf0\x9f", b"\x98\x80", b"\xff", b"\x00", b"ing"])
_small = st.sampled_from(b"abc\xe4\x00")  # a small alphabet, so random tokens overlap and nest
_mixed = st.one_of(st.binary(max_size=400), st.lists(_pieces, max_size=60).map(b"".join))


def naive_greedy(tokens: dict[int, bytes], data: bytes) -> list[int]:
    """O(n * V) greedy longest prefix, the plainest statement of the algorithm."""
    ids, pos = [], 0
    while pos < len(data):
        best = max((t for t in tokens.items() if data.startswith(t[1], pos)), key=lambda t: len(t[1]))
        ids.append(best[0])
        pos += len(best[1])
    return ids


@settings(max_examples=300, deadline=None)
@given(_mixed)
def test_native_equals_python_on_arbitrary_bytes(data: bytes) -> None:
    assert world("native").encode_bytes(data) == world("python").encode_bytes(data)


@settings(max_examples=300, deadline=None)
@given(_mixed)
def test_decode_bytes_inverts_encode_bytes(data: bytes) -> None:
    for impl in ("native", "python"):
        tok = world(impl)
        ids = tok.encode_bytes(data)
        assert 0 not in ids
        assert tok.decode_bytes(ids) == data
        assert tok.decode_bytes(tok.encode_array(data)) == data


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_encode_str_equals_encode_of_its_utf8(text: str) -> None:
    for impl in ("native", "python"):
        tok = world(impl)
        assert tok.encode(text) == tok.encode_bytes(text.encode("utf-8"))
        assert tok.decode(tok.encode(text)) == text


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.lists(_small, min_size=2, max_size=6).map(bytes), st.integers(257, 200_000), max_size=40),
       st.lists(_small, max_size=200).map(bytes))
def test_random_vocabs_native_python_naive_agree(extra: dict[bytes, int], data: bytes) -> None:
    tokens = {i: t for t, i in extra.items()}
    vocab = byte_vocab(tokens)
    want = naive_greedy(dict(vocab.tokens), data)
    native, python = TrieTokenizer(vocab, impl="native"), TrieTokenizer(vocab, impl="python")
    assert native.encode_bytes(data) == python.encode_bytes(data) == want
    assert native.encode_array(data).tolist() == want
    assert native.decode_bytes(want) == data
