"""Processes a job starts without controlling them (a local Ray instance's agents) die with the job.

Ray's kernel fate sharing kills its raylet and GCS when the job dies, but their children (the dashboard and
runtime-env agents) are re-parented to init and live on. :class:`Reaper` starts a small watchdog process that
notes every process that descends from the job after it was armed; when the job's end of a pipe closes (the
job exits, or is killed with SIGKILL), the watchdog kills the noted processes that are still the same processes
(same start time) and exits. Processes the job had before arming are never touched.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from types import TracebackType

POLL_S = 0.2

WATCHDOG = r"""
import os, select, signal, sys
root, poll, skip = int(sys.argv[1]), float(sys.argv[2]), {int(p) for p in sys.argv[3].split(",") if p}
me = os.getpid()

def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields[19]  # ppid, start time
    except (OSError, ValueError, IndexError):
        return None

def scan(seen):
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            s = stat(int(d))
            if s is not None:
                kids.setdefault(s[0], []).append(int(d))
    stack = [root, *seen]
    while stack:
        for c in kids.get(stack.pop(), []):
            if c != me and c not in skip and c not in seen:
                s = stat(c)
                if s is not None:
                    seen[c] = s[1]
                    stack.append(c)

seen = {}
os.write(1, b"k")  # armed
while True:
    scan(seen)
    ready, _, _ = select.select([0], [], [], poll)
    if ready:
        if not os.read(0, 1):
            break  # the job closed its end: it finished, or it died
        scan(seen)
        os.write(1, b"k")  # Reaper.note(): everything started so far is noted
scan(seen)
for pid, start in seen.items():
    s = stat(pid)
    if s is not None and s[1] == start:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""


class Reaper:
    """Context manager: processes started (directly or not) by this process while it is armed are killed when
    it is left, or when this process dies. Linux (``/proc``) only; elsewhere it does nothing."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Reaper:
        if not os.path.isdir("/proc/self"):
            return self
        before = _descendants(os.getpid())
        self.proc = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(POLL_S),
                                      ",".join(map(str, before))], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.proc.stdout.read(1)  # armed before anything else starts
        return self

    def note(self) -> None:
        """Return once the watchdog has noted every process started so far (it also looks every POLL_S)."""
        if self.proc is None:
            return
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.write(b"s")
            self.proc.stdin.flush()
            self.proc.stdout.read(1)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _descendants(root: int) -> set[int]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                with open(f"/proc/{d}/stat", encoding="utf-8") as f:
                    kids.setdefault(int(f.read().rsplit(")", 1)[1].split()[1]), []).append(int(d))
    out, stack = set(), [root]
    while stack:
        for c in kids.get(stack.pop(), []):
            if c not in out:
                out.add(c)
                stack.append(c)
    return out
