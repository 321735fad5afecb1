"""The Reaper behind the Ray executor's clean-up: processes started while it is armed die when the job is killed
with SIGKILL (even those re-parented to init, as a local Ray instance's agents are); processes the job had
before arming are left alone; leaving the block normally also ends what was started inside.

Run: pytest tests/pipelines/test_shard_reaper.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rwkv_data.pipelines.shard.reaper import Reaper

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="the reaper reads /proc (Linux)")

JOB = r"""
import subprocess, sys, time
from rwkv_data.pipelines.shard.reaper import Reaper
before = subprocess.Popen(["sleep", "300"])
with Reaper() as reaper:
    # like Ray's raylet: a child with a child of its own (re-parented to init when the job dies)
    mid = subprocess.Popen([sys.executable, "-c", "import subprocess, time; print(subprocess.Popen(['sleep', '300'])"
                            ".pid, flush=True); time.sleep(300)"], stdout=subprocess.PIPE, text=True)
    orphan = int(mid.stdout.readline())
    direct = subprocess.Popen(["sleep", "300"])
    reaper.note()
    print(before.pid, orphan, direct.pid, mid.pid, flush=True)
    time.sleep(300)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while any(map(_alive, pids)):
        assert time.monotonic() < deadline, f"still alive: {[p for p in pids if _alive(p)]}"
        time.sleep(0.05)


def test_sigkill_of_the_job_kills_what_it_started_while_armed() -> None:
    job = subprocess.Popen([sys.executable, "-c", JOB], stdout=subprocess.PIPE, text=True)
    before = -1
    try:
        before, orphan, direct, mid = map(int, job.stdout.readline().split())
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        _wait_gone([orphan, direct, mid])
        assert _alive(before), "a process started before arming is not the reaper's"
    finally:
        if before > 0 and _alive(before):
            os.kill(before, signal.SIGKILL)
        job.kill()


def test_leaving_the_block_ends_what_was_started_inside() -> None:
    with Reaper() as reaper:
        p = subprocess.Popen(["sleep", "300"])
        reaper.note()
    p.wait(timeout=20)
    assert p.returncode == -signal.SIGKILL
