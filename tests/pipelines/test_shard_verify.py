"""``rwkv-data verify`` / ``inspect`` / ``shard`` on the command line: a clean shard passes, a flipped byte in
.bin, a truncated .idx, a bad EOS and out-of-vocab ids are each named, and the exit code is 1.

Run: pytest tests/pipelines/test_shard_verify.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from shard_testlib import write_corpus, write_vocab

from rwkv_data.cli import main
from rwkv_data.pipelines.shard.binidx import BinidxWriter
from rwkv_data.pipelines.shard.check import verify


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    inputs, _ = write_corpus(root / "in", n=60)
    vocab = write_vocab(root / "vocab.txt")
    out = root / "out" / "P"
    main(["shard", *map(str, inputs), "-o", str(out), "--vocab", str(vocab), "--ctx-len", "8",
          "--val-min-docs", "2", "--no-progress", "--workers", "2"])
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for f in [*src.parent.glob(src.name + ".*"), *src.parent.glob(src.name + "_val.*")]:
        shutil.copy(f, dst / f.name)
    return dst / src.name


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_clean_shard_passes(shard: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for p in (shard, Path(f"{shard}_val")):
        code, out, _ = _cli(["verify", str(p), "--json"], capsys)
        report = json.loads(out)
        assert code == 0 and report["ok"] and not report["not_checked"]
        assert {"header", "idx_length", "bin_length", "pointers", "doc_idx", "eos", "max_id", "sha256_bin",
                "sha256_idx", "meta_counts", "lang_array"} <= set(report["passed"])


def test_flipped_byte_in_bin(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _copy(shard, tmp_path)
    data = bytearray(Path(f"{p}.bin").read_bytes())
    data[len(data) // 2] ^= 0x01
    Path(f"{p}.bin").write_bytes(bytes(data))
    code, out, err = _cli(["verify", str(p)], capsys)
    assert code == 1 and "FAIL sha256_bin" in out and "sha256_bin" in err


def test_truncated_idx(shard: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = _copy(shard, tmp_path)
    idx = Path(f"{p}.idx")
    idx.write_bytes(idx.read_bytes()[:-10])
    code, out, _ = _cli(["verify", str(p)], capsys)
    assert code == 1 and "FAIL idx_length" in out and "truncated" in out and "FAIL sha256_idx" in out
    assert "not checked" in out


def test_missing_eos_and_out_of_vocab_ids(tmp_path: Path) -> None:
    with BinidxWriter(tmp_path / "x", np.uint16) as w:
        w.add_document(np.array([5, 6]))
        w.add_document(np.array([7, 0, 8]), eos=False)  # no EOS at the end, a 0 inside
        w.add_document(np.array([60_000]))
    report = verify(tmp_path / "x", vocab_size=300, require_meta=False)  # a binidx without our meta.json
    assert {f["check"] for f in report["failures"]} == {"eos", "eos_inside", "max_id"}
    assert "not checked" not in report and "sha256_bin" in report["not_checked"]
    assert {f["check"] for f in verify(tmp_path / "x", vocab_size=300)["failures"]} == {"meta", "eos", "eos_inside",
                                                                                        "max_id"}


def test_inspect_decodes_a_sample(shard: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["inspect", str(shard), "--sample", "1"], capsys)
    assert code == 0 and "documents" in out and "ctx_len 8: --my_exit_tokens" in out and "item 1 (" in out
    code, out, _ = _cli(["inspect", str(shard), "--json"], capsys)
    info = json.loads(out)
    assert info["sample"]["text"] and set(info["languages"]) == {"de", "en", "ja", "sw", "und"}


def test_cli_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{oops\n', encoding="utf-8")
    vocab = write_vocab(tmp_path / "v.txt")
    code, _, err = _cli(["shard", str(bad), "-o", str(tmp_path / "P"), "--vocab", str(vocab), "--no-progress"],
                        capsys)
    assert code == 1 and "bad.jsonl:2: invalid JSON" in err
    code, out, _ = _cli(["shard", str(bad), "-o", str(tmp_path / "P"), "--vocab", str(vocab), "--no-progress",
                         "--on-error", "skip"], capsys)
    assert code == 0 and "skipped: invalid_json=1" in out
    code, _, err = _cli(["shard", str(bad), "--lang-budget", "en"], capsys)
    assert code == 2 and "LANG=TOKENS" in err


def test_bin_with_a_ragged_tail_byte(shard: Path, tmp_path: Path) -> None:
    p = _copy(shard, tmp_path)
    with open(f"{p}.bin", "ab") as f:
        f.write(b"\x00")
    report = verify(p)
    assert {f["check"] for f in report["failures"]} == {"bin_length", "sha256_bin", "file_sizes"}
