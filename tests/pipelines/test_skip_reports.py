"""Every job that reads a corpus with ``--on-error skip`` reports what it skipped: counts by reason and the first
file:line of each reason, on stdout and in its JSON/meta (nothing is dropped silently)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from rwkv_data.cli import cli

BAD_LINES = ('{"text": "hello world, hello again", "lang": "en"}\n'
             "{bad json\n"
             '{"text": 7, "lang": "en"}\n'
             '{"text": "bonjour le monde", "lang": "fr"}\n')
WANT = {"invalid_json": 1, "non_string_text": 1}


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "mixed.jsonl"
    path.write_text(BAD_LINES, encoding="utf-8")
    return path


def _invoke(args: list[str]) -> tuple[int, str]:
    """Exit code and stdout (or, for a failure, the error ``rwkv-data`` prints)."""
    res = CliRunner().invoke(cli, args)
    return res.exit_code, res.stdout if res.exception is None else str(res.exception)


def _check_text(out: str, path: Path) -> None:
    assert "skipped: invalid_json=1, non_string_text=1" in out, out
    assert f"first invalid_json: {path}:2:" in out and f"first non_string_text: {path}:3:" in out, out


def test_vocab_train_reports_skips(corpus: Path, tmp_path: Path) -> None:
    base = ["vocab", "train", str(corpus), "--vocab-size", "300"]
    code, out = _invoke([*base, "-o", str(tmp_path / "v.txt")])
    assert code == 1 and "mixed.jsonl:2: invalid JSON" in out and "--on-error skip" in out
    code, out = _invoke([*base, "-o", str(tmp_path / "v.txt"), "--on-error", "skip"])
    assert code == 0, out
    _check_text(out, corpus)
    meta = json.loads((tmp_path / "v.txt.meta.json").read_text(encoding="utf-8"))
    assert meta["corpus"]["skipped"] == WANT and meta["corpus"]["documents"] == 2
    code, out = _invoke([*base, "-o", str(tmp_path / "w.txt"), "--on-error", "skip", "--json"])
    assert code == 0 and json.loads(out)["skipped"] == WANT


def test_vocab_extend_reports_skips(corpus: Path, tmp_path: Path) -> None:
    code, out = _invoke(["vocab", "extend", str(corpus), "-o", str(tmp_path / "x.txt"), "--add-tokens", "8",
                         "--on-error", "skip"])
    assert code == 0, out
    _check_text(out, corpus)


def test_audit_reports_skips(corpus: Path, tmp_path: Path) -> None:
    code, out = _invoke(["audit", str(corpus), "-t", "world", "--on-error", "skip", "--out-dir", str(tmp_path / "a")])
    assert code == 0, out
    _check_text(out, corpus)
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    assert summary["corpus"]["skipped"] == WANT and summary["corpus"]["documents"] == 2


def test_evaluate_reports_skips_and_reads_txt_through_the_record_limit(corpus: Path, tmp_path: Path) -> None:
    from model_fixtures import byte_vocab

    from rwkv_data.pipelines.train import modelio

    byte_vocab(tmp_path / "bytes.txt")
    torch.manual_seed(0)
    modelio.export_checkpoint(modelio.fresh(2, 64, 32, 320, 32), tmp_path / "m.pth")
    big = tmp_path / "big.txt"
    big.write_bytes(b"a line of text\r\n" * 200)  # kept byte-exact (CRLF), one document of language "big"
    base = ["evaluate", str(corpus), str(big), "--checkpoint", str(tmp_path / "m.pth"), "--vocab",
            str(tmp_path / "bytes.txt"), "--ctx-len", "64", "--out-dir", str(tmp_path / "e"), "--device", "cpu"]
    code, out = _invoke([*base, "--on-error", "skip"])
    assert code == 0, out
    _check_text(out, corpus)
    result = json.loads((tmp_path / "e" / "eval.json").read_text(encoding="utf-8"))
    assert result["skipped"] == WANT
    rows = {r["lang"]: r for r in result["languages"]}
    assert rows["big"]["bytes"] == 3200 and rows["en"]["docs"] == 1 and rows["fr"]["docs"] == 1
    code, out = _invoke([*base, "--on-error", "skip", "--max-record-bytes", "1000"])
    assert code == 0 and "record_too_large=1" in out and f"{big}:1" in out
