"""Hostile command lines: every failure a user can cause ends in exactly one ``error:`` (or click's ``Error:``)
line on stderr and exit 1 (or 2 for usage), never a Python traceback.

Run: pytest tests/test_cli_errors.py
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rwkv_data.cli import main
from rwkv_data.errors import describe
from rwkv_data.tokenizer.literal import token_literal

GARBAGE = bytes(range(256)) * 8 + b"\xff\xfe\x00{not json"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("hostile")
    (d / "empty.txt").write_bytes(b"")
    (d / "garbage.txt").write_bytes(GARBAGE)
    (d / "garbage.jsonl").write_bytes(GARBAGE)
    (d / "garbage.toml").write_bytes(GARBAGE)
    (d / "bad.toml").write_text('[train]\nctx_len = "abc"\n', encoding="utf-8")
    (d / "P.bin").write_bytes(b"")
    (d / "P.idx").write_bytes(GARBAGE)
    (d / "afile").write_text("x", encoding="utf-8")
    (d / "folder").mkdir()
    os.mkfifo(d / "fifo.toml")  # reading it would block forever
    (d / "zero.toml").symlink_to("/dev/zero")  # reading it would never end
    (d / "deep.toml").write_text("[train]\nx = " + "[" * 50_000 + "]" * 50_000 + "\n")  # RecursionError in tomllib
    (d / "nolens.toml").write_text("[shard]\nctx_lens = []\n")
    (d / "hugelr.toml").write_text("[train]\nlr_init = 1e308\n")  # a float32 overflow inside torch
    named = {p.name.replace(".", "_"): str(p) for p in d.iterdir()}  # {empty_txt} for empty.txt
    return {"dir": str(d), "missing": str(d / "missing.jsonl"), **named}


CASES = [  # (argv with {placeholders}, exit code)
    (["encode", "--file", "{missing}"], 2),
    (["encode", "--file", "{folder}"], 2),
    (["encode", "hi", "--vocab", "{missing}"], 1),
    (["encode", "hi", "--vocab", "{folder}"], 1),
    (["encode", "hi", "--vocab", "{empty_txt}"], 1),
    (["encode", "hi", "--vocab", "{garbage_txt}"], 1),
    (["decode", "1", "x2"], 2),
    (["vocab", "info", "{garbage_txt}"], 1),
    (["vocab", "train", "{missing}", "-o", "{dir}/v.txt"], 1),
    (["vocab", "train", "{garbage_jsonl}", "-o", "{dir}/v.txt"], 1),
    (["shard", "{missing}", "-o", "{dir}/s1"], 1),
    (["shard", "{garbage_jsonl}", "-o", "{dir}/s2", "--workers", "1", "--no-progress"], 1),
    (["shard", "{empty_txt}", "-o", "{afile}/P", "--workers", "1", "--no-progress"], 1),
    (["shard", "{empty_txt}", "--workers", "many"], 2),
    (["shard", "{empty_txt}", "--on-error", "ignore"], 2),
    (["shard", "{empty_txt}", "--config", "{garbage_toml}"], 1),
    *[(["shard", "{empty_txt}", "-o", "{dir}/s3", *opt], 1) for opt in (
        ["--workers", "100000"], ["--seed", "-1"], ["--seed", "99999999999999999999999"], ["--temperature", "inf"],
        ["--temperature", "nan"], ["--ctx-len", "99999999999999999999"], ["--lang-budget", "en=9" + "9" * 30],
        ["--max-record-bytes", "9" * 20], ["--lang", "../x"], ["--lang", "a\nb"], ["--val-fraction", "nan"])],
    (["shard", "{empty_txt}", "--lang-budget", "en=1e400"], 2),
    (["shard", "", "-o", "{dir}/s4"], 1),
    (["shard", "{empty_txt}", "-o", "/dev/null"], 1),  # wrote /dev/null.bin, /dev/null.idx, ... into /dev
    (["shard", "verify", "{dir}/P"], 1),
    (["verify", "{dir}/nothing"], 1),
    (["inspect", "{dir}/P"], 1),
    (["audit", "{missing}"], 1),
    (["audit", "{garbage_jsonl}", "-t", "{missing}"], 1),
    *[(["audit", "{garbage_jsonl}", *opt], 1) for opt in (
        ["--confidence", "1.5"], ["--bootstrap", "-1"], ["--alpha", "nan"], ["--alpha", "-1"], ["--seed", "-1"],
        ["--max-bytes-per-lang", "-1"], ["--threads", "100000"], ["--vocab-size", "-1"])],
    (["run", "{garbage_toml}"], 1),
    *[([cmd, *pre, f], 1) for f in ("{fifo_toml}", "{zero_toml}", "{deep_toml}")
      for cmd, pre in (("run", []), ("compare", []), ("train", ["--config"]), ("shard", ["x.jsonl", "--config"]))],
    (["shard", "{empty_txt}", "-o", "{dir}/s5", "--config", "{nolens_toml}"], 1),
    (["train", "--data", "{dir}/P", "--config", "{hugelr_toml}"], 1),
    (["train", "--data", "{dir}/P", "--lr-init", "1e308"], 1),
    (["run", "--threads", "100000"], 1),
    (["run", "{bad_toml}"], 1),
    (["run", "{folder}"], 2),
    (["run", "--skip", "training"], 1),
    (["train", "--data", "{missing}", "--out-dir", "{dir}/t"], 1),
    (["train", "--data", "{dir}/P", "--ctx-len", "abc"], 2),
    (["evaluate", "--checkpoint", "{missing}", "--data", "{dir}/P"], 1),
]


@pytest.mark.parametrize(("argv", "code"), CASES, ids=[" ".join(a) for a, _ in CASES])
def test_hostile_input_gives_one_error_line(files: dict[str, str], argv: list[str], code: int,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.format(**files) for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(args)
    err = capsys.readouterr().err
    assert exc.value.code == code, err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "Error:"))]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    if code == 1:
        assert "internal error" not in lines[0], lines[0]


def test_describe_names_the_path_and_the_fix(tmp_path: Path) -> None:
    try:
        open(tmp_path / "nope.txt", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        line = describe(exc)
    assert line.startswith(f"{tmp_path / 'nope.txt'}: No such file") and "check the path" in line
    assert describe(MemoryError()).startswith("out of memory")
    assert describe(KeyError("x")).startswith("internal error: KeyError") and "please report it" in describe(KeyError())


def test_debug_shows_the_traceback(files: dict[str, str]) -> None:
    with pytest.raises(Exception, match="missing"):
        main(["--debug", "audit", files["missing"]])


def test_encode_argv_bytes_that_are_not_utf8(files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    """A shell passes bytes; Python hands them over as lone surrogates (surrogateescape): they are encoded as the
    bytes they were, not an 'invalid input' error."""
    vocab = Path(files["dir"]) / "bytes.txt"
    vocab.write_text("".join(f"{i + 1} {token_literal(bytes([i]))} 1\n" for i in range(256)), encoding="utf-8")
    main(["encode", "--vocab", str(vocab), "a\udcff"])
    assert capsys.readouterr().out.split() == ["98", "256"]


def test_decode_reads_stdin_bounded(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    import rwkv_data.config

    monkeypatch.setattr(rwkv_data.config, "MAX_RECORD_BYTES", 1000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"1 " * 2000)))  # `yes 1 | rwkv-data decode`
    with pytest.raises(SystemExit) as exc:
        main(["decode"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and err.startswith("error: stdin: over 1,000 bytes; decode reads its ids"), err
