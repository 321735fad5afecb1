"""Vocabulary extension for fine-tuning on tensors alone: new ids, kept ids, rows initialised as means.

Run: pytest tests/pipelines/test_finetune_vocab.py
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.train.vocab_growth import (
    grow_state_dict,
    is_idmap,
    plan_extension,
    plan_from_idmap,
    read_new_tokens,
)
from rwkv_data.tokenizer import TrieTokenizer
from rwkv_data.tokenizer.vocab import Vocab, write_vocab


def _small_tokenizer() -> TrieTokenizer:
    tokens = {i + 1: bytes([i]) for i in range(256)}
    tokens[257] = b"ab"
    tokens[258] = "é".encode()
    return TrieTokenizer(Vocab.from_tokens(tokens, name="small"), impl="python")


def test_plan_keeps_ids_and_decomposes_with_the_old_vocab() -> None:
    tok = _small_tokenizer()
    vocab, parts = plan_extension(tok, [b"abab", b"ab", "éa".encode(), b"abab"], n_rows=300)
    for i, t in tok.vocab.tokens.items():
        assert vocab.tokens[i] == t
    assert parts == {300: [257, 257], 301: [258, ord("a") + 1]}
    assert vocab.tokens[300] == b"abab" and vocab.max_id == 301


def test_grow_state_dict_rows_are_means_and_old_rows_untouched() -> None:
    torch.manual_seed(0)
    sd = {"emb.weight": torch.randn(260, 8), "head.weight": torch.randn(260, 8), "ln_out.weight": torch.ones(8)}
    out = grow_state_dict(sd, {262: [257, 3], 263: [5]})
    for key in ("emb.weight", "head.weight"):
        w = out[key]
        assert w.shape == (264, 8)
        assert torch.equal(w[:260], sd[key])
        torch.testing.assert_close(w[262], (sd[key][257] + sd[key][3]) / 2)
        assert torch.equal(w[263], sd[key][5]) and torch.equal(w[260:262], torch.zeros(2, 8))
    assert out["ln_out.weight"] is sd["ln_out.weight"]
    replaced = grow_state_dict(sd, {250: [1, 2]})  # an id map's reused id: re-initialised in place
    assert replaced["emb.weight"].shape == (260, 8)
    torch.testing.assert_close(replaced["emb.weight"][250], (sd["emb.weight"][1] + sd["emb.weight"][2]) / 2)
    assert torch.equal(replaced["emb.weight"][:250], sd["emb.weight"][:250])
    with pytest.raises(ConfigError):
        grow_state_dict(sd, {262: [261]})  # decompositions use old ids only


def test_read_new_tokens_from_list_and_vocab_file(tmp_path: Path) -> None:
    lst = tmp_path / "new.txt"
    lst.write_text("ሰላም\n ab\n\nሰላም\r\n", encoding="utf-8")
    assert read_new_tokens(lst) == ["ሰላም".encode(), b" ab"]
    vf = write_vocab(_small_tokenizer().vocab, tmp_path / "v.txt")
    assert len(read_new_tokens(vf)) == 258
    with pytest.raises(ConfigError):
        read_new_tokens(tmp_path / "missing.txt")


def test_plan_from_a_vocab_extend_id_map(tmp_path: Path) -> None:
    import json

    from rwkv_data.tokenizer.vocab_extend import build_idmap

    tok = _small_tokenizer()
    new_tokens = dict(tok.vocab.tokens)
    new_tokens[258] = "ñ".encode()  # replaced
    new_tokens[320] = b"abab"  # added
    new = Vocab.from_tokens(new_tokens, name="ext")
    path = tmp_path / "ext.idmap.json"
    path.write_text(json.dumps(build_idmap(tok.vocab, new)))
    assert is_idmap(path) and not is_idmap(tmp_path / "missing.json")
    vocab, parts = plan_from_idmap(tok, path)
    assert vocab == new
    assert parts == {258: tok.encode_bytes("ñ".encode()), 320: [257, 257]}
    other = TrieTokenizer(Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)}), impl="python")
    with pytest.raises(ConfigError, match="sha256"):
        plan_from_idmap(other, path)
