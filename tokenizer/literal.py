"""A parser for the one Python literal form that vocab files use: a single ``'...'`` or ``b'...'`` literal.

Nothing is evaluated: the text is matched against the literal grammar and its escapes are decoded by
hand, so ``__import__('os').system('x')`` is simply not a literal and is rejected. Supported escapes are
the ones ``repr`` writes plus the rest of Python's standard set: ``\\\\ \\' \\" \\a \\b \\f \\n \\r \\t \\v
\\ooo \\xhh`` and, in str literals only, ``\\uXXXX \\UXXXXXXXX \\N{NAME}``. Unknown escapes are errors.

>>> parse_token_literal("'a\\\\n'")
b'a\\n'
>>> parse_token_literal("b'\\\\xf0\\\\x9f'")
b'\\xf0\\x9f'
"""

from __future__ import annotations

import re
import unicodedata

# A whole literal: optional b prefix, then a single- or double-quoted body whose characters are either
# anything but the quote / a backslash / a newline, or a backslash followed by any character.
_LITERAL = re.compile(r"""(b?)(?:'((?:[^'\\\n\r]|\\.)*)'|"((?:[^"\\\n\r]|\\.)*)")""", re.S)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|N\{[^}]*\}|[0-7]{1,3}|.)", re.S)
_SIMPLE = {"\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
           "v": "\v"}


class LiteralError(ValueError):
    """The text is not a single str or bytes literal (the message says what is wrong)."""


def _unescape(body: str, is_bytes: bool) -> str:
    """Decode the escapes of a literal body; bytes bodies map each escape to a code point < 256."""

    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        head = esc[0]
        if esc in _SIMPLE:
            return _SIMPLE[esc]
        if head == "x" and len(esc) == 3:
            return chr(int(esc[1:], 16))
        if head in "01234567":
            value = int(esc, 8)
            if value > 0o377:
                raise LiteralError(f"octal escape \\{esc} is above \\377")
            return chr(value)
        if not is_bytes and head in "uU" and len(esc) > 1:
            return chr(int(esc[1:], 16)) if int(esc[1:], 16) <= 0x10FFFF else _bad(esc)
        if not is_bytes and head == "N" and len(esc) > 1:
            try:
                return unicodedata.lookup(esc[2:-1])
            except KeyError:
                raise LiteralError(f"unknown character name in \\{esc}") from None
        return _bad(esc)

    return _ESCAPE.sub(one, body)


def _bad(esc: str) -> str:
    raise LiteralError(f"invalid or truncated escape sequence \\{esc}")


def parse_token_literal(text: str) -> bytes:
    """Return the bytes a vocab token literal stands for (str literals are UTF-8 encoded).

    Args:
        text: exactly one literal, e.g. ``'ab'``, ``"it's"`` or ``b'\\xff'``; nothing before or after it.

    Raises:
        LiteralError: the text is not a single str/bytes literal, has a bad escape, a non-ASCII character
            in a bytes literal, or a lone surrogate that cannot be UTF-8 encoded.
    """
    m = _LITERAL.fullmatch(text)
    if m is None:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise LiteralError(f"{shown!r} is not a single str or bytes literal (only '...' and b'...' are "
                           "accepted; nothing is evaluated)")
    is_bytes = m.group(1) == "b"
    body = m.group(2) if m.group(2) is not None else m.group(3)
    if is_bytes:
        if not body.isascii():
            raise LiteralError("a bytes literal may hold only ASCII characters; write other bytes as \\xhh")
        return (_unescape(body, True) if "\\" in body else body).encode("latin-1")
    value = _unescape(body, False) if "\\" in body else body
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LiteralError(f"the str literal holds a lone surrogate ({exc.reason}); write it as a bytes literal")\
            from None


def token_literal(token: bytes) -> str:
    """The canonical literal of a token: ``repr`` of the str when it is valid UTF-8, else of the bytes."""
    try:
        return repr(token.decode("utf-8"))
    except UnicodeDecodeError:
        return repr(token)
