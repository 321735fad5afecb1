"""RWKV World vocabulary files: read, validate, write (text and JSON forms), without ``eval``.

Text form, one token per line: ``<id> <str or bytes literal> <byte length>``, e.g. ``33 'A' 1`` or
``3319 b'\\xf0\\x9f' 2`` (the World file ``rwkv_vocab_v20230424.txt``, shipped in ``data/``: ids 1..65529).
JSON form (``.json``): ``{"format": "rwkv-vocab", "version": 1, "tokens": [{"id": 1, "text": "\\u0000"},
{"id": 255, "hex": "fe"}, ...]}``, one entry per line.

Rules checked on read (each error names the file and line and says how to fix it): the file size (at most
:data:`MAX_VOCAB_BYTES`, checked before reading), the line shape, the literal (parsed by
:mod:`rwkv_data.tokenizer.literal`, never evaluated), declared length = UTF-8 byte length, ids in
1..:data:`MAX_TOKEN_ID` (0 is the end-of-document id), no duplicate id, no duplicate token, every single byte
present. The same id range holds for :meth:`Vocab.from_tokens` and the vocab cache, so ``vocab info``,
``encode --vocab`` and ``shard --vocab`` accept exactly the same files.

>>> v = Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)} | {257: b"ab"}, name="tiny")
>>> len(v), v.max_id, v.tokens[257]
(257, 257, b'ab')
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

from rwkv_data.atomic import atomic_write
from rwkv_data.errors import DependencyMissing, VocabFormatError
from rwkv_data.tokenizer import vocab_cache
from rwkv_data.tokenizer.literal import LiteralError, parse_token_literal, token_literal

WORLD_VOCAB_FILE = "rwkv_vocab_v20230424.txt"
JSON_FORMAT = "rwkv-vocab"
_DECIMAL = re.compile(r"[0-9]+")
MAX_TOKEN_ID = (1 << 24) - 1  # the native core's decode table bound (TRIE_MAX_ID in _native/trie_core.h)
MAX_VOCAB_BYTES = 64 << 20  # World is 1 MB; 64 MiB holds ~3 M tokens. Larger files are refused before reading
_ID_DIGITS = len(str(MAX_TOKEN_ID))
_LEN_DIGITS = 10  # a declared byte length is never longer (the file itself is at most MAX_VOCAB_BYTES)


class _FrozenTokens(dict):  # type: ignore[type-arg]
    """A dict that refuses mutation, so a Vocab's sha256 and tries never go stale."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FrozenTokens, (dict(self),))

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("Vocab.tokens is read-only; build a new one with Vocab.from_tokens({...})")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly  # type: ignore


class Vocab:
    """An immutable id -> token bytes table that passed validation.

    Attributes:
        tokens: read-only ``dict[int, bytes]``, id -> token bytes, in ascending id order.
        name: a label (the file stem, or what ``from_tokens`` was given).
        max_id: the largest id; ``max_id + 1`` is the model's minimum vocab size.
        sha256: hex digest of the canonical text form (what :func:`write_vocab` writes to a ``.txt``).
    """

    def __init__(self, tokens: Mapping[int, bytes], name: str = "vocab") -> None:
        """Use :meth:`from_tokens` or :func:`read_vocab`; this trusts ``tokens`` to be validated."""
        ids = list(tokens)
        in_order = ids == sorted(ids)  # files are usually in id order: skip re-sorting 65k items
        self.tokens: dict[int, bytes] = _FrozenTokens(tokens if in_order else sorted(tokens.items()))
        self.name = name
        self.max_id = max(self.tokens)

    @classmethod
    def from_tokens(cls, tokens: Mapping[int, bytes], name: str = "custom") -> Vocab:
        """Validate an id -> bytes mapping and wrap it (ValueError naming the bad id otherwise).

        Ids must be ints in 1..MAX_TOKEN_ID (0 is end of document), tokens non-empty distinct bytes, and all
        256 single bytes must be tokens.
        """
        seen: dict[bytes, int] = {}
        for i, tok in tokens.items():
            if isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= MAX_TOKEN_ID:
                raise VocabFormatError(f"{name}: id {_short(i)} is invalid: ids are ints in 1..{MAX_TOKEN_ID} "
                                       "(0 = end of document)")
            if not isinstance(tok, bytes) or not tok:
                raise VocabFormatError(f"{name}: id {i}: token must be non-empty bytes, got {tok!r}")
            if tok in seen:
                raise VocabFormatError(f"{name}: ids {seen[tok]} and {i} both map to {tok!r}; drop one")
            seen[tok] = i
        _check_all_bytes(seen, name)
        return cls(tokens, name)

    def __len__(self) -> int:
        return len(self.tokens)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Vocab, (dict(self.tokens), self.name))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __hash__(self) -> int:
        return hash(self.sha256)

    def __repr__(self) -> str:
        return f"Vocab(name={self.name!r}, size={len(self)}, max_id={self.max_id}, sha256={self.sha256[:12]}...)"

    @cached_property
    def token_to_id(self) -> dict[bytes, int]:
        """The reverse table, token bytes -> id."""
        return {t: i for i, t in self.tokens.items()}

    @cached_property
    def sha256(self) -> str:
        """Hex SHA-256 of the canonical text form."""
        return hashlib.sha256(_text_form(self)).hexdigest()


def _short(value: object) -> str:
    """``repr(value)``, cut to 40 characters (ids in error messages may be thousands of digits long)."""
    text = repr(value) if not isinstance(value, int) or value.bit_length() < 128 else f"of {value.bit_length()} bits"
    return text if len(text) <= 40 else text[:37] + "..."


def _check_all_bytes(token_to_id: Mapping[bytes, int], where: str) -> None:
    missing = [b for b in range(256) if bytes([b]) not in token_to_id]
    if missing:
        shown = ", ".join(f"0x{b:02x}" for b in missing[:8]) + (", ..." if len(missing) > 8 else "")
        used = set(token_to_id.values())
        raise VocabFormatError(
            f"{where}: {len(missing)} single byte(s) are not tokens ({shown}); every byte 0x00-0xff must be a "
            f"token so that any input encodes: add lines such as `{free_id(used, missing[0] + 1)} "
            f"{token_literal(bytes([missing[0]]))} 1`")


def free_id(used: set[int], preferred: int) -> int:
    """An id not in ``used``: ``preferred`` (World gives byte b the id b + 1) when free, else one past the
    largest id, else the smallest free id in 1..MAX_TOKEN_ID."""
    if 1 <= preferred <= MAX_TOKEN_ID and preferred not in used:
        return preferred
    top = max(used, default=0) + 1
    if top <= MAX_TOKEN_ID:
        return top
    return next(i for i in range(1, MAX_TOKEN_ID + 1) if i not in used)


def _text_form(vocab: Vocab) -> bytes:
    lines = [f"{i} {token_literal(t)} {len(t)}\n" for i, t in vocab.tokens.items()]
    return "".join(lines).encode("utf-8")


def _json_form(vocab: Vocab) -> bytes:
    rows = []
    for i, t in vocab.tokens.items():
        try:
            entry: dict[str, Any] = {"id": i, "text": t.decode("utf-8")}
        except UnicodeDecodeError:
            entry = {"id": i, "hex": t.hex()}
        rows.append(json.dumps(entry, ensure_ascii=False))
    head = f'{{"format": "{JSON_FORMAT}", "version": 1, "tokens": [\n'
    return (head + ",\n".join(rows) + "\n]}\n").encode("utf-8")


# One whole well-formed line (the fast path matches the file with this, then the strict per-line parser
# below re-reads any file that does not pass, to name the first bad line).
_ROW = re.compile(r"""^([0-9]+) (b?('[^'\\\n\r]*(?:\\.[^'\\\n\r]*)*'|"[^"\\\n\r]*(?:\\.[^"\\\n\r]*)*")) ([0-9]+)\r?$""",
                  re.M | re.S)


def _parse_text_fast(text: str) -> dict[int, bytes] | None:
    """Parse a valid file quickly (about 0.09 s for World); None if anything looks off."""
    rows = _ROW.findall(text)
    if not rows or len(rows) != text.count("\n") + (not text.endswith("\n")):
        return None
    tokens: dict[int, bytes] = {}
    try:
        for head, lit, quoted, tail in rows:
            if len(head) > _ID_DIGITS or len(tail) > _LEN_DIGITS:
                return None
            tok = parse_token_literal(lit) if "\\" in lit or lit[0] == "b" else quoted[1:-1].encode("utf-8")
            if len(tok) != int(tail) or not tok:
                return None
            tokens[int(head)] = tok
    except (LiteralError, UnicodeEncodeError):
        return None
    if len(tokens) != len(rows) or 0 in tokens or len(set(tokens.values())) != len(tokens):
        return None
    if max(tokens) > MAX_TOKEN_ID:
        return None
    if sum(len(t) == 1 for t in tokens.values()) != 256:
        return None
    return tokens


def _parse_text(path: Path, text: str) -> dict[int, bytes]:
    fast = _parse_text_fast(text)
    if fast is not None:
        return fast
    tokens: dict[int, bytes] = {}
    where_id: dict[int, int] = {}  # id -> line
    where_tok: dict[bytes, int] = {}  # token -> line
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()

    for lineno, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw

        def fail(msg: str, lineno: int = lineno) -> NoReturn:
            raise VocabFormatError(f"{path}:{lineno}: {msg}")

        first, last = line.find(" "), line.rfind(" ")
        if first < 0 or first == last:
            fail(f"expected `<id> <literal> <byte length>`, e.g. `33 'A' 1`, got {line[:60]!r}")
        head, lit, tail = line[:first], line[first + 1:last], line[last + 1:]
        if not _DECIMAL.fullmatch(head):
            bom = " (the file starts with a byte order mark: save it as UTF-8 without BOM)" if \
                lineno == 1 and head.startswith("\ufeff") else ""
            fail(f"id {head[:20]!r} is not a decimal integer; each line starts with the token id{bom}")
        if not _DECIMAL.fullmatch(tail):
            fail(f"byte length {tail[:20]!r} is not a decimal integer; each line ends with the token's byte length")
        if len(head.lstrip("0")) > _ID_DIGITS or int(head) > MAX_TOKEN_ID:
            fail(f"id {head[:20]}{'...' if len(head) > 20 else ''} is above the largest id {MAX_TOKEN_ID} the "
                 "tokenizer supports; renumber the tokens")
        if len(tail.lstrip("0")) > _LEN_DIGITS:
            fail(f"byte length {tail[:20]}... is not the token's length (a vocab line is at most a few hundred "
                 "bytes); write the token's UTF-8 byte length")
        try:
            tok = parse_token_literal(lit)
        except LiteralError as exc:
            fail(f"bad token literal: {exc}")
        i, n = int(head.lstrip("0") or "0"), int(tail.lstrip("0") or "0")
        if not tok:
            fail("empty token; every token needs at least one byte")
        if n != len(tok):
            fail(f"declared byte length {n} but the token {lit[:40]} is {len(tok)} byte(s) in UTF-8; "
                 f"change the length to {len(tok)}")
        if i == 0:
            fail("id 0 is reserved for end of document; number tokens from 1")
        if i in where_id:
            fail(f"duplicate id {i} (first defined on line {where_id[i]}); give this token a free id, e.g. "
                 f"{free_id(set(where_id), max(where_id) + 1)}")
        if tok in where_tok:
            fail(f"duplicate token {lit[:40]} (already id {tokens_id(tokens, tok)} on line {where_tok[tok]}); "
                 "delete one of the two lines")
        tokens[i] = tok
        where_id[i] = lineno
        where_tok[tok] = lineno
    if not tokens:
        raise VocabFormatError(f"{path}: the vocab file is empty")
    _check_all_bytes({t: i for i, t in tokens.items()}, str(path))
    return tokens


def tokens_id(tokens: Mapping[int, bytes], tok: bytes) -> int:
    """The id of ``tok`` in ``tokens`` (a linear search, used only to word error messages)."""
    return next(i for i, t in tokens.items() if t == tok)


def _parse_json(path: Path, text: str) -> dict[int, bytes]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise VocabFormatError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # an integer of over 4300 digits, or nesting too deep
        what = "a number of over 4300 digits" if "digits" in str(exc) else "nested too deep"
        raise VocabFormatError(f"{path}: invalid JSON ({what}); ids are integers in 1..{MAX_TOKEN_ID}") from None
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT or not isinstance(doc.get("tokens"), list):
        raise VocabFormatError(f'{path}: expected {{"format": "{JSON_FORMAT}", "version": 1, "tokens": [...]}}')
    tokens: dict[int, bytes] = {}
    seen: dict[bytes, int] = {}
    for k, e in enumerate(doc["tokens"]):
        # write_vocab puts entry k on line k + 2
        where = f"{path}:{k + 2}: tokens[{k}]"
        if not isinstance(e, dict) or not isinstance(e.get("id"), int) or isinstance(e.get("id"), bool) or \
                (("text" in e) == ("hex" in e)):
            raise VocabFormatError(f'{where}: expected {{"id": <int>, "text": <str>}} or {{"id": <int>, "hex": ...}}')
        i = e["id"]
        try:
            tok = e["text"].encode("utf-8") if "text" in e else bytes.fromhex(e["hex"])
        except (AttributeError, UnicodeEncodeError, ValueError, TypeError) as exc:
            raise VocabFormatError(f"{where}: id {i}: bad token value ({exc})") from None
        if not tok:
            raise VocabFormatError(f"{where}: id {i}: empty token; every token needs at least one byte")
        if not 1 <= i <= MAX_TOKEN_ID:
            raise VocabFormatError(f"{where}: id {_short(i)} is invalid: ids are in 1..{MAX_TOKEN_ID} "
                                   "(0 = end of document)")
        if i in tokens:
            raise VocabFormatError(f"{where}: duplicate id {i}; give this token a free id, e.g. "
                                   f"{free_id(set(tokens), max(tokens) + 1)}")
        if tok in seen:
            raise VocabFormatError(f"{where}: duplicate token {tok!r} (already id {seen[tok]}); delete one")
        tokens[i] = tok
        seen[tok] = i
    if not tokens:
        raise VocabFormatError(f"{path}: the vocab has no tokens")
    _check_all_bytes(seen, str(path))
    return tokens


def read_vocab(path: str | os.PathLike[str]) -> Vocab:
    """Read and validate a vocab file (``.json`` -> JSON form, anything else -> World text form).

    A file read once is cached in binary form (:mod:`rwkv_data.tokenizer.vocab_cache`), keyed by its bytes.

    Raises:
        VocabFormatError: with ``file:line`` and the fix, for any malformed content.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    data = _read_limited(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        lineno = data.count(b"\n", 0, exc.start) + 1
        raise VocabFormatError(f"{path}:{lineno}: the file is not valid UTF-8 ({exc.reason}); write non-UTF-8 "
                               "tokens as b'\\xhh' literals") from None
    kind = "json" if path.suffix.lower() == ".json" else "text"
    cached = vocab_cache.load(data, kind)
    if cached is not None:
        vocab = Vocab(cached[0], name=path.stem)
        vocab.__dict__["sha256"] = cached[1]  # the cached_property, computed when the entry was stored
        return vocab
    vocab = Vocab((_parse_json if kind == "json" else _parse_text)(path, text), name=path.stem)
    vocab_cache.store(data, kind, vocab.tokens, vocab.sha256)
    return vocab


def _read_limited(path: Path) -> bytes:
    """The file's bytes, refusing (before reading them) more than MAX_VOCAB_BYTES and non-regular files that
    never end (``/dev/zero``): at most MAX_VOCAB_BYTES + 1 bytes are ever read."""
    st = path.stat()  # before open(): opening a FIFO would wait for a writer
    if stat.S_ISDIR(st.st_mode):
        raise VocabFormatError(f"{path}: is a folder, not a vocab file")
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISSOCK(st.st_mode):
        raise VocabFormatError(f"{path}: is a pipe, not a vocab file; save the vocab to a file first")
    if stat.S_ISREG(st.st_mode) and st.st_size > MAX_VOCAB_BYTES:
        data, size = b"", st.st_size
    else:
        with path.open("rb") as f:
            data = f.read(MAX_VOCAB_BYTES + 1)
        size = len(data)
    if size > MAX_VOCAB_BYTES:
        what = f"{size:,} bytes" if stat.S_ISREG(st.st_mode) else f"over {MAX_VOCAB_BYTES:,} bytes (not a regular file)"
        raise VocabFormatError(f"{path}: {what}; a vocab file is at most {MAX_VOCAB_BYTES:,} bytes (World's is about "
                               "1 MB): is this the right file?")
    return data


def write_vocab(vocab: Vocab, path: str | os.PathLike[str]) -> Path:
    """Write ``vocab`` atomically (temp file + rename): JSON form for ``.json``, else the text form.

    The output is canonical (ids ascending, ``repr`` literals, LF line ends), so write -> read -> write is
    byte-identical. Returns the path written.
    """
    path = Path(path)
    data = _json_form(vocab) if path.suffix.lower() == ".json" else _text_form(vocab)
    return atomic_write(path, data, fsync=True)


def world_vocab_path() -> Path:
    """Path of the RWKV World vocabulary, ``rwkv_vocab_v20230424.txt``, shipped inside this package.

    The file is the one RWKV-LM and the ``rwkv`` package publish (Apache-2.0; see ``data/README.md``).

    Raises:
        DependencyMissing: the installation lacks the file (reinstall rwkv-data).
    """
    path = Path(__file__).resolve().parent / "data" / WORLD_VOCAB_FILE
    if not path.is_file():
        raise DependencyMissing(f"this rwkv-data installation lacks {path}; reinstall it: "
                                "pip install --force-reinstall rwkv-data")
    return path
