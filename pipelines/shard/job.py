"""``rwkv-data shard``: stream corpora into RWKV-readable binidx shards with per-language metadata.

Two stages (docs/shard-format.md has the format and every rule):

1. parts (parallel, resumable): each reader unit becomes a tokenized part in ``P.work/parts`` with a
   completion marker keyed by its input fingerprint and options (:mod:`.parts`, run by one of the
   :mod:`.executors`);
2. merge (one process, streamed): validation split, language weights, seeded shuffle, ``P.bin/.idx``,
   ``P_val.bin/.idx``, language arrays, then ``P_val.meta.json`` / ``P.meta.json`` last (:mod:`.merge`,
   :mod:`.meta`).

Parts depend only on their unit and the options, and the merge only on the parts and the seed, so the
output is byte-identical for any ``--workers`` and after any kill + rerun.

Around both stages (:mod:`.outputs`): a lock held for the job's life (one job per output prefix), the old meta
files deleted at the start, every output written under a temporary name and published together at the end
(meta last), no foreign file overwritten without ``force``, a full disk reported as :class:`StorageError`.
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

from rwkv_data.config import CORPUS_KEYS, ShardConfig, short_repr
from rwkv_data.config_checks import MAX_SEED, check_float, check_int
from rwkv_data.errors import ConfigError, InputFormatError
from rwkv_data.pipelines.corpus.documents import ReadStats
from rwkv_data.pipelines.corpus.inputs import expand_inputs
from rwkv_data.pipelines.corpus.readers import iter_unit
from rwkv_data.pipelines.corpus.spec import read_options
from rwkv_data.pipelines.shard.binidx import dtype_for_max_id
from rwkv_data.pipelines.shard.executors import executor_for
from rwkv_data.pipelines.shard.merge import MergePlan, PartRecords, PartRef, distribute, val_cutoffs, write_split
from rwkv_data.pipelines.shard.meta import common_meta, source_table, split_meta
from rwkv_data.pipelines.shard.mixing import lang_weights
from rwkv_data.pipelines.shard.outputs import (
    JobLock,
    check_output,
    foreign_targets,
    is_out_of_space,
    lock_paths,
    publish,
    retire,
    space_error,
    space_guard,
    stale_outputs,
    temp_paths,
)
from rwkv_data.pipelines.shard.parts import MAX_LANGS, PartTask, is_done, load_summary, part_key, too_many_languages
from rwkv_data.pipelines.shard.validation import ValidationSplit, val_threshold, validation_split
from rwkv_data.tokenizer.cores import default_threads
from rwkv_data.tokenizer.resolve import load_trie

log = logging.getLogger(__name__)

MAX_WORKERS = 4096  # tokenizer processes (local or Ray tasks at once)
MAX_COUNT = 2**62  # documents or tokens: beyond any corpus, within int64 arithmetic
MAX_CTX_LEN = 2**31 - 1


def check_config(cfg: ShardConfig) -> None:
    """Reject option values the job cannot honour (ConfigError naming the option)."""
    if not cfg.inputs:
        raise ConfigError("no inputs: give files, folders, globs or hf:NAME")
    check_output(cfg.output)
    if cfg.on_error not in ("raise", "skip"):
        raise ConfigError(f"on_error must be 'raise' or 'skip', not {cfg.on_error!r}")
    if not isinstance(cfg.max_record_bytes, int) or cfg.max_record_bytes < 1:
        raise ConfigError(f"max_record_bytes must be a byte count >= 1, not {cfg.max_record_bytes!r}")
    check_int(cfg, "workers", 0, MAX_WORKERS, meaning=" (0 = one per CPU)")
    check_int(cfg, "seed", 0, MAX_SEED)
    check_float(cfg, "temperature", 0.0, meaning=" (0 = the natural mix)")
    check_int(cfg, "val_min_docs", 0, MAX_COUNT)
    if not cfg.ctx_lens:
        raise ConfigError("ctx_lens (--ctx-len) is empty: give the training context length(s), e.g. ctx_lens = [512]")
    for n in cfg.ctx_lens:
        if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= MAX_CTX_LEN:
            raise ConfigError(f"ctx_lens (--ctx-len) must be integers in [1, {MAX_CTX_LEN:,}], got {n!r}")
    if cfg.executor not in ("local", "ray"):
        raise ConfigError(f"executor must be 'local' or 'ray', not {cfg.executor!r}")
    if cfg.executor == "ray":
        from rwkv_data.pipelines.shard.ray_executor import require_ray

        require_ray()  # DependencyMissing naming the pip extra, before any work
    if not 0.0 <= cfg.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), not {cfg.val_fraction}")
    if cfg.bucket_docs < 1:
        raise ConfigError(f"bucket_docs must be >= 1, not {cfg.bucket_docs}")
    if any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_COUNT for v in cfg.lang_budgets.values()):
        raise ConfigError(f"lang_budgets (--lang-budget) must map languages to token counts in [0, {MAX_COUNT:,}]: "
                          f"{short_repr(cfg.lang_budgets, 200)}")


SPLIT_OPTIONS = ("val_fraction", "val_min_docs", *(k for k in CORPUS_KEYS if k != "inputs")
                 )  # with the inputs, what decides the validation split


def validation_split_of(cfg: ShardConfig) -> ValidationSplit:
    """The validation split the shard job makes of ``cfg.inputs`` (``val_fraction``, ``val_min_docs``), without
    tokenizing: reads the documents as the job does and applies the same rule (validation.validation_split).

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


def run(cfg: ShardConfig, tokenizer: Any = None) -> dict[str, Any]:
    """Run the shard job; returns ``{"train": meta, "val": meta}`` (also written as ``P.meta.json``).

    One job at a time per output prefix (a lock held for the job's life); the final files appear only when all
    of them are complete, ``P.meta.json`` last; an existing file this tool did not write is not overwritten
    unless ``cfg.force``; a full disk is a :class:`StorageError` naming the path.
    """
    check_config(cfg)
    if cfg.workers == 0:  # one per CPU; the output does not depend on the count
        cfg = dataclasses.replace(cfg, workers=default_threads())
    out = Path(cfg.output)
    work = Path(cfg.work_dir) if cfg.work_dir else Path(f"{out}.work")
    prefixes = [str(out), f"{out}_val"]
    try:
        with JobLock(lock_paths(prefixes, work), cfg.output):
            _check_targets(cfg, prefixes, work)
            result = _run_locked(cfg, tokenizer, out, work)
    except OSError as exc:
        if is_out_of_space(exc):
            raise space_error(exc, exc.filename or work) from exc
        raise
    finally:
        with contextlib.suppress(OSError):  # when empty: nothing kept, or a job that stopped before any part
            work.rmdir()
    return result


def _targets(cfg: ShardConfig, prefixes: list[str]) -> list[str]:
    """The final files this job writes."""
    return [p + e for p in prefixes for e in (".bin", ".idx", ".meta.json", *((".lang.npy",) if cfg.lang_array
                                                                                 else ()))]


def _check_targets(cfg: ShardConfig, prefixes: list[str], work: Path) -> None:
    foreign = foreign_targets(prefixes, _targets(cfg, prefixes), work)
    folders = [f for f in foreign if os.path.isdir(f)]
    if folders:
        raise ConfigError(f"{folders[0]} is a folder where the shard job writes a file; move it away or choose "
                          "another -o")
    if foreign and not cfg.force:
        raise ConfigError(f"{foreign[0]} exists and was not written by rwkv-data (no {cfg.output}.meta.json of this "
                          f"tool names it with this size){f', nor {len(foreign) - 1} more' if len(foreign) > 1 else ''}"
                          ": move it away, choose another -o, or pass --force to overwrite it")
    for p in prefixes:  # a killed run's half-written files
        for t in temp_paths(p):
            t.unlink(missing_ok=True)
    retire(work, prefixes, _targets(cfg, prefixes))  # from here until the job succeeds, no meta: not finished


def _run_locked(cfg: ShardConfig, tokenizer: Any, out: Path, work: Path) -> dict[str, Any]:
    tok = tokenizer if tokenizer is not None else load_trie(cfg.vocab, cfg.tokenizer_impl)
    dtype = dtype_for_max_id(tok.vocab_size - 1)
    opts = read_options(cfg)
    units = expand_inputs(list(cfg.inputs), opts)
    if not units:
        raise InputFormatError(f"no readable input among {list(cfg.inputs)}")
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
        executor_for(cfg).build(todo, tok, bar)
    finally:
        bar.bar.close()
    t1 = time.perf_counter()
    summaries = [load_summary(t) for t in tasks]
    result = merge_parts(cfg, tok, dtype, tasks, summaries, work)
    log.info("tokenized in %.2f s, merged in %.2f s", t1 - t0, time.perf_counter() - t1)
    if not cfg.keep_work:  # only what this job made: --work-dir may be a folder holding other things
        for sub in ("parts", "merge"):
            shutil.rmtree(work / sub, ignore_errors=True)
    return result


def merge_parts(cfg: ShardConfig, tok: Any, dtype: np.dtype, tasks: list[PartTask], summaries: list[dict[str, Any]],
                work: Path) -> dict[str, Any]:
    """Stage 2: split, weigh, shuffle and write both prefixes and their meta files."""
    langs = sorted({lg for s in summaries for lg in s["langs"]})
    if len(langs) > MAX_LANGS:
        raise too_many_languages(f"the {len(tasks)} inputs together", len(langs))
    gidx = {lg: i for i, lg in enumerate(langs)}
    parts = [PartRef(t.index, str(t.stem), s["documents"], np.array([gidx[lg] for lg in s["langs"]] or [0], np.int64))
             for t, s in zip(tasks, summaries, strict=True)]
    merge_dir = work / "merge"
    shutil.rmtree(merge_dir, ignore_errors=True)  # the merge always starts over; it is cheap next to parts
    merge_dir.mkdir(parents=True)
    plist = [str(cfg.output), f"{cfg.output}_val"]
    stale = stale_outputs(plist, _targets(cfg, plist), work)
    records = PartRecords(parts)
    n_docs, cutoff, has = val_cutoffs(records, len(langs), cfg.val_min_docs)
    threshold = val_threshold(cfg.val_fraction)
    split = ValidationSplit(tuple(langs), n_docs, threshold, cutoff, has)
    plan = MergePlan(parts, langs, split, np.ones(len(langs)), cfg.seed, cfg.bucket_docs, records)
    n_val_max = int(n_docs.sum())
    expected_val = int(cfg.val_fraction * n_val_max) + 1
    source = source_table(summaries, langs)
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
    written: dict[str, dict[str, Any]] = {}
    temps: list[Path] = []
    try:
        for split, total, bits, counts in (("train", train_total, train_bits, train_counts),
                                           ("val", val_total, val_bits, val_counts)):
            lang_path = f"{prefixes[split]}.lang.npy" if cfg.lang_array else None
            tokens = int(counts.table[:, 1].sum()) if counts.table.size else 0
            w = written[split] = write_split(plan, merge_dir, split, bits, total, tokens, prefixes[split], dtype,
                                             lang_path)
            temps += [Path(w[k]) for k in ("bin_tmp", "idx_tmp", "lang_tmp") if w[k]]
        common = common_meta(cfg, tok, dtype, tasks, summaries, langs, weights, source, threshold)
        metas, data, meta_files = {}, [], []
        for split, counts in (("train", train_counts), ("val", val_counts)):
            w = written[split]
            metas[split] = split_meta(common, split, prefixes, counts, langs, w, cfg)
            data += [(Path(w[f"{k}_tmp"]), Path(f"{prefixes[split]}.{ext}"))
                     for k, ext in (("bin", "bin"), ("idx", "idx"), ("lang", "lang.npy")) if w[f"{k}_tmp"]]
            path = Path(f"{prefixes[split]}.meta.json")
            tmp = Path(f"{path}.tmp")
            temps.append(tmp)
            with space_guard(tmp):
                tmp.write_text(json.dumps(metas[split], ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
            meta_files.insert(0, (tmp, path))  # val first, the train meta last
    except BaseException:  # nothing half-done stays behind (a full disk: the space comes back)
        for t in temps:
            t.unlink(missing_ok=True)
        raise
    publish(work, data, meta_files, stale)
    _log_skips(common["skipped"])
    return metas


def _log_skips(skipped: dict[str, int]) -> None:
    if skipped:
        log.warning("skipped: %s", ", ".join(f"{k}={v}" for k, v in skipped.items()))
