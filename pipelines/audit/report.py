"""The audit's self-contained HTML report: tables plus plots drawn as inline SVG by this module.

No CDN, no fonts, no network: the file opens offline. A small inline script checks that every ``<svg
data-plot>`` drew something and records the result, with any JavaScript error, as attributes of ``<body>``
(``data-check="ok"``, ``data-plots``, ``data-errors``), which the headless-Chromium test reads back.
"""

from __future__ import annotations

import html
import math
from typing import Any

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f"]
_STOPS = [(0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)),
          (1.0, (253, 231, 37))]  # viridis, sampled
HEAT_METRICS = [("parity", "parity"), ("fertility", "tokens/word"), ("byte_fallback_tokens", "fallback"),
                ("bytes_per_token", "bytes/token")]
E = html.escape


def _color(t: float) -> str:
    t = min(1.0, max(0.0, t))
    for (a, ca), (b, cb) in zip(_STOPS, _STOPS[1:], strict=False):
        if t <= b:
            u = (t - a) / (b - a)
            r, g, b_ = (round(x + (y - x) * u) for x, y in zip(ca, cb, strict=True))
            return f"#{r:02x}{g:02x}{b_:02x}"
    return "#fde725"


def _svg(plot: str, width: float, height: float, body: list[str], label: str) -> str:
    return (f'<svg data-plot="{E(plot)}" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{E(label)}">'
            f'<title>{E(label)}</title>{"".join(body)}</svg>')


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 11, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {extra}>{E(s)}</text>'


def _ticks(vmax: float, n: int = 5) -> list[float]:
    if vmax <= 0:
        return [0.0]
    step = 10 ** math.floor(math.log10(vmax / n))
    for m in (1, 2, 2.5, 5, 10):
        if vmax / (step * m) <= n:
            step *= m
            break
    return [i * step for i in range(int(vmax / step) + 1)]


def parity_bars(name: str, rows: list[dict[str, Any]], color: str, key: str = "parity") -> str:
    """Languages sorted by ``key`` (worst first), one vertical bar each, with 1× and 3× guides."""
    rows = sorted((r for r in rows if r.get(key) is not None), key=lambda r: -r[key])
    bw, left, top, h = 4 if len(rows) > 150 else 10, 46, 40, 240
    width = max(520, left + 20 + bw * len(rows))
    vmax = max([r[key] for r in rows] + [1.0]) * 1.05
    y = lambda v: top + h - h * v / vmax  # noqa: E731
    worst = ", ".join(f"{r['key']} {r[key]:.2f}" for r in rows[:8])
    body = [_text(left, 14, f"{name}: {key} per language, sorted ({len(rows)} languages)", size=12),
            _text(left, 30, f"highest: {worst}", size=10, extra='fill="#555"')]
    for t in _ticks(vmax):
        body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(t):.1f}" y2="{y(t):.1f}" stroke="#ddd"/>')
        body.append(_text(left - 4, y(t) + 4, f"{t:g}", "end", 10))
    for i, r in enumerate(rows):
        x = left + i * bw
        lo, hi = r.get(f"{key}_lo"), r.get(f"{key}_hi")
        ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None and hi is not None else ""
        body.append(f'<rect x="{x:.1f}" y="{y(r[key]):.1f}" width="{max(bw - 1, 1)}" '
                    f'height="{h - (y(r[key]) - top):.1f}" fill="{color}"><title>{E(r["key"])} {E(r["name"])}: '
                    f'{r[key]:.3f}{ci}</title></rect>')
    for guide in (1.0, 3.0):
        if guide < vmax:
            body.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(guide):.1f}" y2="{y(guide):.1f}" '
                        f'stroke="#c00" stroke-dasharray="4 3"/>')
    body.append(f'<line x1="{left}" x2="{left}" y1="{top}" y2="{top + h}" stroke="#333"/>')
    return _svg(f"bars-{name}", width, top + h + 12, body, f"{name} {key} per language")


def pareto(summary: dict[str, dict[str, Any]], languages: list[dict[str, Any]], reference: str) -> str:
    """One point pair per tokenizer: reference-language cost (relative to the first tokenizer) against
    max (filled) and median (hollow) parity."""
    names = list(summary)
    ref_tokens = {r["tokenizer"]: r["tokens"] for r in languages if r["key"] == reference}
    base = ref_tokens.get(names[0]) or 1
    pts = [(n, ref_tokens.get(n, 0) / base, summary[n]["max_parity"], summary[n]["median_parity"]) for n in names]
    xmax = max([p[1] for p in pts] + [1.0]) * 1.15
    ymax = max([p[2] or 0 for p in pts] + [1.0]) * 1.15
    left, top, w, h = 50, 20, 420, 260
    X = lambda v: left + w * v / xmax  # noqa: E731
    Y = lambda v: top + h - h * v / ymax  # noqa: E731
    body = [_text(left, 12, f"parity against {reference} cost (x: {reference} tokens / {names[0]})", size=12)]
    for t in _ticks(ymax):
        body += [f'<line x1="{left}" x2="{left + w}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" stroke="#eee"/>',
                 _text(left - 4, Y(t) + 4, f"{t:g}", "end", 10)]
    for t in _ticks(xmax):
        body += [f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{top}" y2="{top + h}" stroke="#eee"/>',
                 _text(X(t), top + h + 14, f"{t:g}", "middle", 10)]
    body += [f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#333"/>',
             _text(left + w / 2, top + h + 30, f"{reference} cost relative to {names[0]}", "middle"),
             _text(14, top + h / 2, "parity (max ●, median ○)", "middle", 11,
                   f'transform="rotate(-90 14 {top + h / 2})"')]
    for i, (n, x, mx, md) in enumerate(pts):
        c = PALETTE[i % len(PALETTE)]
        if mx is not None:
            body.append(f'<circle cx="{X(x):.1f}" cy="{Y(mx):.1f}" r="6" fill="{c}"><title>{E(n)}: max parity '
                        f'{mx:.2f}, {reference} cost {x:.2f}</title></circle>')
            body.append(_text(X(x) + 9, Y(mx) + 4, n, size=11))
        if md is not None:
            body.append(f'<circle cx="{X(x):.1f}" cy="{Y(md):.1f}" r="6" fill="white" stroke="{c}" stroke-width="2">'
                        f'<title>{E(n)}: median parity {md:.2f}</title></circle>')
    return _svg("pareto", left + w + 130, top + h + 40, body, "parity against English cost")


def heatmap(names: list[str], languages: list[dict[str, Any]], order_key: str) -> str:
    """Languages (rows, sorted by the first tokenizer's ``order_key``) × metrics per tokenizer (columns); each
    column coloured on its own log scale."""
    by = {(r["tokenizer"], r["key"]): r for r in languages}
    keys = [r["key"] for r in sorted((r for r in languages if r["tokenizer"] == names[0]),
                                     key=lambda r: -(r[order_key] or 0))]
    cols = [(n, m, label) for m, label in HEAT_METRICS for n in names
            if any(by.get((n, k), {}).get(m) is not None for k in keys)]
    cw, rh, left, top = 64, 11, 120, 64
    body = []
    for j, (n, m, label) in enumerate(cols):
        vals = [by[(n, k)][m] for k in keys if by.get((n, k), {}).get(m) not in (None, 0)]
        lo, hi = (math.log(min(vals)), math.log(max(vals))) if vals else (0.0, 1.0)
        x = left + j * cw
        body.append(_text(x + cw / 2, 14, label, "middle", 10))
        body.append(_text(x + cw / 2, 28, n[:10], "middle", 10))
        for i, k in enumerate(keys):
            v = by.get((n, k), {}).get(m)
            if v is None:
                continue
            t = (math.log(v) - lo) / (hi - lo) if v > 0 and hi > lo else 0.0
            body.append(f'<rect x="{x}" y="{top + i * rh}" width="{cw - 2}" height="{rh - 1}" fill="{_color(t)}">'
                        f"<title>{E(k)} · {E(n)} · {label}: {v:.3f}</title></rect>")
    for i, k in enumerate(keys):
        body.append(_text(left - 4, top + i * rh + 9, k, "end", 9))
    body.append(_text(left, 48, "colour: log scale per column, dark = low, yellow = high", size=10))
    return _svg("heatmap", left + cw * max(len(cols), 1) + 10, top + rh * len(keys) + 10, body,
                "per-language heatmap")


def allocation(summary: dict[str, dict[str, Any]], top: int = 28) -> str:
    """Vocabulary entries per script (log-scale bars), one colour per tokenizer."""
    names = [n for n, s in summary.items() if s.get("script_allocation")]
    totals: dict[str, int] = {}
    for n in names:
        for sc, v in summary[n]["script_allocation"].items():
            totals[sc] = max(totals.get(sc, 0), v["tokens"])
    scripts = sorted(totals, key=lambda s: -totals[s])[:top]
    bh, left, w, top_y = 8, 70, 460, 30
    group = bh * max(len(names), 1) + 6
    vmax = math.log10(max(totals.values(), default=10) * 1.2)
    body = [_text(left, 12, "vocabulary entries per script (log scale)", size=12)]
    for e in range(int(vmax) + 1):
        x = left + w * e / vmax
        body += [f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top_y - 6}" y2="{top_y + group * len(scripts)}" '
                 f'stroke="#eee"/>', _text(x, top_y - 8, f"{10 ** e:,}", "middle", 9)]
    for i, sc in enumerate(scripts):
        y0 = top_y + i * group
        body.append(_text(left - 6, y0 + group / 2 + 2, sc, "end", 10))
        for j, n in enumerate(names):
            v = summary[n]["script_allocation"].get(sc, {}).get("tokens", 0)
            bw = w * math.log10(v) / vmax if v > 1 else (2 if v == 1 else 0)
            body.append(f'<rect x="{left}" y="{y0 + j * bh}" width="{bw:.1f}" height="{bh - 1}" '
                        f'fill="{PALETTE[j % len(PALETTE)]}"><title>{E(n)} · {sc}: {v:,} entries</title></rect>')
    legend = [_text(left + w + 20, top_y + 14 * j + 8, n, extra=f'fill="{PALETTE[j % len(PALETTE)]}"')
              for j, n in enumerate(names)]
    return _svg("allocation", left + w + 160, top_y + group * len(scripts) + 10, body + legend,
                "per-script allocation")


def _table(headers: list[str], rows: list[list[Any]], cls: str) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return "–" if v is None else E(str(v))

    head = "".join(f"<th>{E(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _ci(s: dict[str, Any], k: str) -> str:
    v, lo, hi = s.get(k), s.get(f"{k}_lo"), s.get(f"{k}_hi")
    if v is None:
        return "–"
    return f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else f"{v:.3f}"


SUMMARY_COLS = [("tokens", "tokens"), ("median_parity", "median parity"), ("max_parity", "max parity"),
                ("gini", "Gini"), ("langs_over_3x", "langs ≥3×"), ("bytes_per_token", "bytes/token"),
                ("fertility", "fertility"), ("continued_words", "PCW"), ("byte_fallback_tokens", "fallback tok"),
                ("byte_fallback_chars", "fallback chars"), ("renyi_efficiency", "Rényi eff."),
                ("utilisation", "utilisation"), ("greedy_gap", "greedy gap"), ("variant_share", "variants")]
LANG_COLS = ["key", "name", "script", "tokens", "parity", "fertility", "continued_words", "bytes_per_token",
             "byte_fallback_tokens", "byte_fallback_chars", "greedy_gap"]

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:12px;margin:8px 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.scroll{max-height:640px;overflow:auto;border:1px solid #eee}.wide{overflow-x:auto}
#js-errors{color:#c00}.note{color:#555;font-size:12px}"""
HEAD_JS = """window.addEventListener('error',function(e){var b=document.body;
var n=+(b&&b.dataset.errors||0)+1;if(b){b.dataset.errors=String(n);}
var p=document.getElementById('js-errors');if(p){p.textContent+=String(e.message)+'\\n';}});"""
CHECK_JS = """(function(){var svgs=document.querySelectorAll('svg[data-plot]'),bad=[];
svgs.forEach(function(s){var box=s.getBBox();if(!s.querySelector('rect,circle,line')||box.width<=0||box.height<=0){
bad.push(s.getAttribute('data-plot'));}});var b=document.body;b.dataset.plots=String(svgs.length);
b.dataset.plotsOk=String(svgs.length-bad.length);b.dataset.tables=String(document.querySelectorAll('table').length);
b.dataset.errors=b.dataset.errors||'0';b.dataset.check=bad.length?'fail:'+bad.join(','):'ok';})();"""


def render_html(report: dict[str, Any]) -> str:
    """The whole report as one HTML string."""
    summary, langs = report["summary"], report["languages"]
    names = list(summary)
    corpus = report["corpus"]
    ref = corpus.get("reference")
    key = "parity" if ref else "bytes_per_token"
    parts = [f"<h1>Tokenization audit</h1><p class='note'>corpus {E(str(corpus['source']))} ({corpus['kind']}, "
             f"{corpus['languages']} languages, units: {E(corpus['unit'])}s); reference {E(str(ref))}; intervals: "
             "bootstrap over units. Definitions: docs/metrics.md.</p>"]
    parts.append("<h2>Summary</h2>" + _table(["tokenizer"] + [h for _, h in SUMMARY_COLS], [
        [n] + [_ci(s, k) if k in ("median_parity", "max_parity", "gini") else s.get(k) for k, _ in SUMMARY_COLS]
        for n, s in summary.items()], "summary"))
    if report.get("failures"):
        parts.append("<p><b>Failed thresholds:</b> " + E("; ".join(report["failures"])) + "</p>")
    parts.append(f"<h2>Per-language {key}</h2>")
    for i, n in enumerate(names):
        parts.append("<div class='wide'>" + parity_bars(n, [r for r in langs if r["tokenizer"] == n],
                                                        PALETTE[i % len(PALETTE)], key) + "</div>")
    if ref:
        parts.append("<h2>Parity against English cost</h2>" + pareto(summary, langs, ref))
    parts.append("<h2>Per-language heatmap</h2><div class='scroll'>" + heatmap(names, langs, key) + "</div>")
    if any(s.get("script_allocation") for s in summary.values()):
        parts.append("<h2>Vocabulary allocation per script</h2>" + allocation(summary))
    for c in report.get("comparisons", []):
        parts.append(f"<h2>Paired comparison: {E(c['a'])} vs {E(c['b'])}</h2><p>geometric-mean token ratio "
                     f"{c['geomean_ratio']}, median {c['median_ratio']}; significantly fewer tokens in "
                     f"{c['langs_a_fewer']} languages, more in {c['langs_a_more']}.</p>")
    diff = report.get("vocab_diff")
    if diff:
        parts.append(_diff_section(diff, langs))
    parts.append("<h2>Languages</h2><div class='scroll'>" + _table(["tokenizer"] + LANG_COLS, [
        [r["tokenizer"]] + [r.get(c) for c in LANG_COLS] for r in langs], "languages") + "</div>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Tokenization audit</title>"
            f"<style>{CSS}</style><script>{HEAD_JS}</script></head><body data-check='pending'>"
            + "".join(parts) + f"<pre id='js-errors'></pre><script>{CHECK_JS}</script></body></html>")


def _diff_section(diff: dict[str, Any], langs: list[dict[str, Any]]) -> str:
    names = {r["key"]: r["name"] for r in langs}
    effect = [{"key": e["key"], "name": names.get(e["key"], e["key"]), "ratio": e["ratio"]}
              for e in diff["effect"] if e["ratio"] is not None]
    out = [f"<h2>Vocabulary diff: {E(diff['b'])} vs {E(diff['a'])}</h2><p>{diff['added']:,} tokens added, "
           f"{diff['removed']:,} removed. Added per script: "
           + E(", ".join(f"{k} {v}" for k, v in list(diff["added_by_script"].items())[:12])) + ". Removed per script: "
           + E(", ".join(f"{k} {v}" for k, v in list(diff["removed_by_script"].items())[:12])) + ".</p>"]
    out.append("<div class='wide'>" + parity_bars(f"{diff['b']} ÷ {diff['a']} tokens", effect, PALETTE[2], "ratio")
               + "</div>")
    def tokens(rows: list[dict[str, Any]]) -> str:
        return _table(["token", "id", "uses", "script"], [[repr(t["token"]), t["id"], t["uses"], t["script"]]
                                                          for t in rows], "diff")

    out.append(f"<div style='display:flex;gap:24px'><div><h3>most used added</h3>{tokens(diff['top_added'])}</div>"
               f"<div><h3>most used removed</h3>{tokens(diff['top_removed'])}</div></div>")
    return "".join(out)
