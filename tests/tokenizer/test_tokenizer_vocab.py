"""Vocab files: the literal parser (never evaluates), every validation error with file:line, round trips.

Run: pytest tests/tokenizer/test_tokenizer_vocab.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizer_testlib import byte_vocab, world_vocab

from rwkv_data.errors import VocabFormatError
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, world_vocab_path, write_vocab
from rwkv_data.tokenizer.literal import LiteralError, parse_token_literal


def _byte_lines() -> list[str]:
    """The 256 single-byte lines of the World file (ids 1..256)."""
    return world_vocab_path().read_text(encoding="utf-8").splitlines()[:256]


def _vocab_file(tmp_path: Path, extra: list[str], name: str = "v.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(_byte_lines() + extra) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "want"), [
    ("'a'", b"a"), ('"it\'s"', b"it's"), ("'it\\'s'", b"it's"), ("'\\n\\t\\r\\\\'", b"\n\t\r\\"),
    ("'\\x00'", b"\x00"), ("'\\xe9'", "é".encode()), ("'é'", "é".encode()), ("'\\u4e2d'", "中".encode()),
    ("'\\U0001f600'", "😀".encode()), ("'\\N{BULLET}'", "•".encode()), ("b'\\xf0\\x9f'", b"\xf0\x9f"),
    ("b'a\\'b'", b"a'b"), ("'\\101'", b"A"), ("b'\\377'", b"\xff"), ("' '", b" "),
])
def test_literal_parser_accepts_str_and_bytes_literals(text: str, want: bytes) -> None:
    assert parse_token_literal(text) == want


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "'a' + 'b'", "'a' 'b'", "f'{1}'", "r'a'", "'a", "'a'b'", "b'é'",
    "'\\x4'", "'\\u12'", "'\\N{NO SUCH NAME}'", "b'\\u1234'", "'\\q'", "'\\ud800'", "1", "", "b'\\777'",
])
def test_literal_parser_rejects_everything_else(text: str) -> None:
    with pytest.raises(LiteralError):
        parse_token_literal(text)


def test_a_call_expression_is_rejected_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = _vocab_file(tmp_path, [f"300 __import__('os').system('touch {marker}') 3"])
    with pytest.raises(VocabFormatError, match=rf"{path}:257: bad token literal: .*not a single str or bytes"):
        read_vocab(path)
    assert not marker.exists()


@pytest.mark.parametrize(("extra", "line", "pattern"), [
    (["300 'ab'"], 257, r"expected `<id> <literal> <byte length>`"),
    (["x3 'ab' 2"], 257, r"id 'x3' is not a decimal integer"),
    (["-3 'ab' 2"], 257, r"id '-3' is not a decimal integer"),
    (["300 'ab' two"], 257, r"byte length 'two' is not a decimal integer"),
    (["300 ab 2"], 257, r"bad token literal: 'ab' is not a single str or bytes literal"),
    (["300 'a' + 'b' 2"], 257, r"bad token literal"),
    (["300 '\\x4' 1"], 257, r"bad token literal: invalid or truncated escape"),
    (["300 b'é' 2"], 257, r"bad token literal: a bytes literal may hold only ASCII"),
    (["300 '\\ud800' 3"], 257, r"bad token literal: the str literal holds a lone surrogate"),
    (["300 '' 0"], 257, r"empty token"),
    (["300 'ab' 3"], 257, r"declared byte length 3 but the token 'ab' is 2 byte\(s\).*change the length to 2"),
    (["300 'é' 1"], 257, r"declared byte length 1 but the token 'é' is 2 byte"),
    (["0 'ab' 2"], 257, r"id 0 is reserved for end of document"),
    (["300 'ab' 2", "300 'cd' 2"], 258, r"duplicate id 300 \(first defined on line 257\)"),
    (["300 'ab' 2", "301 'ab' 2"], 258, r"duplicate token 'ab' \(already id 300 on line 257\)"),
    (["300 'ab' 2", "", "301 'cd' 2"], 258, r"expected `<id> <literal> <byte length>`"),
])
def test_each_malformed_line_has_its_own_error_with_file_and_line(tmp_path: Path, extra: list[str], line: int,
                                                                  pattern: str) -> None:
    path = _vocab_file(tmp_path, extra)
    with pytest.raises(VocabFormatError, match=rf"^{path}:{line}: {pattern}"):
        read_vocab(path)


def test_a_missing_single_byte_is_rejected(tmp_path: Path) -> None:
    lines = _byte_lines()
    path = tmp_path / "v.txt"
    path.write_text("\n".join(lines[:65] + lines[66:]) + "\n", encoding="utf-8")  # drop id 66 = b'A'
    with pytest.raises(VocabFormatError, match=rf"{path}: 1 single byte\(s\) are not tokens \(0x41\).*add lines"):
        read_vocab(path)
    with pytest.raises(VocabFormatError, match="0x41"):
        Vocab.from_tokens({b + 1: bytes([b]) for b in range(256) if b != 0x41})


def test_non_utf8_file_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "v.txt"
    path.write_bytes("\n".join(_byte_lines()).encode() + b"\n300 '\xff' 1\n")
    with pytest.raises(VocabFormatError, match=rf"{path}:257: the file is not valid UTF-8"):
        read_vocab(path)
    path.write_text("")
    with pytest.raises(VocabFormatError, match="empty"):
        read_vocab(path)


def test_from_tokens_validates() -> None:
    base = {b + 1: bytes([b]) for b in range(256)}
    with pytest.raises(VocabFormatError, match="id 0"):
        Vocab.from_tokens(base | {0: b"ab"})
    with pytest.raises(VocabFormatError, match="both map to b'ab'"):
        Vocab.from_tokens(base | {300: b"ab", 301: b"ab"})
    with pytest.raises(VocabFormatError, match="non-empty bytes"):
        Vocab.from_tokens(base | {300: "ab"})  # type: ignore[dict-item]


def test_world_loads_and_matches_rwkv() -> None:
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    v = world_vocab()
    assert (len(v), v.max_id, v.name) == (65529, 65529, "rwkv_vocab_v20230424")
    assert dict(v.tokens) == TRIE_TOKENIZER(str(world_vocab_path())).idx2token
    with pytest.raises(TypeError, match="read-only"):
        v.tokens[1] = b"x"


def test_world_write_read_write_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    write_vocab(world_vocab(), a)
    write_vocab(read_vocab(a), b)
    assert a.read_bytes() == b.read_bytes()
    # the canonical form is the World file itself with LF line ends
    assert a.read_bytes() == world_vocab_path().read_bytes().replace(b"\r\n", b"\n")
    assert read_vocab(a).sha256 == world_vocab().sha256
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_json_form_round_trip(tmp_path: Path) -> None:
    j1, j2 = tmp_path / "a.json", tmp_path / "b.json"
    write_vocab(world_vocab(), j1)
    v = read_vocab(j1)
    assert v == world_vocab() and v.sha256 == world_vocab().sha256
    write_vocab(v, j2)
    assert j1.read_bytes() == j2.read_bytes()


def test_json_errors_name_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    write_vocab(byte_vocab({300: b"ab"}), path)
    text = path.read_text()
    path.write_text(text.replace('{"id": 300, "text": "ab"}', '{"id": 300, "text": "ab"},\n{"id": 301, "text": "ab"}'))
    with pytest.raises(VocabFormatError, match=rf"{path}:259: tokens\[257\]: duplicate token b'ab'"):
        read_vocab(path)
    path.write_text(text.replace('"id": 300', '"id": 0'))
    with pytest.raises(VocabFormatError, match="id 0 is invalid"):
        read_vocab(path)
    path.write_text(text[:-5])
    with pytest.raises(VocabFormatError, match=rf"{path}:\d+: invalid JSON"):
        read_vocab(path)


def test_all_bytes_literal_file_with_ids_above_65535_loads(tmp_path: Path) -> None:
    tokens = {b + 1: bytes([b]) for b in range(256)} | {68080: "ไทย".encode(), 70000: b"\xe0\xb9"}
    path = tmp_path / "big.txt"
    path.write_text("".join(f"{i} {t!r} {len(t)}\n" for i, t in tokens.items()), encoding="utf-8")  # all b'...'
    v = read_vocab(path)
    assert v.max_id == 70000 and v.tokens[68080] == "ไทย".encode()
    tok = TrieTokenizer(v)
    assert tok.vocab_size == 70001 and tok.dtype.name == "uint32"


def test_world_vocab_ships_with_the_package_and_equals_the_rwkv_file() -> None:
    """A plain install has World: the bundled file is byte for byte the one the rwkv package publishes."""
    import hashlib
    import importlib.util

    path = world_vocab_path()
    assert path.name == "rwkv_vocab_v20230424.txt" and path.parent.name == "data"
    assert "rwkv_data" in str(path) or path.parent.parent.name == "tokenizer"
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == "8324476023347dec2964625ccb2075c864d250a9c6d9a74f36daba628de8c008"
    spec = importlib.util.find_spec("rwkv")
    if spec is not None and spec.submodule_search_locations:
        theirs = Path(next(iter(spec.submodule_search_locations))) / "rwkv_vocab_v20230424.txt"
        assert theirs.read_bytes() == path.read_bytes()
