"""The comparison's outputs: compare.json (everything), compare.csv (one row per budget, variant and language),
a terminal table per budget, and report.html (self-contained, plots as inline SVG, checked the way the audit
report is: an inline script records on ``<body>`` whether every ``<svg data-plot>`` drew something).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.config import CompareConfig
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.audit.report import CHECK_JS, CSS, HEAD_JS, PALETTE, E, _svg, _table, _text, _ticks
from rwkv_data.pipelines.compare import heldout, stats
from rwkv_data.pipelines.run import _write_json
from rwkv_data.pipelines.train.evaluate import CONVENTION, MIN_DOCS, format_ci

BUDGET_TEXT = {"compute": "equal compute: every variant trained the same number of token positions",
               "text": "equal text: every variant trained on the same number of UTF-8 bytes (its own tokens per byte "
                       "sets its steps)"}
VERDICT_COLOR = {"better": "#59a14f", "worse": "#e15759", stats.NO_DIFF: "#777777"}


def _load_scores(path: str, ids: list[str]) -> dict[str, Any]:
    s = json.loads(Path(path).read_text(encoding="utf-8"))
    if s["ids"] != ids:
        raise ConfigError(f"{path}: scored other documents than heldout/heldout.jsonl; --redo the score stages")
    return s


def build(rcfg: Any, held_path: str, variants: Sequence[Any], budgets: dict[str, dict[str, int]],
          scores: dict[str, dict[str, str]], cfg: CompareConfig) -> dict[str, Any]:
    """Everything the report shows, as one JSON-ready dict."""
    held = heldout.load(held_path)
    ids = [d["id"] for d in held]
    langs = [d["lang"] for d in held]
    nbytes = np.array([len(d["text"].encode("utf-8")) for d in held], np.float64)
    seeds = list(cfg.seeds)
    out: dict[str, Any] = {
        "baseline": rcfg.baseline, "seeds": seeds, "convention": CONVENTION, "confidence": rcfg.confidence,
        "bootstrap": rcfg.bootstrap,
        "heldout": {"documents": len(held), "bytes": int(nbytes.sum()),
                    "per_language": {g: langs.count(g) for g in sorted(set(langs))}},
        "model": {k: getattr(cfg.train, k) for k in ("n_layer", "n_embd", "head_size", "ctx_len", "micro_bsz")},
        "variants": [{"name": v.spec.name, "tokenizer": v.spec.tokenizer, "init": v.spec.init,
                      "extend_lang": v.spec.extend_lang, "replay_share": v.spec.replay_share,
                      "train_tokens_per_byte": v.tokens_per_byte} for v in variants],
        "budgets": {}}
    for b in rcfg.budgets:
        bits: dict[str, list[np.ndarray]] = {}
        toks: dict[str, np.ndarray] = {}
        for v in variants:
            n = v.spec.name
            runs = [_load_scores(scores[n][f"{budgets[b][n]}-{s}"], ids) for s in seeds]
            bits[n] = [np.array(r["bits"]) for r in runs]
            toks[n] = np.array(runs[0]["tokens"], np.float64)
        table = {"budget": b, "what": BUDGET_TEXT[b], "train_tokens": dict(budgets[b]),
                 "train_bytes": {v.spec.name: round(budgets[b][v.spec.name] / v.tokens_per_byte) for v in variants},
                 "variants": {}, "differences": {}, "verdicts": {}}
        for v in variants:
            n = v.spec.name
            table["variants"][n] = stats.variant_rows(langs, nbytes, bits[n], toks[n], rcfg.bootstrap,
                                                      rcfg.confidence, rcfg.seed)
            if n != rcfg.baseline:
                d = stats.differences(langs, nbytes, bits[n], bits[rcfg.baseline], rcfg.bootstrap, rcfg.confidence,
                                      rcfg.seed)
                table["differences"][n] = d
                table["verdicts"][n] = stats.verdict_counts(d)
        out["budgets"][b] = table
    return out


def _ci(lo: float | None, hi: float | None, few: bool, spec: str = ".3f") -> str:
    return format_ci(lo, hi, 0 if few else MIN_DOCS, spec)


def _f(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_tables(result: dict[str, Any]) -> str:
    """One table per budget: bpb per language and variant (interval, seed range), then Δ against the baseline."""
    lines: list[str] = []
    base = result["baseline"]
    pct = f"{result['confidence']:.0%}"
    for b, t in result["budgets"].items():
        names = list(t["variants"])
        trained = ", ".join(f"{n} {t['train_tokens'][n]:,} tokens ~ {t['train_bytes'][n]:,} bytes" for n in names)
        lines += [f"== {b}: {t['what']} ({trained}); seeds {result['seeds']}", ""]
        head = f"{'lang':<8} {'docs':>4}" + "".join(f" {n[:10] + ' bpb':>14} {pct + ' CI':>15}" for n in names)
        lines += [head, "-" * len(head)]
        for i, r0 in enumerate(t["variants"][base]):
            cells = ""
            for n in names:
                r = t["variants"][n][i]
                cells += f" {_f(r['bpb']):>14} {_ci(r['bpb_lo'], r['bpb_hi'], r['few_docs']):>15}"
            lines.append(f"{r0['lang']:<8} {r0['docs']:>4}{cells}")
        if len(result["seeds"]) > 1:
            lines.append("seed range (min..max of the per-seed bpb): " + "; ".join(
                f"{n} all {t['variants'][n][-1]['seed_min']:.3f}..{t['variants'][n][-1]['seed_max']:.3f}"
                for n in names))
        for n, diffs in t["differences"].items():
            lines += ["", f"{n} - {base} (Δ bits per byte; negative = {n} better), paired bootstrap over documents"]
            head = f"{'lang':<8} {'Δbpb':>8} {pct + ' CI':>19} {'rel':>7}  verdict"
            lines += [head, "-" * len(head)]
            for d in diffs:
                ci = _ci(d["delta_lo"], d["delta_hi"], d["few_docs"], "+.3f")
                lines.append(f"{d['lang']:<8} {d['delta_bpb']:>+8.3f} {ci:>19} {d['relative']:>+7.1%}  {d['verdict']}")
            c = t["verdicts"][n]
            lines.append(f"{n}: better in {c['better']}, worse in {c['worse']}, no detectable difference in "
                         f"{c[stats.NO_DIFF]} languages")
        lines.append("")
    return "\n".join(lines)


def _rows_csv(result: dict[str, Any]) -> str:
    buf = io.StringIO()
    cols = ["budget", "variant", "lang", "docs", "train_tokens", "train_bytes", "tokens_per_byte", "bpb", "bpb_lo",
            "bpb_hi", "seed_min", "seed_max", "seed_sd", "delta_bpb", "delta_lo", "delta_hi", "verdict"]
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    for b, t in result["budgets"].items():
        for n, rows in t["variants"].items():
            diffs = {d["lang"]: d for d in t["differences"].get(n, [])}
            for r in rows:
                w.writerow({"budget": b, "variant": n, "train_tokens": t["train_tokens"][n],
                            "train_bytes": t["train_bytes"][n], **r, **diffs.get(r["lang"], {})})
    return buf.getvalue()


def write(result: dict[str, Any], folder: Path) -> dict[str, str]:
    """compare.json, compare.csv, report.html and table.txt in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    result = {**result, "table": format_tables(result)}
    files = {"json": folder / "compare.json", "csv": folder / "compare.csv", "html": folder / "report.html",
             "table": folder / "table.txt"}
    _write_json(files["json"], result)
    for key, text in (("csv", _rows_csv(result)), ("html", render_html(result)), ("table", result["table"])):
        tmp = files[key].with_name(f".{files[key].name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(files[key])
    return {k: str(v) for k, v in files.items()}


# ---- plots --------------------------------------------------------------------------------------------------


def bpb_plot(t: dict[str, Any]) -> str:
    """bpb per language (x) and variant (colour), each with its interval (none with n < 10)."""
    names = list(t["variants"])
    langs = [r["lang"] for r in t["variants"][names[0]]]
    left, top, h, slot = 50, 30, 240, max(18, 8 * len(names) + 6)
    width = max(560, left + 20 + slot * len(langs) + 140)
    vmax = max(max(r["bpb_hi"] or r["bpb"], r["bpb"]) for n in names for r in t["variants"][n]) * 1.08
    y = lambda v: top + h - h * v / vmax  # noqa: E731
    body = [f'<line x1="{left}" y1="{top + h}" x2="{width - 140}" y2="{top + h}" stroke="#999"/>']
    for v in _ticks(vmax):
        body += [f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - 140}" y2="{y(v):.1f}" stroke="#eee"/>',
                 _text(left - 4, y(v) + 4, f"{v:g}", "end", 10)]
    for i, lang in enumerate(langs):
        x0 = left + 10 + slot * i
        body.append(_text(x0 + slot / 2, top + h + 12, lang, "middle", 9,
                          f'transform="rotate(45 {x0 + slot / 2:.1f} {top + h + 12})"'))
        for j, n in enumerate(names):
            r, c = t["variants"][n][i], PALETTE[j % len(PALETTE)]
            x = x0 + 4 + 8 * j
            if r["bpb_lo"] is not None:
                body.append(f'<line x1="{x}" y1="{y(r["bpb_lo"]):.1f}" x2="{x}" y2="{y(r["bpb_hi"]):.1f}" '
                            f'stroke="{c}" stroke-width="1.5"/>')
            body.append(f'<circle cx="{x}" cy="{y(r["bpb"]):.1f}" r="3" fill="{c}"><title>{E(n)} {E(lang)} '
                        f'{r["bpb"]:.3f}</title></circle>')
    body += [_text(width - 130, top + 14 * j + 8, n, extra=f'fill="{PALETTE[j % len(PALETTE)]}"')
             for j, n in enumerate(names)]
    body.append(_text(10, 16, "bits per byte (lower is better); bars: interval, none where n < 10", size=12))
    return _svg(f"bpb-{t['budget']}", width, top + h + 50, body, f"bpb per language, {t['budget']}")


def forest_plot(t: dict[str, Any]) -> str:
    """Δbpb against the baseline per language, one row per (language, variant), with the zero line."""
    rows = [(n, d) for n, ds in t["differences"].items() for d in ds]
    left, top, rh, w = 150, 30, 14, 420
    ext = max([abs(v) for _, d in rows for v in (d["delta_bpb"], d["delta_lo"] or 0, d["delta_hi"] or 0)] + [1e-3])
    x = lambda v: left + w / 2 + (w / 2) * v / (ext * 1.05)  # noqa: E731
    body = [f'<line x1="{x(0):.1f}" y1="{top - 6}" x2="{x(0):.1f}" y2="{top + rh * len(rows)}" stroke="#333"/>',
            _text(10, 16, "Δ bits per byte vs the baseline (left of 0: better); grey: no detectable difference",
                  size=12)]
    for i, (n, d) in enumerate(rows):
        yy = top + rh * i + rh / 2
        c = VERDICT_COLOR[d["verdict"]]
        body.append(_text(left - 6, yy + 4, f"{n} {d['lang']}", "end", 10))
        if d["delta_lo"] is not None:
            body.append(f'<line x1="{x(d["delta_lo"]):.1f}" y1="{yy:.1f}" x2="{x(d["delta_hi"]):.1f}" y2="{yy:.1f}" '
                        f'stroke="{c}" stroke-width="2"/>')
        body.append(f'<rect x="{x(d["delta_bpb"]) - 3:.1f}" y="{yy - 3:.1f}" width="6" height="6" fill="{c}">'
                    f'<title>{E(n)} {E(d["lang"])} {d["delta_bpb"]:+.3f} {E(d["verdict"])}</title></rect>')
    for v in (-ext, 0.0, ext):
        body.append(_text(x(v), top + rh * len(rows) + 14, f"{v:+.2f}", "middle", 10))
    return _svg(f"forest-{t['budget']}", max(620, left + w + 40), top + rh * len(rows) + 24, body,
                f"differences, {t['budget']}")


def scatter_plot(t: dict[str, Any]) -> str:
    """Tokens per byte (x) against bpb (y): one point per language and variant."""
    names = list(t["variants"])
    pts = [(j, r) for j, n in enumerate(names) for r in t["variants"][n] if r["lang"] != "all"]
    left, top, w, h = 50, 30, 420, 260
    xmax = max(r["tokens_per_byte"] for _, r in pts) * 1.08
    ymax = max(r["bpb"] for _, r in pts) * 1.08
    x = lambda v: left + w * v / xmax  # noqa: E731
    y = lambda v: top + h - h * v / ymax  # noqa: E731
    body = [f'<line x1="{left}" y1="{top + h}" x2="{left + w}" y2="{top + h}" stroke="#999"/>',
            f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + h}" stroke="#999"/>',
            _text(left, 16, "tokens per byte (x) against bits per byte (y), per language", size=12),
            _text(left + w / 2, top + h + 30, "tokens per byte", "middle", 10)]
    body += [_text(x(v), top + h + 14, f"{v:g}", "middle", 10) for v in _ticks(xmax)]
    body += [_text(left - 4, y(v) + 4, f"{v:g}", "end", 10) for v in _ticks(ymax)]
    for j, r in pts:
        body.append(f'<circle cx="{x(r["tokens_per_byte"]):.1f}" cy="{y(r["bpb"]):.1f}" r="3.5" '
                    f'fill="{PALETTE[j % len(PALETTE)]}" fill-opacity="0.8"><title>{E(names[j])} {E(r["lang"])}: '
                    f'{r["tokens_per_byte"]:.3f} tok/B, {r["bpb"]:.3f} bpb</title></circle>')
    body += [_text(left + w + 10, top + 14 * j + 8, n, extra=f'fill="{PALETTE[j % len(PALETTE)]}"')
             for j, n in enumerate(names)]
    return _svg(f"scatter-{t['budget']}", left + w + 120, top + h + 40, body, f"tokens per byte vs bpb, {t['budget']}")


def render_html(result: dict[str, Any]) -> str:
    """The whole report as one HTML string (no network)."""
    h = result["heldout"]
    parts = [f"<h1>Tokenizer comparison</h1><p class='note'>baseline {E(result['baseline'])}; held-out: "
             f"{h['documents']} documents, {h['bytes']:,} bytes, chosen by content (the same for every variant); "
             f"model {E(json.dumps(result['model']))}; seeds {result['seeds']}; intervals: paired percentile "
             f"bootstrap over documents ({result['bootstrap']} resamples, {result['confidence']:.0%}), stratified "
             "by language for 'all', none where a language has fewer than 10 documents. Definitions: "
             "docs/compare.md.</p>"]
    for b, t in result["budgets"].items():
        parts.append(f"<h2>{E(b)}: {E(t['what'])}</h2>")
        parts.append(_table(["variant", "train tokens", "train bytes"], [
            [n, t["train_tokens"][n], t["train_bytes"][n]] for n in t["variants"]], "budget"))
        parts.append("<div class='wide'>" + bpb_plot(t) + "</div>")
        if t["differences"]:
            parts.append("<div class='wide'>" + forest_plot(t) + "</div>")
        parts.append("<div class='wide'>" + scatter_plot(t) + "</div>")
        names = list(t["variants"])
        rows = []
        for i, r0 in enumerate(t["variants"][names[0]]):
            row: list[Any] = [r0["lang"], r0["docs"]]
            for n in names:
                r = t["variants"][n][i]
                row.append(f"{r['bpb']:.3f} {_ci(r['bpb_lo'], r['bpb_hi'], r['few_docs'])}")
            for ds in t["differences"].values():
                d = ds[i]
                row.append(f"{d['delta_bpb']:+.3f} {_ci(d['delta_lo'], d['delta_hi'], d['few_docs'], '+.3f')} "
                           f"{d['verdict']}")
            rows.append(row)
        parts.append("<div class='scroll'>" + _table(["lang", "docs"] + [f"{n} bpb" for n in names] + [
            f"{n} − {result['baseline']}" for n in t["differences"]], rows, "languages") + "</div>")
    parts.append("<h2>Terminal table</h2><pre>" + E(result.get("table", "")) + "</pre>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Tokenizer comparison</title>"
            f"<style>{CSS}</style><script>{HEAD_JS}</script></head><body data-check='pending'>"
            + "".join(parts) + f"<pre id='js-errors'></pre><script>{CHECK_JS}</script></body></html>")


