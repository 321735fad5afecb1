"""Data-parallel pieces without launching processes: per-rank magic_prime sampling covers the permutation without
overlap or gaps and matches a single process with world_size times the micro-batch, micro-step by micro-step;
torchrun environment parsing and its errors; single-process setup is a no-op; a resume with another global
batch is refused.

Run: pytest tests/pipelines/test_distributed.py   (the 2-process run is tests/pipelines/test_train_ddp.py)
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from model_fixtures import make_corpus

from rwkv_data.config import TrainConfig
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.train import distributed
from rwkv_data.pipelines.train import job as train
from rwkv_data.pipelines.train.sampler import MagicPrimeSampler

CTX = 4


def _ranks(p: int, world_size: int, micro_bsz: int, grad_accum: int) -> list[MagicPrimeSampler]:
    return [MagicPrimeSampler(ctx_len=CTX, magic_prime=p, micro_bsz=micro_bsz, grad_accum=grad_accum, rank=r,
                              world_size=world_size) for r in range(world_size)]


@pytest.mark.parametrize("p", [5, 11, 47, 101, 1013])
@pytest.mark.parametrize("world_size,micro_bsz,grad_accum", [(1, 1, 1), (2, 2, 1), (2, 3, 2), (3, 2, 1),
                                                             (4, 1, 3), (8, 4, 2)])
def test_ranks_cover_the_permutation_without_overlap_or_gaps(p: int, world_size: int, micro_bsz: int,
                                                             grad_accum: int) -> None:
    ranks = _ranks(p, world_size, micro_bsz, grad_accum)
    per_step = micro_bsz * grad_accum * world_size
    steps = math.ceil(p / per_step)
    ii = [s.ii(s.sample_index(step, m, b)) for step in range(steps) for s in ranks for m in range(grad_accum)
          for b in range(micro_bsz)]
    assert sorted(ii) == list(range(1, steps * per_step + 1)), "every sample number once: no overlap, no gap"
    slot = {n: ranks[(n - 1) % world_size].offset((n - 1) // world_size) // CTX for n in ii}
    assert sorted(slot[n] for n in range(1, p + 1)) == list(range(p)), "the first p samples visit every window"


@pytest.mark.parametrize("world_size,micro_bsz,grad_accum", [(2, 2, 1), (2, 1, 3), (3, 2, 2)])
def test_ranks_together_read_what_one_process_with_the_global_batch_reads(world_size: int, micro_bsz: int,
                                                                          grad_accum: int) -> None:
    p = 101
    ranks = _ranks(p, world_size, micro_bsz, grad_accum)
    single = MagicPrimeSampler(ctx_len=CTX, magic_prime=p, micro_bsz=micro_bsz * world_size, grad_accum=grad_accum)
    for step in range(7):  # past one pass over the permutation too (7 * 12 > 101 for the largest case)
        for m in range(grad_accum):
            together = sorted(o for s in ranks for o in s.offsets(step, m))
            assert together == sorted(single.offsets(step, m)), (step, m)


def test_launch_info_reads_torchrun_variables() -> None:
    env = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert distributed.launch_info(env) == distributed.LaunchInfo(rank=1, world_size=2, local_rank=1)
    assert distributed.launch_info({}) is None
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        distributed.launch_info({"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"})
    with pytest.raises(ConfigError, match="RANK < WORLD_SIZE"):
        distributed.launch_info({**env, "RANK": "2"})
    with pytest.raises(ConfigError, match="integers"):
        distributed.launch_info({**env, "WORLD_SIZE": "two"})


def test_setup_without_torchrun_changes_nothing() -> None:
    cfg = TrainConfig(device="cpu")
    same, device = distributed.setup(cfg, environ={})
    assert same is cfg and device == torch.device("cpu")
    assert distributed.is_main() and not distributed.active() and distributed.mean(2.5) == 2.5
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model) is model
    with distributed.sync(model, enabled=False):
        pass


def test_setup_rejects_a_conflicting_world_size() -> None:
    env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    with pytest.raises(ConfigError, match="disagree"):
        distributed.setup(TrainConfig(device="cpu", world_size=4), environ=env)


def test_resume_with_another_global_batch_is_refused(tmp_path: Path) -> None:
    """Changing world_size (or micro_bsz, grad_accum) between runs would make the step-indexed sampler repeat
    or skip windows, so resuming refuses it."""
    _, prefix, _ = make_corpus(tmp_path, train_docs=10)
    base = TrainConfig(data=str(prefix), out_dir=str(tmp_path / "out"), n_layer=1, n_embd=64, head_size=32,
                       vocab_size=320, ctx_len=32, micro_bsz=2, max_steps=2, token_budget=2 * 2 * 32 * 4,
                       device="cpu", save_every=0)
    train.run(base, progress=False)
    with pytest.raises(ConfigError, match="64 tokens per step, this run takes 128"):
        train.run(dataclasses.replace(base, micro_bsz=4, max_steps=3, resume=True), progress=False)


@pytest.mark.parametrize(("world_size", "rank"), [(2, 0), (4, 3), (2, 1)])
def test_world_size_or_rank_without_torchrun_is_refused(world_size: int, rank: int) -> None:
    """Without torchrun one process would train one rank's share of the windows alone (half the data for 2)."""
    with pytest.raises(ConfigError, match="without torchrun: this one process would train one rank's share"):
        distributed.setup(TrainConfig(device="cpu", world_size=world_size, rank=rank), environ={})
    cfg, _ = distributed.setup(TrainConfig(device="cpu"), environ={})
    assert (cfg.world_size, cfg.rank) == (1, 0)
