"""Facts about a vocab for ``rwkv-data vocab info``: size, byte coverage, tokens per script, longest token.

A token's script is the one Unicode script of its letters (``regex``'s ``\\p{Script=...}``), ignoring Common
(spaces, digits, punctuation, emoji) and Inherited (combining marks) characters; ``Common`` when it has no
letters, ``Mixed`` when it has several scripts, ``bytes`` when the token is not valid UTF-8 on its own.

>>> from rwkv_data.tokenizer import Vocab
>>> v = Vocab.from_tokens({b + 1: bytes([b]) for b in range(256)} | {257: "né".encode(), 258: "中".encode()})
>>> vocab_info(v)["scripts"]["Han"]
1
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from typing import Any

import regex

from rwkv_data.tokenizer.literal import token_literal
from rwkv_data.tokenizer.vocab import Vocab

SCRIPTS = (
    "Latin", "Cyrillic", "Greek", "Armenian", "Georgian", "Hebrew", "Arabic", "Syriac", "Thaana", "Devanagari",
    "Bengali", "Gurmukhi", "Gujarati", "Oriya", "Tamil", "Telugu", "Kannada", "Malayalam", "Sinhala", "Thai", "Lao",
    "Tibetan", "Myanmar", "Khmer", "Hangul", "Hiragana", "Katakana", "Han", "Bopomofo", "Ethiopic", "Cherokee",
    "Mongolian", "Canadian_Aboriginal", "Tifinagh", "Yi", "Common", "Inherited",
)
_SCRIPT_OF = regex.compile("|".join(f"(?P<{s}>\\p{{Script={s}}})" for s in SCRIPTS))


@lru_cache(maxsize=65536)
def char_script(ch: str) -> str:
    """The Unicode script of one character (one of :data:`SCRIPTS`, else ``Other``)."""
    m = _SCRIPT_OF.match(ch)
    return m.lastgroup if m and m.lastgroup else "Other"


def token_script(token: bytes) -> str:
    """The script a token belongs to (see the module docstring)."""
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes"
    found = {char_script(c) for c in text} - {"Common", "Inherited"}
    if not found:
        return "Common"
    return found.pop() if len(found) == 1 else "Mixed"


def vocab_info(vocab: Vocab) -> dict[str, Any]:
    """A JSON-ready summary of ``vocab``."""
    tokens = vocab.tokens
    single = sum(1 for t in tokens.values() if len(t) == 1)
    non_utf8 = 0
    for t in tokens.values():
        try:
            t.decode("utf-8")
        except UnicodeDecodeError:
            non_utf8 += 1
    longest_id = max(tokens, key=lambda i: (len(tokens[i]), -i))
    scripts = Counter(token_script(t) for t in tokens.values())
    lengths = Counter(len(t) for t in tokens.values())
    return {
        "name": vocab.name,
        "size": len(vocab),
        "max_id": vocab.max_id,
        "vocab_size": vocab.max_id + 1,
        "dtype": "uint16" if vocab.max_id <= 0xFFFF else "uint32",
        "sha256": vocab.sha256,
        "byte_coverage": {"single_bytes": single, "of": 256, "utf8_tokens": len(tokens) - non_utf8,
                          "non_utf8_tokens": non_utf8},
        "longest_token": {"id": longest_id, "bytes": len(tokens[longest_id]),
                          "literal": token_literal(tokens[longest_id])},
        "scripts": dict(scripts.most_common()),
        "lengths": {str(k): lengths[k] for k in sorted(lengths)},
    }


def format_info(info: dict[str, Any]) -> str:
    """The human-readable form of :func:`vocab_info`."""
    cov = info["byte_coverage"]
    lt = info["longest_token"]
    lines = [
        f"name          {info['name']}",
        f"tokens        {info['size']:,} (ids up to {info['max_id']:,}; vocab_size {info['vocab_size']:,}, "
        f"{info['dtype']})",
        f"byte coverage {cov['single_bytes']}/{cov['of']} single bytes; {cov['utf8_tokens']:,} UTF-8 tokens, "
        f"{cov['non_utf8_tokens']:,} partial-UTF-8 tokens",
        f"longest token id {lt['id']}, {lt['bytes']} bytes: {lt['literal'][:60]}"
        + ("..." if len(lt["literal"]) > 60 else ""),
        f"sha256        {info['sha256']}",
        "tokens per script:",
    ]
    lines += [f"  {name:<20} {count:>7,}" for name, count in info["scripts"].items()]
    return "\n".join(lines)
