"""The coverage floor of ``vocab train``: a trained vocabulary never loses a script that World (or another
*coverage vocab*) serves, even when the training corpus has no text in it.

A vocabulary trained only on its corpus spells text in a script the corpus lacks byte by byte (three tokens per
character for most Indic and Southeast-Asian scripts), where World has the characters (or at least a two-byte
lead token). The floor adds, in this order of priority, as tokens that selection never removes:

1. ``partial``: the coverage vocab's multi-byte tokens that are not valid UTF-8 (World's 358 two-byte lead
   sequences such as ``e0 b4``), so a character without a token of its own costs at most what World pays;
2. ``chars``: every single-character token of the coverage vocab and ``closure``: every character of each such
   character's script in the same 128-code-point blocks when the script has at most ``script_closure`` of them
   there (all letters, marks and signs of Malayalam, Sinhala, Myanmar, ...; Han, Hangul and Latin are left to
   the characters themselves); scripts with fewer characters come first;
3. ``thin``: the coverage vocab's multi-character tokens whose letters all belong to scripts with fewer than
   ``coverage_thin_chars`` characters in the corpus (absent scripts first), so a script the corpus lacks keeps
   World's words too, not only its letters.

Tokens the corpus already requires cost nothing; the others stop at ``coverage_share`` of ``vocab_size``
(reported as ``truncated``). ``coverage = ""`` turns the floor off.

>>> from rwkv_data.tokenizer.vocab_settings import VocabSettings
>>> corpus = {"Latn": 10**8, "Cyrl": 10**7, "Hani": 10**7, "Hang": 10**6}  # characters per script
>>> floor, rep = coverage_floor(corpus, set(), VocabSettings())
>>> "മ".encode() in floor, "ന്ന".encode() in floor, rep["by_kind"]["partial"], rep["truncated"]
(True, False, 358, False)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from rwkv_data.tokenizer.scripts import NEUTRAL, char_script, script_chars, text_scripts
from rwkv_data.tokenizer.vocab_settings import VocabSettings


@lru_cache(maxsize=4)
def _coverage_tokens(name: str) -> tuple[bytes, ...]:
    """The coverage vocab's multi-byte tokens in id order (``"world"``: the packaged World vocab)."""
    from rwkv_data.tokenizer.vocab import read_vocab, world_vocab_path

    vocab = read_vocab(world_vocab_path() if name == "world" else name)
    return tuple(vocab.tokens[i] for i in sorted(vocab.tokens) if len(vocab.tokens[i]) > 1)


def _split(tokens: tuple[bytes, ...]) -> tuple[list[bytes], dict[str, list[str]], list[tuple[bytes, set[str]]]]:
    """(partial tokens, single characters by script, multi-character tokens with their scripts)."""
    partial: list[bytes] = []
    chars: dict[str, list[str]] = defaultdict(list)
    multi: list[tuple[bytes, set[str]]] = []
    for t in tokens:
        try:
            text = t.decode("utf-8")
        except UnicodeDecodeError:
            partial.append(t)
            continue
        if len(text) == 1:
            chars[char_script(text)].append(text)
        else:
            multi.append((t, text_scripts(text)))
    return partial, chars, multi


def coverage_floor(script_counts: Mapping[str, int], have: set[bytes], cfg: VocabSettings, room: int | None = None
                   ) -> tuple[list[bytes], dict[str, Any]]:
    """The floor's tokens not in ``have``, best first, and a report.

    Args:
        script_counts: characters per script (ISO 15924) in the whole training corpus.
        have: tokens already required (bytes, the corpus's characters): they cost nothing.
        cfg: ``coverage``, ``coverage_thin_chars``, ``coverage_share``, ``script_closure``, ``vocab_size``.
        room: at most this many tokens (the ids the required tokens leave free; default no limit).
    """
    if not cfg.coverage:
        return [], {"vocab": "", "tokens": 0, "share": 0.0}
    partial, chars, multi = _split(_coverage_tokens(cfg.coverage))
    groups: list[tuple[str, list[bytes]]] = [("partial", partial)]
    for script in sorted(chars, key=lambda s: (len(chars[s]), s)):
        group = [c.encode("utf-8") for c in chars[script]]
        if script not in NEUTRAL and script != "Zzzz":
            group += [c.encode("utf-8") for c in script_chars(script, chars[script], cfg.script_closure)]
        groups.append(("chars", group))
    thin = {s for s in {s for _, ss in multi for s in ss} if script_counts.get(s, 0) < cfg.coverage_thin_chars}
    words = [(t, ss) for t, ss in multi if ss and ss <= thin]
    words.sort(key=lambda x: (max(script_counts.get(s, 0) for s in x[1]), len(x[0])))
    groups.append(("thin", [t for t, _ in words]))

    budget = int(cfg.coverage_share * cfg.vocab_size)
    if room is not None:
        budget = max(0, min(budget, room))
    out: list[bytes] = []
    seen = set(have)
    counts: dict[str, int] = defaultdict(int)
    truncated = False
    for kind, group in groups:
        for t in group:
            if t in seen:
                continue
            if len(out) >= budget:
                truncated = True
                break
            seen.add(t)
            out.append(t)
            counts[kind] += 1
    report = {"vocab": cfg.coverage, "tokens": len(out), "share": round(len(out) / cfg.vocab_size, 4),
              "by_kind": dict(counts), "already_required": sum(1 for _, g in groups for t in g if t in have),
              "thin_scripts": {s: script_counts.get(s, 0) for s in sorted(thin)}, "truncated": truncated}
    return out, report


def script_counts_of(char_counts: Mapping[str, int]) -> dict[str, int]:
    """Characters per script (ISO 15924) from per-character counts."""
    out: dict[str, int] = defaultdict(int)
    for ch, n in char_counts.items():
        out[char_script(ch)] += n
    return dict(out)
