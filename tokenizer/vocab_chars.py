"""Character completeness for vocabulary training: which characters get a token of their own.

Every character above a frequency floor gets a token, then (budget permitting) the other case of each, the whole
small alphabet of each script seen, and the single-character tokens of a seed vocab (World) in the scripts seen,
so that no script of the training set falls back to raw bytes on text from another register.

Scripts are ISO 15924 codes from :mod:`rwkv_data.tokenizer.scripts` (the classifier ``vocab info`` and the
audit use). The coverage floor (characters and tokens kept for scripts the corpus lacks) is
:mod:`rwkv_data.tokenizer.vocab_coverage`.

>>> len(_charset_chars()) > 9_000
True
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from rwkv_data.tokenizer.scripts import char_script, script_chars
from rwkv_data.tokenizer.vocab_settings import VocabSettings

if TYPE_CHECKING:
    from rwkv_data.tokenizer.vocab_sample import LangSample

log = logging.getLogger(__name__)


# The most frequent characters of the large scripts, as national standards list them (Python's own codecs, so no
# data file): GB 2312 level 1 (3,755 hanzi, simplified), Big5 level 1 (5,401, traditional), JIS X 0208 level 1
# (2,965 kanji) and the 2,350 Hangul syllables of KS X 1001 (EUC-KR). (codec, first row, last row, cells)
CHARSETS = (("gb2312", 0xB0, 0xD7, range(0xA1, 0xFF)), ("big5", 0xA4, 0xC6, range(0x40, 0xFF)),
            ("shift_jis", 0x88, 0x98, range(0x40, 0xFD)), ("euc_kr", 0xB0, 0xC8, range(0xA1, 0xFF)))


def _charset_chars() -> list[str]:
    out = []
    for codec, lo, hi, cells in CHARSETS:
        for row in range(lo, hi + 1):
            for cell in cells:
                try:
                    ch = bytes([row, cell]).decode(codec)
                except UnicodeDecodeError:
                    continue
                if len(ch) == 1 and unicodedata.category(ch) == "Lo":
                    out.append(ch)
    return sorted(set(out))


def _seed_chars(name: str) -> list[str]:
    """Seed characters: ``"charsets"`` (see :data:`CHARSETS`), ``"world"`` (RWKV World's single-character tokens,
    e.g. its 8,247 Han characters; needs the ``rwkv`` package) or the single-character tokens of a vocab file."""
    if not name:
        return []
    if name == "charsets":
        return _charset_chars()
    from rwkv_data.tokenizer.vocab import read_vocab, world_vocab_path

    path = world_vocab_path() if name == "world" else name
    out = []
    for t in read_vocab(path).tokens.values():
        try:
            text = t.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(text) == 1 and len(t) > 1:
            out.append(text)
    return out


def seed_name(cfg: VocabSettings, floor: bool = False) -> str:
    """The seed ``char_seed`` names: ``"auto"`` is ``"charsets"``, or none when the coverage ``floor`` is on
    (the floor keeps World's 8,249 Han and 604 Hangul characters; the charsets would add 663 Han and 1,746
    Hangul characters more, mostly never used)."""
    if cfg.char_seed != "auto":
        return cfg.char_seed
    return "" if floor and cfg.coverage else "charsets"


def required_chars(samples: dict[str, LangSample], cfg: VocabSettings, extra_budget: int | None = None,
                   floor: bool = False) -> tuple[list[bytes], dict[str, Any]]:
    """The character-completeness set, as sorted UTF-8 tokens, and a per-script report.

    A non-ASCII character gets a token when (1) it occurs at least ``char_min_count`` times in the corpus and
    is at least ``char_min_share`` of its script's occurrences; (2) it is the other case of such a character;
    (3) its script is seen (letters above the floor) and has at most ``script_closure`` characters in the
    blocks seen (small alphabets and their punctuation: Armenian, Ethiopic, Cherokee, ...); (4) it is a
    seed character (``char_seed``: the level-1 characters of national standards, or a vocab's single-character
    tokens) in a script seen (large scripts such as Han, where a technical corpus misses common characters of
    other registers). (2)-(4) are skipped, with a warning, when
    the characters would then exceed ``extra_budget`` (default: a quarter of the vocab). ``floor``: the
    caller adds the coverage floor (:func:`seed_name`).
    """
    counts: Counter[str] = Counter()
    for s in samples.values():
        counts.update(s.char_counts)
    per_script: dict[str, Counter[str]] = defaultdict(Counter)
    for ch, n in counts.items():
        if ord(ch) >= 0x80:
            per_script[char_script(ch)][ch] = n
    keep: set[str] = set()
    for cnt in per_script.values():
        total = sum(cnt.values())
        keep.update(ch for ch, n in cnt.items() if n >= cfg.char_min_count and n >= cfg.char_min_share * total)
    # (2)-(4) are extras: each is taken only while all characters stay within the budget
    budget = cfg.vocab_size // 4 if extra_budget is None else extra_budget
    seen = {char_script(ch) for ch in keep if unicodedata.category(ch)[0] in "LM"} - {"Zyyy", "Zinh", "Zzzz"}
    cased = {c for ch in keep for c in (ch.upper(), ch.lower()) if len(c) == 1 and ord(c) >= 0x80}
    closure = {c for script in sorted(seen)
               for c in script_chars(script, [c for c in keep if char_script(c) == script], cfg.script_closure)}
    seeded = {ch for ch in _seed_chars(seed_name(cfg, floor)) if char_script(ch) in seen}
    skipped = []
    for name, extra in (("case", cased), ("script_closure", closure), ("seed", seeded)):
        if len(keep | extra) <= budget:
            keep |= extra
        elif extra - keep:
            skipped.append(name)
            log.warning("character completeness: %s (%d characters) skipped, it would exceed the budget of %d "
                        "characters", name, len(extra - keep), budget)
    report = {}
    for script, cnt in sorted(per_script.items()):
        total = sum(cnt.values())
        report[script] = {"distinct": len(cnt), "kept": sum(1 for c in cnt if c in keep),
                          "coverage": round(sum(n for c, n in cnt.items() if c in keep) / total, 6)}
    report["_added_without_occurrence"] = sum(1 for c in keep if c not in counts)
    report["_seeded"] = len(seeded & keep)
    report["_skipped"] = skipped
    return sorted(ch.encode("utf-8") for ch in keep), report
