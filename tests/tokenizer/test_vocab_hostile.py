"""Hostile vocab files: sizes, non-regular files, ids out of the tokenizer's range, huge numeric fields, BOM,
CRLF. `vocab info`, `encode --vocab` and read_vocab (what `shard --vocab` loads) agree on every file, and each
ends in one clear error naming the file (and line) without a traceback.

Run: pytest tests/tokenizer/test_vocab_hostile.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from rwkv_data.cli import cli
from rwkv_data.errors import VocabFormatError
from rwkv_data.tokenizer import TrieTokenizer, Vocab, read_vocab, world_vocab_path
from rwkv_data.tokenizer.cores import native_module
from rwkv_data.tokenizer.vocab import MAX_TOKEN_ID, MAX_VOCAB_BYTES


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RWKV_DATA_CACHE", "off")


def _bytes_file(tmp_path: Path, extra: list[str], name: str = "v.txt", eol: str = "\n", bom: str = "") -> Path:
    lines = world_vocab_path().read_text(encoding="utf-8").splitlines()[:256] + extra
    path = tmp_path / name
    path.write_bytes((bom + eol.join(lines) + eol).encode("utf-8"))
    return path


def _all_agree(path: Path, pattern: str) -> None:
    """read_vocab, `vocab info` and `encode --vocab` all refuse the file with the same error."""
    with pytest.raises(VocabFormatError, match=pattern):
        read_vocab(path)
    for args in (["vocab", "info", str(path)], ["encode", "--vocab", str(path), "hi"]):
        result = CliRunner().invoke(cli, args)  # the CLI's main() prints RwkvDataError as one `error:` line
        assert isinstance(result.exception, VocabFormatError) and re.search(pattern, str(result.exception)), args


def _cli_error(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "rwkv_data", *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "RWKV_DATA_CACHE": "off"})
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    return out.stderr


@pytest.mark.parametrize(("extra", "pattern"), [
    ([f"{MAX_TOKEN_ID + 1} 'ab' 2"], rf":257: id {MAX_TOKEN_ID + 1} is above the largest id {MAX_TOKEN_ID}"),
    (["4294967296 'ab' 2"], r":257: id 4294967296 is above the largest id"),
    (["1" * 5000 + " 'ab' 2"], r":257: id 1111111111111111111\d\.\.\. is above the largest id"),
    (["300 'ab' " + "9" * 5000], r":257: byte length 9{20}\.\.\. is not the token's length"),
])
def test_ids_and_lengths_out_of_range(tmp_path: Path, extra: list[str], pattern: str) -> None:
    _all_agree(_bytes_file(tmp_path, extra), pattern)


def test_the_largest_id_is_what_the_native_core_accepts(tmp_path: Path) -> None:
    path = _bytes_file(tmp_path, [f"{MAX_TOKEN_ID} 'ab' 2"])
    vocab = read_vocab(path)
    assert vocab.max_id == MAX_TOKEN_ID
    try:
        native_module()
    except ImportError:
        pytest.skip("the native core is not built")
    tok = TrieTokenizer(vocab, impl="native")
    assert tok.encode("ab") == [MAX_TOKEN_ID]
    with pytest.raises(VocabFormatError, match=f"ids are ints in 1..{MAX_TOKEN_ID}"):
        Vocab.from_tokens(dict(vocab.tokens) | {MAX_TOKEN_ID + 1: b"zz"})


def test_json_ids_out_of_range(tmp_path: Path) -> None:
    head = '{"format": "rwkv-vocab", "version": 1, "tokens": [\n'
    big = tmp_path / "big.json"
    big.write_text(head + '{"id": 4294967296, "text": "a"}\n]}\n')
    _all_agree(big, rf"big.json:2: tokens\[0\]: id 4294967296 is invalid: ids are in 1..{MAX_TOKEN_ID}")
    digits = tmp_path / "digits.json"
    digits.write_text(head + '{"id": ' + "7" * 5000 + ', "text": "a"}\n]}\n')
    _all_agree(digits, r"digits.json: invalid JSON \(a number of over 4300 digits\)")
    assert "digits.json: invalid JSON" in _cli_error("encode", "--vocab", str(digits), "hi")


def test_size_limit_before_reading(tmp_path: Path) -> None:
    sparse = tmp_path / "sparse.txt"
    with sparse.open("wb") as f:
        f.truncate(2 << 30)
    _all_agree(sparse, rf"sparse.txt: 2,147,483,648 bytes; a vocab file is at most {MAX_VOCAB_BYTES:,} bytes")
    assert "error: /dev/zero: over 67,108,864 bytes (not a regular file)" in _cli_error("vocab", "info", "/dev/zero")
    with pytest.raises(VocabFormatError, match="is a folder"):
        read_vocab(tmp_path)


def test_bom_crlf_and_utf16(tmp_path: Path) -> None:
    crlf = _bytes_file(tmp_path, ["300 'ab' 2"], "crlf.txt", eol="\r\n")
    assert read_vocab(crlf).tokens[300] == b"ab"
    _all_agree(_bytes_file(tmp_path, [], "bom.txt", bom="\ufeff"), r"bom.txt:1: .*byte order mark")
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes(_bytes_file(tmp_path, []).read_text(encoding="utf-8").encode("utf-16"))
    _all_agree(utf16, r"u16.txt:1: the file is not valid UTF-8")


def test_missing_byte_suggests_a_free_id(tmp_path: Path) -> None:
    lines = world_vocab_path().read_text(encoding="utf-8").splitlines()[:256]
    path = tmp_path / "v.txt"
    # b'A' (id 66) is gone and id 66 now holds another token: the suggestion must be a free id
    path.write_text("\n".join(lines[:65] + ["66 'xyz' 3"] + lines[66:] + ["70000 'qq' 2"]) + "\n")
    with pytest.raises(VocabFormatError, match=r"\(0x41\).*add lines such as `70001 'A' 1`"):
        read_vocab(path)
    path.write_text("\n".join(lines[:65] + lines[66:]) + "\n")
    with pytest.raises(VocabFormatError, match=r"add lines such as `66 'A' 1`"):
        read_vocab(path)


# ---- trainer settings: refused before any text is read --------------------------------------------------------

BAD_SETTINGS = [
    ("--vocab-size", "99999999999999999999", "vocab_size="), ("--vocab-size", "4294967297", "vocab_size="),
    ("--max-epochs", "inf", "max_epochs="), ("--max-epochs", "nan", "max_epochs="),
    ("--temperature", "nan", "temperature="), ("--candidate-factor", "inf", "candidate_factor="),
    ("--candidate-factor", "-1", "candidate_factor="), ("--threads", "100000", "threads="),
    ("--rounds", "-1", "rounds="), ("--seed", "-1", "seed="), ("--fairness", "nan", "fairness="),
    ("--heldout-chars", "-1", "heldout_chars="), ("--sample-chars", "99999999999999999999999", "sample_chars="),
    ("--lang-weight", "en=-1", "lang_weights['en']"), ("--lang-weight", "en=inf", "lang_weights['en']"),
    ("--lang-cap", "en=-5", "lang_caps['en']"), ("--char-min-count", "-1", "char_min_count="),
]


@pytest.mark.parametrize(("flag", "value", "needle"), BAD_SETTINGS, ids=[f"{f} {v}" for f, v, _ in BAD_SETTINGS])
@pytest.mark.parametrize("command", ["train", "extend"])
def test_bad_trainer_settings_are_one_error(tmp_path: Path, command: str, flag: str, value: str, needle: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from rwkv_data.cli import main

    if command == "extend" and flag == "--vocab-size":
        pytest.skip("extend keeps the base vocab's size")
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "hello there", "lang": "en"}\n')
    with pytest.raises(SystemExit) as exc:
        main(["vocab", command, str(corpus), "-o", str(tmp_path / "v.txt"), flag, value])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("error: invalid vocab settings: ") and needle in err, err
    assert "Traceback" not in err and not (tmp_path / "v.txt").exists()


def test_unknown_focus_script_and_output_onto_the_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rwkv_data.cli import main

    corpus = tmp_path / "c.jsonl"
    body = '{"text": "hello there", "lang": "en"}\n'
    corpus.write_text(body)
    with pytest.raises(SystemExit):
        main(["vocab", "extend", str(corpus), "-o", str(tmp_path / "v.txt"), "--focus-scripts", "XXXX"])
    assert "focus_scripts=['XXXX']" in capsys.readouterr().err
    for command in ("train", "extend"):
        with pytest.raises(SystemExit) as exc:
            main(["vocab", command, str(corpus), "-o", str(corpus)])
        err = capsys.readouterr().err
        assert exc.value.code == 1 and f"-o {corpus} is the input file" in err, err
        assert corpus.read_text() == body  # the corpus is intact
