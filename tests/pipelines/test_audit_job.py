"""The audit job end to end: JSON/CSV outputs, thresholds and exit codes, the CLI (click CliRunner), mono
corpora, and World against the bytes-only baseline (the expected ordering of every metric).

All corpora are written to tmp_path (UDHR article 1 in four languages, audit_testlib.py); the ordering test also
reads ../shared/corpus/udhr.jsonl.zst when it is present.
Run: pytest tests/pipelines/test_audit_job.py -q
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from audit_testlib import write_parallel, write_vocab
from click.testing import CliRunner

from rwkv_data.cli import cli
from rwkv_data.config import AuditConfig
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.audit.job import AuditResult, check_thresholds, run

UDHR = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "udhr.jsonl.zst"


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("audit")
    return {"corpus": write_parallel(d / "par.jsonl"), "vocab": write_vocab(d / "fix.txt"), "dir": d}


@pytest.fixture(scope="module")
def result(files: dict[str, Path]) -> AuditResult:
    cfg = AuditConfig(corpus=str(files["corpus"]), tokenizers=("world", f"fix={files['vocab']}", "bytes"),
                      out_dir=str(files["dir"] / "out"), bootstrap=200, html=False)
    return run(cfg)


def test_outputs_json_and_csv(result: AuditResult, files: dict[str, Path]) -> None:
    out = files["dir"] / "out"
    assert {p.name for p in out.iterdir()} >= {"summary.json", "languages.csv", "config.json", "stats.json",
                                               "dead_tokens.json"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["corpus"] == {"source": str(files["corpus"]), "kind": "parallel", "unit": "unit",
                                 "languages": 4, "reference": "eng"}
    assert list(summary["summary"]) == ["World", "fix", "bytes"]
    rows = list(csv.DictReader((out / "languages.csv").open(encoding="utf-8")))
    assert len(rows) == 12 and {r["key"] for r in rows} == {"eng", "rus", "cmn", "amh"}
    eng = next(r for r in rows if r["tokenizer"] == "bytes" and r["key"] == "eng")
    text = "All human beings are born free and equal in dignity and rights."
    n = len(text)  # ASCII: one byte per character; units repeat it 1, 2 and 3 times joined by spaces
    assert int(eng["tokens"]) == 6 * n + 3 and float(eng["parity"]) == 1.0 and float(eng["bytes_per_token"]) == 1.0
    # 12 words and 11 spaces per sentence; a space token belongs to no word
    assert float(eng["fertility"]) == pytest.approx((n - 11) * 6 / (12 * 6))
    for r in rows:  # 3 units per language: fewer than 10, so no bootstrap interval (an empty CSV cell, null)
        assert r["parity_lo"] == r["parity_hi"] == r["bytes_per_token_lo"] == ""
    assert json.loads((out / "config.json").read_text())["bootstrap"] == 200
    dead = json.loads((out / "dead_tokens.json").read_text())
    assert 263 not in dead["fix"] and 257 in dead["fix"]  # '人人' used by Chinese, 'ab' never used


def test_intervals_from_ten_units(tmp_path: Path) -> None:
    res = run(AuditConfig(corpus=str(write_parallel(tmp_path / "par10.jsonl", units=10)), tokenizers=("world",),
                          out_dir=str(tmp_path / "out"), bootstrap=200, html=False))
    for r in res.report["languages"]:
        assert r["units"] == 10 and r["bytes_per_token_lo"] <= r["bytes_per_token"] <= r["bytes_per_token_hi"]
        assert r["parity_lo"] <= r["parity"] <= r["parity_hi"]
    assert res.report["summary"]["World"]["gini_lo"] is not None


def test_world_against_bytes_ordering(result: AuditResult) -> None:
    check_ordering(result.report)


@pytest.mark.skipif(not UDHR.exists(), reason=f"{UDHR} not present")
def test_world_against_bytes_ordering_on_udhr(tmp_path: Path) -> None:
    langs = ("eng", "rus", "cmn_hans", "amh", "hin", "arb", "jpn", "kor")
    res = run(AuditConfig(corpus=str(UDHR), tokenizers=("world", "bytes"), langs=langs, out_dir=str(tmp_path),
                          bootstrap=100, html=False))
    check_ordering(res.report)
    world = {r["key"]: r for r in res.report["languages"] if r["tokenizer"] == "World"}
    assert world["amh"]["parity"] > 5 > world["rus"]["parity"]  # Amharic falls back to bytes in World
    assert world["amh"]["byte_fallback_tokens"] > 0.8 and world["eng"]["byte_fallback_tokens"] == 0


def check_ordering(report: dict) -> None:
    s = report["summary"]
    w, b = s["World"], s["bytes"]
    assert w["tokens"] < b["tokens"]
    assert w["bytes_per_token"] > b["bytes_per_token"] == 1.0
    assert w["fertility"] < b["fertility"] and w["continued_words"] < b["continued_words"]
    assert w["byte_fallback_chars"] < b["byte_fallback_chars"] == 1.0
    assert b["greedy_gap"] == 0.0 and 0 <= w["greedy_gap"] < 0.05
    rows = {(r["tokenizer"], r["key"]): r for r in report["languages"]}
    for key in {k for _, k in rows}:
        assert rows[("World", key)]["tokens"] < rows[("bytes", key)]["tokens"]
    assert w["max_parity"] > b["max_parity"]  # World's unfairness: the byte-fallback languages
    cmp = next(c for c in report["comparisons"] if c["a"] == "bytes")
    assert cmp["geomean_ratio"] > 1 and cmp["langs_a_fewer"] == 0


def test_thresholds(result: AuditResult) -> None:
    s = result.report["summary"]
    assert check_thresholds(["max_parity>1000"], s) == []
    fails = check_thresholds(["bytes:bytes_per_token<=1", "World:greedy_gap>=0"], s)
    assert fails == ["bytes: bytes_per_token = 1 <= 1", f"World: greedy_gap = {s['World']['greedy_gap']:.4g} >= 0"]
    assert len(check_thresholds(["max_parity > 1.5"], s)) >= 1
    with pytest.raises(ConfigError, match="unknown metric"):
        check_thresholds(["max_parrity>2"], s)
    with pytest.raises(ConfigError, match="no tokenizer"):
        check_thresholds(["gpt9:gini>0"], s)
    with pytest.raises(ConfigError, match="expected"):
        check_thresholds(["max_parity is big"], s)


def test_cli_exit_codes_and_json(files: dict[str, Path], tmp_path: Path) -> None:
    args = ["audit", str(files["corpus"]), "-t", f"fix={files['vocab']}", "-t", "bytes", "-o", str(tmp_path),
            "--bootstrap", "50", "--no-html"]
    ok = CliRunner().invoke(cli, args + ["--fail-if", "max_parity>100", "--json"])
    assert ok.exit_code == 0, ok.output
    summary = json.loads(ok.stdout)
    assert set(summary) == {"fix", "bytes"} and summary["bytes"]["bytes_per_token"] == 1.0
    bad = CliRunner().invoke(cli, args + ["--fail-if", "max_parity>1.5"])
    assert bad.exit_code == 1
    assert "threshold failed: fix: max_parity" in bad.stderr and "med.par" in bad.stdout
    usage = CliRunner().invoke(cli, args + ["--fail-if", "nonsense"])
    assert usage.exit_code == 1 and isinstance(usage.exception, ConfigError)


def test_cli_config_file_and_reference(files: dict[str, Path], tmp_path: Path) -> None:
    cfg = tmp_path / "audit.toml"
    cfg.write_text(f'[audit]\ntokenizers = ["bytes"]\nreference = "rus"\nbootstrap = 20\nhtml = false\n'
                   f'out_dir = "{tmp_path / "o"}"\n')
    res = CliRunner().invoke(cli, ["audit", str(files["corpus"]), "--config", str(cfg), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads((tmp_path / "o" / "summary.json").read_text())["languages"]
    assert next(r for r in rows if r["key"] == "rus")["parity"] == 1.0
    missing = CliRunner().invoke(cli, ["audit", str(files["corpus"]), "--config", str(cfg), "--reference", "xx"])
    assert missing.exit_code == 1 and "reference language 'xx'" in str(missing.exception)


def test_mono_corpus(tmp_path: Path) -> None:
    import zstandard

    mono = tmp_path / "mono"
    mono.mkdir()
    for lang, text in {"en": "free and equal in dignity", "ru": "свободными и равными"}.items():
        lines = "".join(json.dumps({"text": f"{text} {i}", "lang": lang}, ensure_ascii=False) + "\n"
                        for i in range(6))
        (mono / f"{lang}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(lines.encode()))
    res = run(AuditConfig(corpus=str(mono), tokenizers=("bytes",), out_dir=str(tmp_path / "o"), bootstrap=50,
                          html=False))
    assert res.report["corpus"]["kind"] == "mono" and res.report["corpus"]["reference"] is None
    rows = {r["key"]: r for r in res.report["languages"]}
    assert rows["en"]["units"] == 6 and rows["en"]["parity"] is None and rows["ru"]["script"] == "Cyrl"
    assert res.report["summary"]["bytes"]["gini"] == 0.0  # bytes: the cost per byte is 1 in every language
    assert check_thresholds(["max_parity>2"], res.report["summary"]) == [
        "bytes: max_parity is not available on this corpus (max_parity>2)"]
