"""Tokenizer specs (tokenizer/resolve.py), the shard's recorded tokenizer (pipelines/shard/meta.py) and the
atomic writes every result file goes through (rwkv_data/atomic.py).

Run: pytest tests/tokenizer/test_resolve.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rwkv_data.atomic import atomic_path, atomic_write, atomic_write_json
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.shard.meta import read_shard_meta, tokenizer_for_shard
from rwkv_data.tokenizer import TrieTokenizer, Vocab, write_vocab
from rwkv_data.tokenizer.resolve import TokenizerSpec, is_world, load_trie, parse_spec


@pytest.mark.parametrize(("spec", "want"), [
    ("world", TokenizerSpec("", "world")),
    ("", TokenizerSpec("", "world")),
    ("World", TokenizerSpec("", "world")),
    ("ours=world", TokenizerSpec("ours", "world")),
    ("bytes", TokenizerSpec("", "bytes")),
    ("v.txt", TokenizerSpec("", "trie", "v.txt")),
    ("ours=runs/a/vocab.json", TokenizerSpec("ours", "trie", "runs/a/vocab.json")),
    ("trie:odd.vocab", TokenizerSpec("", "trie", "odd.vocab")),
    ("hf:x/tokenizer.json", TokenizerSpec("", "hf", "x/tokenizer.json")),
    ("x/tokenizer.json", TokenizerSpec("", "hf", "x/tokenizer.json")),
    ("gpt=tiktoken:o.tiktoken#o200k_base", TokenizerSpec("gpt", "tiktoken", "o.tiktoken", "o200k_base")),
    ("m.model", TokenizerSpec("", "sp", "m.model")),
])
def test_parse_spec(spec: str, want: TokenizerSpec) -> None:
    assert parse_spec(spec) == want


def test_unknown_kind_names_the_prefixes() -> None:
    with pytest.raises(ConfigError, match="prefix it with trie:, hf:"):
        parse_spec("weights.bin")
    assert not is_world("weights.bin") and is_world("") and is_world("x=world")


def test_load_trie(tmp_path: Path) -> None:
    world = load_trie("world")
    assert world.sha256 == load_trie("").sha256 == TrieTokenizer.world().sha256
    path = _vocab(tmp_path / "v.txt")
    assert load_trie(str(path)).encode("ab") == [257]
    with pytest.raises(ConfigError, match="not found"):
        load_trie(str(tmp_path / "missing.txt"))
    with pytest.raises(ConfigError, match="needs an RWKV vocab"):
        load_trie("hf:tokenizer.json")


def _vocab(path: Path) -> Path:
    """The 256 bytes (ids 1..256) and ``ab`` (id 257)."""
    tokens = [bytes([b]) for b in range(256)] + [b"ab"]
    return write_vocab(Vocab.from_tokens({i + 1: t for i, t in enumerate(tokens)}), path)


def _meta(prefix: Path, vocab: str, sha: str) -> None:
    atomic_write_json(f"{prefix}.meta.json", {"tokenizer": {"vocab": vocab, "sha256": sha}})


def test_tokenizer_for_shard_takes_the_recorded_vocab(tmp_path: Path) -> None:
    path = _vocab(tmp_path / "v.txt")
    tok = load_trie(str(path))
    _meta(tmp_path / "P", str(path), tok.sha256)
    assert tokenizer_for_shard(tmp_path / "P").sha256 == tok.sha256
    assert tokenizer_for_shard(tmp_path / "P", "world").sha256 == TrieTokenizer.world().sha256  # given wins
    with pytest.raises(ConfigError, match="pass --vocab world or --vocab VOCAB_FILE"):  # no meta: ask
        tokenizer_for_shard(tmp_path / "none")
    assert tokenizer_for_shard(tmp_path / "none", strict=False) is None
    _meta(tmp_path / "Q", "", TrieTokenizer.world().sha256)  # older shards recorded World as ""
    assert tokenizer_for_shard(tmp_path / "Q").sha256 == TrieTokenizer.world().sha256
    _meta(tmp_path / "R", str(path), "0" * 64)  # the vocab changed since
    with pytest.raises(ConfigError, match="cannot be found here; pass --vocab"):
        tokenizer_for_shard(tmp_path / "R")
    assert tokenizer_for_shard(tmp_path / "R", strict=False) is None
    (tmp_path / "S.meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="S.meta.json: cannot read shard metadata"):
        read_shard_meta(tmp_path / "S")


def test_atomic_writes_leave_no_temporary_file(tmp_path: Path) -> None:
    atomic_write(tmp_path / "a.txt", "é\n")
    atomic_write_json(tmp_path / "b.json", {"k": "é"})
    assert (tmp_path / "a.txt").read_bytes() == "é\n".encode()
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8")) == {"k": "é"}
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json"]
