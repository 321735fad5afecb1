"""The ``P.meta.json`` of ``rwkv-data shard``: built from the parts' summaries and the merge's counts (the fields
are listed in docs/shard-format.md, section 3; ``rwkv-data verify`` checks each one against the data), and read
back by the jobs that use shards: :func:`read_shard_meta`, and the tokenizer a shard was written with
(:func:`recorded_tokenizer`, :func:`tokenizer_for_shard`; train, evaluate, finetune and inspect use them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.config import ShardConfig, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.jsonfile import read_json
from rwkv_data.pipelines.shard.binidx import magic_prime, rwkv_train_args
from rwkv_data.pipelines.shard.outputs import FORMAT, TOOL
from rwkv_data.pipelines.shard.parts import PartTask
from rwkv_data.tokenizer.resolve import is_world, load_trie

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
                      "vocab": "rwkv_vocab_v20230424 (RWKV World)" if is_world(cfg.vocab) else cfg.vocab},
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


# ---- reading ------------------------------------------------------------------------------------------------


def read_shard_meta(prefix: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``P.meta.json`` of shard prefix ``P`` (any JSON object), or None when there is none; ConfigError when it
    cannot be read. ``rwkv-data verify`` checks it field by field (check.load_meta)."""
    path = Path(f"{prefix}.meta.json")
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read shard metadata ({exc}); rerun `rwkv-data shard` to rewrite "
                          "it") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"{path}: shard metadata is not a JSON object; rerun `rwkv-data shard` to rewrite it")
    return meta


def _recorded_candidates(prefix: str | os.PathLike[str], tmeta: dict[str, Any]) -> list[str]:
    """Where the shard's vocab may be: the recorded spelling, relative to here and to the shard's folder."""
    rec = str(tmeta.get("vocab") or "")
    if is_world(rec) or rec.startswith("rwkv_vocab_v20230424") or "(RWKV World)" in rec:
        return ["world"]
    out = [rec] if rec else []
    if rec and not Path(rec).is_absolute():
        here = Path(prefix).parent
        out += [str(here / rec), str(here / Path(rec).name)]
    return [c for c in dict.fromkeys(out) if Path(c).is_file()]


def describe_recorded(prefix: str | os.PathLike[str], tmeta: dict[str, Any]) -> str:
    """``'vocab.txt' (sha256 0123456789ab, 4096 ids; from P.meta.json)`` for messages."""
    sha = str(tmeta.get("sha256") or "?")[:12]
    return (f"{str(tmeta.get('vocab') or tmeta.get('name') or '?')!r} (sha256 {sha}, "
            f"{tmeta.get('vocab_size', '?')} ids; from {prefix}.meta.json)")


def recorded_tokenizer(prefix: str | os.PathLike[str], flag: str = "--vocab") -> tuple[Any, str]:
    """The tokenizer ``P.meta.json`` records (its sha256 checked) and the spec it was found under; ConfigError
    asking for ``flag`` when the shard has no metadata or its vocab file is gone or changed."""
    meta = read_shard_meta(prefix)
    if meta is None:
        raise ConfigError(f"{prefix}.meta.json not found, so the vocab {prefix} was made with is unknown; "
                          f"pass {flag} world or {flag} VOCAB_FILE (the vocab given to `rwkv-data shard`)")
    tmeta = meta.get("tokenizer") if isinstance(meta.get("tokenizer"), dict) else {}
    want = tmeta.get("sha256")
    for cand in _recorded_candidates(prefix, tmeta):
        tok = load_trie(cand)
        if not want or tok.sha256 == want:
            return tok, cand
    raise ConfigError(f"{prefix}: the shard's vocab {describe_recorded(prefix, tmeta)} cannot be found here; "
                      f"pass {flag} with that vocab file")


def tokenizer_for_shard(prefix: str | os.PathLike[str], spec: str | None = None, strict: bool = True) -> Any:
    """The tokenizer for shard ``prefix``: ``spec`` when given (not None and not ""), else the one its
    ``P.meta.json`` records (:func:`recorded_tokenizer`). With ``strict=False`` a shard whose vocab cannot be
    found gives None (``inspect`` then shows ids only)."""
    if spec:
        return load_trie(spec)
    try:
        return recorded_tokenizer(prefix)[0]
    except (OSError, ValueError):  # ConfigError and VocabFormatError are ValueErrors
        if strict:
            raise
        return None
