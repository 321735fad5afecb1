"""Facts about a vocab for ``rwkv-data vocab info``: size, byte coverage, tokens per script, longest token.

Tokens are classified per script by :func:`rwkv_data.tokenizer.scripts.token_category`, the classifier the
audit uses too, so ``vocab info`` and ``rwkv-data audit`` report the same per-script counts: an ISO 15924 code
(the dominant script of the token's letters; ``Zyyy`` when it has none), ``Byte`` for the 256 single bytes and
``Partial`` for tokens that are not valid UTF-8 on their own.

>>> from rwkv_data.tokenizer import Vocab
>>> v = Vocab.from_tokens({b + 1: bytes([b]) for b in range(256)} | {257: "né".encode(), 258: "中".encode()})
>>> vocab_info(v)["scripts"]["Hani"], vocab_info(v)["scripts"]["Latn"]
(1, 1)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rwkv_data.tokenizer.literal import token_literal
from rwkv_data.tokenizer.scripts import SCRIPTS, script_allocation
from rwkv_data.tokenizer.vocab import Vocab


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
    alloc = script_allocation(tokens)
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
        "scripts": {k: v["tokens"] for k, v in alloc.items()},
        "multi_char": {k: v["multi_char"] for k, v in alloc.items() if v["multi_char"]},
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
        "tokens per script (ISO 15924; Zyyy: no letters, Partial: not valid UTF-8):",
    ]
    multi = info.get("multi_char", {})
    lines += [f"  {code:<8} {SCRIPTS.get(code, ''):<20} {count:>7,}"
              + (f"  ({multi[code]:,} of several characters)" if multi.get(code) else "")
              for code, count in info["scripts"].items()]
    return "\n".join(lines)
