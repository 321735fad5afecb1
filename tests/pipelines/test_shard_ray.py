"""The shard job's Ray executor (pipelines/shard/ray_executor.py) against the local executor, on a private local Ray
instance (2 CPUs, loopback only, temp files under tmp_path): byte-identical P / P_val outputs and meta, parts
resumed the same way in both directions (a part with its completion marker is never redone), a bad record's
InputFormatError surfacing as itself, and the pip hint when Ray is absent. About 20-40 s, most of it Ray start-up.

Run: pytest tests/pipelines/test_shard_ray.py   (needs ``pip install 'rwkv-data[ray]'``; skipped without Ray)
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from shard_testlib import assert_same_output, write_corpus, write_vocab

from rwkv_data.cli import main
from rwkv_data.config import ShardConfig
from rwkv_data.errors import DependencyMissing, InputFormatError
from rwkv_data.pipelines.shard.job import run


def _cfg(inputs: list[Path], out: Path, vocab: Path, **kw: object) -> ShardConfig:
    base = {"val_fraction": 0.1, "val_min_docs": 2, "ctx_lens": (16, 64), "progress": False}
    return ShardConfig(inputs=tuple(map(str, inputs)), output=str(out), vocab=str(vocab), **{**base, **kw})


def _stamps(parts: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of each part's tokens: a rebuilt part is renamed into place, so both change."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(parts.glob("*.bin"))}


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    ray = pytest.importorskip("ray")
    # address="local": never attach to some other Ray running on this machine; short temp dir for Ray's sockets
    ray.init(address="local", num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
             object_store_memory=80 << 20, _temp_dir=str(tmp_path_factory.mktemp("ray")))
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], Path, Path]:
    """A small multi-format corpus (11 parts) and the local executor's output on it."""
    root = tmp_path_factory.mktemp("shard_ray")
    inputs, _ = write_corpus(root / "in", n=160)
    for i in range(4):  # more units, so that several tasks run at once
        p = root / "in" / f"x{i}.jsonl"
        p.write_text("".join(json.dumps({"text": f"extra {i} doc {j} " * (j + 1), "lang": "en"}) + "\n"
                             for j in range(10)), encoding="utf-8")
        inputs.append(p)
    vocab = write_vocab(root / "vocab.txt")
    ref = root / "ref" / "P"
    run(_cfg(inputs, ref, vocab, workers=1))
    return inputs, vocab, ref


def test_ray_executor_equals_local(ray_local, setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    metas = run(_cfg(inputs, tmp_path / "P", vocab, executor="ray"))
    assert_same_output(ref, tmp_path / "P")
    assert "executor" not in metas["train"]["config"], "the executor never changes the output, so meta omits it"
    assert not (tmp_path / "P.work").exists()


def test_cli_ray_resumes_local_parts_and_local_resumes_ray_parts(ray_local, setup, tmp_path: Path) -> None:
    inputs, vocab, ref = setup
    cfg = _cfg(inputs, tmp_path / "P", vocab, keep_work=True)
    parts = tmp_path / "P.work" / "parts"
    run(cfg)  # local executor, parts kept
    before = _stamps(parts)
    assert len(before) == len(inputs) + 1  # the parquet file holds 2 row groups
    redo = sorted(before)[1::4]
    for name in redo:  # as if the job had been killed before these parts were marked complete
        (parts / name).with_suffix(".done").unlink()
    args = ["shard", *map(str, inputs), "-o", str(tmp_path / "P"), "--vocab", str(vocab), "--val-fraction", "0.1",
            "--val-min-docs", "2", "--ctx-len", "16", "--ctx-len", "64", "--no-progress", "--keep-work",
            "--executor", "ray"]
    main(args)  # the ray executor (on the running instance) rebuilds only the unmarked parts
    after = _stamps(parts)
    assert [k for k in before if after[k] != before[k]] == redo, "only the unmarked parts were redone"
    assert_same_output(ref, tmp_path / "P")
    for name in redo[:1]:  # and the local executor reuses what the Ray tasks built
        (parts / name).with_suffix(".done").unlink()
    again = after
    run(dataclasses.replace(cfg, executor="local"))
    after = _stamps(parts)
    assert [k for k in again if after[k] != again[k]] == redo[:1]
    assert_same_output(ref, tmp_path / "P")


def test_bad_record_raises_input_format_error(ray_local, setup, tmp_path: Path) -> None:
    inputs, vocab, _ = setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "lang": "en"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(InputFormatError, match="bad.jsonl") as info:
        run(_cfg([*inputs[:2], bad], tmp_path / "P", vocab, executor="ray"))
    assert isinstance(info.value.__cause__, ray_local.exceptions.RayTaskError), "raised inside a Ray task"
    assert not list((tmp_path / "P.work" / "parts").glob("*.tmp")), "the failed part left no temporary files"


def test_missing_ray_names_the_extra(setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs, vocab, _ = setup
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(DependencyMissing, match=r"pip install 'rwkv-data\[ray\]'"):
        run(_cfg(inputs, tmp_path / "P", vocab, executor="ray"))
    assert not (tmp_path / "P.work").exists(), "checked before any work"


def test_an_unreachable_ray_address_fails_in_seconds(setup, tmp_path: Path) -> None:
    """ray.init retried a closed port for over a minute; the address is tried first."""
    import time

    from rwkv_data.errors import ConfigError
    from rwkv_data.pipelines.shard.ray_executor import connect

    class NotInitialised:
        @staticmethod
        def is_initialized() -> bool:
            return False

        @staticmethod
        def init(**kw: object) -> None:
            raise AssertionError("ray.init must not be reached")

    inputs, vocab, _ = setup
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=r"cannot connect to the Ray cluster at --ray-address '127.0.0.1:1'"):
        connect(NotInitialised, _cfg(inputs, tmp_path / "P", vocab, executor="ray", ray_address="127.0.0.1:1"))
    assert time.monotonic() - t0 < 10
