"""Tokenizer specs: one string names a tokenizer everywhere (flags, config files, the audit's list).

A spec is ``[label=][kind:]PATH[#pattern]``, ``world`` or ``bytes``:

- ``world`` (also ``""``, and ``World``): RWKV World ``rwkv_vocab_v20230424``, bundled;
- ``bytes``: one token per UTF-8 byte (the audit's floor);
- ``PATH`` or ``trie:PATH``: an RWKV vocab file (World ``.txt`` form or its ``.json`` twin);
- ``hf:PATH`` (a ``tokenizer.json``), ``tiktoken:PATH[#pattern]``, ``sp:PATH`` (a SentencePiece ``.model``):
  tokenizers of other families, which only the audit measures; without a prefix the file name decides.

``label=`` names the tokenizer in reports (``ours=runs/demo/vocab/vocab.txt``). :func:`parse_spec` reads the
string without touching the disk; :func:`load_trie` builds the :class:`TrieTokenizer` of a ``world`` or RWKV
vocab spec, which is what every job but the audit needs.

>>> parse_spec("ours=vocab.txt")
TokenizerSpec(label='ours', kind='trie', path='vocab.txt', pattern='')
>>> parse_spec("").kind
'world'
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rwkv_data.errors import ConfigError

KINDS = ("world", "bytes", "trie", "hf", "tiktoken", "sp")
WORLD_ALIASES = ("", "world", "World")  # "" is how older configs wrote World
TRIE_KINDS = ("world", "trie")  # the kinds a TrieTokenizer (and so shard, train and evaluate) can use


@dataclass(frozen=True)
class TokenizerSpec:
    """A parsed tokenizer spec: ``label`` ("" = none), ``kind`` (one of :data:`KINDS`), ``path``, ``pattern``."""

    label: str
    kind: str
    path: str = ""
    pattern: str = ""  # tiktoken: the split pattern's name (``#o200k_base``)

    @property
    def name(self) -> str:
        """The label, else ``World`` / ``bytes`` / the file's stem."""
        if self.label:
            return self.label
        return {"world": "World", "bytes": "bytes"}.get(self.kind) or Path(self.path).stem

    def require_file(self, spec: str) -> Path:
        """The spec's file, or ConfigError naming it when it does not exist."""
        p = Path(self.path)
        if not p.is_file():
            raise ConfigError(f"tokenizer {spec!r}: file {p} not found (or use 'world' / 'bytes')")
        return p


def _kind_of_file(name: str) -> str:
    lower = name.lower()
    if lower.endswith("tokenizer.json"):
        return "hf"
    if lower.endswith(".model"):
        return "sp"
    if lower.endswith(".tiktoken"):
        return "tiktoken"
    return "trie" if lower.endswith((".txt", ".json")) else ""


def parse_spec(spec: str) -> TokenizerSpec:
    """Parse ``[label=][kind:]PATH[#pattern]`` / ``world`` / ``bytes``; ConfigError when the kind is unclear."""
    spec = spec.strip()
    label, _, rest = spec.partition("=") if "=" in spec.split(":", 1)[0] else ("", "", spec)
    kind, sep, path = rest.partition(":")
    if not sep or kind not in KINDS:
        kind, path = "", rest
    if kind == "world" or (not kind and path in WORLD_ALIASES):
        return TokenizerSpec(label, "world")
    if kind == "bytes" or (not kind and path == "bytes"):
        return TokenizerSpec(label, "bytes")
    path, _, pattern = path.partition("#")
    kind = kind or _kind_of_file(Path(path).name)
    if not kind:
        raise ConfigError(f"tokenizer {spec!r}: cannot tell the kind from the file name; prefix it with "
                          "trie:, hf:, tiktoken: or sp: (or use 'world' / 'bytes')")
    return TokenizerSpec(label, kind, path, pattern)


def is_world(spec: str) -> bool:
    """Whether ``spec`` names RWKV World (``world``, ``""``, ``trie:``-less aliases, with or without a label)."""
    try:
        return parse_spec(spec).kind == "world"
    except ConfigError:
        return False


def load_trie(spec: str | TokenizerSpec, impl: str = "auto") -> Any:
    """The :class:`~rwkv_data.tokenizer.TrieTokenizer` of a ``world`` or RWKV vocab spec.

    ConfigError (naming the spec) for a missing file or a tokenizer of another family.
    """
    from rwkv_data.tokenizer.tokenizer import TrieTokenizer

    text = spec if isinstance(spec, str) else f"{spec.kind}:{spec.path}"
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "world":
        return TrieTokenizer.world(impl=impl)
    if parsed.kind != "trie":
        raise ConfigError(f"tokenizer {text!r}: this job needs an RWKV vocab ('world' or a .txt/.json vocab "
                          f"file), not a {parsed.kind} tokenizer (only `rwkv-data audit` measures those)")
    return TrieTokenizer.from_file(parsed.require_file(text), impl=impl)
