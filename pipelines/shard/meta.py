"""The ``P.meta.json`` of ``rwkv-data shard``: built from the parts' summaries and the merge's counts (the fields
are listed in docs/shard-format.md, section 3; ``rwkv-data verify`` checks each one against the data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.config import ShardConfig, to_dict
from rwkv_data.pipelines.shard.binidx import magic_prime, rwkv_train_args
from rwkv_data.pipelines.shard.outputs import FORMAT, TOOL
from rwkv_data.pipelines.shard.parts import PartTask

FORMAT_VERSION = 1
RUNTIME_ONLY = ("workers", "work_dir", "keep_work", "bucket_docs", "progress", "executor",
                "ray_address", "force")  # never change the output bytes
COUNTS = ("documents", "tokens", "bytes", "characters")


def source_table(summaries: list[dict[str, Any]], langs: list[str]) -> np.ndarray:
    table = np.zeros((len(langs), 4), np.int64)
    for s in summaries:
        for lg, c in s["per_language"].items():
            table[langs.index(lg)] += [c["documents"], c["tokens"], c["bytes"], c["characters"]]
    return table


def counts_dict(row: np.ndarray) -> dict[str, int]:
    return dict(zip(("documents", "tokens", "bytes", "characters"), (int(x) for x in row), strict=True))


def common_meta(cfg: ShardConfig, tok: Any, dtype: np.dtype, tasks: list[PartTask], summaries: list[dict[str, Any]],
                 langs: list[str], weights: dict[str, float], source: np.ndarray, threshold: int) -> dict[str, Any]:
    skipped: dict[str, int] = {}
    examples: dict[str, str] = {}
    for s in summaries:
        for k, v in s["skipped"].items():
            skipped[k] = skipped.get(k, 0) + v
        for k, v in s["first_skip"].items():
            examples.setdefault(k, v)
    method = "budgets" if cfg.lang_budgets else "temperature" if cfg.temperature else "none"
    from rwkv_data import __version__ as version
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "tool": TOOL, "tool_version": version,
        "tokenizer": {"name": tok.name, "sha256": tok.sha256, "vocab_size": tok.vocab_size, "eos_id": 0,
                      "vocab": cfg.vocab or "rwkv_vocab_v20230424 (RWKV World)"},
        "dtype": dtype.name, "dtype_code": 8 if dtype == np.uint16 else 4,
        "languages": langs,
        "input": {"records": sum(s["records"] for s in summaries), **counts_dict(source.sum(axis=0)),
                  "per_language": {lg: counts_dict(source[i]) for i, lg in enumerate(langs)}},
        "skipped": dict(sorted(skipped.items())), "skipped_examples": dict(sorted(examples.items())),
        "validation": {"fraction": cfg.val_fraction, "min_docs_per_language": cfg.val_min_docs,
                       "rule": "sha256-64(UTF-8 text) < fraction * 2**64, or among the language's min_docs "
                               "smallest hashes (at most half its documents)", "threshold": threshold},
        "shuffle": {"seed": cfg.seed, "algorithm": "ascending splitmix64(seed, part, document, copy); "
                    "external bucket sort, see docs/shard-format.md"},
        "mixing": {"method": method, "temperature": cfg.temperature, "budgets": dict(cfg.lang_budgets),
                   "weights": {lg: round(w, 6) for lg, w in weights.items()}},
        "inputs": [{**s["unit"], "records": s["records"], "documents": s["documents"], "skipped": s["skipped"]}
                   for s in summaries],
        "config": {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_ONLY},
    }


def split_meta(common: dict[str, Any], split: str, prefixes: dict[str, str], counts: Any, langs: list[str],
                written: dict[str, Any], cfg: ShardConfig) -> dict[str, Any]:
    table = counts.table if counts.table.size else np.zeros((len(langs), 4), np.int64)
    tokens = int(written["tokens"])
    base = Path(prefixes[split]).name
    ctx = [{**m, "train_args": rwkv_train_args(m)} for m in (magic_prime(tokens, c) for c in cfg.ctx_lens)]
    per_lang = {lg: counts_dict(table[i]) for i, lg in enumerate(langs)}
    if split == "train":
        for lg in langs:
            per_lang[lg]["weight"] = common["mixing"]["weights"][lg]
    return {
        **{k: common[k] for k in ("format", "format_version", "tool", "tool_version", "tokenizer", "dtype",
                                  "dtype_code")},
        "split": split, "prefix": base, "val_prefix": Path(prefixes["val"]).name,
        "files": {"bin": f"{base}.bin", "idx": f"{base}.idx", "lang": f"{base}.lang.npy" if cfg.lang_array else None},
        **counts_dict(table.sum(axis=0)), "items": int(written["items"]),
        "languages": langs, "per_language": per_lang,
        "rwkv_lm": ctx,
        "sha256": {"bin": written["bin_sha256"], "idx": written["idx_sha256"], "lang": written["lang_sha256"]},
        "file_sizes": {"bin": written["bin_bytes"], "idx": written["idx_bytes"], "lang": written["lang_bytes"]},
        **{k: common[k] for k in ("input", "skipped", "skipped_examples", "validation", "shuffle", "mixing",
                                  "inputs", "config")},
    }


