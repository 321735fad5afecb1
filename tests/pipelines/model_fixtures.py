"""Helpers for the train / evaluate / finetune tests: a byte-level vocab and tiny multilingual binidx shards.

Languages are synthetic (each its own alphabet and word lengths) so a tiny model learns them in seconds; the
shards follow the shard job's layout: P.bin/P.idx, P.lang.npy (uint16 per document) and P.meta.json
(languages, tokenizer).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rwkv_data.pipelines.shard.binidx import BinidxWriter
from rwkv_data.tokenizer import TrieTokenizer
from rwkv_data.tokenizer.vocab import Vocab, write_vocab

ALPHABETS = {"aa": "abcdefg", "bb": "mnopqrs", "cc": "αβγδεζη"}


def byte_vocab(path: Path) -> TrieTokenizer:
    """A vocab of the 256 single bytes (ids 1..256) written to ``path``."""
    write_vocab(Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)}, name="bytes"), path)
    return TrieTokenizer.from_file(path, impl="python")


def synthetic_text(lang: str, rng: np.random.Generator, words: int) -> str:
    letters = ALPHABETS[lang]
    lens = {"aa": (3, 6), "bb": (4, 7), "cc": (2, 5)}[lang]
    return " ".join("".join(rng.choice(list(letters), rng.integers(*lens))) for _ in range(words)) + "."


def write_shard(prefix: Path, tok: TrieTokenizer, docs: list[tuple[str, str]], vocab_path: str = "") -> None:
    """Write ``docs`` ((lang, text) pairs) as a binidx prefix with the language array and meta (which records
    the tokenizer's sha256 and ``vocab_path``, the vocab as the shard job would have been given it)."""
    langs = sorted({lg for lg, _ in docs})
    with BinidxWriter(prefix, np.uint16) as w:
        for _, text in docs:
            w.add_document(np.asarray(tok.encode(text), np.uint16))
    np.save(f"{prefix}.lang.npy", np.array([langs.index(lg) for lg, _ in docs], np.uint16))
    meta = {"languages": langs, "tokenizer": {"name": tok.name, "sha256": tok.sha256, "vocab_size": tok.vocab_size,
                                              "eos_id": 0, "vocab": vocab_path}}
    Path(f"{prefix}.meta.json").write_text(json.dumps(meta))


def make_corpus(root: Path, langs: tuple[str, ...] = ("aa", "bb"), train_docs: int = 40, val_docs: int = 6,
                seed: int = 0) -> tuple[TrieTokenizer, Path, Path]:
    """(tokenizer, P, P_val) under ``root``; documents of the languages interleaved."""
    rng = np.random.default_rng(seed)
    tok = byte_vocab(root / "bytes.txt")
    train = [(lg, synthetic_text(lg, rng, 60)) for _ in range(train_docs) for lg in langs]
    val = [(lg, synthetic_text(lg, rng, 40)) for _ in range(val_docs) for lg in langs]
    write_shard(root / "P", tok, train, str(root / "bytes.txt"))
    write_shard(root / "P_val", tok, val, str(root / "bytes.txt"))
    return tok, root / "P", root / "P_val"


@pytest.fixture()
def one_thread() -> object:
    """Tiny models run faster on one thread, and much faster on a machine shared with other jobs."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
