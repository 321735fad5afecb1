"""``rwkv-data run``: the whole pipeline in one run folder, corpus in, per-language validated model and audit out.

The pipeline is the table :data:`PIPELINE`: one :class:`StageSpec` per stage, in order, each naming its job
(pipelines/jobs.py), how its config is made from the run's config and the earlier stages' outputs, and what
its key depends on. Each stage runs in its own subfolder of the run folder::

    vocab/     vocab.txt (+ .meta.json)                vocab job     (on the shard's training split)
    shard/     data.bin/.idx, data_val.*, *.meta.json  shard job     (validation split by content hash)
    train/     rwkv-final.pth, train_log.jsonl         train job     (tiny RWKV-7, GPU when there is one)
    evaluate/  eval.json, eval.csv                     evaluate job  (bits per byte per language)
    audit/     report.html, summary.json, languages.csv audit job    (our vocab vs World on the corpus)

Every stage folder holds the job contract's ``config.json``, ``stats.json`` and last the ``.done`` marker. The
marker carries a key: the sha256 of the stage's config, its input files' sizes and mtimes, and the keys of
the stages it reads, so a rerun skips a finished stage, and redoes it (in an emptied folder, and everything
after it) when its settings, its corpus or an input stage changed. A skipped stage (``--skip``) is not run;
later stages use its finished output when the folder has one (a skipped vocab otherwise means RWKV World, a
skipped shard or train means the stages that need them are not run). When a stage fails, the stages before
it keep their results and :class:`StageFailed` carries the run's result so far.

>>> result = run(load_run_config("examples/demo.toml"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rwkv_data.config import CORPUS_KEYS, STAGES, CorpusSpec, RunConfig
from rwkv_data.demo import demo_corpus_path
from rwkv_data.errors import RwkvDataError, describe
from rwkv_data.pipelines.jobs import JOBS, JobResult
from rwkv_data.pipelines.run_config import default_out, load_run_config
from rwkv_data.pipelines.run_report import format_result, result_of
from rwkv_data.pipelines.run_stage import Stage, expand, fingerprint

# the stage runner's parts, as the compare pipeline (pipelines/compare/job.py) uses them
_expand, _fingerprint = expand, fingerprint

log = logging.getLogger(__name__)

__all__ = ["PIPELINE", "STAGES", "StageFailed", "default_out", "format_result", "load_run_config", "run"]


class StageFailed(RwkvDataError):
    """A stage of ``rwkv-data run`` failed; ``result`` is the run's result so far (what finished, files)."""

    def __init__(self, stage: str, error: BaseException, result: dict[str, Any]) -> None:
        super().__init__(f"{stage} stage failed: {describe(error)}")
        self.stage, self.result = stage, result


class Context:
    """What stages read while the run goes: its config, folder, corpus and the stages so far."""

    def __init__(self, rc: RunConfig, out: Path, progress: bool) -> None:
        self.rc, self.out, self.progress = rc, out, progress
        self.corpus = rc.corpus if rc.corpus.inputs else dataclasses.replace(
            rc.corpus, inputs=(str(demo_corpus_path()),))
        self.stages: dict[str, Stage] = {}

    def output(self, stage: str, name: str) -> str:
        """An output of an earlier stage ("" when it has none, was skipped without output or did not run)."""
        st = self.stages.get(stage)
        return st.outputs.get(name, "") if st else ""

    @property
    def vocab(self) -> str:
        return self.output("vocab", "vocab") or "world"

    @property
    def vocab_key(self) -> str:
        return self.stages["vocab"].key if self.output("vocab", "vocab") else "world"


def with_corpus(cfg: Any, corpus: CorpusSpec) -> Any:
    """``cfg`` with the run's corpus keys, except those the stage's own section changed from the default."""
    default = CorpusSpec()
    keep = {k: getattr(corpus, k) for k in CORPUS_KEYS if getattr(cfg, k) == getattr(default, k)}
    return dataclasses.replace(cfg, **keep)


@dataclasses.dataclass(frozen=True)
class StageSpec:
    """One row of the pipeline: the stage's job, its config, its key's dependencies and what it cannot lack."""

    name: str
    job: str  # a key of pipelines.jobs.JOBS
    configure: Callable[[Context], Any]  # the job config, paths filled in
    upstream: Callable[[Context, Any], list[str]]  # keys and fingerprints the stage's result depends on
    needs: tuple[str, str, str] | None = None  # (stage, output, why not run) this stage cannot run without
    context: Callable[[Context], dict[str, Any]] = lambda c: {}  # extra arguments of the job


# ---- the stages ---------------------------------------------------------------------------------------------


def _split_cfg(c: Context) -> Any:
    """The shard settings that decide the validation split (the vocab is trained without its documents)."""
    return with_corpus(c.rc.shard, c.corpus)


def _split_key(c: Context) -> list[str]:
    from rwkv_data.pipelines.shard.job import SPLIT_OPTIONS

    split = _split_cfg(c)
    return [fingerprint(split.inputs), *(repr(getattr(split, k)) for k in SPLIT_OPTIONS)]


def _vocab_exclude(c: Context) -> dict[str, Any]:
    from rwkv_data.pipelines.shard.job import validation_split_of

    return {"exclude": validation_split_of(_split_cfg(c)).is_validation}


def _audit_cfg(c: Context) -> Any:
    rc = c.rc.audit
    ours = (f"ours={c.vocab}",) if c.output("vocab", "vocab") else ()
    cfg = dataclasses.replace(rc, tokenizers=ours + tuple(t for t in rc.tokenizers if t not in ours),
                              out_dir=str(c.out / "audit"), threads=rc.threads or c.rc.threads)
    return cfg if rc.corpus else with_corpus(cfg, c.corpus)


PIPELINE: tuple[StageSpec, ...] = (
    StageSpec("vocab", "vocab",
              lambda c: dataclasses.replace(with_corpus(c.rc.vocab, c.corpus),
                                            output=str(c.out / "vocab" / "vocab.txt"),
                                            threads=c.rc.vocab.threads or c.rc.threads),
              lambda c, cfg: [fingerprint(cfg.inputs), *_split_key(c)], context=_vocab_exclude),
    StageSpec("shard", "shard",
              lambda c: dataclasses.replace(with_corpus(c.rc.shard, c.corpus), output=str(c.out / "shard" / "data"),
                                            vocab=c.vocab),
              lambda c, cfg: [c.vocab_key, fingerprint(cfg.inputs)]),
    StageSpec("train", "train",
              lambda c: dataclasses.replace(c.rc.train, data=c.output("shard", "train"),
                                            val_data=c.output("shard", "val"), vocab=c.vocab,
                                            out_dir=str(c.out / "train")),
              lambda c, cfg: [c.stages["shard"].key], needs=("shard", "train", "no shards"),
              context=lambda c: {"progress": c.progress}),
    StageSpec("evaluate", "evaluate",
              lambda c: dataclasses.replace(c.rc.evaluate, checkpoint=c.output("train", "checkpoint"),
                                            data=c.output("shard", "val"), inputs=(), vocab=c.vocab,
                                            out_dir=str(c.out / "evaluate")),
              lambda c, cfg: [c.stages["train"].key, c.stages["shard"].key],
              needs=("train", "checkpoint", "no trained checkpoint"), context=lambda c: {"progress": c.progress}),
    StageSpec("audit", "audit", _audit_cfg,
              lambda c, cfg: [c.vocab_key, fingerprint(cfg.inputs or (cfg.corpus,))]),
)
assert tuple(s.name for s in PIPELINE) == STAGES


# ---- running ------------------------------------------------------------------------------------------------


def _set_threads(threads: int) -> None:
    """torch CPU threads: ``threads``, or with 0 torch's default unless the CPU is already busy.

    On a busy machine OpenMP's spin-waiting threads fight the other processes: on 2 cores at load average 8-9,
    the demo's 60 training steps took 341 s with 2 threads and 90 s with 1.
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        return
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if torch.get_num_threads() > 1 and load >= cores:
        log.info("the CPU is busy (load average %.1f on %d cores): using 1 torch thread (--threads N to choose)",
                 load, cores)
        torch.set_num_threads(1)


def _run_stage(c: Context, spec: StageSpec) -> None:
    """Configure one stage, then run its job unless it is finished, skipped or lacks an earlier output."""
    cfg = spec.configure(c)
    st = c.stages[spec.name] = Stage(c.rc, spec.name, c.out, cfg, spec.upstream(c, cfg))
    if spec.needs and not c.output(spec.needs[0], spec.needs[1]) and not st.skip:
        st.unavailable(spec.needs[2])
        return
    job = JOBS[spec.job]

    def execute() -> JobResult:
        return job.run(cfg, **spec.context(c))

    st.run(execute)


def _write_json(path: Path, obj: Any) -> None:
    from rwkv_data.atomic import atomic_write_json

    atomic_write_json(path, obj)


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage not finished or skipped; returns the per-language table, statuses and written files.

    A failing stage raises :class:`StageFailed` holding the result so far (the CLI prints it, then the error).
    """
    t_start = time.perf_counter()
    out = Path(cfg.out_dir or "runs/demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    _set_threads(cfg.threads)
    from rwkv_data.atomic import atomic_write_json
    from rwkv_data.config import to_dict

    atomic_write_json(out / "run.json", to_dict(cfg))
    c = Context(cfg, out, progress)
    for spec in PIPELINE:
        try:
            _run_stage(c, spec)
        except Exception as exc:  # what finished so far goes with the error
            if spec.name in c.stages:
                c.stages[spec.name].status = "failed"
            raise StageFailed(spec.name, exc, result_of(out, c.stages, time.perf_counter() - t_start)) from exc
    return result_of(out, c.stages, time.perf_counter() - t_start)
