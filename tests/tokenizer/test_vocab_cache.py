"""The binary cache of parsed vocab files: same Vocab as a fresh parse, keyed by the file's bytes, bad entries
ignored, and off when asked.

Run: pytest tests/tokenizer/test_vocab_cache.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tokenizer_testlib import byte_vocab

import rwkv_data.tokenizer.vocab as vocab_mod
from rwkv_data.tokenizer import Vocab, read_vocab, vocab_cache, world_vocab_path, write_vocab


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("RWKV_DATA_CACHE", str(root))
    return root


def _no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("parsed although cached")

    monkeypatch.setattr(vocab_mod, "_parse_text", refuse)
    monkeypatch.setattr(vocab_mod, "_parse_json", refuse)


def _entries(root: Path) -> list[Path]:
    return sorted((root / "vocab").glob("*.bin")) if (root / "vocab").is_dir() else []


@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_second_read_comes_from_the_cache_and_equals_the_parse(cache: Path, tmp_path: Path, suffix: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_vocab(byte_vocab({300: "héllo".encode(), 70_000: b"\xf0\x9f"}), tmp_path / f"v{suffix}")
    first = read_vocab(path)
    assert len(_entries(cache)) == 1
    _no_parse(monkeypatch)
    second = read_vocab(path)
    assert second == first and list(second.tokens) == list(first.tokens) and second.name == first.name
    assert second.sha256 == Vocab.from_tokens(dict(first.tokens)).sha256


def test_world_vocab_round_trips_through_the_cache(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = read_vocab(world_vocab_path())
    _no_parse(monkeypatch)
    cached = read_vocab(world_vocab_path())
    assert cached.tokens == fresh.tokens and cached.sha256 == fresh.sha256 and cached.max_id == 65529


def test_an_edited_file_misses_the_cache(cache: Path, tmp_path: Path) -> None:
    path = write_vocab(byte_vocab({300: b"ab"}), tmp_path / "v.txt")
    read_vocab(path)
    write_vocab(byte_vocab({300: b"cd"}), path)
    assert read_vocab(path).tokens[300] == b"cd"
    assert len(_entries(cache)) == 2


def test_bad_entries_are_ignored_and_replaced(cache: Path, tmp_path: Path) -> None:
    path = write_vocab(byte_vocab({300: b"ab", 301: b"abc"}), tmp_path / "v.txt")
    want = read_vocab(path)
    (entry,) = _entries(cache)
    good = entry.read_bytes()
    blob_at = len(good) - len(b"".join(want.tokens.values()))
    dup = bytearray(good)
    dup[blob_at] = 1  # id 1 (byte 0x00) becomes 0x01, the token of id 2: a duplicate
    for bad in (good[:-3], b"garbage" * 40, bytes(dup), good[:16] + bytes(32) + good[48:]):
        entry.write_bytes(bad)
        got = read_vocab(path)
        assert got == want and got.sha256 == want.sha256
        assert entry.read_bytes() == good  # the entry was written again


def test_cache_off_and_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_vocab(byte_vocab({300: b"ab"}), tmp_path / "v.txt")
    monkeypatch.setenv("RWKV_DATA_CACHE", "off")
    assert vocab_cache.cache_dir() is None
    assert read_vocab(path).tokens[300] == b"ab"
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("RWKV_DATA_CACHE", str(blocker / "sub"))
    assert read_vocab(path).tokens[300] == b"ab"  # nothing cached, nothing raised


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RWKV_DATA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert vocab_cache.cache_dir() == tmp_path / "rwkv-data"
