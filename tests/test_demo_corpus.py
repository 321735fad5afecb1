"""The shipped demo corpus (rwkv_data/demo/corpus.jsonl): format, coverage, sizes, NFC and scripts.

Checks that the file parses, every record has text/lang/script/id, ids are unique and sorted, there are at
least 30 languages in at least 12 scripts, every language has at least 2 KB of UTF-8 text, texts are NFC,
the declared ISO 15924 script is the dominant Unicode script of each text's letters, the README table is
current, and the file is where the package data puts it.

Run: pytest tests/test_demo_corpus.py
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter, defaultdict

import pytest
import regex

from rwkv_data.demo import demo_corpus_path, language_table, load_demo

# ISO 15924 code -> Unicode Script property values whose letters make up that writing system.
SCRIPTS: dict[str, tuple[str, ...]] = {
    "Latn": ("Latin",),
    "Cyrl": ("Cyrillic",),
    "Grek": ("Greek",),
    "Arab": ("Arabic",),
    "Hebr": ("Hebrew",),
    "Deva": ("Devanagari",),
    "Beng": ("Bengali",),
    "Taml": ("Tamil",),
    "Telu": ("Telugu",),
    "Gujr": ("Gujarati",),
    "Thai": ("Thai",),
    "Geor": ("Georgian",),
    "Armn": ("Armenian",),
    "Ethi": ("Ethiopic",),
    "Khmr": ("Khmer",),
    "Hans": ("Han",),
    "Jpan": ("Hiragana", "Katakana", "Han"),
    "Kore": ("Hangul",),
}
UNICODE_SCRIPTS = sorted({s for group in SCRIPTS.values() for s in group})
LETTER = {name: regex.compile(rf"[\p{{L}}\p{{M}}&&\p{{Script={name}}}]", regex.V1) for name in UNICODE_SCRIPTS}
ANY_LETTER = regex.compile(r"[\p{L}\p{M}--\p{Script=Inherited}--\p{Script=Common}]", regex.V1)


@pytest.fixture(scope="module")
def records() -> list[dict]:
    return load_demo()


def _script_counts(text: str) -> Counter:
    return Counter({name: len(pat.findall(text)) for name, pat in LETTER.items()})


def test_file_ships_as_package_data():
    path = demo_corpus_path()
    assert path.exists(), path
    assert path.parent.name == "demo"
    assert (path.parent / "README.md").exists()


def test_parses_one_object_per_line():
    lines = demo_corpus_path().read_text(encoding="utf-8").splitlines()
    assert lines
    for i, line in enumerate(lines, 1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {i}"
        assert line == json.dumps(obj, ensure_ascii=False), f"line {i} is not written with ensure_ascii=False"


def test_fields(records):
    for r in records:
        assert set(r) == {"text", "lang", "script", "id"}, r.get("id")
        for key in ("text", "lang", "script", "id"):
            assert isinstance(r[key], str) and r[key].strip(), (r.get("id"), key)
        assert r["script"] in SCRIPTS, r["id"]
        lang, _, n = r["id"].rpartition("-")
        assert lang == r["lang"] and n.isdigit(), r["id"]


def test_ids_unique_and_sorted(records):
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids))
    keys = [(r["lang"], int(r["id"].rpartition("-")[2])) for r in records]
    assert keys == sorted(keys)


def test_coverage(records):
    langs = {r["lang"] for r in records}
    scripts = {r["script"] for r in records}
    assert len(langs) >= 30, sorted(langs)
    assert len(scripts) >= 12, sorted(scripts)
    per_lang_script = defaultdict(set)
    for r in records:
        per_lang_script[r["lang"]].add(r["script"])
    assert all(len(s) == 1 for s in per_lang_script.values()), dict(per_lang_script)


def test_size_per_language(records):
    size: dict[str, int] = defaultdict(int)
    docs: dict[str, int] = defaultdict(int)
    for r in records:
        size[r["lang"]] += len(r["text"].encode("utf-8"))
        docs[r["lang"]] += 1
    small = {lang: n for lang, n in size.items() if n < 2048}
    assert not small, f"languages under 2 KB: {small}"
    big = {lang: n for lang, n in size.items() if n > 4096}
    assert not big, f"languages over 4 KB: {big}"
    assert all(4 <= n <= 8 for n in docs.values()), dict(docs)


def test_nfc(records):
    for r in records:
        assert unicodedata.is_normalized("NFC", r["text"]), r["id"]


def test_declared_script_is_dominant(records):
    for r in records:
        counts = _script_counts(r["text"])
        letters = len(ANY_LETTER.findall(r["text"]))
        expected = SCRIPTS[r["script"]]
        own = sum(counts[s] for s in expected)
        assert own >= 0.9 * letters, (r["id"], own, letters)
        others = {code: sum(counts[s] for s in group) for code, group in SCRIPTS.items()
                  if not set(group) & set(expected)}
        assert own > max(others.values()), (r["id"], others)
        if r["script"] == "Jpan":
            assert counts["Hiragana"] + counts["Katakana"] > 0, r["id"]
        if r["script"] == "Hans":
            assert counts["Hiragana"] + counts["Katakana"] == 0, r["id"]


def test_readme_table_is_current(records):
    readme = (demo_corpus_path().parent / "README.md").read_text(encoding="utf-8")
    assert language_table(records) in readme
    assert "Apache-2.0" in readme
