"""Where the shard job's stage 1 runs: one small interface, two executors.

An executor has one method, ``build(todo, tokenizer, bar)``: build every missing part of ``todo`` with
:func:`.parts.build_part` (which writes the part's files and its completion marker) and advance the job's
progress bar. Parts depend only on their task, so every executor gives the same bytes. :class:`LocalExecutor`
runs them in this process or a process pool; ``RayExecutor`` (:mod:`.ray_executor`) as Ray tasks.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from rwkv_data.config import ShardConfig
from rwkv_data.pipelines.shard.outputs import die_with_parent
from rwkv_data.pipelines.shard.parts import PartTask, build_part


class PartExecutor(Protocol):
    """Builds the missing parts of a shard job."""

    def build(self, todo: list[PartTask], tokenizer: Any, bar: Any) -> None:
        """Build the parts of ``todo`` (markers included); ``bar`` is the job's progress bar."""


def executor_for(cfg: ShardConfig) -> PartExecutor:
    """The executor ``cfg.executor`` names (``local`` or ``ray``)."""
    if cfg.executor == "ray":
        from rwkv_data.pipelines.shard.ray_executor import RayExecutor

        return RayExecutor(cfg)
    return LocalExecutor(cfg.workers)


_WORKER: dict[str, Any] = {}


def _init_worker(tokenizer: Any, counters: Any, parent_pid: int) -> None:
    die_with_parent(parent_pid)  # a killed job leaves no worker behind
    _WORKER.update(tokenizer=tokenizer, counters=counters)


def _count(docs: int, nbytes: int, tokens: int) -> None:
    c = _WORKER["counters"]
    with c.get_lock():
        c[0] += docs
        c[1] += nbytes
        c[2] += tokens


def _work(task: PartTask) -> dict[str, Any]:
    return build_part(task, _WORKER["tokenizer"], _count)


class LocalExecutor:
    """Parts built in this process (``workers=1``) or in a pool of ``workers`` processes on this machine."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def build(self, todo: list[PartTask], tokenizer: Any, bar: Any) -> None:
        """Build the missing parts ``todo``; ``bar`` is the job's progress bar."""
        _build_local(todo, tokenizer, self.workers, bar)


def _build_local(todo: list[PartTask], tokenizer: Any, workers: int, bar: Any) -> None:
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
    order = largest_first(todo)
    with cf.ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                initargs=(tokenizer, counters, os.getpid())) as pool:
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


def largest_first(todo: list[PartTask]) -> list[PartTask]:
    """The tasks, largest input first, so the last part to finish is a small one (the part index, not the
    order of completion, fixes the output order)."""
    return sorted(todo, key=lambda t: -_unit_size(t))


def _unit_size(task: PartTask) -> int:
    if task.unit.rows >= 0:
        return task.unit.rows * 1000
    try:
        return os.path.getsize(task.unit.path)
    except OSError:
        return 0
