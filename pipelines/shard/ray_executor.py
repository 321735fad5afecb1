"""The ``ray`` executor of ``rwkv-data shard``: stage 1 (the parts) as Ray tasks, on this machine or a cluster.

Each missing part is one Ray task that calls :func:`.parts.build_part`, the very function the local
executor's processes call, so a task writes the same part files and the same completion marker into the work
folder, and the merge (:func:`.job.merge_parts`) then runs on the driver as it always does. Hence the output
bytes equal the local executor's, and a rerun (with either executor) redoes only the parts without a marker.

On a cluster the work folder (``--work-dir``, default ``P.work``) must lie on a file system that every node and
the driver see (NFS, Lustre, a shared volume); the driver checks each marker after its task and says so when it
cannot see one. Every node needs the same rwkv-data (and vocab file path, if any) installed: tasks import
``rwkv_data.pipelines.shard.ray_executor`` by name.

A local instance the job starts (no ``--ray-address``) does not outlive it: ``ray.init`` starts its raylet and
GCS with Ray's kernel fate sharing on Linux (``PR_SET_PDEATHSIG``), and a :class:`.reaper.Reaper` watchdog kills
what they started (the dashboard and runtime-env agents, which fate sharing misses) when the job exits or is
killed; a normal exit or error also calls ``ray.shutdown()``. A cluster given
with ``--ray-address`` is not ours: its running tasks are cancelled on error, and it keeps running.

Ray is an optional dependency (``pip install 'rwkv-data[ray]'``) imported only inside this module's functions.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from rwkv_data.config import ShardConfig
from rwkv_data.errors import ConfigError, DependencyMissing, RwkvDataError
from rwkv_data.pipelines.shard.executors import largest_first
from rwkv_data.pipelines.shard.parts import PartTask, build_part, is_done
from rwkv_data.pipelines.shard.reaper import Reaper

log = logging.getLogger(__name__)

# Ray retries a task whose worker process died (OOM kill, lost node); a part is idempotent (temporary names,
# marker last), so a retry is safe. Errors raised by the part itself (bad input) are not retried.
MAX_RETRIES = 3
# Tasks in flight per cluster CPU: enough to keep every CPU busy while results come back, few enough that a
# million-part job does not queue a million task specs at once.
IN_FLIGHT_PER_CPU = 2

# One deserialized tokenizer per Ray worker process (workers are reused across tasks), keyed by its sha256:
# a World vocab takes ~0.1 s to unpickle, which would otherwise be paid by every part.
_TOKENIZER: dict[str, Any] = {}


def require_ray() -> Any:
    """Import and return ``ray``, or raise :class:`DependencyMissing` naming the pip extra."""
    try:
        import ray
    except ImportError as exc:
        raise DependencyMissing("the ray executor needs Ray: pip install 'rwkv-data[ray]'") from exc
    return ray


def _part_task(task: PartTask, tokenizer_sha256: str, tokenizer_box: list[Any]) -> dict[str, Any]:
    """The body of one Ray task: the local executor's per-part function with this worker's tokenizer.

    ``tokenizer_box`` wraps the tokenizer's ObjectRef in a list so that Ray passes the reference instead of
    resolving it, and the worker fetches the object only when it has no tokenizer with this hash yet.
    """
    tokenizer = _TOKENIZER.get(tokenizer_sha256)
    if tokenizer is None:
        import ray

        _TOKENIZER.clear()  # one tokenizer per worker, however many jobs reuse the worker
        tokenizer = _TOKENIZER[tokenizer_sha256] = ray.get(tokenizer_box[0])
    return build_part(task, tokenizer)


def connect(ray: Any, cfg: ShardConfig) -> bool:
    """Attach this process to Ray; returns True when it did (and so should call ``ray.shutdown()``).

    An already initialised Ray (a notebook, a test, a Ray job's driver) is used as it is. ``ray_address``
    connects to a running cluster (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``); without it the job starts
    a private local instance with ``cfg.workers`` CPUs.
    """
    if ray.is_initialized():
        return False
    if cfg.ray_address:
        _reachable(cfg.ray_address)
    try:
        if cfg.ray_address:
            ray.init(address=cfg.ray_address, include_dashboard=False, log_to_driver=True)
        else:
            ray.init(address="local", num_cpus=cfg.workers, include_dashboard=False, log_to_driver=True)
    except ConnectionError as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at --ray-address {cfg.ray_address!r}: {exc}; "
                          "start one with `ray start --head` or leave --ray-address out for a local "
                          "instance") from exc
    return True


class RayExecutor:
    """Parts built as Ray tasks (``cfg.ray_address``, or a private local instance with ``cfg.workers`` CPUs)."""

    def __init__(self, cfg: ShardConfig) -> None:
        self.cfg = cfg

    def build(self, todo: list[PartTask], tokenizer: Any, bar: Any) -> None:
        """Build the missing parts ``todo`` as Ray tasks; ``bar`` is the job's progress bar."""
        build_parts_ray(todo, tokenizer, self.cfg, bar)


def build_parts_ray(todo: list[PartTask], tokenizer: Any, cfg: ShardConfig, bar: Any) -> None:
    """Build the missing parts ``todo`` as Ray tasks; ``bar`` is the job's progress bar (``shard._Bar``)."""
    if not todo:
        return
    ray = require_ray()
    local = not ray.is_initialized() and not cfg.ray_address
    with Reaper() if local else contextlib.nullcontext() as reaper:  # a local instance's agents die with the job
        started = connect(ray, cfg)
        if reaper is not None:
            reaper.note()
        try:
            _run_tasks(ray, todo, tokenizer, bar)
        finally:
            if started:
                ray.shutdown()


def _run_tasks(ray: Any, todo: list[PartTask], tokenizer: Any, bar: Any) -> None:
    remote = ray.remote(_part_task).options(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=False)
    box = [ray.put(tokenizer)]
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    log.info("ray: %d parts on %d CPUs", len(todo), cpus)
    queue = largest_first(todo)[::-1]  # pop() from the end: largest first, as locally
    running: dict[Any, PartTask] = {}
    try:
        while queue or running:
            while queue and len(running) < IN_FLIGHT_PER_CPU * cpus:
                task = queue.pop()
                running[remote.remote(task, tokenizer.sha256, box)] = task
            done, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
            for ref in done:
                task = running.pop(ref)
                summary = _result(ray, ref)
                if not is_done(task):
                    raise ConfigError(f"part {task.index} ({task.unit.describe()}) was built by a Ray worker, but "
                                      f"its marker {task.stem}.done is not visible here: --work-dir must be on a "
                                      "file system shared by every Ray node and this machine")
                nbytes = sum(c["bytes"] for c in summary["per_language"].values())
                bar.update(summary["documents"], nbytes, summary["tokens"])
                bar.bar.update(1)
    except BaseException:
        for ref in running:  # a running part aborts itself and removes its temporary files
            ray.cancel(ref)
        raise


def _result(ray: Any, ref: Any) -> dict[str, Any]:
    """The task's summary; a domain error raised inside the task (bad input) is re-raised as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, RwkvDataError):
            raise exc.cause from exc
        raise


REACH_TIMEOUT_S = 5.0


def _reachable(address: str) -> None:
    """ConfigError within seconds when ``address`` (``HOST:PORT`` or ``ray://HOST:PORT``) takes no connection:
    ``ray.init`` would retry for a minute or more before failing."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or address == "auto":
        return  # "auto" or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=REACH_TIMEOUT_S).close()
    except (OSError, ValueError, OverflowError) as exc:
        raise ConfigError(f"cannot connect to the Ray cluster at --ray-address {address!r} ({exc}); start one "
                          "with `ray start --head`, or leave --ray-address out for a local instance") from None
