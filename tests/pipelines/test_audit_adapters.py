"""Tokenizer adapters of the audit: every kind returns ids plus token byte ends that tile the text.

HF, tiktoken and SentencePiece tokenizers are built in tmp_path from a few sentences (no downloads).
Run: pytest tests/pipelines/test_audit_adapters.py -q
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from audit_testlib import UDHR_1, write_vocab

from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.audit.adapters import (
    BytesAdapter,
    HFAdapter,
    SentencePieceAdapter,
    TiktokenAdapter,
    TokenizerAdapter,
    TrieAdapter,
    load_tokenizer,
)

TEXTS = list(UDHR_1.values()) + ["é€ 🤖", ""]


def check_tiles(adapter: TokenizerAdapter, texts: list[str] = TEXTS) -> None:
    """Ends are non-decreasing, end at the text's byte length, and there is one per id."""
    for text, (ids, ends) in zip(texts, adapter.encode_with_ends(texts), strict=True):
        assert len(ids) == len(ends)
        if len(ids):
            assert (np.diff(ends) >= 0).all() and ends[-1] == len(text.encode())
            assert ids.max() < len(adapter.fallback)


def test_trie_and_bytes(tmp_path: Path) -> None:
    trie = load_tokenizer(f"fix={write_vocab(tmp_path / 'v.txt')}")
    assert isinstance(trie, TrieAdapter) and trie.name == "fix" and trie.greedy
    check_tiles(trie)
    b = load_tokenizer("bytes")
    assert isinstance(b, BytesAdapter) and b.vocab_size == 256
    check_tiles(b)
    ((ids, ends),) = b.encode_with_ends(["aé"])
    assert ids.tolist() == [0x61, 0xC3, 0xA9] and ends.tolist() == [1, 2, 3]
    assert b.fallback[[0x61, 0xC3, 0xA9]].tolist() == [False, True, True]


def test_world_spec() -> None:
    w = load_tokenizer("world")
    assert w.name == "World" and w.vocab_size >= 65529 and w.n_entries == 65529
    check_tiles(w)


def test_tiktoken_file(tmp_path: Path) -> None:
    ranks = [bytes([b]) for b in range(256)] + [b"in", b" d", b"ig", b"it", b"ity"]
    path = tmp_path / "tiny_cl100k_base.tiktoken"
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for r, t in enumerate(ranks)))
    tk = load_tokenizer(str(path))  # pattern guessed from the file name
    assert isinstance(tk, TiktokenAdapter) and tk.vocab_size == 261
    check_tiles(tk)
    ((ids, _),) = tk.encode_with_ends([" dignity"])
    assert [tk.tokens[i] for i in ids] == [b" d", b"ig", b"n", b"ity"]
    other = tmp_path / "tiny.tiktoken"
    other.write_bytes(path.read_bytes())
    with pytest.raises(ConfigError, match="name the split pattern"):
        load_tokenizer(str(other))
    assert load_tokenizer(f"tiktoken:{other}#o200k_base").vocab_size == 261


def test_hf_tokenizer_json(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(TEXTS * 5, trainers.BpeTrainer(vocab_size=300, show_progress=False,
                                                           initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    hf = load_tokenizer(f"hf:{path}")
    assert isinstance(hf, HFAdapter)
    check_tiles(hf)
    ((ids, _),) = hf.encode_with_ends(["€"])  # a byte-level vocab spells '€' with byte tokens
    assert b"".join(hf.tokens[i] for i in ids) == "€".encode()


def test_sentencepiece_model(tmp_path: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(TEXTS[:2] * 20), encoding="utf-8")  # Latin and Cyrillic only
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "m"), vocab_size=305,
                                   byte_fallback=True, minloglevel=2)
    sp = load_tokenizer(str(tmp_path / "m.model"))
    assert isinstance(sp, SentencePieceAdapter) and sp.fallback.sum() == 256
    for text, (ids, ends) in zip(TEXTS, sp.encode_with_ends(TEXTS), strict=True):
        assert len(ids) == len(ends) and (np.diff(ends) >= 0).all()
        assert not len(ends) or ends[-1] == len(text.encode())
    ((ids, ends),) = sp.encode_with_ends(["🤖"])  # not in the training text: byte fallback
    assert sp.fallback[ids].sum() == 4 and ends[-4:].tolist() == [1, 2, 3, 4]
    assert sp.tokens[sp.sp.piece_to_id("\u2581")] == b" "


def test_bad_specs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_tokenizer(str(tmp_path / "missing.txt"))
    odd = tmp_path / "vocab.bin"
    odd.write_bytes(b"x")
    with pytest.raises(ConfigError, match="prefix it with"):
        load_tokenizer(str(odd))
