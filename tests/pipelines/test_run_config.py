"""``rwkv-data run`` with a ``[corpus]`` section, a failing stage, and TOML values refused before any stage.

Run: pytest tests/pipelines/test_run_config.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rwkv_data.cli import main
from rwkv_data.demo import demo_corpus_path
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.run import load_run_config

FAST = """
threads = 1
skip = ["train", "evaluate"]
[vocab]
vocab_size = 1024
[audit]
bootstrap = 20
greedy_gap = false
html = false
"""


@pytest.fixture(scope="module")
def renamed_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus with its fields renamed: text -> content, lang -> language."""
    path = tmp_path_factory.mktemp("corpus") / "renamed.jsonl"
    lines = [json.loads(line) for line in demo_corpus_path().read_text(encoding="utf-8").splitlines() if line]
    path.write_text("".join(json.dumps({"content": r["text"], "language": r["lang"]}, ensure_ascii=False) + "\n"
                            for r in lines), encoding="utf-8")
    return path


def test_corpus_section_with_other_field_names_runs(renamed_corpus: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "mine.toml"
    toml.write_text(FAST + f'[corpus]\ninputs = ["{renamed_corpus}"]\ntext_field = "content"\n'
                    'lang_field = "language"\n', encoding="utf-8")
    out = tmp_path / "run"
    main(["run", str(toml), "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    status = {n: s["status"] for n, s in result["stages"].items()}
    assert status == {"vocab": "ran", "shard": "ran", "train": "skipped", "evaluate": "skipped", "audit": "ran"}
    shard_cfg = json.loads((out / "shard" / "config.json").read_text(encoding="utf-8"))
    assert shard_cfg["text_field"] == "content" and shard_cfg["inputs"] == [str(renamed_corpus)]
    meta = json.loads((out / "shard" / "data.meta.json").read_text(encoding="utf-8"))
    assert len(meta["languages"]) == 38 and meta["skipped"] == {}
    assert set(result["audit_summary"]) == {"ours", "World", "bytes"}  # the audit job's own default list


def test_failed_stage_prints_what_finished_then_one_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    toml = tmp_path / "bad_audit.toml"
    toml.write_text(FAST.replace("html = false", f'html = false\ntokenizers = ["{tmp_path / "missing.txt"}"]'),
                    encoding="utf-8")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exc:
        main(["run", str(toml), "--out", str(out)])
    assert exc.value.code == 1
    captured = capsys.readouterr()
    assert "vocab     ran" in captured.out and "audit     failed" in captured.out
    assert str(out.resolve() / "shard" / "data.bin") in captured.out  # every path written is listed
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "audit stage failed" in errors[0] and "missing.txt" in errors[0]
    assert "Traceback" not in captured.err
    assert (out / "shard" / ".done").is_file() and not (out / "audit" / ".done").exists()


@pytest.mark.parametrize(("text", "match"), [
    ('[train]\nctx_len = "abc"\n', r"\[train\]: ctx_len must be an integer, not 'abc'"),
    ("[train]\nlr_init = [1]\n", r"\[train\]: lr_init must be a number, not \[1\]"),
    ("out = 3\n", r"out_dir must be a string, not 3"),
    ("[corpus]\ntext_field = 5\n", r"\[corpus\]: text_field must be a string"),
    ("[shard]\nlang_budgets = { en = 1.5 }\n", r"\[shard\]: lang_budgets must be a table of a string = an integer"),
    ("[corpus]\non_error = \"ignore\"\n", r"\[corpus\]: on_error must be 'raise' or 'skip'"),
    ("threads = -1\n", r"threads \(--threads\) must be an integer in \[0, 1024\]"),
    ("vocab = 3\n", r"\[vocab\] must be a table"),
    ("skip = [\"training\"]\n", r"the stages are"),
    ("[audit]\nnum_threads = 2\nthreads = 3\n", r"'num_threads' and 'threads' are the same setting"),
    ('inputs = ["a"]\n[corpus]\ninputs = ["b"]\n', r"both at the top and in \[corpus\]"),
])
def test_bad_toml_values_are_refused_naming_file_section_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as exc:
        load_run_config(path)
    assert str(path) in str(exc.value)


def test_non_utf8_toml_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('out = "caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_run_config(path)


def test_old_spellings_still_load(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text('out = "runs/x"\ninputs = "corpus/"\n[audit]\nnum_threads = 2\n[evaluate]\ntexts = ["a.txt"]\n'
                    '[shard]\nvocab = ""\n', encoding="utf-8")
    cfg = load_run_config(path)
    assert cfg.out_dir == "runs/x" and cfg.corpus.inputs == ("corpus/",) and cfg.audit.threads == 2
    assert cfg.evaluate.inputs == ("a.txt",) and cfg.shard.vocab == ""
    assert cfg.train.lr_init == 1e-3 and load_run_config(None, out_dir="y").out_dir == "y"
