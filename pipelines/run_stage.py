"""One stage of ``rwkv-data run``: its folder, its key, and running its job unless it is finished or skipped."""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rwkv_data.config import RunConfig, to_dict
from rwkv_data.pipelines.jobs import MARKER, JobResult, read_marker, record

log = logging.getLogger(__name__)

RUNTIME_ONLY = {"progress", "threads", "workers", "device"}  # never change a stage's outputs


def _key(stage: str, cfg: Any, upstream: list[str], out: Path) -> str:
    conf = {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_ONLY}
    blob = json.dumps({"stage": stage, "config": conf, "upstream": upstream}, sort_keys=True, default=str)
    blob = blob.replace(str(out), "<run>")  # a moved run folder keeps its keys
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def expand(inputs: tuple[str, ...] | list[str]) -> list[str]:
    """Inputs with glob patterns expanded (sorted), others as given."""
    out: list[str] = []
    for p in inputs:
        out += sorted(glob.glob(p)) if glob.has_magic(p) else [p]
    return out


def fingerprint(inputs: tuple[str, ...] | list[str]) -> str:
    """Paths, sizes and mtimes of the input files: an edited corpus redoes the stages that read it."""
    files: list[str] = []
    for p in expand(inputs):
        path = Path(p)
        found = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in found:
            st = f.stat() if f.is_file() else None
            files.append(f"{f}:{st.st_size}:{st.st_mtime_ns}" if st else str(f))  # hf:NAME and the like as given
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


class Stage:
    """One stage's folder, key and outcome; :meth:`run` runs the job unless it is finished or skipped."""

    def __init__(self, rc: RunConfig, name: str, out: Path, cfg: Any, upstream: list[str]) -> None:
        self.name, self.out, self.folder, self.cfg = name, out, out / name, cfg
        self.key = _key(name, cfg, upstream, out)
        self.status = "pending"
        self.outputs: dict[str, str] = {}
        self.seconds = 0.0
        self.skip, self.redo = name in rc.skip, name in rc.redo

    def _reuse(self, done: dict[str, Any] | None) -> bool | None:
        """True/False when the stage is settled without running (finished earlier, skipped); None to run it."""
        if self.skip:
            if done:  # a finished earlier run: later stages may still use it
                self.status, self.key, self.outputs = "skipped (earlier output used)", done["key"], self._abs(done)
                log.info("%s: skipped; using the finished output in %s", self.name, self.folder)
                return True
            self.status = "skipped"
            log.info("%s: skipped (--skip)", self.name)
            return False
        if done and done.get("key") == self.key and not self.redo:
            self.status, self.outputs, self.seconds = "finished earlier", self._abs(done), done.get("seconds", 0.0)
            log.info("%s: finished earlier, not redone (%s; --redo %s to run it again)", self.name,
                     self.folder / MARKER, self.name)
            return True
        return None

    def run(self, job: Callable[[], JobResult | tuple[dict[str, Any], dict[str, str]]],
            writes_own_json: bool = False) -> bool:
        """Run ``job`` (a JobResult, or ``(stats, outputs)``) unless finished with this key; records the contract's
        files (``writes_own_json`` is accepted for older callers: the record is the same); False when skipped."""
        done = read_marker(self.folder)
        settled = self._reuse(done)
        if settled is not None:
            return settled
        if done:  # start clean: no checkpoint or file of the old settings may survive next to the new ones
            log.info("%s: %s; running again", self.name, "--redo" if self.redo else "settings or inputs changed")
            (self.folder / MARKER).unlink()  # first, so an interrupted redo never looks finished
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)  # an interrupted run's files stay (shard parts resume)
        log.info("%s: running in %s", self.name, self.folder)
        self.status = "running"
        t0 = time.perf_counter()
        result = job()
        if not isinstance(result, JobResult):
            result = JobResult(*result)
        self.seconds = round(time.perf_counter() - t0, 2)
        self.outputs = result.outputs
        rel = {k: os.path.relpath(v, self.out) for k, v in self.outputs.items()}  # the folder may be moved
        record(self.folder, self.cfg, JobResult({**result.stats, "seconds": self.seconds}, result.outputs),
               {"stage": self.name, "key": self.key, "outputs": rel, "seconds": self.seconds})
        self.status = "ran"
        log.info("%s: done in %.1f s", self.name, self.seconds)
        return True

    def _abs(self, marker: dict[str, Any]) -> dict[str, str]:
        return {k: str(self.out / v) for k, v in marker.get("outputs", {}).items()}

    def unavailable(self, why: str) -> None:
        self.status = f"not run ({why})"
        log.warning("%s: not run: %s", self.name, why)
