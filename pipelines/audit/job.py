"""The audit job: tokenization efficiency per language and per tokenizer, with bootstrap intervals.

``run(AuditConfig(...))`` encodes every unit (article, sentence or document) of every language with every
tokenizer, sums the additive :class:`~rwkv_data.pipelines.audit.metrics.TextCounts`, and writes to ``out_dir``:
``summary.json`` (everything), ``languages.csv`` (one row per tokenizer and language), ``dead_tokens.json``,
``report.html`` (audit_report.py), ``config.json`` and ``stats.json``. ``--fail-if "max_parity>2.5"``
conditions turn the result into an exit code for CI.

Intervals resample units with replacement; on parallel text one resample is shared by every language and
tokenizer, so parity and the paired comparison keep the alignment.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.atomic import atomic_write, atomic_write_json
from rwkv_data.config import AuditConfig, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.audit import metrics as M
from rwkv_data.pipelines.audit.adapters import TokenizerAdapter, load_tokenizer
from rwkv_data.pipelines.audit.corpus import AuditCorpus, load_corpus, load_mono

log = logging.getLogger(__name__)
CI_METRICS = {  # per-language metrics with intervals: name -> (numerator field, denominator field)
    "bytes_per_token": ("bytes", "tokens"), "fertility": ("word_tokens", "words"),
    "byte_fallback_tokens": ("fallback_tokens", "tokens"),
}
_F = {name: i for i, name in enumerate(M.FIELDS)}


@dataclass
class TokenizerRun:
    """Per-unit counts ([units, fields] per language) and token histograms of one tokenizer."""

    adapter: TokenizerAdapter
    counts: list[np.ndarray] = field(default_factory=list)
    used: list[int] = field(default_factory=list)  # distinct ids per language
    renyi: list[float] = field(default_factory=list)
    pooled: np.ndarray | None = None
    seconds: float = 0.0


@dataclass
class AuditResult:
    """What ``run`` returns: the JSON-ready report, the terminal table and the failed thresholds."""

    report: dict[str, Any]
    table: str
    failures: list[str]
    out_dir: Path


def measure(adapter: TokenizerAdapter, corpus: AuditCorpus, alpha: float, vocab_size: int, gap: bool
            ) -> TokenizerRun:
    """Encode every unit of every language and collect the additive counts."""
    t0 = time.perf_counter()
    trie = M.VocabTrie(adapter.tokens.values()) if gap and adapter.greedy and adapter.kind != "bytes" else None
    size = len(adapter.fallback)
    run = TokenizerRun(adapter, pooled=np.zeros(size, dtype=np.int64))
    for lt in corpus.langs:
        rows, hist = [], np.zeros(size, dtype=np.int64)
        for text, (ids, ends) in zip(lt.units, adapter.encode_with_ends(lt.units), strict=True):
            if adapter.kind == "bytes":
                best = len(ids)
            else:
                best = trie.min_tokens(text.encode("utf-8")) if trie else 0
            c = M.text_counts(text, ends, adapter.fallback[ids], min_tokens=best)
            rows.append(list(c.__dict__.values()))
            if ids.size:
                hist += np.bincount(ids, minlength=size)[:size]
        run.counts.append(np.asarray(rows, dtype=np.int64).reshape(-1, len(M.FIELDS)))
        run.used.append(int((hist > 0).sum()))
        run.renyi.append(M.renyi_efficiency(hist, vocab_size or adapter.vocab_size, alpha))
        run.pooled += hist
    run.seconds = time.perf_counter() - t0
    return run


def _weights(corpus: AuditCorpus, cfg: AuditConfig) -> list[np.ndarray]:
    """Resampling weights per language: one shared matrix on parallel text, independent ones otherwise."""
    rng = np.random.default_rng(cfg.seed)
    if corpus.kind == "parallel":
        w = M.bootstrap_weights(len(corpus.langs[0].units) if corpus.langs else 0, cfg.bootstrap, rng)
        return [w] * len(corpus.langs)
    return [M.bootstrap_weights(len(lt.units), cfg.bootstrap, rng) for lt in corpus.langs]


def _f(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def analyse(runs: list[TokenizerRun], corpus: AuditCorpus, cfg: AuditConfig) -> dict[str, Any]:
    """Per-language rows, per-tokenizer summaries, paired comparisons and the vocabulary diff."""
    weights = _weights(corpus, cfg)
    ref = corpus.find(cfg.reference) if corpus.kind == "parallel" else None
    if corpus.kind == "parallel" and ref is None:
        raise ConfigError(f"reference language {cfg.reference!r} is not in {corpus.source}; pass --reference "
                          f"with one of {[lt.key for lt in corpus.langs[:12]]} ...")
    ri = corpus.langs.index(ref) if ref else -1
    rows: list[dict[str, Any]] = []
    summaries: dict[str, dict[str, Any]] = {}
    for run in runs:
        a = run.adapter
        tok = [c[:, _F["tokens"]] for c in run.counts]
        cost_samples = []  # per-language cost under each resample, for the Gini interval
        lang_rows = []
        for li, (lt, c) in enumerate(zip(corpus.langs, run.counts, strict=True)):
            s = M.TextCounts(*c.sum(axis=0).tolist())
            w = weights[li]
            row: dict[str, Any] = {
                "tokenizer": a.name, "key": lt.key, "lang": lt.lang, "script": lt.script, "name": lt.name,
                "units": len(c), "tokens": s.tokens, "bytes": s.bytes, "chars": s.chars, "words": s.words,
                "bytes_per_token": _f(M.bytes_per_token(s)), "chars_per_token": _f(M.chars_per_token(s)),
                "fertility": _f(M.fertility(s)), "continued_words": _f(M.continued_words(s)),
                "byte_fallback_tokens": _f(M.byte_fallback_share(s)), "byte_fallback_chars": _f(M.split_char_share(s)),
                "renyi_efficiency": _f(run.renyi[li]), "utilisation": _f(run.used[li] / a.n_entries),
                "greedy_gap": _f(s.tokens / s.min_tokens - 1) if s.min_tokens else None,
                "parity": None, "parity_lo": None, "parity_hi": None,
            }
            for name, (num, den) in CI_METRICS.items():
                lo, hi = M.ratio_ci(c[:, _F[num]], c[:, _F[den]], w, cfg.confidence)
                row[f"{name}_lo"], row[f"{name}_hi"] = _f(lo), _f(hi)
            if ref is not None:
                row["parity"] = _f(M.parity({"x": s.tokens, "r": int(tok[ri].sum())}, "r")["x"])
                lo, hi = M.ratio_ci(tok[li], tok[ri], w, cfg.confidence)
                row["parity_lo"], row["parity_hi"] = _f(lo), _f(hi)
                cost_samples.append(w @ tok[li])
            else:
                cost_samples.append((w @ tok[li]) / np.maximum(w @ c[:, _F["bytes"]], 1))
            lang_rows.append(row)
        rows += lang_rows
        summaries[a.name] = _summary(run, corpus, lang_rows, np.stack(cost_samples, axis=1) if cost_samples else None,
                                     ri, cfg)
    report: dict[str, Any] = {
        "corpus": {"source": corpus.source, "kind": corpus.kind, "unit": corpus.unit, "languages": len(corpus.langs),
                   "reference": ref.key if ref else None, **(corpus.read or {})},
        "tokenizers": [r.adapter.describe() for r in runs], "summary": summaries, "languages": rows,
        "comparisons": [_compare(runs[0], r, corpus, weights, cfg) for r in runs[1:]],
        "vocab_diff": _vocab_diff(runs, corpus),
    }
    return report


def _summary(run: TokenizerRun, corpus: AuditCorpus, rows: list[dict[str, Any]], costs: np.ndarray | None,
             ri: int, cfg: AuditConfig) -> dict[str, Any]:
    a = run.adapter
    total = M.TextCounts(*np.concatenate(run.counts).sum(axis=0).tolist()) if run.counts else M.TextCounts()
    par = {r["key"]: r["parity"] for r in rows if r["parity"] is not None}
    worst = max(par, key=par.__getitem__) if par else None
    fb_tok = {r["key"]: r["byte_fallback_tokens"] or 0.0 for r in rows}
    fb_chr = {r["key"]: r["byte_fallback_chars"] or 0.0 for r in rows}
    gaps = {r["key"]: r["greedy_gap"] for r in rows if r["greedy_gap"] is not None}
    vals = np.array(list(par.values())) if par else np.array([])
    s: dict[str, Any] = {
        "tokens": total.tokens, "vocab_size": cfg.vocab_size or a.vocab_size, "entries": a.n_entries,
        "bytes_per_token": _f(M.bytes_per_token(total)), "chars_per_token": _f(M.chars_per_token(total)),
        "fertility": _f(M.fertility(total)), "continued_words": _f(M.continued_words(total)),
        "median_parity": _f(float(np.median(vals))) if par else None,
        "mean_parity": _f(float(vals.mean())) if par else None,
        "max_parity": _f(par[worst]) if worst else None, "max_parity_lang": worst,
        "langs_over_3x": int((vals >= 3).sum()) if par else None,
        "gini": _f(M.gini(vals) if par else M.gini(r["tokens"] / max(r["bytes"], 1) for r in rows)),
        "byte_fallback_tokens": _f(M.byte_fallback_share(total)), "byte_fallback_chars": _f(M.split_char_share(total)),
        "max_byte_fallback_tokens": _f(max(fb_tok.values(), default=0.0)),
        "max_byte_fallback_tokens_lang": max(fb_tok, key=fb_tok.__getitem__) if fb_tok else None,
        "max_byte_fallback_chars": _f(max(fb_chr.values(), default=0.0)),
        "renyi_efficiency": _f(M.renyi_efficiency(run.pooled, cfg.vocab_size or a.vocab_size, cfg.alpha)),
        "utilisation": _f(int((run.pooled > 0).sum()) / a.n_entries),
        "dead_tokens": len(M.dead_tokens(np.flatnonzero(run.pooled).tolist(), (a.tokens or {}).keys())),
        "greedy_gap": _f(total.tokens / total.min_tokens - 1) if total.min_tokens else None,
        "max_greedy_gap": _f(max(gaps.values())) if gaps else None,
        "encode_seconds": round(run.seconds, 3),
    }
    if costs is not None and costs.size and min(len(u) for u in run.counts) >= M.MIN_UNITS:  # else no honest CI
        s["gini_lo"], s["gini_hi"] = map(_f, M.interval(M.gini_rows(costs), cfg.confidence))
        if ri >= 0:
            p = costs / costs[:, [ri]]
            s["median_parity_lo"], s["median_parity_hi"] = map(_f, M.interval(np.median(p, axis=1), cfg.confidence))
            s["max_parity_lo"], s["max_parity_hi"] = map(_f, M.interval(p.max(axis=1), cfg.confidence))
    if a.tokens:
        s["variants"] = M.variant_share(a.tokens)
        s["variant_share"] = _f(s["variants"]["share"])
        s["script_allocation"] = M.script_allocation(a.tokens)
    return s


def _compare(base: TokenizerRun, other: TokenizerRun, corpus: AuditCorpus, weights: list[np.ndarray],
             cfg: AuditConfig) -> dict[str, Any]:
    """Paired comparison other / base: per-language token ratio with interval and p-value."""
    per_lang = []
    for li, lt in enumerate(corpus.langs):
        ta, tb = other.counts[li][:, _F["tokens"]], base.counts[li][:, _F["tokens"]]
        per_lang.append({"key": lt.key, **{k: _f(v) for k, v in M.paired_comparison(ta, tb, weights[li],
                                                                                      cfg.confidence).items()}})
    ratios = np.array([r["ratio"] for r in per_lang if r["ratio"] is not None])
    sig = [r for r in per_lang if r["p_value"] is not None and r["p_value"] < 1 - cfg.confidence]
    return {"a": other.adapter.name, "b": base.adapter.name, "what": "tokens(a) / tokens(b) per language",
            "geomean_ratio": _f(float(np.exp(np.log(ratios).mean()))) if ratios.size else None,
            "median_ratio": _f(float(np.median(ratios))) if ratios.size else None,
            "langs_a_fewer": sum(1 for r in sig if r["ratio"] < 1),
            "langs_a_more": sum(1 for r in sig if r["ratio"] > 1), "languages": per_lang}


def _vocab_diff(runs: list[TokenizerRun], corpus: AuditCorpus, show: int = 40) -> dict[str, Any] | None:
    """Tokens added and removed between the first two tokenizers that have byte vocabularies."""
    vs = [r for r in runs if r.adapter.tokens and r.adapter.kind != "bytes"][:2]
    if len(vs) < 2:
        return None
    (ra, a), (rb, b) = ((r, {v: k for k, v in r.adapter.tokens.items()}) for r in vs)
    added, removed = set(b) - set(a), set(a) - set(b)

    def top(run: TokenizerRun, inv: dict[bytes, int], toks: set[bytes]) -> list[dict[str, Any]]:
        used = sorted(toks, key=lambda t: -int(run.pooled[inv[t]]))[:show]
        return [{"token": t.decode("utf-8", "backslashreplace"), "id": inv[t], "uses": int(run.pooled[inv[t]]),
                 "script": M.token_category(t)} for t in used]

    def by_script(toks: set[bytes]) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in toks:
            out[M.token_category(t)] = out.get(M.token_category(t), 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    tok = _F["tokens"]
    effect = [{"key": lt.key, "ratio": _f(rb.counts[i][:, tok].sum() / max(ra.counts[i][:, tok].sum(), 1))}
              for i, lt in enumerate(corpus.langs)]
    return {"a": ra.adapter.name, "b": rb.adapter.name, "added": len(added), "removed": len(removed),
            "added_by_script": by_script(added), "removed_by_script": by_script(removed),
            "top_added": top(rb, b, added), "top_removed": top(ra, a, removed), "effect": effect}


# ---- thresholds, table, files ------------------------------------------------------------------------------

_COND = re.compile(r"^\s*(?:(?P<tok>[^:<>=!]+):)?(?P<metric>\w+)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<val>[-+.\deE]+)\s*$")
_OPS = {">": np.greater, "<": np.less, ">=": np.greater_equal, "<=": np.less_equal, "==": np.equal,
        "!=": np.not_equal}


def check_thresholds(conditions: tuple[str, ...] | list[str], summaries: dict[str, dict[str, Any]]) -> list[str]:
    """Conditions that hold (``[tokenizer:]metric op value``); each is a failure. A missing value fails too."""
    failures = []
    for cond in conditions:
        m = _COND.match(cond)
        if not m:
            raise ConfigError(f"--fail-if {cond!r}: expected [tokenizer:]metric<op>value, e.g. 'max_parity>2.5'")
        names = [m["tok"].strip()] if m["tok"] else list(summaries)
        for name in names:
            if name not in summaries:
                raise ConfigError(f"--fail-if {cond!r}: no tokenizer {name!r}; have {sorted(summaries)}")
            s = summaries[name]
            if m["metric"] not in s:
                valid = sorted(k for k, v in s.items() if isinstance(v, int | float) or v is None)
                raise ConfigError(f"--fail-if {cond!r}: unknown metric {m['metric']!r}; one of {valid}")
            v = s[m["metric"]]
            if v is None:
                failures.append(f"{name}: {m['metric']} is not available on this corpus ({cond})")
            elif _OPS[m["op"]](float(v), float(m["val"])):
                failures.append(f"{name}: {m['metric']} = {v:.4g} {m['op']} {m['val']}")
    return failures


def _fmt(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec) if isinstance(v, float) else str(v)


def render_table(report: dict[str, Any], worst: int = 5) -> str:
    """The terminal table: one line per tokenizer, then its worst languages by parity (or bytes/token)."""
    cols = [("tokenizer", 14), ("tokens", 10), ("med.par", 8), ("max.par", 8), ("gini", 6), ("B/tok", 6),
            ("fert", 6), ("PCW", 6), ("fb.tok", 6), ("fb.chr", 6), ("renyi", 6), ("util", 6), ("gap", 7)]
    keys = ["tokens", "median_parity", "max_parity", "gini", "bytes_per_token", "fertility", "continued_words",
            "byte_fallback_tokens", "byte_fallback_chars", "renyi_efficiency", "utilisation", "greedy_gap"]
    lines = ["  ".join(f"{c:>{w}}" if i else f"{c:<{w}}" for i, (c, w) in enumerate(cols))]
    for name, s in report["summary"].items():
        vals = [_fmt(s[k], ".4f" if k == "greedy_gap" else ".3f") for k in keys]
        lines.append("  ".join([f"{name[:14]:<14}"] + [f"{v:>{w}}" for v, (_, w) in zip(vals, cols[1:], strict=True)]))
    key = "parity" if report["corpus"]["reference"] else "bytes_per_token"
    for name in report["summary"]:
        rows = [r for r in report["languages"] if r["tokenizer"] == name and r[key] is not None]
        rows.sort(key=lambda r: r[key], reverse=key == "parity")
        shown = ", ".join(f"{r['key']} {r[key]:.2f}" for r in rows[:worst])
        lines.append(f"{name}: worst {key}: {shown}")
    return "\n".join(lines)


CSV_COLUMNS = ["tokenizer", "key", "lang", "script", "name", "units", "tokens", "bytes", "chars", "words",
               "parity", "parity_lo", "parity_hi", "bytes_per_token", "bytes_per_token_lo", "bytes_per_token_hi",
               "chars_per_token", "fertility", "fertility_lo", "fertility_hi", "continued_words",
               "byte_fallback_tokens", "byte_fallback_tokens_lo", "byte_fallback_tokens_hi", "byte_fallback_chars",
               "renyi_efficiency", "utilisation", "greedy_gap"]


def write_outputs(report: dict[str, Any], runs: list[TokenizerRun], cfg: AuditConfig, out: Path) -> None:
    """summary.json, languages.csv, dead_tokens.json, config.json, stats.json and (optionally) report.html."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "summary.json", report, indent=1)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(report["languages"])
    atomic_write(out / "languages.csv", buf.getvalue())
    dead = {r.adapter.name: M.dead_tokens(np.flatnonzero(r.pooled).tolist(), r.adapter.tokens.keys())
            for r in runs if r.adapter.tokens}
    atomic_write_json(out / "dead_tokens.json", dead, indent=None)
    if cfg.html:
        from rwkv_data.pipelines.audit.report import render_html

        atomic_write(out / "report.html", render_html(report))
    atomic_write_json(out / "config.json", to_dict(cfg), indent=1)
    stats = {"languages": report["corpus"]["languages"], "encode_seconds": {r.adapter.name: round(r.seconds, 3)
                                                                             for r in runs}}
    atomic_write_json(out / "stats.json", stats, indent=1)


def _load(cfg: AuditConfig, langs: tuple[str, ...]) -> AuditCorpus:
    """``cfg.corpus`` (parallel, mono folder or flores:), else the documents of the corpus spec's inputs."""
    spec = cfg.corpus_spec()
    if not cfg.corpus and not cfg.inputs:
        raise ConfigError("audit: no corpus; give a corpus file or folder (or flores:devtest)")
    if not cfg.corpus and (len(cfg.inputs) > 1 or not Path(cfg.inputs[0]).exists()):  # several inputs or a glob
        return load_mono(list(cfg.inputs), langs, cfg.max_bytes_per_lang, spec)
    return load_corpus(cfg.corpus or cfg.inputs[0], cfg.layout, langs, cfg.max_bytes_per_lang, spec)


def run(cfg: AuditConfig, corpus: AuditCorpus | None = None, adapters: list[TokenizerAdapter] | None = None
        ) -> AuditResult:
    """Run the audit; ``corpus``/``adapters`` may be given directly (tests, the vocabulary trainer)."""
    if not cfg.tokenizers and not adapters:
        raise ConfigError("audit: name at least one tokenizer (--tokenizer world)")
    t0 = time.perf_counter()
    langs = cfg.langs + (cfg.reference,) if cfg.langs and cfg.reference not in cfg.langs else cfg.langs
    corpus = corpus or _load(cfg, langs)
    if not corpus.langs:
        raise ConfigError(f"audit: no languages selected from {corpus.source} (langs={list(cfg.langs)})")
    adapters = adapters or [load_tokenizer(s, cfg.threads or None) for s in cfg.tokenizers]
    names = [a.name for a in adapters]
    if len(set(names)) != len(names):
        raise ConfigError(f"audit: tokenizer names must differ, got {names}; label them as name=spec")
    log.info("audit: %d languages (%s) x %d tokenizers", len(corpus.langs), corpus.kind, len(adapters))
    runs = [measure(a, corpus, cfg.alpha, cfg.vocab_size, cfg.greedy_gap) for a in adapters]
    report = analyse(runs, corpus, cfg)
    report["failures"] = failures = check_thresholds(cfg.fail_if, report["summary"])
    report["seconds"] = round(time.perf_counter() - t0, 2)
    out = Path(cfg.out_dir)
    write_outputs(report, runs, cfg, out)
    return AuditResult(report, render_table(report), failures, out)
