"""Tests of ``vocab extend``: every kept base token keeps its id, new tokens take replaced then fresh ids, the id map
(schema in ``rwkv_data.tokenizer.vocab_extend``) is consistent, and the CLI writes vocab + id map + meta.

The base is a small trained-looking vocab (bytes + a few English words) built in the test, and the target
corpus is a few kB of Amharic and Tamil, so each run takes about a second.

Run: pytest tests/tokenizer/test_vocab_extend.py -q
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rwkv_data.config import VocabConfig
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, write_vocab
from rwkv_data.tokenizer.vocab_extend import IDMAP_FORMAT, build_idmap, extend_vocab

AM = "የሰው ልጅ ሁሉ ሲወለድ ነጻና በክብርና በመብትም እኩልነት ያለው ነው".split()
TA = "மனிதர் அனைவரும் சுதந்திரமாகவே பிறக்கின்றனர் உரிமைகளிலும் சமமானவர்கள்".split()
EN_WORDS = [b" the", b" and", b"the", b" of", b" people", b" unused-token-xyz", b" rights"]


@pytest.fixture(scope="module")
def base() -> Vocab:
    """Bytes at ids 1..256, English words after them, and a gap (ids 300+) like World's reserved tail."""
    tokens = {b + 1: bytes([b]) for b in range(256)}
    tokens.update({260 + k: t for k, t in enumerate(EN_WORDS)})
    return Vocab.from_tokens(tokens, name="base")


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    rng = random.Random(3)
    docs = []
    for _ in range(40):
        for lang, words in (("am", AM), ("ta", TA)):
            docs.append((" ".join(rng.choice(words) for _ in range(30)) + ".", lang))
        docs.append((" ".join(rng.choice(["the", "people", "and", "rights", "of"]) for _ in range(30)), "en"))
    return docs


def _cfg(**kw: object) -> VocabConfig:
    base = {"add_tokens": 64, "heldout_chars": 3000, "char_seed": "", "rounds": 2, "refill_rounds": 1,
            "char_min_count": 2, "vocab_size": 1024}
    base.update(kw)
    return VocabConfig(**base)  # type: ignore[arg-type]


def test_extend_keeps_every_old_id(base: Vocab, corpus: list[tuple[str, str]]) -> None:
    res = extend_vocab(base, corpus, _cfg())
    new = Vocab.from_tokens(res.tokens)
    assert all(new.tokens[i] == t for i, t in base.tokens.items())
    fresh = sorted(set(new.tokens) - set(base.tokens))
    assert len(fresh) == 64 and fresh[0] == 320 and fresh == list(range(320, 384))  # max_id 266 -> 320
    tok = TrieTokenizer(new)
    for text, _ in corpus:  # still lossless, and the target languages got cheaper
        assert tok.decode(tok.encode(text)) == text
    old = TrieTokenizer(base)
    am = " ".join(AM)
    assert len(tok.encode(am)) < len(old.encode(am)) / 2


def test_idmap_schema(base: Vocab, corpus: list[tuple[str, str]]) -> None:
    res = extend_vocab(base, corpus, _cfg())
    m = res.idmap
    new = Vocab.from_tokens(res.tokens)
    assert m["format"] == IDMAP_FORMAT and m["version"] == 1
    assert m["old_vocab_sha256"] == base.sha256 and m["new_vocab_sha256"] == new.sha256
    assert m["kept"]["count"] == len(base) and m["kept"]["ranges"][0] == [1, 256]
    assert m["replaced"] == [] and m["removed"] == []
    old = TrieTokenizer(base)
    for new_id, hx in m["added"]:
        assert new.tokens[new_id] == bytes.fromhex(hx)
        init = m["init"][str(new_id)]
        assert b"".join(base.tokens[i] for i in init) == bytes.fromhex(hx) and init == old.encode_bytes(
            bytes.fromhex(hx))
    json.dumps(m)  # JSON-ready


def test_replace_unused_reuses_ids(base: Vocab, corpus: list[tuple[str, str]]) -> None:
    res = extend_vocab(base, corpus, _cfg(replace_unused=True))
    m = res.idmap
    replaced = {r[0]: r for r in m["replaced"]}
    unused_id = 260 + EN_WORDS.index(b" unused-token-xyz")
    assert unused_id in replaced and bytes.fromhex(replaced[unused_id][1]) == b" unused-token-xyz"
    assert 260 not in replaced  # " the" is used by the English documents
    new = res.tokens
    assert all(new[b + 1] == bytes([b]) for b in range(256))  # single bytes are never replaced
    assert len(m["added"]) == 64 and all(str(i) in m["init"] for i in replaced)


def test_extend_is_deterministic(base: Vocab, corpus: list[tuple[str, str]]) -> None:
    assert extend_vocab(base, corpus, _cfg()).tokens == extend_vocab(base, corpus, _cfg()).tokens


def test_build_idmap_round_trip(tmp_path: Path, base: Vocab) -> None:
    new = Vocab.from_tokens(dict(base.tokens) | {400: "ሰላም".encode()})
    path = write_vocab(new, tmp_path / "new.txt")
    m = build_idmap(base, read_vocab(path))
    assert m["added"] == [[400, "ሰላም".encode().hex()]] and m["kept"]["ranges"] == [[1, 256], [260, 266]]


def test_cli_vocab_extend(tmp_path: Path, base: Vocab, corpus: list[tuple[str, str]]) -> None:
    from click.testing import CliRunner

    from rwkv_data.cli import cli

    src = tmp_path / "am_ta.jsonl"
    src.write_text("".join(json.dumps({"text": t, "lang": lang}, ensure_ascii=False) + "\n" for t, lang in corpus),
                   encoding="utf-8")
    base_path = write_vocab(base, tmp_path / "base.txt")
    out = tmp_path / "ext.txt"
    args = ["vocab", "extend", str(src), "--base", str(base_path), "-o", str(out), "--add-tokens", "64",
            "--heldout-chars", "3000", "--char-seed", "", "--json"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    new = read_vocab(out)
    idmap = json.loads(Path(summary["idmap"]).read_text(encoding="utf-8"))
    assert idmap["new_vocab_sha256"] == new.sha256 and len(idmap["added"]) == 64
    assert all(new.tokens[i] == t for i, t in base.tokens.items())
