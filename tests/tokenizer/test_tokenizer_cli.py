"""The tokenizer commands of the CLI: ``rwkv-data encode``, ``decode`` and ``vocab info`` (click CliRunner).

Run: pytest tests/tokenizer/test_tokenizer_cli.py
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from tokenizer_testlib import byte_vocab

from rwkv_data.cli import cli
from rwkv_data.tokenizer import write_vocab


def run(*args: str, input: bytes | str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_encode_text_file_and_stdin(tmp_path: Path) -> None:
    assert run("encode", "Hello, world") == (0, "33155 45 40213\n", "")
    f = tmp_path / "in.txt"
    f.write_bytes(b"Hello, world\xff")
    assert run("encode", "--file", str(f))[:2] == (0, "33155 45 40213 256\n")
    assert run("encode", input=b"Hello, world")[:2] == (0, "33155 45 40213\n")
    code, _, err = run("encode", "x", "--file", str(f))
    assert code == 2 and "not both" in err


def test_encode_pieces_and_json() -> None:
    code, out, _ = run("encode", "--pieces", "Hello, world")
    assert code == 0 and out.splitlines() == ["33155\t'Hello'", "45\t','", "40213\t' world'"]
    code, out, _ = run("encode", "--json", "--pieces", "Hi 😀")
    doc = json.loads(out)
    assert doc["ids"] == [1097, 33, 3319, 153, 129] and doc["bytes"] == 7
    assert doc["pieces"][2] == {"id": 3319, "literal": "b'\\xf0\\x9f'"}


def test_encode_with_a_custom_vocab(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    write_vocab(byte_vocab({70_000: b"hello"}), path)
    assert run("encode", "--vocab", str(path), "hello!")[:2] == (0, "70000 34\n")
    assert run("decode", "--vocab", str(path), "70000", "34")[:2] == (0, "hello!\n")


def test_decode() -> None:
    assert run("decode", "33155", "45", "40213")[:2] == (0, "Hello, world\n")
    assert run("decode", "33155,45,40213")[:2] == (0, "Hello, world\n")
    assert run("decode", input="[33155, 45, 40213]")[:2] == (0, "Hello, world\n")
    assert run("decode", "--errors", "replace", "33520", "256")[:2] == (0, "Today\ufffd\n")
    code, _, err = run("decode", "33520", "256")
    assert code == 1 and "ids[1:2] = [256]" in err and "Traceback" not in err
    code, _, err = run("decode", "65530")
    assert code == 1 and "id 65530" in err
    assert run("decode", "abc")[0] == 2


def test_vocab_info_text_and_json(tmp_path: Path) -> None:
    code, out, _ = run("vocab", "info")
    assert code == 0 and "65,529" in out and "Hani" in out and "e6dee3d4e31b" in out
    code, out, _ = run("vocab", "info", "--json")
    info = json.loads(out)
    assert info["size"] == 65529 and info["byte_coverage"]["single_bytes"] == 256
    assert info["byte_coverage"]["non_utf8_tokens"] == 486
    assert info["longest_token"] == {"id": 65529, "bytes": 128, "literal": repr(" " * 128)}
    assert info["scripts"]["Latn"] > info["scripts"]["Hani"] > info["scripts"]["Cyrl"] > 0
    assert sum(info["scripts"].values()) == 65529
    path = tmp_path / "v.txt"
    write_vocab(byte_vocab({300: "ไทย".encode(), 70_000: "中".encode()}), path)
    info = json.loads(run("vocab", "info", str(path), "--json")[1])
    assert info["scripts"]["Thai"] == 1 and info["scripts"]["Hani"] == 1
    assert info["max_id"] == 70000 and info["dtype"] == "uint32"


def test_malformed_vocab_is_a_clean_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1 'a' 2\n")
    out = subprocess.run([sys.executable, "-m", "rwkv_data", "vocab", "info", str(path)], capture_output=True,
                         text=True)
    assert out.returncode == 1 and f"{path}:1: declared byte length 2" in out.stderr
    assert "Traceback" not in out.stderr
