"""The result of ``rwkv-data run``: the per-language table (held-out bits per byte, bytes per token), each
stage's status and every file written, as a dict (``--json``) and as text for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rwkv_data.demo import LANGUAGE_NAMES
from rwkv_data.jsonfile import read_json
from rwkv_data.pipelines.run_stage import Stage


def _read(path: Path) -> Any:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _untrained(out: Path, train_stats: dict[str, Any], evals: list[dict[str, Any]]) -> dict[str, float]:
    """The step-0 validation bpb of training, per language, where it scored the same documents as evaluate
    (training scores the first ``eval_docs`` of each language, evaluate ``max_docs`` or all of them)."""
    before = next((e["eval"] for e in train_stats.get("evals", []) if e.get("step") == 0), {})
    eval_docs = int((_read(out / "train" / "config.json") or {}).get("eval_docs", 0))
    val = ((_read(out / "shard" / "data_val.meta.json") or {}).get("per_language") or {})
    same = {r["lang"]: r["docs"] == min(val.get(r["lang"], {}).get("documents", -1), eval_docs) for r in evals}
    same["all"] = all(v for k, v in same.items() if k != "all")
    return {k: v for k, v in before.items() if same.get(k)}


def result_of(out: Path, stages: dict[str, Stage], seconds: float) -> dict[str, Any]:
    """The per-language table, each stage's status and outputs, the audit summary and every file written."""
    def ran(name: str) -> bool:
        return bool(name in stages and stages[name].outputs)

    evals = (_read(out / "evaluate" / "eval.json") or {}).get("languages", []) if ran("evaluate") else []
    train_stats = (_read(out / "train" / "stats.json") or {}) if ran("train") else {}
    before = _untrained(out, train_stats, evals)
    audit = (_read(out / "audit" / "summary.json") or {}) if ran("audit") else {}
    bpt: dict[str, dict[str, float]] = {}
    info: dict[str, tuple[str, str]] = {}
    for r in audit.get("languages", []):  # by language tag: parallel corpora key translations by their own codes
        bpt.setdefault(r["lang"], {}).setdefault(r["tokenizer"], r["bytes_per_token"])
        info.setdefault(r["lang"], (r.get("script", ""), r.get("name", "") if r.get("name") != r["lang"] else ""))
    if audit.get("summary"):
        bpt["all"] = {k: v["bytes_per_token"] for k, v in audit["summary"].items()}
    langs = [r["lang"] for r in evals] or sorted(bpt)
    rows = []
    for lang in langs:
        e = next((r for r in evals if r["lang"] == lang), {})
        script, name = info.get(lang, ("", ""))
        rows.append({"lang": lang, "name": "all languages" if lang == "all" else LANGUAGE_NAMES.get(lang, name),
                     "script": script, "val_docs": e.get("docs"), "val_bytes": e.get("bytes"),
                     "bpb_untrained": before.get(lang), "bpb": e.get("bpb"), "bpb_lo": e.get("bpb_lo"),
                     "bpb_hi": e.get("bpb_hi"), "bytes_per_token": bpt.get(lang, {})})
    files = sorted(str(p) for p in out.rglob("*") if p.is_file()
                   and not any(x.startswith(".") or x.endswith(".work") for x in p.relative_to(out).parts))
    return {"out": str(out), "seconds": round(seconds, 1), "languages": rows,
            "stages": {n: {"status": s.status, "seconds": s.seconds, "folder": str(s.folder), "key": s.key,
                           "outputs": s.outputs} for n, s in stages.items()},
            "audit_summary": {k: {m: v.get(m) for m in ("tokens", "bytes_per_token", "gini", "byte_fallback_tokens")}
                              for k, v in audit.get("summary", {}).items()},
            "files": files}


def _f(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_result(result: dict[str, Any]) -> str:
    """The per-language table, the stage lines and the files written, for the terminal."""
    toks = sorted({t for r in result["languages"] for t in r["bytes_per_token"]}, key=lambda t: (t != "ours", t))
    head = (f"{'lang':<8} {'language':<21} {'script':<6} {'val docs':>8} {'val bytes':>9} {'bpb@0':>6} {'bpb':>6} "
            f"{'95% CI':>13}" + "".join(f" {(t[:9] + ' B/tok'):>15}" for t in toks))
    from rwkv_data.pipelines.train.evaluate import format_ci  # the one "n < 10" rule

    min_docs = min((r["val_docs"] or 0 for r in result["languages"] if r["lang"] != "all"), default=0)
    lines = ["Per-language results (bpb: bits per byte of the trained model on the held-out split; bpb@0: the "
             "untrained model; B/tok: UTF-8 bytes per token, higher is better)", head, "-" * len(head)]
    for r in result["languages"]:
        docs = r["val_docs"] or 0 if r["lang"] != "all" else min_docs
        ci = format_ci(r["bpb_lo"], r["bpb_hi"], docs, ".2f") if r["bpb"] is not None else "-"
        lines.append(f"{r['lang']:<8} {r['name'][:21]:<21} {r['script']:<6} {_f(r['val_docs'], 'd'):>8} "
                     f"{_f(r['val_bytes'], 'd'):>9} {_f(r['bpb_untrained']):>6} {_f(r['bpb']):>6} {ci:>13}"
                     + "".join(f" {_f(r['bytes_per_token'].get(t)):>15}" for t in toks))
    for name, s in result["audit_summary"].items():
        lines.append(f"audit {name}: {s['tokens']:,} tokens on the corpus, {_f(s['bytes_per_token'])} bytes/token, "
                     f"Gini {_f(s['gini'])}, byte-fallback share {_f(s['byte_fallback_tokens'])}")
    lines.append("")
    lines += [f"{n:<9} {s['status']:<30} {s['seconds']:>7.1f} s  {s['folder']}" for n, s in result["stages"].items()]
    lines += ["", f"files written under {result['out']}:"] + [f"  {p}" for p in result["files"]]
    lines.append(f"total {result['seconds']:.1f} s")
    return "\n".join(lines)
