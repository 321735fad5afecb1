"""``rwkv-data shard``: stream corpora into RWKV-readable binidx shards with per-language metadata.

Two stages (docs/shard-format.md has the format and every rule):

1. parts (parallel, resumable): each reader unit becomes a tokenized part in ``P.work/parts`` with a
   completion marker keyed by its input fingerprint and options (:mod:`.shard_parts`);
2. merge (one process, streamed): validation split, language weights, seeded shuffle, ``P.bin/.idx``,
   ``P_val.bin/.idx``, language arrays, then ``P.meta.json`` / ``P_val.meta.json`` last (:mod:`.shard_merge`).

Parts depend only on their unit and the options, and the merge only on the parts and the seed, so the
output is byte-identical for any ``--workers`` and after any kill + rerun.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.config import ShardConfig, to_dict
from rwkv_data.errors import ConfigError, InputFormatError
from rwkv_data.pipelines.corpus.readers import ReadOptions, ReadStats, expand_inputs, iter_unit
from rwkv_data.pipelines.shard.binidx import dtype_for_max_id, magic_prime, rwkv_train_args
from rwkv_data.pipelines.shard.merge import (
    MergePlan,
    PartRecords,
    PartRef,
    ValidationSplit,
    distribute,
    lang_weights,
    val_cutoffs,
    val_threshold,
    validation_split,
    write_split,
)
from rwkv_data.pipelines.shard.parts import PartTask, build_part, is_done, load_summary, part_key
from rwkv_data.tokenizer.cores import default_threads

log = logging.getLogger(__name__)
FORMAT = "rwkv-data-binidx"
FORMAT_VERSION = 1
RUNTIME_ONLY = ("workers", "work_dir", "keep_work", "bucket_docs", "progress", "executor",
                "ray_address")  # never change the output bytes


def load_tokenizer(cfg: ShardConfig) -> Any:
    """The TrieTokenizer of ``cfg.vocab`` (World vocab when empty) with ``cfg.tokenizer_impl``."""
    from rwkv_data.tokenizer import TrieTokenizer

    if cfg.vocab:
        return TrieTokenizer.from_file(cfg.vocab, impl=cfg.tokenizer_impl)
    return TrieTokenizer.world(impl=cfg.tokenizer_impl)


def check_config(cfg: ShardConfig) -> None:
    """Reject option values the job cannot honour (ConfigError naming the option)."""
    if not cfg.inputs:
        raise ConfigError("no inputs: give files, folders, globs or hf:NAME")
    if cfg.on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', not {cfg.on_error!r}")
    if cfg.workers < 0:
        raise ConfigError(f"workers must be >= 1, or 0 for one per CPU; not {cfg.workers}")
    if cfg.executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', not {cfg.executor!r}")
    if cfg.executor == "ray":
        from rwkv_data.pipelines.shard.ray_executor import require_ray

        require_ray()  # DependencyMissing naming the pip extra, before any work
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), not {cfg.val_fraction}")
    if cfg.val_min_docs < 0 or any(c <= 0 for c in cfg.ctx_lens) or cfg.bucket_docs < 1:
        raise ConfigError("val_min_docs must be >= 0, ctx_lens and bucket_docs > 0")
    if any(not isinstance(v, int) or v < 0 for v in cfg.lang_budgets.values()):
        raise ConfigError(f"lang_budgets must map languages to token counts >= 0: {cfg.lang_budgets}")


SPLIT_OPTIONS = ("val_fraction", "val_min_docs", "text_field", "lang_field", "lang", "split_paragraphs", "hf_split",
                 "on_error")  # with the inputs, what decides the validation split


def read_options(cfg: ShardConfig) -> ReadOptions:
    """How the shard job turns records into documents."""
    return ReadOptions(cfg.text_field, cfg.lang_field, cfg.lang or None, cfg.on_error,  # type: ignore[arg-type]
                       cfg.split_paragraphs, cfg.hf_split)


def validation_split_of(cfg: ShardConfig) -> ValidationSplit:
    """The validation split the shard job makes of ``cfg.inputs`` (``val_fraction``, ``val_min_docs``), without
    tokenizing: reads the documents as the job does and applies the same rule (shard_merge.validation_split).

    ``split.is_validation(text, lang)`` then tells whether a document lands in ``P_val``; other jobs use it to
    keep held-out documents out of what they fit (``rwkv-data run`` trains its vocabulary on the rest).
    """
    check_config(cfg)
    opts = read_options(cfg)
    units = expand_inputs(list(cfg.inputs), opts)
    if not units:
        raise InputFormatError(f"no readable input among {list(cfg.inputs)}")
    stats = ReadStats()
    docs = ((d.data if d.data is not None else d.text, d.lang) for u in units for d in iter_unit(u, opts, stats))
    return validation_split(docs, cfg.val_fraction, cfg.val_min_docs)


class _Bar:
    """tqdm on stderr: parts done, documents, text MB, MB/s and tokens/s."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.bar: Any = _NoBar()
        if enabled:  # tqdm's import alone takes ~40 ms (importlib.metadata), worth skipping when nothing shows
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, unit="part", dynamic_ncols=True, desc="shard",
                            mininterval=0.5)
        self.t0 = time.perf_counter()
        self.docs = self.bytes = self.tokens = 0

    def update(self, docs: int, nbytes: int, tokens: int) -> None:
        self.docs, self.bytes, self.tokens = self.docs + docs, self.bytes + nbytes, self.tokens + tokens
        self.show()

    def show(self, docs: int | None = None, nbytes: int | None = None, tokens: int | None = None) -> None:
        if docs is not None:
            self.docs, self.bytes, self.tokens = docs, nbytes or 0, tokens or 0
        dt = max(time.perf_counter() - self.t0, 1e-9)
        self.bar.set_postfix_str(f"docs={self.docs} MB={self.bytes / 1e6:.1f} MB/s={self.bytes / 1e6 / dt:.1f} "
                                 f"tok/s={self.tokens / dt:,.0f}", refresh=False)


class _NoBar:
    """What the job calls on a tqdm bar, doing nothing (progress off)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer: Any, counters: Any) -> None:
    _WORKER.update(tokenizer=tokenizer, counters=counters)


def _count(docs: int, nbytes: int, tokens: int) -> None:
    c = _WORKER["counters"]
    with c.get_lock():
        c[0] += docs
        c[1] += nbytes
        c[2] += tokens


def _work(task: PartTask) -> dict[str, Any]:
    return build_part(task, _WORKER["tokenizer"], _count)


def build_parts(todo: list[PartTask], tokenizer: Any, workers: int, bar: _Bar) -> None:
    """Build the missing parts, in this process (workers=1) or in a process pool."""
    if workers == 1 or len(todo) <= 1:
        for task in todo:
            build_part(task, tokenizer, bar.update)
            bar.bar.update(1)
        return
    import concurrent.futures as cf  # here: a 1-worker job does not need them
    import multiprocessing as mp

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    counters = ctx.Array("q", 3)
    # largest inputs first, so the last part to finish is a small one (the part index fixes the output order);
    # ProcessPoolExecutor rather than Pool: a worker killed by the OS fails the job instead of hanging it
    order = sorted(todo, key=lambda t: -_unit_size(t))
    with cf.ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                initargs=(tokenizer, counters)) as pool:
        pending = {pool.submit(_work, t) for t in order}
        try:
            while pending:
                done, pending = cf.wait(pending, timeout=0.25, return_when=cf.FIRST_COMPLETED)
                for f in done:
                    f.result()  # re-raises a worker's InputFormatError (or BrokenProcessPool) here
                    bar.bar.update(1)
                bar.show(*counters[:])
        except BaseException:
            for f in pending:
                f.cancel()
            raise


def _unit_size(task: PartTask) -> int:
    if task.unit.rows >= 0:
        return task.unit.rows * 1000
    try:
        return os.path.getsize(task.unit.path)
    except OSError:
        return 0


def run(cfg: ShardConfig, tokenizer: Any = None) -> dict[str, Any]:
    """Run the shard job; returns ``{"train": meta, "val": meta}`` (also written as ``P.meta.json``)."""
    check_config(cfg)
    if cfg.workers == 0:  # one per CPU; the output does not depend on the count
        cfg = dataclasses.replace(cfg, workers=default_threads())
    tok = tokenizer if tokenizer is not None else load_tokenizer(cfg)
    dtype = dtype_for_max_id(tok.vocab_size - 1)
    opts = read_options(cfg)
    units = expand_inputs(list(cfg.inputs), opts)
    if not units:
        raise InputFormatError(f"no readable input among {list(cfg.inputs)}")
    out = Path(cfg.output)
    work = Path(cfg.work_dir) if cfg.work_dir else Path(f"{out}.work")
    parts_dir = work / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in parts_dir.glob("*.tmp"):  # a killed run's half-written files
        stale.unlink()
    tasks = [PartTask(i, u, opts, str(parts_dir), part_key(u, opts, tok.sha256, dtype.name), dtype.name)
             for i, u in enumerate(units)]
    todo = [t for t in tasks if not is_done(t)]
    log.info("%d input units, %d already done, %d to tokenize with %d worker(s)", len(tasks),
             len(tasks) - len(todo), len(todo), cfg.workers)
    bar = _Bar(len(tasks), len(tasks) - len(todo), cfg.progress)
    t0 = time.perf_counter()
    try:
        if cfg.executor == "ray":
            from rwkv_data.pipelines.shard.ray_executor import build_parts_ray

            build_parts_ray(todo, tok, cfg, bar)
        else:
            build_parts(todo, tok, cfg.workers, bar)
    finally:
        bar.bar.close()
    t1 = time.perf_counter()
    summaries = [load_summary(t) for t in tasks]
    result = merge_parts(cfg, tok, dtype, tasks, summaries, work)
    log.info("tokenized in %.2f s, merged in %.2f s", t1 - t0, time.perf_counter() - t1)
    if not cfg.keep_work:  # only what this job made: --work-dir may be a folder holding other things
        for sub in ("parts", "merge"):
            shutil.rmtree(work / sub, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.rmdir()
    return result


def merge_parts(cfg: ShardConfig, tok: Any, dtype: np.dtype, tasks: list[PartTask], summaries: list[dict[str, Any]],
                work: Path) -> dict[str, Any]:
    """Stage 2: split, weigh, shuffle and write both prefixes and their meta files."""
    langs = sorted({lg for s in summaries for lg in s["langs"]})
    gidx = {lg: i for i, lg in enumerate(langs)}
    parts = [PartRef(t.index, str(t.stem), s["documents"], np.array([gidx[lg] for lg in s["langs"]] or [0], np.int64))
             for t, s in zip(tasks, summaries, strict=True)]
    merge_dir = work / "merge"
    shutil.rmtree(merge_dir, ignore_errors=True)  # the merge always starts over; it is cheap next to parts
    merge_dir.mkdir(parents=True)
    for old in (f"{cfg.output}.meta.json", f"{cfg.output}_val.meta.json"):  # no meta = not finished
        Path(old).unlink(missing_ok=True)
    records = PartRecords(parts)
    n_docs, cutoff, has = val_cutoffs(records, len(langs), cfg.val_min_docs)
    threshold = val_threshold(cfg.val_fraction)
    split = ValidationSplit(tuple(langs), n_docs, threshold, cutoff, has)
    plan = MergePlan(parts, langs, split, np.ones(len(langs)), cfg.seed, cfg.bucket_docs, records)
    n_val_max = int(n_docs.sum())
    expected_val = int(cfg.val_fraction * n_val_max) + 1
    source = _source_table(summaries, langs)
    mixing = bool(cfg.lang_budgets or cfg.temperature)
    if mixing:  # the weights need the train side's tokens, so the validation records come first
        (val_total, val_counts, val_bits), = distribute(plan, merge_dir, {"val": expected_val}).values()
    else:  # every weight is 1: both splits in one pass
        done = distribute(plan, merge_dir, {"val": expected_val, "train": n_val_max})
        val_total, val_counts, val_bits = done["val"]
    train_tokens = {lg: int(source[i, 1] - val_counts.table[i, 1]) if val_counts.table.size else int(source[i, 1])
                    for i, lg in enumerate(langs)}
    weights = lang_weights(train_tokens, dict(cfg.lang_budgets), cfg.temperature)
    plan.weights = np.array([weights[lg] for lg in langs], np.float64)
    expected = int(sum(weights[lg] * (n_docs[i]) for i, lg in enumerate(langs)))
    if mixing:
        (train_total, train_counts, train_bits), = distribute(plan, merge_dir, {"train": expected}).values()
    else:
        assert expected == n_val_max  # internal invariant: the buckets are sized as in the two-pass order
        train_total, train_counts, train_bits = done["train"]
    prefixes = {"train": str(cfg.output), "val": f"{cfg.output}_val"}
    written = {}
    for split, total, bits, counts in (("train", train_total, train_bits, train_counts),
                                       ("val", val_total, val_bits, val_counts)):
        lang_path = f"{prefixes[split]}.lang.npy" if cfg.lang_array else None
        tokens = int(counts.table[:, 1].sum()) if counts.table.size else 0
        written[split] = write_split(plan, merge_dir, split, bits, total, tokens, prefixes[split], dtype, lang_path)
    common = _common_meta(cfg, tok, dtype, tasks, summaries, langs, weights, source, threshold)
    metas = {}
    for split, counts in (("train", train_counts), ("val", val_counts)):
        metas[split] = _split_meta(common, split, prefixes, counts, langs, written[split], cfg)
        path = Path(f"{prefixes[split]}.meta.json")
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(metas[split], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    _log_skips(common["skipped"])
    return metas


def _source_table(summaries: list[dict[str, Any]], langs: list[str]) -> np.ndarray:
    table = np.zeros((len(langs), 4), np.int64)
    for s in summaries:
        for lg, c in s["per_language"].items():
            table[langs.index(lg)] += [c["documents"], c["tokens"], c["bytes"], c["characters"]]
    return table


def _counts_dict(row: np.ndarray) -> dict[str, int]:
    return dict(zip(("documents", "tokens", "bytes", "characters"), (int(x) for x in row), strict=True))


def _common_meta(cfg: ShardConfig, tok: Any, dtype: np.dtype, tasks: list[PartTask], summaries: list[dict[str, Any]],
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
        "format": FORMAT, "format_version": FORMAT_VERSION, "tool": "rwkv-data", "tool_version": version,
        "tokenizer": {"name": tok.name, "sha256": tok.sha256, "vocab_size": tok.vocab_size, "eos_id": 0,
                      "vocab": cfg.vocab or "rwkv_vocab_v20230424 (RWKV World)"},
        "dtype": dtype.name, "dtype_code": 8 if dtype == np.uint16 else 4,
        "languages": langs,
        "input": {"records": sum(s["records"] for s in summaries), **_counts_dict(source.sum(axis=0)),
                  "per_language": {lg: _counts_dict(source[i]) for i, lg in enumerate(langs)}},
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


def _split_meta(common: dict[str, Any], split: str, prefixes: dict[str, str], counts: Any, langs: list[str],
                written: dict[str, Any], cfg: ShardConfig) -> dict[str, Any]:
    table = counts.table if counts.table.size else np.zeros((len(langs), 4), np.int64)
    tokens = int(written["tokens"])
    base = Path(prefixes[split]).name
    ctx = [{**m, "train_args": rwkv_train_args(m)} for m in (magic_prime(tokens, c) for c in cfg.ctx_lens)]
    per_lang = {lg: _counts_dict(table[i]) for i, lg in enumerate(langs)}
    if split == "train":
        for lg in langs:
            per_lang[lg]["weight"] = common["mixing"]["weights"][lg]
    return {
        **{k: common[k] for k in ("format", "format_version", "tool", "tool_version", "tokenizer", "dtype",
                                  "dtype_code")},
        "split": split, "prefix": base, "val_prefix": Path(prefixes["val"]).name,
        "files": {"bin": f"{base}.bin", "idx": f"{base}.idx", "lang": f"{base}.lang.npy" if cfg.lang_array else None},
        **_counts_dict(table.sum(axis=0)), "items": int(written["items"]),
        "languages": langs, "per_language": per_lang,
        "rwkv_lm": ctx,
        "sha256": {"bin": written["bin_sha256"], "idx": written["idx_sha256"]},
        **{k: common[k] for k in ("input", "skipped", "skipped_examples", "validation", "shuffle", "mixing",
                                  "inputs", "config")},
    }


def _log_skips(skipped: dict[str, int]) -> None:
    if skipped:
        log.warning("skipped: %s", ", ".join(f"{k}={v}" for k, v in skipped.items()))
