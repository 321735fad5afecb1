"""Every audit metric against values computed by hand on a tiny fixture vocab (tests/pipelines/audit_testlib.py).

The fixture vocab holds the 256 single bytes (ids 1..256) plus 'ab', 'abc', 'cde', ' x', 'xy', 'é', '人人' and
the half character b'\\xe4\\xba'. Each case spells out the greedy segmentation it expects.

Run: pytest tests/pipelines/test_audit_metrics.py -q
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from audit_testlib import write_vocab

from rwkv_data.pipelines.audit import metrics as M
from rwkv_data.pipelines.audit.adapters import TrieAdapter, load_tokenizer


@pytest.fixture(scope="module")
def fixture_tok(tmp_path_factory: pytest.TempPathFactory) -> TrieAdapter:
    return load_tokenizer(f"fixture={write_vocab(tmp_path_factory.mktemp('vocab') / 'fixture.txt')}")  # type: ignore[return-value]


def counts(tok: TrieAdapter, text: str) -> tuple[M.TextCounts, list[int]]:
    ((ids, ends),) = tok.encode_with_ends([text])
    trie = M.VocabTrie(tok.tokens.values())
    return M.text_counts(text, ends, tok.fallback[ids], trie.min_tokens(text.encode())), ids.tolist()


def test_two_words_greedy_and_minimum(fixture_tok: TrieAdapter) -> None:
    # greedy: abc|d|e|' '|abc|d|e (7); fewest: ab|cde|' '|ab|cde (5); the space token belongs to no word
    c, ids = counts(fixture_tok, "abcde abcde")
    assert ids == [258, 101, 102, 33, 258, 101, 102]
    assert (c.tokens, c.bytes, c.chars, c.words, c.word_tokens, c.continued, c.min_tokens) == (7, 11, 11, 2, 6, 2, 5)
    assert M.fertility(c) == 3.0
    assert M.continued_words(c) == 1.0
    assert M.bytes_per_token(c) == pytest.approx(11 / 7)
    assert M.chars_per_token(c) == pytest.approx(11 / 7)
    assert c.tokens / c.min_tokens - 1 == pytest.approx(0.4)
    assert M.greedy_optimality_gap(["abcde abcde"], fixture_tok.tokens) == pytest.approx(0.4)


def test_token_crossing_a_word_boundary_counts_for_the_word_it_overlaps(fixture_tok: TrieAdapter) -> None:
    # ab|' x'|y: word 'ab' has 1 token, word 'xy' is overlapped by ' x' and 'y'
    c, ids = counts(fixture_tok, "ab xy")
    assert ids == [257, 260, 122]
    assert (c.words, c.word_tokens, c.continued) == (2, 3, 1)
    assert M.fertility(c) == 1.5 and M.continued_words(c) == 0.5
    assert c.min_tokens == 3


def test_byte_fallback_of_tokens_and_of_characters(fixture_tok: TrieAdapter) -> None:
    # 'é' has a token; '€' (e2 82 ac) falls back to three single bytes >= 0x80
    c, ids = counts(fixture_tok, "é€")
    assert ids == [262, 0xE2 + 1, 0x82 + 1, 0xAC + 1]
    assert M.byte_fallback_share(c) == 0.75
    assert (c.nonascii_chars, c.split_chars) == (2, 1)
    assert M.split_char_share(c) == 0.5
    assert M.bytes_per_token(c) == 1.25 and M.chars_per_token(c) == 0.5
    assert M.byte_fallback_share(ids, fixture_tok.tokens) == 0.75  # the ids + vocabulary form


def test_han_words_are_characters_and_partial_tokens(fixture_tok: TrieAdapter) -> None:
    # 人人人 = e4 ba ba x3: '人人' | b'\xe4\xba' | b'\xba'; words are the 3 characters
    c, ids = counts(fixture_tok, "人人人")
    assert ids == [263, 264, 0xBA + 1]
    assert (c.words, c.word_tokens, c.continued) == (3, 4, 1)
    assert M.fertility(c) == pytest.approx(4 / 3)
    assert c.fallback_tokens == 1  # the 2-byte partial token is not byte fallback, the lone 0xba is
    assert M.split_char_share(c) == pytest.approx(1 / 3)
    assert c.min_tokens == 3


def test_word_segmentation_per_script() -> None:
    starts, ends = M.word_spans("ab, cd 人人 ไทย የሰው፡ልጅ")
    text = "ab, cd 人人 ไทย የሰው፡ልጅ"
    assert [text[s:e] for s, e in zip(starts, ends, strict=True)] == ["ab,", "cd", "人", "人", "ไ", "ท", "ย",
                                                                        "የሰው", "ልጅ"]
    s, e = M.word_spans("กี่")  # a Thai consonant keeps its combining marks
    assert [(int(a), int(b)) for a, b in zip(s, e, strict=True)] == [(0, 3)]


def test_parity_and_gini() -> None:
    assert M.parity({"eng": 10, "deu": 13, "amh": 80}, "eng") == {"eng": 1.0, "deu": 1.3, "amh": 8.0}
    # sum_ij |ci - cj| = 2 * (1 + 2 + 1) = 8; 2 n^2 mu = 2 * 9 * 2 = 36
    assert M.gini([1, 2, 3]) == pytest.approx(8 / 36)
    assert M.gini([5, 5, 5, 5]) == 0.0
    assert M.gini_rows(np.array([[1, 2, 3], [5, 5, 5]])) == pytest.approx([8 / 36, 0.0])
    with pytest.raises(ValueError, match="reference language"):
        M.parity({"eng": 1}, "fra")


def test_renyi_efficiency_with_explicit_vocab_size() -> None:
    p = [0.25, 0.25, 0.5]
    h = math.log(sum(x ** 2.5 for x in p)) / (1 - 2.5)
    assert M.renyi_efficiency(np.array([1, 1, 2, 0]), vocab_size=4) == pytest.approx(h / math.log(4))
    assert M.renyi_efficiency({7: 1, 9: 1, 11: 2}, vocab_size=4) == pytest.approx(h / math.log(4))
    assert M.renyi_efficiency(np.ones(16), vocab_size=16) == pytest.approx(1.0)  # uniform over all of V
    assert M.renyi_efficiency(np.ones(16), vocab_size=256) == pytest.approx(0.5)  # |V| counts, not observed
    shannon = -sum(x * math.log(x) for x in p) / math.log(4)
    assert M.renyi_efficiency(np.array([1, 1, 2]), vocab_size=4, alpha=1) == pytest.approx(shannon)


def test_utilisation_and_dead_tokens() -> None:
    assert M.vocab_utilisation([1, 2, 2, 3], n_entries=10) == 0.3
    assert M.dead_tokens([1, 3], range(1, 6)) == [2, 4, 5]


def test_script_allocation_and_variants(fixture_tok: TrieAdapter) -> None:
    alloc = M.script_allocation(fixture_tok.tokens)
    assert alloc["Byte"] == {"tokens": 256, "multi_char": 0}
    assert alloc["Latn"] == {"tokens": 6, "multi_char": 4}  # ab abc cde xy (words); ' x', 'é' (one letter)
    assert alloc["Hani"] == {"tokens": 1, "multi_char": 1}
    assert alloc["Partial"] == {"tokens": 1, "multi_char": 0}
    v = M.variant_share([b"ab", b" ab", b"Ab", b"AB", b"cd", b"\xff", b"12"])
    assert (v["alphabetic"], v["keys"], v["variants"]) == (5, 2, 3)
    assert v["share"] == pytest.approx(3 / 7)


def test_greedy_count_of_the_trie_matches_the_tokenizer() -> None:
    from rwkv_data.tokenizer import TrieTokenizer

    tok = TrieTokenizer.world()
    trie = M.VocabTrie(tok.vocab.tokens.values())
    for text in ["Hello, world", "Все люди рождаются свободными", "人人生而自由", "የሰው፡ልጅ፡ሁሉ", "தமிழ் 🤖 x"]:
        data = text.encode()
        assert trie.greedy_tokens(data) == len(tok.encode(text))
        assert trie.min_tokens(data) <= trie.greedy_tokens(data)


def test_bootstrap_intervals_and_paired_comparison() -> None:
    num, den = np.arange(1.0, 11.0), np.ones(10)
    w = np.eye(10, dtype=np.int64)  # ten "resamples", each one unit: ratios 1..10
    assert M.ratio_ci(num, den, w, ci=0.5) == pytest.approx((3.25, 7.75))
    rng = np.random.default_rng(0)
    w = M.bootstrap_weights(10, 200, rng)
    assert w.shape == (200, 10) and (w.sum(axis=1) == 10).all()
    b = np.array([3, 5, 7, 11, 13, 17, 19, 23, 29, 31])
    same = M.paired_comparison(2 * b, b, w)
    assert same["ratio"] == 2.0 and same["ci_low"] == same["ci_high"] == 2.0 and same["p_value"] == 0.0
    tie = M.paired_comparison(b, b, w)
    assert tie["ratio"] == 1.0 and tie["p_value"] == 1.0


def test_fewer_than_ten_units_give_no_interval() -> None:
    w = M.bootstrap_weights(9, 200, np.random.default_rng(0))
    assert all(math.isnan(x) for x in M.ratio_ci(np.arange(9.0), np.ones(9), w))
    few = M.paired_comparison(np.arange(1, 10) * 2, np.arange(1, 10), w)
    assert few["ratio"] == 2.0 and math.isnan(few["ci_low"]) and math.isnan(few["p_value"])
