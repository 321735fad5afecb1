"""Data-parallel ``rwkv-data train`` under torchrun: process group, device, gradient sync, rank-0-only output.

``torchrun --nproc_per_node N -m rwkv_data train ...`` (or ``python -m torch.distributed.run``) starts N copies
of the command and gives each ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`setup` reads exactly these (torch's launcher protocol, the one place this project reads the
environment), joins the process group (NCCL on CUDA, gloo on CPU) and returns the config with ``rank`` and
``world_size`` filled in, so the magic_prime sampler gives every rank its own interleaved share of each step's
samples (rank r reads RWKV-LM's ``ii = 1 + n * world_size + r``): the ranks of one step read exactly the windows
a single process with ``world_size`` times the micro-batch would read, without overlap or gaps.

Gradients are averaged by DistributedDataParallel (:func:`wrap`; bucketed all-reduce overlapped with the
backward pass, skipped on all but the last micro-step of gradient accumulation by :func:`sync`), which makes
every rank's optimizer step identical. The optimizer, checkpoints and evaluation keep the plain module, so
parameter names stay RWKV-LM's. Only rank 0 writes checkpoints, logs and stats (:func:`is_main`).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator, Mapping
from typing import TypeVar

import torch
import torch.distributed as dist

from rwkv_data.config import TrainConfig
from rwkv_data.errors import ConfigError

log = logging.getLogger(__name__)

C = TypeVar("C", bound=TrainConfig)
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
_RANK = [0]  # this process's rank once setup() ran (it outlives the process group, for the CLI's summary)


@dataclasses.dataclass(frozen=True)
class LaunchInfo:
    """This process's place in a torchrun launch."""

    rank: int
    world_size: int
    local_rank: int


def launch_info(environ: Mapping[str, str] | None = None) -> LaunchInfo | None:
    """The torchrun variables of ``environ`` (default ``os.environ``); None when not started by torchrun.

    Raises:
        ConfigError: some but not all of the variables are set, or they are not integers in range.
    """
    env = os.environ if environ is None else environ
    present = [k for k in TORCHRUN_VARS if k in env]
    if not present:
        return None
    missing = [k for k in TORCHRUN_VARS if k not in env]
    if missing:
        raise ConfigError(f"incomplete torchrun environment: {present} set but {missing} missing; launch with "
                          "`torchrun --nproc_per_node N -m rwkv_data train ...` or unset them")
    try:
        info = LaunchInfo(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env["LOCAL_RANK"]))
    except ValueError as exc:
        raise ConfigError(f"torchrun variables must be integers: {exc}") from exc
    if not (0 <= info.rank < info.world_size and info.local_rank >= 0):
        raise ConfigError(f"torchrun gave RANK={info.rank}, WORLD_SIZE={info.world_size}, "
                          f"LOCAL_RANK={info.local_rank}: need 0 <= RANK < WORLD_SIZE")
    return info


def device_for(name: str, info: LaunchInfo | None) -> torch.device:
    """The training device: ``auto``/``cuda`` become this process's GPU ``cuda:LOCAL_RANK`` under torchrun."""
    if info is not None and name in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", info.local_rank)
    from rwkv_data.pipelines.train.modelio import resolve_device

    return resolve_device(name)


def setup(cfg: C, environ: Mapping[str, str] | None = None) -> tuple[C, torch.device]:
    """Join torchrun's process group if launched by it; returns ``cfg`` with rank/world_size and the device.

    Without torchrun (or with one process) this only resolves the device and returns ``cfg`` unchanged.
    """
    info = launch_info(environ)
    if info is None and (cfg.world_size > 1 or cfg.rank != 0):
        raise ConfigError(f"--world-size {cfg.world_size} / --rank {cfg.rank} without torchrun: this one process would "
                          "train one rank's share of the windows with no other rank to sync with; launch with "
                          f"torchrun --nproc-per-node {max(cfg.world_size, 2)} (which sets them), or leave them out")
    if info is None or info.world_size == 1:
        return cfg, device_for(cfg.device, info)
    if cfg.world_size not in (1, info.world_size) or (cfg.world_size > 1 and cfg.rank != info.rank):
        raise ConfigError(f"--world-size {cfg.world_size} / --rank {cfg.rank} disagree with torchrun's "
                          f"WORLD_SIZE={info.world_size} / RANK={info.rank}; leave them out under torchrun")
    device = device_for(cfg.device, info)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://", rank=info.rank, world_size=info.world_size)
        atexit.register(_teardown)  # after an error; a finished job calls finish()
    _RANK[0] = info.rank
    if info.rank != 0:  # rank 0 speaks for the job
        logging.getLogger("rwkv_data").setLevel(logging.WARNING)
    log.info("torchrun: %d processes, backend %s, device %s", info.world_size, backend, device)
    return dataclasses.replace(cfg, rank=info.rank, world_size=info.world_size), device


def finish() -> None:
    """At the end of a job: wait until every rank (rank 0 writing the last checkpoint) is done, then leave the
    process group, so no rank exits while a peer still talks to it."""
    if active():
        dist.barrier()
    _teardown()


def _teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that writes checkpoints, logs and stats."""
    return (dist.get_rank() if active() else _RANK[0]) == 0


def wrap(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` in DistributedDataParallel when running distributed, else ``model`` itself.

    Call the wrapper for the training forward pass; keep ``model`` for the optimizer and checkpoints.
    """
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    device = next(model.parameters()).device
    # find_unused_parameters: block 0 keeps RWKV-LM's value-residual parameters (att.v0/v1/v2) for checkpoint
    # compatibility but never uses them, and fine-tuning may freeze or bypass others; DDP then marks them ready
    # itself (their .grad stays None, as in a single process). DDP's constructor broadcasts rank 0's parameters.
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None,
                                   find_unused_parameters=True)


@contextlib.contextmanager
def sync(model: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """Around forward + backward of one micro-step: all-reduce gradients only when ``enabled`` (the last one).

    Skipping the earlier micro-steps is only a saving: DDP's average is linear, so reducing every micro-step
    would give the same gradients.
    """
    no_sync = getattr(model, "no_sync", None)
    if enabled or no_sync is None:
        yield
    else:
        with no_sync():
            yield


def mean(value: float) -> float:
    """The mean of ``value`` over the ranks (the global batch's loss for the log); ``value`` when single."""
    if not active():
        return value
    t = torch.tensor([value], dtype=torch.float64, device="cuda" if dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
