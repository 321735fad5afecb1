"""One interface over every tokenizer the audit compares: RWKV trie vocabularies (World and trained ones),
a bytes-only baseline, Hugging Face ``tokenizer.json``, tiktoken encodings given as local files, and
SentencePiece ``.model`` files. Nothing here downloads anything.

A tokenizer is named on the command line by a spec, ``[label=][kind:]path[#pattern]``::

    world                         the RWKV World vocabulary (rwkv_data.tokenizer)
    bytes                         one token per UTF-8 byte (the baseline)
    my_vocab.txt / trie:my.json   an RWKV vocab file
    hf:tokenizer.json             Hugging Face tokenizers
    tiktoken:cl100k_base.tiktoken#cl100k_base   a tiktoken BPE file plus its split pattern (name or regex)
    sp:m.model                    SentencePiece

Every adapter returns, per text, the token ids and the UTF-8 byte end offset of each token in the text,
which is all :func:`rwkv_data.pipelines.audit.metrics.text_counts` needs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rwkv_data.errors import ConfigError, DependencyMissing
from rwkv_data.pipelines.audit.metrics import char_byte_offsets, fallback_mask
from rwkv_data.tokenizer.pretokenize import unicode_to_bytes
from rwkv_data.tokenizer.resolve import load_trie, parse_spec

# Split patterns of the public tiktoken encodings (from tiktoken_ext/openai_public.py), so a local .tiktoken
# file can be used without the package's download helpers.
TIKTOKEN_PATTERNS: dict[str, str] = {
    "r50k_base": r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s""",
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",
    "o200k_base": "|".join([
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""", r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""", r"""\s*[\r\n]+""", r"""\s+(?!\S)""", r"""\s+""",
    ]),
}
TIKTOKEN_PATTERNS["p50k_base"] = TIKTOKEN_PATTERNS["gpt2"] = TIKTOKEN_PATTERNS["r50k_base"]
_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerAdapter:
    """Common interface: ``encode_with_ends``, ``vocab_bytes``, ``fallback``, ``vocab_size``, ``greedy``.

    Subclasses set ``tokens`` (id -> raw bytes, or None when the vocabulary has no byte form) and implement
    ``encode_batch``; byte-level tokenizers get exact token boundaries from the token byte lengths.
    """

    kind = "abstract"
    greedy = False  # greedy longest match over ``tokens`` (the greedy optimality gap is defined)

    def __init__(self, name: str, tokens: dict[int, bytes] | None, vocab_size: int, source: str = "") -> None:
        self.name = name
        self.tokens = tokens
        self.vocab_size = vocab_size
        self.source = source
        size = max(vocab_size, max(tokens, default=-1) + 1 if tokens else 0)
        self.fallback = fallback_mask(tokens, size) if tokens else np.zeros(size, dtype=bool)
        self._lengths = np.zeros(size, dtype=np.int64)
        for i, b in (tokens or {}).items():
            self._lengths[i] = len(b)

    @property
    def n_entries(self) -> int:
        """Number of real vocabulary entries (the denominator of vocabulary utilisation)."""
        return len(self.tokens) if self.tokens else self.vocab_size

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        raise NotImplementedError

    def encode_with_ends(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Token ids and the byte end offset of every token, per text."""
        out = []
        for text, ids in zip(texts, self.encode_batch(texts), strict=True):
            ids = np.asarray(ids, dtype=np.int64)
            ends = np.cumsum(self._lengths[ids]) if ids.size else np.zeros(0, np.int64)
            if ends.size and ends[-1] != len(text.encode("utf-8")):
                raise ValueError(f"{self.name}: token bytes do not spell the text (normalizing tokenizer?)")
            out.append((ids, ends))
        return out

    def describe(self) -> dict[str, object]:
        """JSON-ready identity of the tokenizer for reports."""
        return {"name": self.name, "kind": self.kind, "source": self.source, "vocab_size": self.vocab_size,
                "entries": self.n_entries}


class TrieAdapter(TokenizerAdapter):
    """An RWKV vocabulary through :class:`rwkv_data.tokenizer.TrieTokenizer` (greedy longest match)."""

    kind = "trie"
    greedy = True

    def __init__(self, tok: object, name: str | None = None, num_threads: int | None = None) -> None:
        self.tok = tok
        self.num_threads = num_threads
        super().__init__(name or tok.name, dict(tok.vocab.tokens), tok.vocab_size, source=tok.name)  # type: ignore[attr-defined]
        self.sha256 = tok.sha256  # type: ignore[attr-defined]

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self.tok.encode_batch(list(texts), num_threads=self.num_threads, as_array=True)  # type: ignore[attr-defined]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "sha256": self.sha256}


class BytesAdapter(TokenizerAdapter):
    """One token per UTF-8 byte (id = byte value): the floor every real tokenizer must beat."""

    kind = "bytes"
    greedy = True

    def __init__(self, name: str = "bytes") -> None:
        super().__init__(name, {b: bytes([b]) for b in range(256)}, 256, source="utf-8 bytes")

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) for t in texts]


class TiktokenAdapter(TokenizerAdapter):
    """A tiktoken BPE file (``<base64 token> <rank>`` per line) with its split pattern; specials are ignored."""

    kind = "tiktoken"

    def __init__(self, path: str | Path, pattern: str | None = None, name: str | None = None) -> None:
        try:
            import tiktoken
        except ImportError as exc:
            raise DependencyMissing("tiktoken adapter needs tiktoken: pip install 'rwkv-data[audit]'") from exc
        path = Path(path)
        pat = pattern or next((k for k in TIKTOKEN_PATTERNS if k.split("_")[0] in path.name), None)
        if pat is None:
            raise ConfigError(f"{path}: name the split pattern, e.g. 'tiktoken:{path}#cl100k_base' "
                              f"(one of {sorted(TIKTOKEN_PATTERNS)} or a regex)")
        ranks = read_tiktoken_bpe(path)
        self.enc = tiktoken.Encoding(name=name or path.stem, pat_str=TIKTOKEN_PATTERNS.get(pat, pat),
                                     mergeable_ranks=ranks, special_tokens={})
        super().__init__(name or path.stem, {r: b for b, r in ranks.items()}, self.enc.n_vocab, source=str(path))

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int64) for ids in self.enc.encode_ordinary_batch(list(texts))]


def read_tiktoken_bpe(path: str | Path) -> dict[bytes, int]:
    """Parse a ``.tiktoken`` file, the format of ``tiktoken.load.load_tiktoken_bpe``. That function copies even
    local files into a temp-dir cache, so the 6-line format is read here directly."""
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
        except ValueError as exc:
            raise ConfigError(f"{path}:{lineno}: expected '<base64 token> <rank>', got {line[:60]!r}") from exc
    return ranks


class HFAdapter(TokenizerAdapter):
    """A Hugging Face ``tokenizer.json``; token boundaries from the library's offsets unless byte-level."""

    kind = "hf"

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        from tokenizers import Tokenizer

        path = Path(path)
        try:
            self.tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # the Rust side raises a bare Exception with the parse error
            raise ConfigError(f"{path}: not a Hugging Face tokenizer.json: {exc}") from exc
        vocab = self.tok.get_vocab(with_added_tokens=False)
        table = unicode_to_bytes()
        byte_level = '"ByteLevel"' in path.read_text(encoding="utf-8")
        tokens: dict[int, bytes] = {}
        for s, i in vocab.items():
            m = _BYTE_PIECE.match(s)
            if m:
                tokens[i] = bytes([int(m.group(1), 16)])
            elif byte_level and all(c in table for c in s):
                tokens[i] = bytes(table[c] for c in s)
            else:
                tokens[i] = s.replace("\u2581", " ").encode("utf-8")
        super().__init__(name or path.parent.name or path.stem, tokens, self.tok.get_vocab_size(), source=str(path))

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(e.ids, np.int64) for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def encode_with_ends(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text, enc in zip(texts, self.tok.encode_batch(list(texts), add_special_tokens=False), strict=True):
            ids = np.asarray(enc.ids, dtype=np.int64)
            ends = np.cumsum(self._lengths[ids]) if ids.size else np.zeros(0, np.int64)
            if ends.size and ends[-1] != len(text.encode("utf-8")):  # normalizer or prefix space: use offsets
                cbo = char_byte_offsets(text)
                ends = np.maximum.accumulate(cbo[np.asarray([o[1] for o in enc.offsets], dtype=np.int64)])
            out.append((ids, ends))
        return out


class SentencePieceAdapter(TokenizerAdapter):
    """A SentencePiece ``.model``; token boundaries from the pieces' byte offsets into the input."""

    kind = "sentencepiece"

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        try:
            import sentencepiece as spm
        except ImportError as exc:
            raise DependencyMissing("sentencepiece adapter needs sentencepiece: pip install 'rwkv-data[audit]'"
                                    ) from exc
        path = Path(path)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(path))
        except (OSError, RuntimeError) as exc:
            raise ConfigError(f"{path}: not a SentencePiece model: {exc}") from exc
        tokens: dict[int, bytes] = {}
        for i in range(self.sp.get_piece_size()):
            if self.sp.is_control(i) or self.sp.is_unknown(i):
                continue
            piece = self.sp.id_to_piece(i)
            m = _BYTE_PIECE.match(piece)
            tokens[i] = bytes([int(m.group(1), 16)]) if m else piece.replace("\u2581", " ").encode("utf-8")
        super().__init__(name or path.stem, tokens, self.sp.get_piece_size(), source=str(path))
        self.fallback = np.array([self.sp.is_byte(i) for i in range(self.sp.get_piece_size())], dtype=bool)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return [np.asarray(ids, np.int64) for ids in self.sp.encode(list(texts))]

    def encode_with_ends(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for text in texts:
            try:
                pieces = self.sp.encode(text, return_type="proto").pieces
            except TypeError:  # sentencepiece < 0.2.1 has no return_type
                pieces = self.sp.encode(text, out_type="immutable_proto").pieces
            ids = np.asarray([p.id for p in pieces], dtype=np.int64)
            ends, prev = [], 0
            for p in pieces:  # byte pieces carry the whole character's span on the last byte only
                prev = prev + 1 if self.fallback[p.id] else max(prev, p.end)
                ends.append(prev)
            out.append((ids, np.minimum(np.asarray(ends, dtype=np.int64), len(text.encode("utf-8")))))
        return out


def load_tokenizer(spec: str, num_threads: int | None = None) -> TokenizerAdapter:
    """Build an adapter from a spec ``[label=][kind:]path[#pattern]`` (see the module docstring)."""
    parsed = parse_spec(spec)
    if parsed.kind in ("world", "trie"):
        return TrieAdapter(load_trie(spec), parsed.name, num_threads)
    if parsed.kind == "bytes":
        return BytesAdapter(parsed.name)
    p = parsed.require_file(spec)
    if parsed.kind == "hf":
        return HFAdapter(p, parsed.label or None)
    if parsed.kind == "tiktoken":
        return TiktokenAdapter(p, parsed.pattern or None, parsed.label or None)
    return SentencePieceAdapter(p, parsed.label or None)
