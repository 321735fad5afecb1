"""Benchmark: `rwkv-data audit` of the World tokenizer on all 521 UDHR translations must take under 2 minutes.

It runs the whole job (loading, encoding, minimum-token DP for the greedy gap, 1000 bootstrap resamples,
JSON/CSV/HTML outputs), then prints World's UDHR figures next to the FLORES-200 figures measured in
../shared/docs/tokenization.md (section 1.3) for the languages in both. UDHR parity sums the 30 aligned
articles; FLORES parity concatenates dev+devtest, so expect agreement in ranking, not in the second digit.

Run: python benchmarks/audit_speed.py [--corpus ../shared/corpus/udhr.jsonl.zst] [--out DIR] [--limit 120]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from rwkv_data.config import AuditConfig
from rwkv_data.pipelines.audit.job import run

ROOT = Path(__file__).resolve().parents[1]
# FLORES-200, World vocabulary (tokenization.md §1.3): parity vs English, byte-fallback token share, share of
# non-ASCII characters without a token, greedy-optimality gap. None: not stated there.
FLORES = {  # UDHR key: (name, parity, fallback tokens, missing chars, greedy gap)
    "eng": ("English", 1.0, 0.0, None, 0.002), "deu_1996": ("German", None, None, None, 0.008),
    "fra": ("French", None, None, None, 0.0056), "rus": ("Russian", None, 0.0, None, 0.0059),
    "tur": ("Turkish", None, None, None, 0.0053), "fin": ("Finnish", None, None, None, 0.0039),
    "vie": ("Vietnamese", None, None, None, 0.0005), "cmn_hans": ("Chinese (Simpl.)", None, 0.0, 0.0, 0.0002),
    "jpn": ("Japanese", None, None, None, 0.0002), "kor": ("Korean", None, None, 0.023, 0.0002),
    "arb": ("Arabic", None, None, None, 0.0002), "hin": ("Hindi", None, None, 0.052, 0.0002),
    "tam": ("Tamil", None, None, 0.107, 0.0002), "tha": ("Thai", None, None, None, 0.0002),
    "mya": ("Burmese", None, None, None, 0.0002), "amh": ("Amharic", 8.2, 0.91, 0.998, 0.0002),
    "tir": ("Tigrinya", 8.4, 0.91, None, None), "shn": ("Shan", 12.3, 0.66, None, None),
    "lao": ("Lao", 9.6, 0.61, None, None), "kan": ("Kannada", 8.7, 0.42, 0.836, None),
    "khm": ("Khmer", 8.6, None, None, None), "guj": ("Gujarati", None, 0.40, None, None),
    "zgh": ("Tamazight (Tfng)", 10.0, 0.86, 0.851, None),
}
FLORES_POOLED = {"median_parity": 2.13, "max_parity": 13.55, "langs_over_3x": 54, "gini": 0.296,
                 "utilisation": 0.617, "renyi_efficiency": 0.478}


def fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else str(v) if isinstance(v, int) else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpus" / "udhr.jsonl.zst"))
    ap.add_argument("--out", default="", help="output folder (default: a temporary one)")
    ap.add_argument("--limit", type=float, default=120.0, help="seconds allowed")
    args = ap.parse_args()
    if not Path(args.corpus).exists():
        print(f"corpus {args.corpus} not found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        t0 = time.perf_counter()
        res = run(AuditConfig(corpus=args.corpus, tokenizers=("world",), out_dir=out))
        elapsed = time.perf_counter() - t0
        langs = res.report["corpus"]["languages"]
        s = res.report["summary"]["World"]
        print(f"audit of World on {langs} UDHR translations: {elapsed:.1f} s (limit {args.limit:.0f} s); "
              f"encode + counts + DP {s['encode_seconds']:.1f} s; report.html "
              f"{(Path(out) / 'report.html').stat().st_size / 1e6:.1f} MB")
        print(f"\n{'pooled':<18}{'UDHR (' + str(langs) + ')':<28}FLORES-200 (204)")
        for k, ref in FLORES_POOLED.items():
            ci = f" [{fmt(s.get(k + '_lo'), '.3f')}, {fmt(s.get(k + '_hi'), '.3f')}]" if k + "_lo" in s else ""
            print(f"{k:<18}{fmt(s[k], '.3f') + ci:<28}{ref}")
        print(f"{'greedy_gap':<18}{fmt(s['greedy_gap'], '.4f'):<28}0-0.8 % per language")
        rows = {r["key"]: r for r in res.report["languages"]}
        print("\nlanguage            parity UDHR [95% CI]   FLORES | fallback tok UDHR FLORES | split chars UDHR"
              " FLORES-missing | gap UDHR FLORES | fertility UDHR")
        for key, (name, par, fb, miss, gap) in FLORES.items():
            r = rows.get(key)
            if r is None:
                continue
            ci = f"{r['parity']:.2f} [{r['parity_lo']:.2f}, {r['parity_hi']:.2f}]"
            print(f"{name:<19} {ci:<22} {fmt(par):>6} | {fmt(r['byte_fallback_tokens']):>17} {fmt(fb):>6} | "
                  f"{fmt(r['byte_fallback_chars'], '.3f'):>16} {fmt(miss, '.3f'):>14} | "
                  f"{fmt(r['greedy_gap'], '.4f'):>8} {fmt(gap, '.4f'):>6} | {fmt(r['fertility']):>14}")
        zh = rows.get("cmn_hans")
        if zh:
            print(f"\nChinese characters per token: UDHR {zh['chars_per_token']:.3f}, FLORES 1.06")
        (Path(out) / "benchmark.json").write_text(json.dumps({"seconds": round(elapsed, 2), "languages": langs}))
    if elapsed > args.limit:
        print(f"FAIL: {elapsed:.1f} s > {args.limit:.0f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
