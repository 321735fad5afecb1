"""Tokenizer commands: ``encode`` and ``decode`` (``vocab info`` lives with the vocab commands)."""

from __future__ import annotations

import sys
from typing import Any

import click

from rwkv_data.cli.app import cli, emit


def _load_tokenizer(vocab: str | None) -> Any:
    """The tokenizer of ``--vocab`` (a spec: ``world`` or a .txt/.json vocab), RWKV World when not given."""
    from rwkv_data.tokenizer.resolve import load_trie

    return load_trie(vocab or "world")


def _read_input(path: str | None, what: str = "encode reads one document into memory: tokenize corpora with "
                "`rwkv-data shard`") -> bytes:
    """--file's bytes (stdin without one), at most MAX_RECORD_BYTES: /dev/zero or a huge file is one error."""
    from rwkv_data.config import MAX_RECORD_BYTES
    from rwkv_data.errors import InputFormatError

    if path is None:
        data, name = sys.stdin.buffer.read(MAX_RECORD_BYTES + 1), "stdin"
    else:
        with open(path, "rb") as f:
            data, name = f.read(MAX_RECORD_BYTES + 1), path
    if len(data) > MAX_RECORD_BYTES:
        raise InputFormatError(f"{name}: over {MAX_RECORD_BYTES:,} bytes; {what}")
    return data


_VOCAB_HELP = "Vocab file (World .txt or .json) or 'world'; default: RWKV World (bundled)."


@cli.command("encode")
@click.argument("text", required=False)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False), help="Encode this file's bytes.")
@click.option("--vocab", help=_VOCAB_HELP)
@click.option("--pieces", is_flag=True, help="Show each token's id and bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def encode_cmd(text: str | None, file_: str | None, vocab: str | None, pieces: bool, as_json: bool) -> None:
    """Encode TEXT, --file F, or stdin (when neither is given) to token ids."""
    from rwkv_data.tokenizer.literal import token_literal

    if text is not None and file_ is not None:
        raise click.UsageError("give TEXT or --file, not both")
    # TEXT's bytes as given: argv bytes that are not UTF-8 come back from surrogateescape unchanged
    data = text.encode("utf-8", "surrogateescape") if text is not None else _read_input(file_)
    tok = _load_tokenizer(vocab)
    pairs = tok.pieces(data)
    ids = [i for i, _ in pairs]
    if as_json:
        out: dict[str, Any] = {"ids": ids, "tokens": len(ids), "bytes": len(data), "vocab": tok.name}
        if pieces:
            out["pieces"] = [{"id": i, "literal": token_literal(b)} for i, b in pairs]
        emit(out, True)
    elif pieces:
        emit(None, False, "\n".join(f"{i}\t{token_literal(b)}" for i, b in pairs))
    else:
        emit(None, False, " ".join(map(str, ids)))


@cli.command("decode")
@click.argument("ids", nargs=-1)
@click.option("--vocab", help=_VOCAB_HELP)
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="strict: fail naming the ids that are not valid UTF-8; replace: U+FFFD for just those bytes.")
def decode_cmd(ids: tuple[str, ...], vocab: str | None, errors: str) -> None:
    """Decode IDS (separated by spaces or commas; stdin when none) to text."""
    import re

    raw = " ".join(ids) if ids else _read_input(None, "decode reads its ids into memory: give fewer (one "
                                                 "document's)").decode("utf-8", "replace")
    words = re.split(r"[\s,\[\]]+", raw)
    try:
        values = [int(w) for w in words if w]
    except ValueError as exc:
        raise click.BadParameter(f"ids must be integers ({exc})", param_hint="IDS") from None
    tok = _load_tokenizer(vocab)
    try:
        text = tok.decode(values, errors=errors)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text)
