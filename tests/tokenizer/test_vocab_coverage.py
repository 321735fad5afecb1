"""Tests of the coverage floor (scripts the training corpus lacks stay encodable), the one script classifier,
the focused ``vocab extend`` and the bounded-memory sampler.

The training corpus is small generated text in English, German, Tamil, Amharic and Chinese (a second each);
the held-out languages are Malayalam, Burmese, Shan, Sinhala, Russian and Santali sentences, never trained on.

Run: pytest tests/tokenizer/test_vocab_coverage.py -q
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from tokenizer_testlib import WORDS

from rwkv_data.config import VocabConfig
from rwkv_data.pipelines.audit import metrics
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, vocab_sample, world_vocab_path
from rwkv_data.tokenizer.info import vocab_info
from rwkv_data.tokenizer.scripts import char_script, dominant_script, script_allocation, script_chars, token_category
from rwkv_data.tokenizer.vocab_chars import required_chars
from rwkv_data.tokenizer.vocab_coverage import coverage_floor
from rwkv_data.tokenizer.vocab_extend import extend_vocab
from rwkv_data.tokenizer.vocab_sample import sample_corpus
from rwkv_data.tokenizer.vocab_train import train_vocab

# Article 1 of the UDHR in languages whose scripts the WORDS corpus lacks.
HELD_OUT = {
    "ml": "മനുഷ്യരെല്ലാവരും തുല്യാവകാശങ്ങളോടും അന്തസ്സോടും സ്വാതന്ത്ര്യത്തോടുംകൂടി ജനിച്ചിട്ടുള്ളവരാണ്‌.",
    "my": "လူတိုင်းသည် တူညီ လွတ်လပ်သော ဂုဏ်သိက္ခာဖြင့် လည်းကောင်း၊ တူညီလွတ်လပ်သော အခွင့်အရေးများဖြင့် လည်းကောင်း၊",
    "si": "සියලු මනුෂ්‍යයෝ නිදහස්ව උපත ලබා ඇත. ගරුත්වයෙන් හා අයිතිවාසිකම්වලින් සමාන වෙති.",
    "ru": "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "sat": "ᱡᱚᱛᱚ ᱦᱚᱲ ᱠᱚ ᱫᱚ ᱥᱟᱹᱫᱷᱤᱱ ᱜᱮ ᱡᱟᱱᱟᱢ ᱠᱟᱱᱟ",
    # Shan: Myanmar script, with letters and tone marks in U+1075-109F (past the first 128 code points)
    "shn": "ၵူၼ်းၵူႊၵေႃႉၼႆႉ ပဵၼ်ဢၼ်ၵိူတ်ႇမႃးလူၺ်ႈၵုင်ႇမုၼ်ဢၼ်လွတ်ႈလႅဝ်းၽဵင်ႇပဵင်းၵၼ် လႄႈ သုၼ်ႇလႆႈဢၼ် လွတ်ႈလႅဝ်းၽဵင်ႇ ပဵင်းၵၼ်။",
}


def _doc(lang: str, rng: random.Random) -> str:
    sep = "" if lang == "zh" else " "
    return "\n\n".join(sep.join(rng.choice(WORDS[lang]) for _ in range(rng.randint(5, 15))) + "."
                       for _ in range(rng.randint(2, 5)))


@pytest.fixture(scope="module")
def corpus() -> list[tuple[str, str]]:
    rng = random.Random(7)
    return [(_doc(lang, rng), lang) for _ in range(60) for lang in WORDS]


def _cfg(**kw: object) -> VocabConfig:
    base = {"vocab_size": 4096, "sample_chars": 200_000, "heldout_chars": 5_000, "char_seed": "", "rounds": 2,
            "refill_rounds": 1, "char_min_count": 2, "coverage_share": 0.6}
    base.update(kw)
    return VocabConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def world() -> Vocab:
    return read_vocab(world_vocab_path())


@pytest.fixture(scope="module")
def covered(corpus: list[tuple[str, str]]) -> tuple[dict[int, bytes], dict]:
    res = train_vocab(corpus, _cfg())
    return res.tokens, res.stats


def _fallback(tok: TrieTokenizer, text: str) -> int:
    """Tokens of ``text`` that are single bytes >= 0x80 (byte fallback)."""
    mask = metrics.fallback_mask(tok.vocab.tokens, tok.vocab.max_id + 1)
    return int(mask[np.asarray(tok.encode(text), dtype=np.int64)].sum())


# ---- coverage floor -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["ml", "my", "shn", "si"])
def test_held_out_script_has_no_byte_fallback(covered: tuple[dict[int, bytes], dict], world: Vocab,
                                              lang: str) -> None:
    tok = TrieTokenizer(Vocab.from_tokens(covered[0]))
    text = HELD_OUT[lang]
    assert _fallback(tok, text) == 0  # every letter and mark of the script World covers is a token
    assert len(tok.encode(text)) <= len(TrieTokenizer(world).encode(text))


def test_without_the_floor_the_same_text_falls_back_to_bytes(corpus: list[tuple[str, str]]) -> None:
    res = train_vocab(corpus, _cfg(coverage=""))
    tok = TrieTokenizer(Vocab.from_tokens(res.tokens))
    assert res.stats["coverage_floor"]["tokens"] == 0
    assert _fallback(tok, HELD_OUT["ml"]) > len(HELD_OUT["ml"])  # about three bytes per character


def test_floor_report_and_world_characters(covered: tuple[dict[int, bytes], dict], world: Vocab) -> None:
    tokens, stats = covered
    rep = stats["coverage_floor"]
    assert rep["vocab"] == "world" and 0 < rep["tokens"] <= 0.6 * 4096
    assert rep["share"] == round(rep["tokens"] / 4096, 4) and rep["truncated"]  # 4,096 ids: not all of World fits
    assert rep["by_kind"]["partial"] == 358  # World's lead-byte pairs: no character costs more than in World
    have = set(tokens.values())
    small = [t for t in world.tokens.values() if len(t) > 1 and len(t.decode("utf-8", "replace")) == 1
             and token_category(t) in ("Mlym", "Mymr", "Sinh", "Knda", "Guru", "Tfng", "Taml", "Geor")]
    assert small and all(t in have for t in small)  # smaller scripts come first


def test_default_floor_keeps_every_world_character(world: Vocab) -> None:
    floor, rep = coverage_floor({"Latn": 10**8, "Cyrl": 10**7, "Hani": 10**7, "Hang": 10**6}, set(), VocabConfig())
    assert not rep["truncated"] and rep["share"] < 0.25
    have = set(floor)
    assert all(t in have for t in world.tokens.values() if len(t) > 1 and len(t.decode("utf-8", "replace")) == 1)


def test_script_closure_crosses_block_edges_and_skips_symbols() -> None:
    mymr = script_chars("Mymr", ["က"], 400)  # Myanmar is U+1000-109F: Shan's tone marks lie past U+107F
    assert {"\u1087", "\u1089", "\u108a", "\u109a"} <= set(mymr) and max(map(ord, mymr)) == 0x109D
    assert script_chars("Brai", ["\u2801"], 400) == []  # Braille patterns are symbols, not an alphabet
    assert script_chars("Hang", ["한"], 400) == [] and len(script_chars("Hang", ["한"])) == 11172  # over the limit


def test_script_closure_walks_each_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from rwkv_data.tokenizer import scripts

    calls = 0
    orig = scripts._is_of

    def counted(cp: int, script: str) -> bool:
        nonlocal calls
        calls += 1
        return orig(cp, script)

    monkeypatch.setattr(scripts, "_is_of", counted)
    han = script_chars("Hani", [chr(0x4E00 + k) for k in range(0, 20000, 3)])  # no limit (script_closure = 0)
    assert len(han) > 20000 and calls < 100_000  # walking the 20k-long run from each of 6,667 chars: 10^8 calls


def test_uncovered_script_costs_no_more_than_in_world(covered: tuple[dict[int, bytes], dict],
                                                     world: Vocab) -> None:
    tok, wtok = TrieTokenizer(Vocab.from_tokens(covered[0])), TrieTokenizer(world)
    text = HELD_OUT["sat"]  # Ol Chiki: World has no character of it, only a lead-byte pair
    assert len(tok.encode(text)) <= len(wtok.encode(text))


def test_thin_scripts_keep_world_words() -> None:
    cfg = VocabConfig(coverage_share=0.5)
    floor, rep = coverage_floor({"Latn": 10**8, "Hani": 10**7}, set(), cfg)
    assert "Cyrl" in rep["thin_scripts"] and " на".encode() in floor and b" the" not in floor
    rich, rep = coverage_floor({"Latn": 10**8, "Hani": 10**7, "Cyrl": 10**7}, set(), cfg)
    assert "Cyrl" not in rep["thin_scripts"] and " на".encode() not in rich and "д".encode() in rich


def test_floor_respects_its_share() -> None:
    floor, rep = coverage_floor({}, set(), VocabConfig(vocab_size=2048, coverage_share=0.25))
    assert len(floor) == 512 and rep["truncated"]
    have = {t for t in floor[:100]}
    again, _ = coverage_floor({}, have, VocabConfig(vocab_size=2048, coverage_share=0.25))
    assert not have & set(again) and len(again) == 512  # tokens the corpus requires already are free


# ---- one script classifier ----------------------------------------------------------------------------------


def test_classifier_examples() -> None:
    assert [char_script(c) for c in "aЖ中ひカ한ത०ማ ́1"] == ["Latn", "Cyrl", "Hani", "Hira", "Kana", "Hang", "Mlym",
                                                        "Deva", "Ethi", "Zyyy", "Zinh", "Zyyy"]
    assert dominant_script("1. Все люди, all") == "Cyrl" and dominant_script("…!") == "Zyyy"
    assert metrics.char_script is char_script and metrics.token_category is token_category


def test_vocab_info_and_audit_agree(world: Vocab) -> None:
    info = vocab_info(world)
    alloc = metrics.script_allocation(world.tokens)
    assert info["scripts"] == {k: v["tokens"] for k, v in alloc.items()}
    assert info["scripts"]["Mlym"] == 33 and info["scripts"]["Partial"] == 358 and info["scripts"]["Byte"] == 256
    assert script_allocation(world.tokens) == alloc


def test_training_reports_scripts_with_the_same_codes(corpus: list[tuple[str, str]]) -> None:
    _, report = required_chars(sample_corpus(corpus, _cfg()), _cfg())
    assert {"Taml", "Ethi", "Hani"} <= set(report)


# ---- focused extension --------------------------------------------------------------------------------------


def test_extension_adds_only_target_script_tokens(corpus: list[tuple[str, str]]) -> None:
    base = Vocab.from_tokens({b + 1: bytes([b]) for b in range(256)} | {300: b" the", 301: b"the", 302: b" of"})
    rng = random.Random(1)
    am = [(" ".join(rng.choice(WORDS["am"]) for _ in range(30)) + ".\n\n\u2063, ", "am") for _ in range(60)]
    res = extend_vocab(base, am, VocabConfig(add_tokens=64, heldout_chars=3000, char_seed="", rounds=2,
                                             refill_rounds=1, char_min_count=2))
    added = [bytes.fromhex(h) for _, h in res.idmap["added"]]
    assert added and all("Ethi" in {char_script(c) for c in t.decode()} for t in added)
    assert res.stats["focus_scripts"] == ["Ethi"]
    old, new = TrieTokenizer(base), TrieTokenizer(Vocab.from_tokens(res.tokens))
    english = "the people of the world, have rights.\n\n\u2063 and 12 freedoms!"
    assert new.encode(english) == old.encode(english)  # English ids stay identical
    loose = extend_vocab(base, am, VocabConfig(add_tokens=64, heldout_chars=3000, char_seed="", rounds=2,
                                               refill_rounds=1, char_min_count=2, focus=False))
    loose_added = [bytes.fromhex(h) for _, h in loose.idmap["added"]]
    assert any("Ethi" not in {char_script(c) for c in t.decode()} for t in loose_added)


# ---- bounded-memory sampler ---------------------------------------------------------------------------------


def test_streaming_sampler_keeps_little_and_samples_the_same(corpus: list[tuple[str, str]],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    big = corpus * 20  # ~1.2 M characters; the sample needs a small part of each language
    cfg = _cfg(sample_chars=50_000, score_chars=20_000, heldout_chars=2_000)
    monkeypatch.setattr(vocab_sample, "_RESIZE_CHARS", 1 << 62)
    whole = sample_corpus(big, cfg)  # limits applied once, at the end
    kept: list[int] = []
    orig = vocab_sample._Reservoir.ordered

    def spy(self: vocab_sample._Reservoir) -> list[str]:
        kept.append(self.kept)
        return orig(self)

    monkeypatch.setattr(vocab_sample, "_RESIZE_CHARS", 20_000)
    monkeypatch.setattr(vocab_sample._Reservoir, "ordered", spy)
    streamed = sample_corpus(big, cfg)
    for lang, s in whole.items():
        t = streamed[lang]
        assert (t.train, t.heldout, t.score, t.chars_available) == (s.train, s.heldout, s.score, s.chars_available)
    total = sum(len(t) for t, _ in big)
    assert sum(kept) < total / 4  # memory holds the usable prefix of each shuffle, not the corpus
