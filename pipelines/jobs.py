"""The job contract: a frozen config dataclass in, a :class:`JobResult` (stats and output paths) out.

Every job (``vocab`` train and extend, ``shard``, ``train``, ``evaluate``, ``finetune``, ``audit``) is one entry
of :data:`JOBS`: its config class and a function that runs it and returns a :class:`JobResult`. The job
modules keep their own ``run`` (whose richer return values the CLI prints); the functions here only import
them lazily and name what they wrote. :func:`record` then writes the contract's files into a folder:
``config.json``, ``stats.json`` and last the completion marker ``.done``, each atomically, so a folder with
a marker is a finished job and a folder without one never looks finished. ``rwkv-data run`` is a table of
stages over these jobs (pipelines/run.py); it knows no job's return shape or file names.

>>> result = JOBS["shard"].run(ShardConfig(inputs=("corpus/",), output="data/x"))  # doctest: +SKIP
>>> result.outputs
{'train': 'data/x', 'val': 'data/x_val'}
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rwkv_data import config as C
from rwkv_data.atomic import atomic_write_json
from rwkv_data.config import to_dict
from rwkv_data.jsonfile import read_json

MARKER = ".done"


@dataclass(frozen=True)
class JobResult:
    """What a job did: JSON-ready ``stats`` and the ``outputs`` it wrote (name -> file, folder or prefix)."""

    stats: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One job: its config class and how to run it (``run(cfg, **context)``; context: ``progress``, ...)."""

    name: str
    config: type
    run: Callable[..., JobResult]


def record(folder: Path, cfg: Any, result: JobResult, marker: dict[str, Any]) -> None:
    """Write ``config.json``, ``stats.json`` and then the ``.done`` marker (``marker`` plus a timestamp)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "config.json", to_dict(cfg))
    atomic_write_json(folder / "stats.json", result.stats)
    atomic_write_json(folder / MARKER, {**marker, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The ``.done`` marker of ``folder``, or None when the job there has not finished."""
    try:
        marker = read_json(folder / MARKER)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) else None


# ---- the jobs -----------------------------------------------------------------------------------------------


def _vocab(cfg: C.VocabConfig, exclude: Callable[[bytes, str], bool] | None = None, **_: Any) -> JobResult:
    from rwkv_data.pipelines.vocab import job

    s = job.run(cfg, exclude=exclude)
    return JobResult(s, {"vocab": s["output"], "meta": s["meta"]})


def _vocab_extend(cfg: C.VocabConfig, **_: Any) -> JobResult:
    from rwkv_data.pipelines.vocab import job

    s = job.run_extend(cfg)
    return JobResult(s, {"vocab": s["output"], "idmap": s["idmap"], "meta": f"{s['output']}.meta.json"})


def _shard(cfg: C.ShardConfig, **_: Any) -> JobResult:
    from rwkv_data.pipelines.shard import job

    metas = job.run(cfg)
    keep = ("documents", "tokens", "bytes", "characters", "items", "languages", "per_language", "rwkv_lm")
    stats = {split: {k: m[k] for k in keep if k in m} for split, m in metas.items()}
    return JobResult(stats, {"train": cfg.output, "val": f"{cfg.output}_val"})


def _train(cfg: C.TrainConfig, progress: bool = True, **_: Any) -> JobResult:
    from rwkv_data.pipelines.train import job

    s = job.run(cfg, progress=progress)
    return JobResult(s, {"checkpoint": s["checkpoint"], "log": str(Path(cfg.out_dir) / "train_log.jsonl")})


def _finetune(cfg: C.FinetuneConfig, progress: bool = True, **_: Any) -> JobResult:
    from rwkv_data.pipelines.train import finetune

    s = finetune.run(cfg, progress=progress)
    return JobResult(s, {"checkpoint": s["checkpoint"], "log": str(Path(cfg.out_dir) / "train_log.jsonl")})


def _evaluate(cfg: C.EvalConfig, progress: bool = True, **_: Any) -> JobResult:
    from rwkv_data.pipelines.train import evaluate

    r = evaluate.run(cfg, progress=progress)
    out = Path(cfg.out_dir)
    return JobResult({k: r[k] for k in ("languages", "tokens", "tokens_per_s", "convention") if k in r},
                     {"eval": str(out / "eval.json"), "csv": str(out / "eval.csv")})


def _audit(cfg: C.AuditConfig, **_: Any) -> JobResult:
    from rwkv_data.pipelines.audit import job

    r = job.run(cfg)
    stats = json.loads((r.out_dir / "stats.json").read_text(encoding="utf-8"))
    outputs = {"summary": str(r.out_dir / "summary.json"), "csv": str(r.out_dir / "languages.csv")}
    if cfg.html:
        outputs["report"] = str(r.out_dir / "report.html")
    return JobResult({**stats, "failures": r.failures}, outputs)


JOBS: dict[str, Job] = {j.name: j for j in (
    Job("vocab", C.VocabConfig, _vocab),
    Job("vocab extend", C.VocabConfig, _vocab_extend),
    Job("shard", C.ShardConfig, _shard),
    Job("train", C.TrainConfig, _train),
    Job("finetune", C.FinetuneConfig, _finetune),
    Job("evaluate", C.EvalConfig, _evaluate),
    Job("audit", C.AuditConfig, _audit),
)}
