"""Fixtures shared by the audit tests: a tiny RWKV vocab file and a tiny parallel corpus, both in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

# Multi-byte entries of the fixture vocab, after the 256 single bytes (ids 1..256, id = byte + 1):
# 257 'ab', 258 'abc', 259 'cde', 260 ' x', 261 'xy', 262 'é', 263 '人人', 264 b'\xe4\xba' (half a character)
EXTRA: list[bytes] = [b"ab", b"abc", b"cde", b" x", b"xy", "é".encode(), "人人".encode(), b"\xe4\xba"]


def vocab_line(i: int, tok: bytes) -> str:
    """One line of the RWKV vocab format: ``<id> <python str or bytes literal> <byte length>``."""
    try:
        lit = repr(tok.decode("utf-8"))
    except UnicodeDecodeError:
        lit = repr(tok)
    return f"{i} {lit} {len(tok)}"


def write_vocab(path: Path, extra: list[bytes] = EXTRA) -> Path:
    """All 256 single bytes (ids 1..256) then ``extra`` (ids 257..)."""
    toks = [bytes([b]) for b in range(256)] + list(extra)
    path.write_text("\n".join(vocab_line(i, t) for i, t in enumerate(toks, 1)) + "\n", encoding="utf-8")
    return path


# Article 1 of the UDHR, first sentence (OHCHR; freely reproducible), three units per language.
UDHR_1 = {
    "eng": "All human beings are born free and equal in dignity and rights.",
    "rus": "Все люди рождаются свободными и равными в своем достоинстве и правах.",
    "cmn": "人人生而自由,在尊严和权利上一律平等。",
    "amh": "የሰው፡ልጅ፡ሁሉ፡ሲወለድ፡ነጻና፡በክብርና፡በመብትም፡እኩልነት፡ያለው፡ነው።",
}


def write_parallel(path: Path, texts: dict[str, str] = UDHR_1, units: int = 3) -> Path:
    """A UDHR-layout jsonl: one record per language, ``units`` aligned articles (text repeated k times)."""
    scripts = {"eng": "Latn", "rus": "Cyrl", "cmn": "Hans", "amh": "Ethi"}
    with path.open("w", encoding="utf-8") as f:
        for code, text in texts.items():
            arts = [" ".join([text] * (k + 1)) for k in range(units)]
            f.write(json.dumps({"code": code, "lang": code[:2], "script": scripts.get(code, "Latn"),
                                "name": code, "articles": arts}, ensure_ascii=False) + "\n")
    return path
