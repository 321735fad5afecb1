"""The one script classifier of the project: characters, texts and vocabulary tokens -> ISO 15924 codes.

``vocab info``, the audit (``pipelines/audit/metrics.py``) and vocabulary training (``vocab_chars``,
``vocab_coverage``) all classify with these functions, so their per-script counts agree.

- :func:`char_script`: the Unicode ``Script`` property of one character as an ISO 15924 code (``Zyyy`` Common:
  spaces, digits, punctuation, emoji; ``Zinh`` Inherited: shared combining marks; ``Zzzz`` a script not in
  :data:`SCRIPTS`).
- :func:`dominant_script`: the most frequent script of a text, ignoring Common and Inherited characters.
- :func:`token_category`: ``Byte`` for single bytes, ``Partial`` for tokens that are not valid UTF-8, else the
  dominant script of the token's text.
- :func:`script_allocation`: vocabulary entries per category.

>>> char_script("த"), char_script("人"), char_script("A"), char_script(" ")
('Taml', 'Hani', 'Latn', 'Zyyy')
>>> dominant_script("Hello, мир мира"), token_category(b"\\xe0\\xae"), token_category(" the".encode())
('Cyrl', 'Partial', 'Latn')
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping

import regex

# ISO 15924 code -> Unicode script name (as the `regex` module spells it). Zyyy = Common, Zinh = Inherited.
SCRIPTS: dict[str, str] = {
    "Latn": "Latin", "Cyrl": "Cyrillic", "Grek": "Greek", "Arab": "Arabic", "Hebr": "Hebrew", "Hani": "Han",
    "Hira": "Hiragana", "Kana": "Katakana", "Hang": "Hangul", "Bopo": "Bopomofo", "Thai": "Thai", "Laoo": "Lao",
    "Khmr": "Khmer", "Mymr": "Myanmar", "Tibt": "Tibetan", "Deva": "Devanagari", "Beng": "Bengali",
    "Guru": "Gurmukhi", "Gujr": "Gujarati", "Orya": "Oriya", "Taml": "Tamil", "Telu": "Telugu", "Knda": "Kannada",
    "Mlym": "Malayalam", "Sinh": "Sinhala", "Ethi": "Ethiopic", "Armn": "Armenian", "Geor": "Georgian",
    "Thaa": "Thaana", "Syrc": "Syriac", "Tfng": "Tifinagh", "Olck": "Ol_Chiki", "Cher": "Cherokee",
    "Cans": "Canadian_Aboriginal", "Mong": "Mongolian", "Yiii": "Yi", "Vaii": "Vai", "Nkoo": "Nko", "Adlm": "Adlam",
    "Java": "Javanese", "Lana": "Tai_Tham", "Tavt": "Tai_Viet", "Cakm": "Chakma", "Gran": "Grantha",
    "Bali": "Balinese", "Sund": "Sundanese", "Bugi": "Buginese", "Batk": "Batak", "Lepc": "Lepcha", "Limb": "Limbu",
    "Mtei": "Meetei_Mayek", "Saur": "Saurashtra", "Kali": "Kayah_Li", "Cham": "Cham", "Lisu": "Lisu",
    "Tale": "Tai_Le", "Talu": "New_Tai_Lue", "Bamu": "Bamum", "Osge": "Osage", "Copt": "Coptic",
    "Glag": "Glagolitic", "Goth": "Gothic", "Runr": "Runic", "Ogam": "Ogham", "Samr": "Samaritan",
    "Mand": "Mandaic", "Brai": "Braille", "Zyyy": "Common", "Zinh": "Inherited",
}
NEUTRAL = ("Zyyy", "Zinh")  # Common and Inherited: shared by every script, never a token's or text's script
_SCRIPT_RE = regex.compile("|".join(rf"(?P<{k}>\p{{Script={v}}})" for k, v in SCRIPTS.items()))
_cache: dict[str, str] = {}


def char_script(ch: str) -> str:
    """ISO 15924 code of one character (``Zzzz`` for scripts not in :data:`SCRIPTS`); cached per character."""
    sc = _cache.get(ch)
    if sc is None:
        m = _SCRIPT_RE.match(ch)
        sc = _cache[ch] = m.lastgroup if m and m.lastgroup else "Zzzz"
    return sc


def dominant_script(text: str) -> str:
    """Most frequent script of ``text`` ignoring Common and Inherited characters (``Zyyy`` if only those);
    ties go to the script seen first."""
    counts: dict[str, int] = {}
    for ch in text:
        sc = char_script(ch)
        if sc not in NEUTRAL:
            counts[sc] = counts.get(sc, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else "Zyyy"


def text_scripts(text: str) -> set[str]:
    """Every script of ``text`` except Common and Inherited."""
    return {char_script(ch) for ch in text} - set(NEUTRAL)


def token_category(tok: bytes) -> str:
    """``Byte`` for the single bytes, ``Partial`` for tokens that are not valid UTF-8, else the dominant script."""
    if len(tok) == 1:
        return "Byte"
    try:
        return dominant_script(tok.decode("utf-8"))
    except UnicodeDecodeError:
        return "Partial"


def script_allocation(tokens: Mapping[int, bytes] | Iterable[bytes]) -> dict[str, dict[str, int]]:
    """Vocabulary entries per category (:func:`token_category`): ``{"tokens": n, "multi_char": m}``, where
    ``multi_char`` counts entries with two or more characters of that script (words, not single letters).
    Sorted by ``tokens``, largest first."""
    out: dict[str, dict[str, int]] = {}
    for tok in tokens.values() if isinstance(tokens, Mapping) else tokens:
        cat = token_category(tok)
        row = out.setdefault(cat, {"tokens": 0, "multi_char": 0})
        row["tokens"] += 1
        if cat not in ("Byte", "Partial", "Zyyy"):
            text = tok.decode("utf-8")
            if sum(1 for ch in text if char_script(ch) == cat) >= 2:
                row["multi_char"] += 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1]["tokens"], kv[0])))


def _is_of(cp: int, script: str) -> bool:
    """An assigned letter, mark, number or punctuation character of ``script`` (symbols such as Braille
    patterns or Tibetan astrological signs are not part of a script's alphabet)."""
    ch = chr(cp)
    return unicodedata.category(ch)[0] in "LMNP" and char_script(ch) == script


def script_chars(script: str, near: Iterable[str] = (), limit: int = 0) -> list[str]:
    """The letters, marks, numbers and punctuation of ``script`` in the 128-code-point blocks where the
    characters ``near`` lie, and in the whole run of consecutive code points of ``script`` around each of them
    (a Unicode block can cross a 128-code-point edge: Myanmar is U+1000-109F, and Shan's letters are in
    U+1075-109F).

    Returns ``[]`` when there are more than ``limit`` of them (``limit`` 0: no limit), so large scripts (Han,
    Hangul syllables, Latin) are left to frequency.
    """
    found: set[int] = set()

    def add(cp: int) -> bool:
        found.add(cp)
        return bool(limit) and len(found) > limit

    for blk in sorted({ord(c) >> 7 for c in near}):
        for cp in range(blk << 7, (blk + 1) << 7):
            if _is_of(cp, script) and add(cp):
                return []
    walked: set[int] = set()  # code points whose run has been walked (each run once: Han's is 20k long)
    for cp0 in sorted({ord(c) for c in near if char_script(c) == script}):
        if cp0 in walked:
            continue
        walked.add(cp0)
        for step in (1, -1):
            cp = cp0 + step
            while 0 <= cp <= 0x10FFFF and _is_of(cp, script):
                walked.add(cp)
                if cp not in found and add(cp):
                    return []
                cp += step
    return [chr(cp) for cp in sorted(found)]
