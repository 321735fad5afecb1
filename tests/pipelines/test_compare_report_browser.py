"""The comparison's HTML report in a real browser, the way the audit report is checked: headless Chromium loads
report.html from disk and the report's inline script records on <body> how many plots drew something and how many
JavaScript errors fired. The report is built from synthetic per-document bits (two budgets, three variants, one
language with fewer than 10 documents), so no model is trained here.

Needs the Debian ``chromium`` package; skipped with a reason when it is absent.
Run: pytest tests/pipelines/test_compare_report_browser.py -q
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_audit_report_browser import CHROMIUM, load_in_chromium

from rwkv_data.pipelines.compare import report, stats


def synthetic_result() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    langs = ["en"] * 12 + ["am"] * 12 + ["sw"] * 4
    nbytes = rng.integers(400, 1200, len(langs)).astype(float)
    bits = {"world": nbytes * rng.normal(2.0, 0.2, len(langs)),
            "ours": nbytes * rng.normal(1.8, 0.2, len(langs)),
            "bytes": nbytes * rng.normal(2.4, 0.2, len(langs))}
    toks = {"world": nbytes / 4, "ours": nbytes / 3, "bytes": nbytes + 1}
    budgets = {}
    for b in ("compute", "text"):
        budgets[b] = {"budget": b, "what": report.BUDGET_TEXT[b], "train_tokens": {n: 4096 for n in bits},
                      "train_bytes": {n: 16384 for n in bits}, "variants": {}, "differences": {}, "verdicts": {}}
        for n in bits:
            budgets[b]["variants"][n] = stats.variant_rows(langs, nbytes, [bits[n]], toks[n], 200, 0.95)
            if n != "world":
                d = stats.differences(langs, nbytes, [bits[n]], [bits["world"]], 200, 0.95)
                budgets[b]["differences"][n] = d
                budgets[b]["verdicts"][n] = stats.verdict_counts(d)
    return {"baseline": "world", "seeds": [0], "convention": "", "confidence": 0.95, "bootstrap": 200,
            "heldout": {"documents": len(langs), "bytes": int(nbytes.sum()), "per_language": {}},
            "model": {"n_layer": 2}, "variants": [], "budgets": budgets}


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("compare_report")
    files = report.write(synthetic_result(), folder)
    assert json.loads(Path(files["json"]).read_text())["budgets"]["text"]["what"].startswith("equal text")
    return Path(files["html"])


def test_report_is_self_contained_and_says_n_lt_10(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=""", html), "the report must not load anything"
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}
    assert "n &lt; 10" in html and "equal compute" in html and "equal text" in html


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_every_plot_draws_without_console_errors(page: Path, tmp_path: Path) -> None:
    attrs, console = load_in_chromium(page, tmp_path / "profile")
    assert attrs["data-check"] == "ok", attrs
    assert attrs["data-plots"] == attrs["data-plots-ok"] == "6"  # bpb, forest, tokens/byte vs bpb per budget
    assert int(attrs["data-tables"]) == 4 and attrs["data-errors"] == "0"
    assert not console, console
