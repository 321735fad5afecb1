"""CI: check what the README's first command (`rwkv-data run`) left: every stage finished, the files each
stage promises, an audit report that names World and our vocabulary, and a printed per-language table.

Usage: python .ci/check_demo_run.py RUN_FOLDER STDOUT_FILE (stdlib only: it runs in the fresh environment).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(run: Path, stdout: Path) -> list[str]:
    problems: list[str] = []
    expected = ["run.json", "vocab/vocab.txt", "shard/data.bin", "shard/data.idx", "shard/data.meta.json",
                "shard/data_val.bin", "train/stats.json", "evaluate/eval.json", "evaluate/eval.csv",
                "audit/summary.json", "audit/report.html"]
    problems += [f"missing {run / f}" for f in expected if not (run / f).is_file() or (run / f).stat().st_size == 0]
    for stage in ("vocab", "shard", "train", "evaluate", "audit"):
        if not (run / stage / "stats.json").is_file():
            problems.append(f"stage {stage}: no stats.json")
    report = run / "audit" / "report.html"
    if report.is_file():
        html = report.read_text(encoding="utf-8")
        problems += [f"report.html lacks {w!r}" for w in ("<html", "World", "ours", "<svg") if w not in html]
    summary = run / "audit" / "summary.json"
    if summary.is_file():
        tokenizers = set(json.loads(summary.read_text(encoding="utf-8")).get("summary", {}))
        if not {"World", "ours"} <= tokenizers:
            problems.append(f"audit summary has tokenizers {sorted(tokenizers)}, expected World and ours")
    evals = run / "evaluate" / "eval.json"
    if evals.is_file():
        langs = json.loads(evals.read_text(encoding="utf-8")).get("languages", [])
        if len(langs) < 10:
            problems.append(f"eval.json has {len(langs)} language rows, expected the demo's languages")
    text = stdout.read_text(encoding="utf-8") if stdout.is_file() else ""
    problems += [f"stdout lacks {w!r}" for w in ("Per-language results", "files written under") if w not in text]
    return problems


if __name__ == "__main__":
    found = main(Path(sys.argv[1]), Path(sys.argv[2]))
    for p in found:
        print(f"check_demo_run: {p}", file=sys.stderr)
    print(f"check_demo_run: {'FAILED' if found else 'ok'} ({sys.argv[1]})", file=sys.stderr)
    sys.exit(1 if found else 0)
