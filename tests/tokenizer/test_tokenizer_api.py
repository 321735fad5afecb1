"""TrieTokenizer behaviour: edge-case inputs against rwkv's TRIE_TOKENIZER, decode errors, ids > 65535,
encode_batch, numpy output, and that the native core is really the one loaded by default.

Run: pytest tests/tokenizer/test_tokenizer_api.py
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
from tokenizer_testlib import byte_vocab, rwkv_reference, world, world_vocab

from rwkv_data.tokenizer import TokenDecodeError, TrieTokenizer

IMPLS = ["native", "python"]

_rng = random.Random(7)
EDGE_CASES = {
    "empty": "",
    "one char": "a",
    "nul run": "\x00" * 1000,
    "nul inside": "a\x00b\x00\x00c",
    "1 MB of one char": "a" * 1_000_000,
    "1 MB of spaces": " " * 1_000_000,
    "1 MB without whitespace": "".join(_rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(1_000_000)),
    "CJK run": "中" * 30_000,
    "emoji ZWJ family": "👨‍👩‍👧‍👦" * 50 + " 🏳️‍🌈 👍🏽 1️⃣ 🇫🇷",
    "combining marks": "e\u0301 a\u0308\u0323 " * 100 + "தமிழ் हिन्दी ผู้",
    "BOM": "\ufeffHello\ufeff world",
    "CRLF": "line one\r\nline two\r\n\r\n",
    "mixed scripts": "Hello, мир! 你好 مرحبا שלום γειά こんにちは 안녕 नमस्ते",
    "endoftext is text": "<|endoftext|>",
    "deep walk": ("//" + "-" * 63) * 20,
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_match_rwkv(impl: str, name: str) -> None:
    text = EDGE_CASES[name]
    tok = world(impl)
    ids = tok.encode(text)
    assert ids == rwkv_reference().encode(text)
    assert tok.encode_array(text).tolist() == ids
    assert tok.decode(ids) == text


def test_default_impl_is_native() -> None:
    """Fails when the C extension did not build: CI must not silently test the Python path only."""
    assert TrieTokenizer(world_vocab()).impl == "native"
    assert TrieTokenizer.world().impl == "native"


@pytest.mark.parametrize("impl", IMPLS)
def test_invalid_utf8_bytes_encode(impl: str) -> None:
    assert world(impl).encode_bytes(b"\xff\xfe\x80abc\xc3(") == [256, 255, 129, 6891, 196, 41]
    assert world(impl).encode_bytes(bytearray(b"abc")) == world(impl).encode_bytes(memoryview(b"abc"))


@pytest.mark.parametrize("impl", IMPLS)
def test_lone_surrogate_raises_like_the_reference(impl: str) -> None:
    with pytest.raises(UnicodeEncodeError):
        world(impl).encode("a\ud800b")
    with pytest.raises(UnicodeEncodeError):
        world(impl).encode_batch(["ok", "a\ud800b"])


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_strict_names_the_id_span(impl: str) -> None:
    tok = world(impl)
    with pytest.raises(TokenDecodeError, match=r"ids\[1:2\] = \[256\]") as err:
        tok.decode([33520, 256])
    assert (err.value.start, err.value.end) == (1, 2)
    parts = tok.encode("😀")  # one emoji over three tokens: a prefix alone fails, all together work
    assert parts == [3319, 153, 129] and tok.decode(parts) == "😀"
    with pytest.raises(TokenDecodeError, match=r"ids\[0:2\] = \[3319, 153\]"):
        tok.decode(parts[:2])
    with pytest.raises(TokenDecodeError, match=r"ids\[1:2\] = \[153\]"):
        tok.decode(tok.encode("a") + parts[1:])
    with pytest.raises(ValueError):
        tok.decode(parts[:1])  # TokenDecodeError is a ValueError


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_replace_replaces_only_the_bad_bytes(impl: str) -> None:
    tok = world(impl)
    assert tok.decode([33520, 256], errors="replace") == "Today\ufffd"
    ids = tok.encode("ab") + [256] + tok.encode("cd")
    assert tok.decode(ids, errors="replace") == "ab\ufffdcd"
    assert tok.decode_bytes([33520, 256]) == b"Today\xff"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("ids", [[-1], [0], [65530], [65535], [65536], [10**30], [5, -7],
                                 np.array([-1], np.int64), np.array([70000], np.uint32), np.array([0], np.uint16),
                                 np.array([2**63], np.uint64)])
def test_out_of_range_ids_raise_value_error_naming_the_id(impl: str, ids: object) -> None:
    bad = int(np.asarray(ids).ravel()[-1]) if not isinstance(ids, list) else ids[-1]
    with pytest.raises(ValueError, match=rf"id {bad}\b|id {str(bad)[:10]}"):
        world(impl).decode_bytes(ids)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        world(impl).decode(ids)  # type: ignore[arg-type]


@pytest.mark.parametrize("impl", IMPLS)
def test_non_integer_ids_are_rejected(impl: str) -> None:
    for ids in (["a"], [1.0], np.array([1.5])):
        with pytest.raises((ValueError, TypeError)):
            world(impl).decode_bytes(ids)  # type: ignore[arg-type]


@pytest.mark.parametrize("impl", IMPLS)
def test_decode_accepts_lists_tuples_and_arrays_of_any_int_dtype(impl: str) -> None:
    tok = world(impl)
    ids = tok.encode("Hello, world")
    for form in (ids, tuple(ids), np.array(ids, np.uint16), np.array(ids, np.int64), np.array(ids, np.uint32),
                 np.array(ids, np.int32), np.repeat(np.array(ids, np.int64), 2)[::2], [np.int64(i) for i in ids]):
        assert tok.decode(form) == "Hello, world"  # type: ignore[arg-type]


@pytest.mark.parametrize("impl", IMPLS)
def test_ids_above_65535(impl: str) -> None:
    vocab = byte_vocab({70_000: b"hello", 65_536: b"he", 300: b"hel", 1_000_000: "ไทย".encode()})
    tok = TrieTokenizer(vocab, impl=impl)
    assert tok.dtype == np.uint32 and tok.vocab_size == 1_000_001
    assert tok.encode("hello help ไทย") == [70_000, 33, 300, 113, 33, 1_000_000]
    arr = tok.encode_array("hello")
    assert arr.dtype == np.uint32 and arr.tolist() == [70_000]
    assert tok.decode([70_000, 65_536, 1_000_000]) == "hellohe" + "ไทย"
    assert [a.tolist() for a in tok.encode_batch(["hello", "he"], as_array=True)] == [[70_000], [65_536]]
    with pytest.raises(ValueError, match="id 70001"):
        tok.decode([70_001])


@pytest.mark.parametrize("impl", IMPLS)
def test_encode_batch_equals_per_document_encode(impl: str) -> None:
    tok = world(impl)
    docs: list[str | bytes] = [*EDGE_CASES.values(), b"\xff\xfe raw bytes", bytearray(b"x y"), "" , "z"] * 3
    want = [tok.encode(d) if isinstance(d, str) else tok.encode_bytes(d) for d in docs]
    for threads in (None, 1, 2, 7):
        assert tok.encode_batch(docs, num_threads=threads) == want
        arrays = tok.encode_batch(docs, num_threads=threads, as_array=True)
        assert all(a.dtype == tok.dtype for a in arrays)
        assert [a.tolist() for a in arrays] == want
    assert tok.encode_batch([]) == []
    with pytest.raises(ValueError):
        tok.encode_batch(["a"], num_threads=0)
    with pytest.raises(TypeError):
        tok.encode_batch("not a list of documents")


@pytest.mark.parametrize("impl", IMPLS)
def test_encode_packed_is_each_document_then_a_zero(impl: str) -> None:
    tok = world(impl)
    docs: list[str | bytes] = [*EDGE_CASES.values(), b"\xff\xfe raw bytes", bytearray(b"x y"), "", "z"] * 2
    want = [tok.encode(d) if isinstance(d, str) else tok.encode_bytes(d) for d in docs]
    for threads in (None, 1, 2, 7):
        ids, sizes = tok.encode_packed(docs, num_threads=threads)
        assert ids.dtype == tok.dtype and sizes.dtype == np.uint32
        assert sizes.tolist() == [len(w) for w in want]
        assert ids.tolist() == [i for w in want for i in (*w, 0)]
    ids, sizes = tok.encode_packed([])
    assert ids.size == 0 and sizes.size == 0
    wide = TrieTokenizer(byte_vocab({70_000: b"hello", 65_536: b"he"}), impl=impl)
    ids, sizes = wide.encode_packed(["hello", "he", ""])
    assert ids.dtype == np.uint32 and ids.tolist() == [70_000, 0, 65_536, 0, 0] and sizes.tolist() == [1, 1, 0]
    with pytest.raises(UnicodeEncodeError):
        tok.encode_packed(["ok", "lone \ud800 surrogate"])
    with pytest.raises(TypeError):
        tok.encode_packed("not a list of documents")


def test_encode_batch_runs_with_other_threads() -> None:
    """The native core releases the GIL: concurrent encodes from Python threads give the same ids."""
    tok = world("native")
    text = EDGE_CASES["mixed scripts"] * 20_000
    want = tok.encode_array(text)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(tok.encode_array(text))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(np.array_equal(r, want) for r in results)


@pytest.mark.parametrize("impl", IMPLS)
def test_pieces_token_bytes_and_properties(impl: str) -> None:
    tok = world(impl)
    assert tok.pieces("Hello, world") == [(33155, b"Hello"), (45, b","), (40213, b" world")]
    assert tok.pieces(b"\xff") == [(256, b"\xff")]
    assert tok.token_bytes(3319) == b"\xf0\x9f"
    for bad in (0, -1, 65530, True):
        with pytest.raises(ValueError, match="not in the vocab"):
            tok.token_bytes(bad)
    assert (tok.vocab_size, tok.dtype, tok.name) == (65530, np.dtype(np.uint16), "rwkv_vocab_v20230424")
    assert tok.sha256 == world_vocab().sha256 and len(tok.sha256) == 64
    assert tok.impl == impl


def test_type_errors_and_bad_impl() -> None:
    tok = world("native")
    with pytest.raises(TypeError):
        tok.encode(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tok.encode_bytes("str")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        tok.encode_array(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="impl"):
        TrieTokenizer(world_vocab(), impl="rust")


def test_auto_falls_back_to_python_with_a_warning(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from rwkv_data.errors import DependencyMissing
    from rwkv_data.tokenizer import cores

    def missing() -> None:
        raise ImportError("simulated missing build")

    monkeypatch.setattr(cores, "native_module", missing)
    monkeypatch.setattr(cores, "_warned", False)
    with caplog.at_level("WARNING"):
        tok = TrieTokenizer(byte_vocab(), impl="auto")
    assert tok.impl == "python" and "simulated missing build" in caplog.text
    with pytest.raises(DependencyMissing, match="pip install"):
        TrieTokenizer(byte_vocab(), impl="native")


@pytest.mark.parametrize("module", ["rwkv_data.tokenizer", "rwkv_data.tokenizer.tokenizer", "rwkv_data.tokenizer.vocab",
                                    "rwkv_data.tokenizer.literal", "rwkv_data.tokenizer.reference",
                                    "rwkv_data.tokenizer.info"])
def test_docstring_examples(module: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
