"""Tests of ``vocab train``: the mark-aware pre-tokenizer, balanced sampling, and the trainer's guarantees.

A tiny multilingual corpus (English, German, Tamil, Amharic, Chinese) is built in a fixture; each training run
takes a second or two. Checks: determinism for a seed, every byte encodable, the output passes ``read_vocab``'s
validation, every training text round-trips, character completeness, the variant cap, and the CLI.

Run: pytest tests/tokenizer/test_vocab_train.py -q
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tokenizer_testlib import WORDS

from rwkv_data.config import VocabConfig
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, write_vocab
from rwkv_data.tokenizer.pretokenize import byte_level_to_bytes, hf_pre_tokenizer, pretokenize
from rwkv_data.tokenizer.vocab_candidates import _phrase_candidates
from rwkv_data.tokenizer.vocab_chars import seed_name
from rwkv_data.tokenizer.vocab_sample import _budgets, sample_corpus
from rwkv_data.tokenizer.vocab_select import variant_key
from rwkv_data.tokenizer.vocab_train import train_vocab


def _doc(lang: str, rng: random.Random) -> str:
    words = WORDS[lang]
    sep = "" if lang == "zh" else " "
    paras = []
    for _ in range(rng.randint(2, 5)):
        sent = sep.join(rng.choice(words) for _ in range(rng.randint(5, 15)))
        paras.append(sent[:1].upper() + sent[1:] + ("。" if lang == "zh" else "."))
    return "\n\n".join(paras)


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    """About 60 kB of text in five scripts; deterministic."""
    rng = random.Random(7)
    return [(_doc(lang, rng), lang) for _ in range(60) for lang in WORDS]


def _cfg(**kw: object) -> VocabConfig:
    base = {"vocab_size": 700, "sample_chars": 200_000, "heldout_chars": 5_000, "char_seed": "", "rounds": 3,
            "refill_rounds": 1, "char_min_count": 2, "coverage": ""}  # the floor: test_vocab_coverage.py
    base.update(kw)
    return VocabConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def trained(corpus: list[tuple[str, str]]) -> dict[int, bytes]:
    return train_vocab(corpus, _cfg()).tokens


# ---- pre-tokenizer ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("word", ["தமிழ்", "हिन्दी", "ភាសាខ្មែរ", "ಕನ್ನಡ", "മലയാളം"])
def test_marks_stay_with_their_letters(word: str) -> None:
    assert pretokenize(" " + word) == [" " + word]
    assert len(pretokenize(word, "gpt2")) > 1  # the GPT-2 pattern breaks abugida words apart


def test_pretokenize_is_lossless_and_matches_hf() -> None:
    texts = ["Hello, world! It's 2024.", "  two  spaces\n\nnew para", "தமிழ் மொழி", "人人生而自由。", "a\u0301b",
             "བཀྲ་ཤིས་བདེ་ལེགས།", "x = f(y) + 12345;\n\t", ""]
    hf = hf_pre_tokenizer()
    for t in texts:
        pieces = pretokenize(t)
        assert "".join(pieces) == t
        assert [byte_level_to_bytes(p).decode("utf-8") for p, _ in hf.pre_tokenize_str(t)] == pieces  # type: ignore


# ---- sampling ---------------------------------------------------------------------------------------------


def test_unimax_caps_small_languages_and_shares_the_rest() -> None:
    sizes = {"big": 1_000_000, "mid": 300_000, "tiny": 1_000}
    cfg = VocabConfig(sample_chars=300_000, max_epochs=2.0, lang_weights={})
    b = _budgets(sizes, cfg)
    assert b["tiny"] == 2_000  # all of it, twice, but no more
    assert abs(b["mid"] - b["big"]) <= 1 and sum(b.values()) <= 300_000
    capped = _budgets(sizes, dataclasses.replace(cfg, lang_caps={"big": 10_000}))
    assert capped["big"] == 10_000 and capped["mid"] > b["mid"]


def test_temperature_flattens_shares() -> None:
    sizes = {"a": 1_000_000, "b": 10_000}
    b = _budgets(sizes, VocabConfig(sampling="temperature", temperature=3.33, sample_chars=100_000, lang_weights={},
                                    max_epochs=100))
    assert b["a"] / b["b"] < 100 ** (1 / 3.33) * 1.01


def test_sample_is_deterministic_and_keeps_heldout_apart(corpus: list[tuple[str, str]]) -> None:
    s1, s2 = sample_corpus(corpus, _cfg()), sample_corpus(corpus, _cfg())
    assert {k: v.train for k, v in s1.items()} == {k: v.train for k, v in s2.items()}
    for s in s1.values():
        assert s.heldout and not set(s.heldout) & set(s.train)


# ---- the trained vocabulary ---------------------------------------------------------------------------------


def test_deterministic_for_a_seed(corpus: list[tuple[str, str]], trained: dict[int, bytes]) -> None:
    assert train_vocab(corpus, _cfg()).tokens == trained


def test_layout_ids_and_every_byte(trained: dict[int, bytes]) -> None:
    assert 0 not in trained and max(trained) <= 699 and len(trained) == max(trained)
    assert all(trained[b + 1] == bytes([b]) for b in range(256))
    for t in trained.values():  # no token ends inside a UTF-8 character (except the 256 bytes)
        if len(t) > 1:
            t.decode("utf-8")
    tok = TrieTokenizer(Vocab.from_tokens(trained))
    data = bytes(range(256)) + b"\xff\xfe\x80"
    assert tok.decode_bytes(tok.encode_bytes(data)) == data


def test_output_passes_read_vocab(tmp_path: Path, trained: dict[int, bytes]) -> None:
    for name in ("v.txt", "v.json"):
        path = write_vocab(Vocab.from_tokens(trained), tmp_path / name)
        assert dict(read_vocab(path).tokens) == trained


def test_every_training_text_round_trips(corpus: list[tuple[str, str]], trained: dict[int, bytes]) -> None:
    tok = TrieTokenizer(Vocab.from_tokens(trained))
    texts = [t for t, _ in corpus]
    for text, ids in zip(texts, tok.encode_batch(texts), strict=True):
        assert tok.decode(ids) == text


def test_character_completeness(corpus: list[tuple[str, str]], trained: dict[int, bytes]) -> None:
    counts = Counter(ch for t, _ in corpus for ch in t)
    have = set(trained.values())
    missing = [ch for ch, n in counts.items() if ord(ch) >= 0x80 and n >= 2 and ch.encode() not in have]
    assert not missing
    tok = TrieTokenizer(Vocab.from_tokens(trained))
    ids = tok.encode("மனிதர் የሰው 人人生而自由")
    assert not [i for i in ids if 129 <= i <= 256]  # no byte fallback


def test_learns_whole_abugida_words(trained: dict[int, bytes]) -> None:
    tok = TrieTokenizer(Vocab.from_tokens(trained))
    assert len(tok.encode(" சுதந்திரமாகவே")) <= 3
    assert len(tok.encode(" everyone")) == 1


def test_variant_cap(corpus: list[tuple[str, str]]) -> None:
    tokens = train_vocab(corpus, _cfg(max_variants=1)).tokens
    fams = Counter(k for t in tokens.values() if len(t) > 1 and (k := variant_key(t)) is not None)
    singles = {variant_key(t) for t in tokens.values() if len(t.decode("utf-8", "replace")) == 1}
    assert all(n == 1 for k, n in fams.items() if k not in singles)


def test_fairness_knob_moves_tokens_to_the_costliest_language(corpus: list[tuple[str, str]]) -> None:
    stats = [train_vocab(corpus, _cfg(fairness=f)).stats["languages"] for f in (0.0, 4.0)]
    worst = max(stats[0], key=lambda k: stats[0][k]["parity_proxy"])
    assert stats[1][worst]["parity_proxy"] <= stats[0][worst]["parity_proxy"]


@pytest.mark.parametrize("sources", [("unigram",), ("ngram",), ("bpe", "phrase"), ("bpe", "unigram", "ngram")])
def test_candidate_sources(corpus: list[tuple[str, str]], sources: tuple[str, ...]) -> None:
    res = train_vocab(corpus, _cfg(candidates=sources, rounds=1, refill_rounds=0))
    assert res.stats["candidates"] > 0 and len(res.tokens) > 256 + res.stats["required_chars"]
    tok = TrieTokenizer(Vocab.from_tokens(res.tokens))
    assert all(tok.decode(tok.encode(t)) == t for t, _ in corpus[:20])


def test_phrase_candidates_cross_word_boundaries() -> None:
    text = "\n\n".join(["the rights of the people and the duties of the state, and the law of the land."] * 40)
    samples = sample_corpus([(text, "en")], _cfg(heldout_chars=500))
    cands = _phrase_candidates(samples, _cfg(), 200)
    assert {b" of the", b" the people", b", and"} <= set(cands)  # strings BPE's pre-tokenizer never proposes
    assert all(2 <= len(pretokenize(c.decode())) <= 3 and b"\n" not in c for c in cands)
    assert cands.index(b" of the") < cands.index(b" the people")  # ranked by count x bytes saved


def test_char_seed_auto_leaves_han_and_hangul_to_the_floor() -> None:
    assert seed_name(VocabConfig(), floor=True) == ""  # the floor keeps World's Han and Hangul characters
    assert seed_name(VocabConfig()) == "charsets"  # vocab extend
    assert seed_name(VocabConfig(coverage=""), floor=True) == "charsets"  # no floor: the national charsets
    assert seed_name(VocabConfig(char_seed="world"), floor=True) == "world"


# ---- CLI ----------------------------------------------------------------------------------------------------


def test_cli_vocab_train(tmp_path: Path, corpus: list[tuple[str, str]]) -> None:
    from click.testing import CliRunner

    from rwkv_data.cli import cli

    src = tmp_path / "corpus.jsonl"
    src.write_text("".join(json.dumps({"text": t, "lang": lang}, ensure_ascii=False) + "\n" for t, lang in corpus),
                   encoding="utf-8")
    out = tmp_path / "out" / "vocab.txt"
    args = ["vocab", "train", str(src), "-o", str(out), "--vocab-size", "600", "--sample-chars", "100000",
            "--heldout-chars", "5000", "--char-seed", "", "--rounds", "2", "--coverage", "", "--json"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    vocab = read_vocab(out)
    assert summary["tokens"] == len(vocab) and summary["sha256"] == vocab.sha256
    meta = json.loads(out.with_name("vocab.txt.meta.json").read_text(encoding="utf-8"))
    assert meta["config"]["vocab_size"] == 600 and len(meta["corpus"]["sha256"]) == 64
    assert set(meta["languages"]) == set(WORDS)
    assert meta["config"]["coverage"] == "" and meta["coverage_floor"]["tokens"] == 0  # the switch


def test_bad_settings_fail_before_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rwkv_data.cli import main
    from rwkv_data.errors import ConfigError
    from rwkv_data.tokenizer.vocab_train import check_config

    def never() -> Any:
        raise AssertionError("the corpus must not be read")
        yield

    with pytest.raises(ConfigError, match="sampling='zipf'.*candidates"):
        train_vocab(never(), VocabConfig(sampling="zipf", candidates=("bpe", "wordpiece")))
    check_config(VocabConfig())
    with pytest.raises(SystemExit) as exit_info:
        main(["vocab", "train", "x.jsonl", "--vocab-size", "100", "-o", str(tmp_path / "v.txt")])
    assert exit_info.value.code == 1 and "vocab_size=100" in capsys.readouterr().err
