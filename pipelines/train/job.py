"""``rwkv-data train``: RWKV-7 on binidx shards with RWKV-LM's sampler and optimiser recipe, resumable exactly.

Data: the flat token stream of ``P.bin`` read in ``ctx_len + 1`` windows by the magic_prime sampler
(:mod:`.sampler`); the step number alone fixes every batch. Optimiser: :mod:`.optim` (Adam betas 0.9/0.99,
eps 1e-18, decay on matrices only, 2x lr for ``att.w0``, warm-up + cosine over the token budget, L2Wrap).

Outputs in ``out_dir``: ``rwkv-<step>.pth`` (official state dict, loadable by RWKV-LM and the ``rwkv`` pip
package) with its JSON config, ``rwkv-<step>.state.pt`` (optimiser, RNG states as tensors, step; loads with
``weights_only=True``), ``last.json`` (written last, so a crash mid-save leaves the previous checkpoint as the
resume point), ``rwkv-final.pth``, ``train_log.jsonl`` (one line per logged step), ``config.json`` and
``stats.json``. Resuming restores weights, optimiser and RNG and continues at the next step, so the loss curve
equals the uninterrupted one bit for bit (on the same device and thread count).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rwkv_data.atomic import atomic_write
from rwkv_data.config import TrainConfig, to_dict
from rwkv_data.errors import CheckpointError, ConfigError
from rwkv_data.pipelines.shard.meta import read_shard_meta
from rwkv_data.pipelines.train import distributed, modelio, vocab_check
from rwkv_data.pipelines.train.optim import lm_loss, lr_at, make_optimizer, set_lr
from rwkv_data.pipelines.train.sampler import MagicPrimeSampler, check_magic_prime, compute_magic_prime
from rwkv_data.pipelines.train.state import load_training_state, restore, save_training_state

log = logging.getLogger(__name__)

DIVERGED_LOSS = 1e3  # nats per token: a uniform guess over 2**20 ids is 14; a loss this high is a blow-up


# ---- data -------------------------------------------------------------------------------------------------


class BatchSource(Protocol):
    """Anything that yields the [micro_bsz, ctx_len + 1] int64 batch of (step, micro-step)."""

    def batch(self, step: int, micro: int) -> np.ndarray: ...


def meta_magic_prime(meta: dict[str, Any], ctx_len: int) -> int:
    """The shard job's magic_prime for ``ctx_len`` from ``meta["rwkv_lm"]`` (0 when it has none)."""
    for entry in meta.get("rwkv_lm") or []:
        if isinstance(entry, dict) and entry.get("ctx_len") == ctx_len and isinstance(entry.get("magic_prime"), int):
            return int(entry["magic_prime"])
    return 0


class WindowSource:
    """Windows of one binidx prefix through a :class:`MagicPrimeSampler`."""

    def __init__(self, prefix: str | Path, ctx_len: int, micro_bsz: int, grad_accum: int, magic_prime: int = 0,
                 rank: int = 0, world_size: int = 1) -> None:
        from rwkv_data.pipelines.shard.binidx import BinidxReader  # noqa: PLC0415 (keeps import light for --help)

        self.reader = BinidxReader(prefix)
        self.tokens = self.reader.tokens
        n = self.reader.num_tokens
        p = magic_prime or meta_magic_prime(read_shard_meta(prefix) or {}, ctx_len) or compute_magic_prime(n, ctx_len)
        # Tiny corpora cannot meet RWKV-LM's 90% fill rule for every prime; only require that windows fit.
        check_magic_prime(p, n, ctx_len, strict=False)
        self.num_tokens = n
        self.sampler = MagicPrimeSampler(ctx_len=ctx_len, magic_prime=p, micro_bsz=micro_bsz, grad_accum=grad_accum,
                                         rank=rank, world_size=world_size)

    def batch(self, step: int, micro: int) -> np.ndarray:
        return self.sampler.batch(self.tokens, step, micro)

    def batch_rows(self, first: int, count: int) -> np.ndarray:
        """``count`` windows starting at per-rank sample ``first`` (used by :class:`MixedSource`)."""
        L = self.sampler.ctx_len + 1
        return np.stack([np.asarray(self.tokens[o:o + L], np.int64)
                         for o in (self.sampler.offset(first + i) for i in range(count))])


class MixedSource:
    """Rows from ``main`` and, for a ``share`` of the samples, from ``replay``; exact counts, no RNG.

    Sample n is a replay sample when ``floor((n+1)*share) > floor(n*share)``, so after n samples exactly
    ``floor(n*share)`` came from replay; each source keeps its own magic_prime order.
    """

    def __init__(self, main: WindowSource, replay: WindowSource, share: float) -> None:
        if not 0.0 <= share < 1.0:
            raise ConfigError(f"replay_share must lie in [0, 1), got {share}")
        self.main, self.replay, self.share = main, replay, share
        self.sampler = main.sampler

    def _replays_before(self, n: int) -> int:
        return math.floor(n * self.share + 1e-9)

    def batch(self, step: int, micro: int) -> np.ndarray:
        s = self.sampler
        rows = []
        for b in range(s.micro_bsz):
            n = s.sample_index(step, micro, b)
            r = self._replays_before(n)
            if self._replays_before(n + 1) > r:
                rows.append(self.replay.batch_rows(r, 1)[0])
            else:
                rows.append(self.main.batch_rows(n - r, 1)[0])
        return np.stack(rows)


# ---- the loop -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Schedule:
    """How far a run goes: tokens per optimizer step, the steps the token budget spans, the step it stops at."""

    tokens_per_step: int
    token_budget: int
    total_steps: int
    last_step: int

    @classmethod
    def of(cls, cfg: TrainConfig, token_budget: int) -> Schedule:
        tokens_per_step = cfg.micro_bsz * cfg.grad_accum * cfg.world_size * cfg.ctx_len
        if tokens_per_step > token_budget:  # also stops an absurd --grad-accum before hours of one step
            raise ConfigError(f"one optimizer step reads {tokens_per_step:,} tokens (--micro-bsz x --grad-accum x "
                              f"world size x --ctx-len), more than the {token_budget:,} tokens of the budget "
                              "(--token-budget, default one pass over the data); lower --micro-bsz or --grad-accum")
        total = max(1, math.ceil(token_budget / tokens_per_step))
        return cls(tokens_per_step, token_budget, total, min(total, cfg.max_steps) if cfg.max_steps > 0 else total)


def start_point(cfg: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, out_dir: Path,
                sched: Schedule) -> tuple[int, list[dict[str, Any]]]:
    """The step to start at and the log rows up to it: ``out_dir``'s resume point with weights, optimiser and
    RNG restored (``cfg.resume``), else step 0 with the seed set."""
    if not cfg.resume:
        torch.manual_seed(cfg.seed)
        return 0, []
    state = load_training_state(out_dir)
    step = restore(state, model, optimizer, out_dir)
    state_tokens = state.get("tokens", step * sched.tokens_per_step)
    if int(state_tokens) != step * sched.tokens_per_step:  # samples would repeat or be skipped
        raise ConfigError(f"{out_dir}: the checkpoint at step {step} was trained with "
                          f"{int(state_tokens) // max(step, 1)} tokens per step, this run takes "
                          f"{sched.tokens_per_step} (micro_bsz x grad_accum x world_size x ctx_len); resume with "
                          "the same values")
    log.info("resuming at step %d of %d", step, sched.last_step)
    return step, _logged_rows(out_dir / "train_log.jsonl", step)


def _logged_rows(log_path: Path, step: int) -> list[dict[str, Any]]:
    """Rows of ``train_log.jsonl`` up to ``step`` (later ones came after the checkpoint: a crash between saves)."""
    if not log_path.is_file():
        return []
    rows, bad = [], 0
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            row, bad = None, bad + 1
        if isinstance(row, dict) and row.get("step", 0) <= step:
            rows.append(row)
    if bad:
        log.warning("%s: dropped %d unreadable line(s) (a crash mid-write)", log_path, bad)
    return rows


def train_step(cfg: TrainConfig, step: int, ddp: torch.nn.Module, optimizer: torch.optim.Optimizer,
               trainable: list[torch.nn.Parameter], source: BatchSource, sched: Schedule) -> tuple[float, float, float]:
    """Optimizer step ``step + 1`` over ``grad_accum`` micro-batches: (loss, lr, grad norm).

    A non-finite loss or gradient norm raises before the weights change, naming the step.
    """
    device = next(ddp.parameters()).device
    amp = modelio.autocast_dtype(cfg.precision)
    lr = lr_at(step, sched.tokens_per_step, cfg.lr_init, cfg.lr_final, cfg.warmup_steps, sched.token_budget)
    set_lr(optimizer, lr)
    optimizer.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for micro in range(cfg.grad_accum):
        xy = torch.from_numpy(source.batch(step, micro)).to(device)  # [B, T+1]
        with distributed.sync(ddp, micro == cfg.grad_accum - 1):  # all-reduce once, after the last micro-step
            with torch.autocast(device_type=device.type, dtype=amp, enabled=amp is not None):
                logits = modelio.forward(ddp, xy[:, :-1])  # [B, T, V]
            loss = lm_loss(logits, xy[:, 1:])
            (loss / cfg.grad_accum).backward()
        loss_sum += float(loss.detach())
    gnorm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip) if cfg.grad_clip > 0 else torch.tensor(0.0)
    loss_val = distributed.mean(loss_sum / cfg.grad_accum)  # the global batch's loss under torchrun
    if not (math.isfinite(loss_val) and math.isfinite(float(gnorm)) and loss_val < DIVERGED_LOSS):
        raise ConfigError(f"training diverged at step {step + 1}: loss {loss_val:g}, gradient norm {float(gnorm):g} "
                          f"(lr {lr:g}); lower --lr-init (now {cfg.lr_init:g})")
    optimizer.step()
    return loss_val, lr, float(gnorm)


class Meter:
    """Throughput, the progress bar on stderr and the log row of each step."""

    def __init__(self, sched: Schedule, step: int, show: bool) -> None:
        from tqdm import tqdm  # noqa: PLC0415

        self.sched, self.first_step = sched, step
        self.t0 = time.perf_counter()
        self.bar = tqdm(total=sched.last_step, initial=step, unit="step", file=sys.stderr, disable=not show,
                        dynamic_ncols=True)

    def tokens_per_s(self, step: int) -> float:
        return (step - self.first_step) * self.sched.tokens_per_step / max(time.perf_counter() - self.t0, 1e-9)

    def row(self, step: int, loss: float, lr: float, gnorm: float) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.t0
        tok_s = (step - self.first_step) * self.sched.tokens_per_step / max(elapsed, 1e-9)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}", refresh=False)
        return {"step": step, "loss": loss, "lr": lr, "grad_norm": gnorm, "tokens": step * self.sched.tokens_per_step,
                "tok_s": tok_s, "eta_s": (self.sched.last_step - step) * elapsed / (step - self.first_step)}


def _due(step: int, every: int, last_step: int) -> bool:
    return step == last_step or (every > 0 and step % every == 0)


def fit(cfg: TrainConfig, model: torch.nn.Module, source: BatchSource, token_budget: int, out_dir: Path,
        evaluator: Callable[[torch.nn.Module, int], dict[str, Any]] | None = None,
        export: Callable[[torch.nn.Module, Path, str], Any] = modelio.export_checkpoint,
        progress: bool = True) -> dict[str, Any]:
    """Train ``model`` in place from step 0 (or the resume point) until the budget or ``cfg.max_steps``."""
    sched = Schedule.of(cfg, token_budget)
    optimizer = make_optimizer(model, cfg.lr_init, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.adam_eps)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    ddp = distributed.wrap(model)  # under torchrun: DistributedDataParallel averages the gradients; else model
    main = distributed.is_main()  # only rank 0 writes the log and checkpoints
    log_path = out_dir / "train_log.jsonl"
    step, history = start_point(cfg, model, optimizer, out_dir, sched)
    if main:
        atomic_write(log_path, "".join(json.dumps(r) + "\n" for r in history))
    evals: list[dict[str, Any]] = [r for r in history if "eval" in r]

    def evaluate_at(step: int) -> None:
        assert evaluator is not None
        evals.append({"step": step, "eval": evaluator(model, step)})
        _append(log_path, evals[-1])
        model.train()

    if evaluator is not None and step == 0:
        evaluate_at(0)
    model.train()
    meter = Meter(sched, step, progress and main)
    loss = math.nan
    try:
        while step < sched.last_step:
            loss, lr, gnorm = train_step(cfg, step, ddp, optimizer, trainable, source, sched)
            step += 1
            row = meter.row(step, loss, lr, gnorm)
            if _due(step, max(1, cfg.log_every), sched.last_step):
                _append(log_path, row)
            if evaluator is not None and _due(step, cfg.eval_every, sched.last_step):
                evaluate_at(step)
            if main and _due(step, cfg.save_every, sched.last_step):
                save_training_state(out_dir, step, step * sched.tokens_per_step, model, optimizer, cfg.save_dtype,
                                    export)
    finally:
        meter.bar.close()  # an error message then starts on its own line
    final = out_dir / "rwkv-final.pth"
    if main:
        export(model, final, cfg.save_dtype)
    return {"steps": step, "total_steps": sched.total_steps, "tokens": step * sched.tokens_per_step,
            "token_budget": token_budget, "final_loss": loss, "seconds": time.perf_counter() - meter.t0,
            "tokens_per_s": meter.tokens_per_s(step), "checkpoint": str(final), "evals": evals}


def _append(path: Path, row: dict[str, Any]) -> None:
    if not distributed.is_main():
        return
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


# ---- the job ------------------------------------------------------------------------------------------------


def build_model(cfg: TrainConfig, tok: Any, device: torch.device) -> tuple[torch.nn.Module, str]:
    """``cfg.init`` loaded, or a fresh model sized for ``tok``; and how to name it in messages."""
    if cfg.init:
        model = modelio.load(cfg.init, device)
        rows = modelio.vocab_rows(model)
        if cfg.vocab_size and cfg.vocab_size != rows:
            raise ConfigError(f"--vocab-size {cfg.vocab_size} but --init {cfg.init} has {rows} embedding rows; "
                              "drop --vocab-size (the checkpoint fixes it)")
        what = f"--init {cfg.init}"
        vocab_check.check_checkpoint_vocab(cfg.init, tok, cfg.vocab or f"{cfg.data}'s vocab")
        check_init_shape(cfg, modelio.shape_of(model.state_dict()))
    else:
        rows = cfg.vocab_size or modelio.padded_rows(tok.vocab_size)
        torch.manual_seed(cfg.seed)
        model = modelio.fresh(cfg.n_layer, cfg.n_embd, cfg.head_size, rows, cfg.ctx_len, device)
        what = f"the new model (--vocab-size {rows})"
    if tok.vocab_size > rows:
        raise ConfigError(f"the vocab has ids up to {tok.vocab_size - 1} but {what} has {rows} embedding rows; "
                          f"use at least {modelio.padded_rows(tok.vocab_size)} rows")
    return model, what


def check_init_shape(cfg: TrainConfig, have: dict[str, int]) -> None:
    """ConfigError when a shape option set away from its default names another shape than ``cfg.init`` has
    (``have``: :func:`modelio.shape_of`); the checkpoint fixes the shape, so a differing flag means the wrong
    checkpoint or a stale flag."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in have and getattr(cfg, f.name) not in (f.default, have[f.name]):
            flag = "--" + f.name.replace("_", "-")
            raise ConfigError(f"{flag} {getattr(cfg, f.name)} but --init {cfg.init} has {f.name} {have[f.name]}; "
                              f"drop {flag} (the checkpoint fixes the shape) or pass the checkpoint you meant")


def run(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train from scratch (or ``cfg.init``) on ``cfg.data``; returns the stats also written to stats.json.

    Everything that can be checked is checked before the first step: the options, the output folder, the
    shards' vocab against ``cfg.vocab``, the shards' ids against the model's embedding rows.
    """
    if not cfg.data:
        raise ConfigError("train needs --data PREFIX (a binidx prefix written by `rwkv-data shard`)")
    with modelio.job_lock(modelio.output_dir(cfg.out_dir), "train"):
        return _run(cfg, progress)


def _run(cfg: TrainConfig, progress: bool) -> dict[str, Any]:
    """:func:`run` inside the output folder's lock."""
    out_dir = modelio.output_dir(cfg.out_dir)
    if cfg.resume:
        load_training_state(out_dir)  # a missing or damaged resume point fails here, before any loading
    cfg, device = distributed.setup(cfg)  # under torchrun: join the process group, take rank and world_size
    tok = vocab_check.shard_tokenizer(cfg.data, cfg.vocab)
    if cfg.val_data:
        vocab_check.check_shard_vocab(cfg.val_data, tok, cfg.vocab or f"{cfg.data}'s vocab")
    source = WindowSource(cfg.data, cfg.ctx_len, cfg.micro_bsz, cfg.grad_accum, cfg.magic_prime, cfg.rank,
                          cfg.world_size)
    model, what = build_model(cfg, tok, device)
    vocab_check.check_ids_fit(cfg.data, source.tokens, modelio.vocab_rows(model), what)
    modelio.check_batch_memory(model, cfg.micro_bsz, cfg.ctx_len)
    token_budget = cfg.token_budget or source.num_tokens
    Schedule.of(cfg, token_budget)  # a step larger than the budget fails here, before anything is written
    if distributed.is_main():
        atomic_write(out_dir / "config.json", json.dumps(to_dict(cfg), indent=2))
    evaluator = val_evaluator(cfg, device, tok, what) if cfg.val_data and distributed.is_main() else None
    export = functools.partial(modelio.export_checkpoint, vocab=tok)  # the .json records the vocab
    stats = fit(cfg, model, source, token_budget, out_dir, evaluator=evaluator, export=export, progress=progress)
    stats["magic_prime"] = source.sampler.magic_prime
    stats["data_tokens"] = source.num_tokens
    if distributed.is_main():
        atomic_write(out_dir / "stats.json", json.dumps(stats, indent=2))
    distributed.finish()  # under torchrun: wait for every rank, then leave the process group
    return stats


def val_evaluator(cfg: TrainConfig, device: torch.device, tok: Any,
                  what: str = "the model") -> Callable[[torch.nn.Module, int], dict[str, Any]]:
    """Per-language bpb on the first ``eval_docs`` documents per language of ``cfg.val_data`` (decoded with
    ``tok``); a non-finite result raises, naming the step."""
    from rwkv_data.pipelines.train import evaluate  # noqa: PLC0415

    docs = evaluate.load_binidx_docs(cfg.val_data, tok, cfg.eval_docs)
    top = max((int(d.tokens.max()) for d in docs if d.tokens.size), default=-1)

    def run_eval(model: torch.nn.Module, step: int) -> dict[str, Any]:
        rows = modelio.vocab_rows(model)
        if top >= rows:
            raise CheckpointError(f"{cfg.val_data} holds token id {top} but {what} has {rows} embedding rows")
        model.eval()
        res = evaluate.evaluate_docs(model, docs, ctx_len=max(cfg.ctx_len, 256), batch_size=cfg.micro_bsz,
                                     n_boot=0, device=device)
        out = {r["lang"]: round(r["bpb"], 6) for r in res}
        if not all(math.isfinite(v) for v in out.values()):
            raise ConfigError(f"validation at step {step} gave non-finite bits per byte {out}: the weights diverged; "
                              f"lower --lr-init (now {cfg.lr_init:g})")
        log.info("step %d: val bpb %s", step, out)
        return out

    return run_eval
