"""The audit's HTML report in a real browser: headless Chromium loads report.html from disk, and the report's
own inline script records on <body> how many plots drew something, how many tables exist and how many
JavaScript errors fired; the test reads those attributes back from ``--dump-dom`` and the console log from
stderr. A broken copy of the report (an empty plot and a failing script) proves the check can fail.

Needs the Debian ``chromium`` package (.ci/run installs it); skipped with a reason when it is absent.
Run: pytest tests/pipelines/test_audit_report_browser.py -q
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from audit_testlib import EXTRA, write_parallel, write_vocab

from rwkv_data.config import AuditConfig
from rwkv_data.pipelines.audit.job import run

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


def load_in_chromium(page: Path, profile: Path) -> tuple[dict[str, str], list[str]]:
    """The <body> attributes after load, and the console messages Chromium logged."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    body = re.search(r"<body([^>]*)>", proc.stdout)
    assert body, f"no <body> in the dumped DOM; chromium stderr:\n{proc.stderr[-2000:]}"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return attrs, console


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    other = write_vocab(d / "other.txt", EXTRA[:3] + ["ሰው".encode(), "ልጅ".encode()])  # for the vocabulary diff
    res = run(AuditConfig(corpus=str(write_parallel(d / "par.jsonl")), out_dir=str(d / "out"), bootstrap=100,
                          tokenizers=("world", f"fixture={write_vocab(d / 'fix.txt')}", f"other={other}", "bytes")))
    assert res.report["vocab_diff"]["added"] == 2
    return d / "out" / "report.html"


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=""", html), "the report must not load anything"
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) <= {"http://www.w3.org/2000/svg"}


def test_every_plot_loads_without_console_errors(report: Path, tmp_path: Path) -> None:
    attrs, console = load_in_chromium(report, tmp_path / "profile")
    assert attrs["data-check"] == "ok", attrs
    # 4 parity-bar plots, parity vs English cost, heatmap, script allocation, vocabulary-diff effect
    assert attrs["data-plots"] == attrs["data-plots-ok"] == "8"
    assert int(attrs["data-tables"]) >= 4  # summary, two diff tables, languages
    assert attrs["data-errors"] == "0"
    assert not console, console


def test_the_check_catches_a_broken_report(report: Path, tmp_path: Path) -> None:
    html = report.read_text(encoding="utf-8")
    broken = html.replace("<pre id='js-errors'>", "<svg data-plot='empty'></svg><script>noSuchFunction()</script>"
                                                   "<pre id='js-errors'>")
    page = tmp_path / "broken.html"
    page.write_text(broken, encoding="utf-8")
    attrs, console = load_in_chromium(page, tmp_path / "profile")
    assert attrs["data-check"] == "fail:empty"
    assert attrs["data-errors"] == "1"
    assert any("noSuchFunction" in line for line in console)
