"""End-to-end tests of ``rwkv-data run`` (pipelines/run.py) on the bundled demo corpus with a cut-down config.

A 2048-token vocab, a 1-layer 64-wide model trained for 3 steps and 50 bootstrap resamples keep the whole
pipeline (vocab, shard, train, evaluate, audit) to about half a minute on a 2-core CPU. The tests check every
stage's outputs, the per-language table, that a rerun redoes nothing, that changed settings redo only the
stages downstream of the change, ``--skip``, and that examples/demo.toml spells out the demo defaults.

Run: pytest tests/pipelines/test_run.py
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import shutil
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from rwkv_data.cli import main
from rwkv_data.config import RunConfig
from rwkv_data.demo import LANGUAGE_NAMES, demo_corpus_path
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.corpus.readers import iter_documents
from rwkv_data.pipelines.run import STAGES, load_run_config
from rwkv_data.pipelines.shard.binidx import BinidxReader
from rwkv_data.tokenizer import TrieTokenizer

ROOT = Path(__file__).resolve().parents[2]

TINY = """
threads = 1
[vocab]
vocab_size = 2048
[train]
n_layer = 1
n_embd = 64
ctx_len = 64
micro_bsz = 2
max_steps = 3
warmup_steps = 1
eval_every = 0
[evaluate]
ctx_len = 64
bootstrap = 50
[audit]
bootstrap = 50
greedy_gap = false
"""

OUTPUTS = {
    "vocab": ["vocab.txt", "vocab.txt.meta.json"],
    "shard": ["data.bin", "data.idx", "data.meta.json", "data_val.bin", "data_val.idx", "data_val.meta.json"],
    "train": ["rwkv-final.pth", "train_log.jsonl"],
    "evaluate": ["eval.json", "eval.csv"],
    "audit": ["summary.json", "languages.csv", "report.html"],
}


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    main(["run", *args, "--json"])
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def tiny_toml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "tiny.toml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_run(tiny_toml: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("run") / "r"
    buf = io.StringIO()
    with redirect_stdout(buf):  # capsys is per test; this fixture runs once per module
        main(["run", str(tiny_toml), "--out", str(out), "--json"])
    return out, json.loads(buf.getvalue())


def test_every_stage_writes_its_outputs(first_run: tuple[Path, dict[str, Any]]) -> None:
    out, result = first_run
    assert result["out"] == str(out.resolve())
    for stage in STAGES:
        folder = out / stage
        assert result["stages"][stage]["status"] == "ran"
        for name in ["config.json", "stats.json", ".done", *OUTPUTS[stage]]:
            assert (folder / name).is_file(), f"{stage}: {name} missing"
        marker = json.loads((folder / ".done").read_text(encoding="utf-8"))
        assert marker["key"] == result["stages"][stage]["key"]
    assert str(out.resolve() / "train" / "rwkv-final.pth") in result["files"]
    # the stages are wired together: shards in our vocab, the model evaluated with it, audited against World
    assert json.loads((out / "shard" / "config.json").read_text())["vocab"].endswith("vocab/vocab.txt")
    assert json.loads((out / "evaluate" / "config.json").read_text())["vocab"].endswith("vocab/vocab.txt")
    assert set(result["audit_summary"]) == {"ours", "World"}


def test_vocab_never_sees_the_validation_documents(first_run: tuple[Path, dict[str, Any]]) -> None:
    """Held-out text is held out from every stage: the vocabulary is trained on exactly the demo documents that
    are not in the validation shard (decoded from data_val.bin), and its stats count the ones left out."""
    out = first_run[0]
    val = BinidxReader(out / "shard" / "data_val")
    tok = TrieTokenizer.from_file(out / "vocab" / "vocab.txt")
    val_texts = {tok.decode(val[i][:-1].tolist()) for i in range(len(val))}
    corpus = list(iter_documents(demo_corpus_path()))
    assert len(val_texts) == len(val) and val_texts <= {d.text for d in corpus}
    sha = hashlib.sha256()  # build_vocab's corpus fingerprint: every document it trained on, in order
    for d in corpus:
        if d.text not in val_texts:
            sha.update(f"{d.lang}\0{len(d.text)}\0".encode())
            sha.update(d.text.encode("utf-8"))
    meta = json.loads((out / "vocab" / "vocab.txt.meta.json").read_text(encoding="utf-8"))
    assert meta["corpus"]["sha256"] == sha.hexdigest()
    assert meta["corpus"]["documents"] == len(corpus) - len(val)
    excluded = json.loads((out / "vocab" / "stats.json").read_text(encoding="utf-8"))["excluded"]
    shard_val = json.loads((out / "shard" / "data_val.meta.json").read_text(encoding="utf-8"))["per_language"]
    assert excluded["per_language"] == {lg: c["documents"] for lg, c in shard_val.items()}
    assert excluded["documents"] == len(val) >= 2 * len(LANGUAGE_NAMES)


def test_table_covers_every_demo_language(first_run: tuple[Path, dict[str, Any]]) -> None:
    rows = {r["lang"]: r for r in first_run[1]["languages"]}
    assert set(rows) == set(LANGUAGE_NAMES) | {"all"}
    for lang, r in rows.items():
        assert r["val_docs"] >= (2 if lang != "all" else 2 * len(LANGUAGE_NAMES))
        assert math.isfinite(r["bpb"]) and 0 < r["bpb"] < 12, (lang, r["bpb"])
        assert r["bpb_untrained"] is not None
        if lang != "all":
            assert set(r["bytes_per_token"]) == {"ours", "World"}


def test_text_output_shows_table_stages_and_files(first_run: tuple[Path, dict[str, Any]], tiny_toml: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = first_run[0]
    main(["run", str(tiny_toml), "--out", str(out)])
    text = capsys.readouterr().out
    assert "Per-language results" in text and "zh-Hans" in text and "Amharic" in text
    assert text.count("finished earlier") == len(STAGES)
    assert str(out.resolve() / "audit" / "report.html") in text


def test_rerun_skips_finished_stages(first_run: tuple[Path, dict[str, Any]], tiny_toml: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    out, first = first_run
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "run.json"}
    again = _cli(capsys, str(tiny_toml), "--out", str(out))
    assert {s["status"] for s in again["stages"].values()} == {"finished earlier"}
    assert again["languages"] == first["languages"]
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes


def test_changed_settings_redo_only_downstream_stages(first_run: tuple[Path, dict[str, Any]], tiny_toml: Path,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "moved"
    shutil.copytree(first_run[0], out)  # a moved run folder keeps its finished stages
    changed = tmp_path / "tiny.toml"
    changed.write_text(TINY.replace("max_steps = 3", "max_steps = 2"), encoding="utf-8")
    result = _cli(capsys, str(changed), "--out", str(out), "--skip", "audit")
    status = {n: s["status"] for n, s in result["stages"].items()}
    assert status == {"vocab": "finished earlier", "shard": "finished earlier", "train": "ran", "evaluate": "ran",
                      "audit": "skipped (earlier output used)"}
    assert json.loads((out / "train" / "stats.json").read_text())["steps"] == 2
    assert not (out / "train" / "rwkv-3.pth").exists()  # a redone stage starts from an empty folder


def test_skip_leaves_stages_out(tiny_toml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "partial"
    result = _cli(capsys, str(tiny_toml), "--out", str(out), "--skip", "train,evaluate", "--skip", "audit")
    status = {n: s["status"] for n, s in result["stages"].items()}
    assert status == {"vocab": "ran", "shard": "ran", "train": "skipped", "evaluate": "skipped", "audit": "skipped"}
    assert (out / "shard" / "data_val.bin").is_file()
    assert not (out / "train").exists() and not (out / "evaluate").exists() and not (out / "audit").exists()
    assert result["languages"] == []


def test_demo_toml_spells_out_the_demo_defaults() -> None:
    assert load_run_config(ROOT / "examples" / "demo.toml") == RunConfig()
    assert load_run_config(None, out="x", skip=("train,audit",)).skip == ("train", "audit")


def test_config_errors_name_the_fix(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("outt = 'x'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key.*outt"):
        load_run_config(bad)
    bad.write_text("[train]\nn_layers = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="n_layers"):
        load_run_config(bad)
    with pytest.raises(ConfigError, match="the stages are"):
        load_run_config(None, skip=("training",))


def test_sections_override_job_defaults_for_a_user_corpus(tmp_path: Path) -> None:
    cfg_file = tmp_path / "mine.toml"
    cfg_file.write_text('inputs = ["corpus/*.jsonl"]\n[train]\nn_layer = 4\n', encoding="utf-8")
    cfg = load_run_config(cfg_file)
    assert cfg.corpus.inputs == ("corpus/*.jsonl",)
    assert cfg.train.n_layer == 4 and cfg.train.token_budget == 0  # the job's default, not the demo's
    assert cfg.vocab.vocab_size == 65536
    assert load_run_config(None) == RunConfig()
