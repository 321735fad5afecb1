"""Shared helpers for the tokenizer tests: cached tokenizers, the rwkv reference, the shared corpus.

Not a test module. Plain cached functions instead of conftest fixtures, so the files of tests/tokenizer
can import them by a name no other test folder uses.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest

from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, world_vocab_path

# the folder `shared` beside the repository root (CI has it)
CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


@lru_cache(maxsize=1)
def world_vocab() -> Vocab:
    return read_vocab(world_vocab_path())


@lru_cache(maxsize=2)
def world(impl: str) -> TrieTokenizer:
    return TrieTokenizer(world_vocab(), impl=impl)


@lru_cache(maxsize=1)
def rwkv_reference():  # noqa: ANN201 - rwkv's TRIE_TOKENIZER
    from rwkv.rwkv_tokenizer import TRIE_TOKENIZER

    return TRIE_TOKENIZER(str(world_vocab_path()))


def byte_vocab(extra: dict[int, bytes] | None = None) -> Vocab:
    """All 256 single bytes as ids 1..256, plus ``extra``."""
    return Vocab.from_tokens({b + 1: bytes([b]) for b in range(256)} | (extra or {}), name="test")


def require_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"shared corpus not found at {CORPUS.resolve()} (CI has it; it lives beside the repo root)")
    return CORPUS


@lru_cache(maxsize=1)
def corpus_documents() -> tuple[tuple[str, str], ...]:
    """(label, text) of every document of udhr.jsonl.zst and mono/*.jsonl.zst, in a fixed order."""
    import zstandard

    root = require_corpus()
    docs = []
    for path in [root / "udhr.jsonl.zst", *sorted((root / "mono").glob("*.jsonl.zst"))]:
        with path.open("rb") as f:
            raw = zstandard.ZstdDecompressor().stream_reader(f).read()
        for k, line in enumerate(raw.decode("utf-8").splitlines()):
            if line.strip():
                docs.append((f"{path.relative_to(root)}#{k}", json.loads(line)["text"]))
    return tuple(docs)


@lru_cache(maxsize=1)
def corpus_reference_ids() -> tuple[bytes, ...]:
    """rwkv TRIE_TOKENIZER ids of every corpus document, as uint16 bytes (computed once per session)."""
    import numpy as np

    ref = rwkv_reference()
    return tuple(np.asarray(ref.encode(text), dtype=np.uint16).tobytes() for _, text in corpus_documents())


# Five scripts' words from which the vocab tests generate small deterministic corpora.
WORDS = {
    "en": "the people of the world have rights and freedoms everyone shall be equal before the law".split(),
    "de": "alle Menschen sind frei und gleich an Würde und Rechten geboren jeder hat das Recht".split(),
    "ta": "மனிதர் அனைவரும் சுதந்திரமாகவே பிறக்கின்றனர் உரிமைகளிலும் சமமானவர்கள் தமிழ்".split(),
    "am": "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው".split(),
    "zh": list("人人生而自由在尊严和权利上一律平等他们赋有理性和良心并应以兄弟关系的精神相对待"),
}
