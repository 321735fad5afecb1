"""A shard job that is killed, doubled or starved of space, or pointed at a folder or at files it did not write:
no worker outlives a SIGKILLed parent and a rerun gives the same bytes; a second job on the same prefix (any
spelling of its path) fails at once while the first finishes; a dead job's lock blocks nothing; ``-o DIR/``
is refused; a foreign ``P.bin`` survives unless ``--force``; a full disk is one clear error and leaves nothing
that looks finished.

Run: pytest tests/pipelines/test_shard_safety.py
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from shard_testlib import assert_same_output, write_corpus, write_vocab

import rwkv_data.pipelines.shard.job as shard_job
from rwkv_data.cli import main
from rwkv_data.config import ShardConfig, to_dict
from rwkv_data.errors import ConfigError, StorageError
from rwkv_data.pipelines.shard.check import verify
from rwkv_data.pipelines.shard.job import run

# The child runs the real job; ``slow`` only makes each part take a while, so the test can act mid-job.
CHILD = r"""
import json, sys, time
import rwkv_data.pipelines.shard.executors as executors
import rwkv_data.pipelines.shard.job as shard
from rwkv_data.config import ShardConfig

cfg = json.loads(sys.argv[1])
cfg = ShardConfig(**{**cfg, "inputs": tuple(cfg["inputs"]), "ctx_lens": tuple(cfg["ctx_lens"])})
orig = executors.build_part
def slow(task, tok, progress=None):
    out = orig(task, tok, progress)
    time.sleep(float(sys.argv[2]))
    return out
executors.build_part = slow  # what the local executor's workers call
if len(sys.argv) > 3:  # slow merge: each split waits before it is written
    orig_split = shard.write_split
    def slow_split(*a, **kw):
        time.sleep(float(sys.argv[3]))
        return orig_split(*a, **kw)
    shard.write_split = slow_split
shard.run(cfg)
"""
FINAL = (".bin", ".idx", ".lang.npy", ".meta.json")


def _cfg(inputs: list[Path], out: Path | str, vocab: Path, **kw: object) -> ShardConfig:
    return ShardConfig(inputs=tuple(map(str, inputs)), output=str(out), vocab=str(vocab), val_fraction=0.1,
                       val_min_docs=2, ctx_lens=(16,), progress=False, **kw)


def _child(cfg: ShardConfig, pause: float, cwd: Path | None = None, merge_pause: float | None = None
           ) -> subprocess.Popen:
    extra = [] if merge_pause is None else [str(merge_pause)]
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(to_dict(cfg)), str(pause), *extra], cwd=cwd,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _session(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == sid and fields[0] != "Z":
                    pids.append(int(d))
    return pids


def _children(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return []


def _wait(cond, what: str, proc: subprocess.Popen | None = None, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not cond():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the job ended before {what}: {proc.stderr.read().decode() if proc.stderr else ''}")
        assert time.monotonic() < deadline, f"no {what} within {limit} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Path]:
    root = tmp_path_factory.mktemp("safety")
    inputs, _ = write_corpus(root / "in", n=120)
    for i in range(6):  # more units, so the job is caught between parts
        p = root / "in" / f"x{i}.jsonl"
        p.write_text("".join(json.dumps({"text": f"extra {i} doc {j} " * (j + 1), "lang": "en"}) + "\n"
                             for j in range(10)), encoding="utf-8")
        inputs.append(p)
    vocab = write_vocab(root / "vocab.txt")
    ref = root / "ref" / "P"
    run(_cfg(inputs, ref, vocab, workers=1))
    return inputs, vocab, ref


@pytest.mark.parametrize("workers", [2, 4])
def test_sigkill_of_the_parent_leaves_no_worker_and_a_rerun_resumes(setup, tmp_path: Path, workers: int) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=workers)
    proc = _child(cfg, 0.3)
    parts = tmp_path / "P.work" / "parts"
    _wait(lambda: len(_children(proc.pid)) >= 2 and list(parts.glob("*.done")), "worker and finished part", proc)
    workers_seen = _session(proc.pid)
    assert len(workers_seen) >= 2
    os.kill(proc.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    proc.wait()
    _wait(lambda: not _session(proc.pid), "exit of every worker", limit=20)
    assert not Path(f"{tmp_path}/P.meta.json").exists()
    run(cfg)  # the killed job's lock blocks nothing; finished parts are reused
    assert_same_output(ref, tmp_path / "P")


def test_sigkill_while_merging_leaves_no_process_and_a_rerun_resumes(setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=2)
    proc = _child(cfg, 0.0, merge_pause=30)
    _wait(lambda: (tmp_path / "P.work" / "merge").is_dir(), "start of the merge", proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _wait(lambda: not _session(proc.pid), "exit of every process", limit=20)
    assert not Path(f"{tmp_path}/P.meta.json").exists() and not verify(tmp_path / "P")["ok"]
    run(cfg)
    assert_same_output(ref, tmp_path / "P")


def test_a_second_job_on_the_same_prefix_fails_at_once(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, vocab, ref = setup
    (tmp_path / "out").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "out")
    first = _child(_cfg(inputs, "out/P", vocab, workers=1), 0.15, cwd=tmp_path)
    _wait(lambda: (tmp_path / "out" / "P.work" / "parts").is_dir(), "start of the first job", first)
    def no_work(*a: object) -> None:
        raise AssertionError("the second job went on to work instead of failing at once")
    monkeypatch.setattr(shard_job, "load_trie", no_work)
    for spelling in (tmp_path / "out" / "P", tmp_path / "link" / "P", tmp_path / "out" / "." / "P"):
        with pytest.raises(ConfigError, match=r"another rwkv-data shard job \(pid \d+\) is already running on this "
                                              r"output"):
            run(_cfg(inputs, spelling, vocab, workers=1))
    monkeypatch.undo()
    assert first.wait(timeout=120) == 0, first.stderr.read().decode() if first.stderr else ""
    assert_same_output(ref, tmp_path / "out" / "P")
    assert verify(tmp_path / "out" / "P")["ok"]
    assert not list((tmp_path / "out").glob("*lock*")) and not (tmp_path / "out" / "P.work").exists()


def test_a_stale_lock_file_blocks_nothing(setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    Path(f"{tmp_path}/P.shard.lock").write_text("999999999\n")  # left by a killed job: a file, but no flock
    run(_cfg(inputs, tmp_path / "P", vocab, workers=1))
    assert_same_output(ref, tmp_path / "P")


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def test_output_folder_is_refused_and_nothing_is_written(setup, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    inputs, vocab, _ = setup
    (tmp_path / "out").mkdir()
    for o in ("out/", "out", "out/.", "new/"):
        code, _, err = _cli(["shard", *map(str, inputs), "-o", f"{tmp_path}/{o}", "--vocab", str(vocab),
                             "--no-progress"], capsys)
        assert code == 1 and "names a folder" in err and "/NAME" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not list((tmp_path / "out").iterdir())


def test_a_file_we_did_not_write_is_kept_unless_force(setup, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    inputs, vocab, ref = setup
    args = ["shard", *map(str, inputs), "-o", str(tmp_path / "P"), "--vocab", str(vocab), "--no-progress",
            "--val-fraction", "0.1", "--val-min-docs", "2", "--ctx-len", "16", "--workers", "1"]
    for name, content in (("P.bin", b"precious"), ("P_val.idx", b"mine"), ("P.meta.json", b'{"tool": "other"}')):
        path = tmp_path / name
        path.write_bytes(content)
        code, _, err = _cli(args, capsys)
        assert code == 1 and f"{path} exists and was not written by rwkv-data" in err and "--force" in err, err
        assert path.read_bytes() == content
        assert not [p for p in tmp_path.iterdir() if p.name != name], "nothing else was written"
        path.unlink()
    (tmp_path / "P.bin").write_bytes(b"precious")
    assert _cli([*args, "--force"], capsys)[0] == 0
    assert_same_output(ref, tmp_path / "P")
    assert _cli(args, capsys)[0] == 0, "our own outputs are recognised by their meta and rewritten"
    Path(f"{tmp_path}/P.lang.npy").write_bytes(b"edited by hand")  # its size no longer matches the meta
    code, _, err = _cli(args, capsys)
    assert code == 1 and "P.lang.npy exists and was not written by rwkv-data" in err


def test_full_disk_is_one_clear_error_and_leaves_nothing_finished(setup, tmp_path: Path) -> None:
    inputs, vocab, _ = setup
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (not root); test_shard_disk_full.py injects ENOSPC instead")
    try:
        big = tmp_path / "big.jsonl"  # ~600 KB of text: its part alone overflows the 256 KB file system
        big.write_text("".join(json.dumps({"text": f"document {j} " + "the cat sat on the mat " * 40, "lang": "en"})
                               + "\n" for j in range(600)), encoding="utf-8")
        with pytest.raises(StorageError, match=rf"no space left on tmpfs \(mounted at {mnt}, \d+ MB free\) for "
                                               rf"{mnt}/P\.work/parts/part-000000\.(bin|docs)\.tmp"):
            run(_cfg([big], mnt / "P", vocab, workers=1))
        assert not list(mnt.rglob("*.tmp")) and not [p for p in mnt.glob("P*.*") if p.is_file()], \
            "the half-written part is gone"
        # parts elsewhere, outputs on the small disk: the merge's allocation of P.bin fails
        with pytest.raises(StorageError, match=rf"no space left on tmpfs .* for {mnt}/P\.bin\.tmp; the write needs"):
            run(_cfg([big], mnt / "P", vocab, workers=1, work_dir=str(tmp_path / "work")))
        assert not list(mnt.rglob("*.tmp")) and not [p for p in mnt.glob("P*.*") if p.is_file()], \
            "no final name, no temporary left"
        assert not verify(mnt / "P")["ok"]
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _failing_open(suffix: str, code: int):
    """``open`` whose files ending in ``suffix`` fail every write with OSError ``code``."""
    import builtins

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, b):
            raise OSError(code, os.strerror(code))

        def __getattr__(self, k):
            return getattr(self.f, k)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.f.close()

    def fake(path, mode="r", *a, **kw):
        f = builtins.open(path, mode, *a, **kw)
        return Full(f) if str(path).endswith(suffix) and "w" in mode else f
    return fake


@pytest.mark.parametrize("where", ["part", "bin", "idx", "lang", "meta"])
def test_disk_full_injected(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """Every write path turns ENOSPC / EDQUOT / EFBIG into one StorageError naming the file; a finished earlier
    run's files then no longer look finished, and no temporary stays behind."""
    import errno

    import rwkv_data.pipelines.shard.binidx as bx
    import rwkv_data.pipelines.shard.merge as mg
    import rwkv_data.pipelines.shard.parts as pt

    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=1)
    run(cfg)  # a finished run first: the failed rerun must not leave it looking finished
    if where == "part":
        monkeypatch.setattr(pt, "open", _failing_open(".bin.tmp", errno.ENOSPC), raising=False)
        cfg = _cfg(inputs[:1], tmp_path / "P", vocab, workers=1)  # a new part to build
        path, what = r"P\.work/parts/part-000000\.bin\.tmp", "no space left"
    elif where == "bin":
        def full(fd, off, n):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(os, "posix_fallocate", full)
        path, what = r"P\.bin\.tmp; the write needs", "no space left"
    elif where == "idx":
        monkeypatch.setattr(bx, "open", _failing_open(".idx.tmp", errno.EDQUOT), raising=False)
        path, what = r"P\.idx\.tmp", "disk quota exceeded"
    elif where == "lang":
        monkeypatch.setattr(mg, "open", _failing_open(".lang.npy.tmp", errno.ENOSPC), raising=False)
        path, what = r"P\.lang\.npy\.tmp", "no space left"
    else:
        orig = Path.write_text

        def write_text(self, *a, **kw):
            if self.name.endswith(".meta.json.tmp"):
                raise OSError(errno.EFBIG, "File too large")
            return orig(self, *a, **kw)
        monkeypatch.setattr(Path, "write_text", write_text)
        path, what = r"P(_val)?\.meta\.json\.tmp", r"file too large \(file-size limit\)"
    with pytest.raises(StorageError, match=rf"{what} on \S+ \(mounted at .*\) for {tmp_path}/{path}"):
        run(cfg)
    monkeypatch.undo()
    left = sorted(p.name for p in tmp_path.iterdir() if p.is_file())
    assert not [n for n in left if n.endswith((".tmp", ".meta.json"))], left
    assert not verify(tmp_path / "P")["ok"]
    run(_cfg(inputs, tmp_path / "P", vocab, workers=1))  # space back: the rerun completes
    assert_same_output(ref, tmp_path / "P")


KILL_IN_PUBLISH = r"""
import json, os, signal, sys
import rwkv_data.pipelines.shard.outputs as outputs
import rwkv_data.pipelines.shard.job as shard
from rwkv_data.config import ShardConfig

cfg = json.loads(sys.argv[1])
cfg = ShardConfig(**{**cfg, "inputs": tuple(cfg["inputs"]), "ctx_lens": tuple(cfg["ctx_lens"])})
real = os.replace
def replace(src, dst):
    if str(dst).endswith(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
outputs.os.replace = replace
shard.run(cfg)
"""


@pytest.mark.parametrize("at", ["P.idx", "P_val.meta.json"])
def test_sigkill_while_publishing_then_rerun(setup, tmp_path: Path, at: str) -> None:
    """Killed between renames (some new files in place, no meta): not finished, and the rerun, without
    --force, recognises the files as its own and completes."""
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=1)
    run(cfg)  # an earlier finished run
    proc = subprocess.Popen([sys.executable, "-c", KILL_IN_PUBLISH, json.dumps(to_dict(cfg)), at],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.wait(timeout=120) == -signal.SIGKILL, proc.stderr.read().decode() if proc.stderr else ""
    assert not Path(f"{tmp_path}/P.meta.json").exists() and not verify(tmp_path / "P")["ok"]
    run(cfg)
    assert_same_output(ref, tmp_path / "P")
    assert verify(tmp_path / "P")["ok"] and not list(tmp_path.glob("*.tmp"))
