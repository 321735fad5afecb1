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

import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from rwkv_data.config import TrainConfig, to_dict
from rwkv_data.errors import CheckpointError, ConfigError
from rwkv_data.pipelines.train import distributed, modelio
from rwkv_data.pipelines.train.evaluate import read_meta
from rwkv_data.pipelines.train.optim import lm_loss, lr_at, make_optimizer, set_lr
from rwkv_data.pipelines.train.sampler import MagicPrimeSampler, check_magic_prime, compute_magic_prime

log = logging.getLogger(__name__)

STATE_FORMAT = "rwkv-data-train-state/1"


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
        p = magic_prime or meta_magic_prime(read_meta(prefix), ctx_len) or compute_magic_prime(n, ctx_len)
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


# ---- checkpoints --------------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rng_state() -> dict[str, Any]:
    """Torch RNG states as tensors (``weights_only``-loadable)."""
    out: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(out_dir: Path, step: int, tokens: int, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, save_dtype: str,
                        export: Callable[[torch.nn.Module, Path, str], None]) -> Path:
    """Write ``rwkv-<step>.pth`` (+ config), ``rwkv-<step>.state.pt`` and then ``last.json``."""
    pth = out_dir / f"rwkv-{step}.pth"
    export(model, pth, save_dtype)
    state: dict[str, Any] = {"format": STATE_FORMAT, "step": step, "tokens": tokens,
                             "optimizer": optimizer.state_dict(), "rng": rng_state(),
                             # Exact weights (the .pth may be bf16 or LoRA-merged); a few MB for tiny models.
                             "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    atomic_torch_save(state, out_dir / f"rwkv-{step}.state.pt")
    atomic_write_text(out_dir / "last.json", json.dumps({"step": step, "pth": pth.name,
                                                          "state": f"rwkv-{step}.state.pt"}))
    return pth


def load_training_state(out_dir: Path) -> dict[str, Any]:
    """The state named by ``out_dir/last.json`` (``torch.load(weights_only=True)``)."""
    last = out_dir / "last.json"
    if not last.is_file():
        raise CheckpointError(f"{last}: nothing to resume from (run without --resume first)")
    info = json.loads(last.read_text(encoding="utf-8"))
    state = torch.load(out_dir / info["state"], map_location="cpu", weights_only=True)
    if state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{out_dir / info['state']}: not a {STATE_FORMAT} file")
    return state


# ---- the loop -----------------------------------------------------------------------------------------------


def fit(cfg: TrainConfig, model: torch.nn.Module, source: BatchSource, token_budget: int, out_dir: Path,
        evaluator: Callable[[torch.nn.Module, int], dict[str, Any]] | None = None,
        export: Callable[[torch.nn.Module, Path, str], None] = modelio.export_checkpoint,
        progress: bool = True) -> dict[str, Any]:
    """Train ``model`` in place from step 0 (or the resume point) until the budget or ``cfg.max_steps``."""
    from tqdm import tqdm  # noqa: PLC0415

    device = next(model.parameters()).device
    amp = modelio.autocast_dtype(cfg.precision)
    tokens_per_step = cfg.micro_bsz * cfg.grad_accum * cfg.world_size * cfg.ctx_len
    total_steps = max(1, math.ceil(token_budget / tokens_per_step))
    last_step = min(total_steps, cfg.max_steps) if cfg.max_steps > 0 else total_steps
    optimizer = make_optimizer(model, cfg.lr_init, cfg.weight_decay, (cfg.beta1, cfg.beta2), cfg.adam_eps)
    trainable = [p for g in optimizer.param_groups for p in g["params"]]
    ddp = distributed.wrap(model)  # under torchrun: DistributedDataParallel averages the gradients; else model
    main = distributed.is_main()  # only rank 0 writes the log and checkpoints
    log_path = out_dir / "train_log.jsonl"
    step = 0
    history: list[dict[str, Any]] = []
    if cfg.resume:
        state = load_training_state(out_dir)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        step = int(state["step"])
        if int(state.get("tokens", step * tokens_per_step)) != step * tokens_per_step:  # samples would repeat/skip
            raise ConfigError(f"{out_dir}: the checkpoint at step {step} was trained with "
                              f"{state['tokens'] // max(step, 1)} tokens per step, this run takes {tokens_per_step} "
                              "(micro_bsz x grad_accum x world_size x ctx_len); resume with the same values")
        if log_path.is_file():  # drop lines logged after the checkpoint (a crash between saves)
            rows = [json.loads(x) for x in log_path.read_text(encoding="utf-8").splitlines() if x.strip()]
            history = [r for r in rows if r.get("step", 0) <= step]
        log.info("resuming at step %d of %d", step, last_step)
    else:
        torch.manual_seed(cfg.seed)
    if main:
        atomic_write_text(log_path, "".join(json.dumps(r) + "\n" for r in history))
    evals: list[dict[str, Any]] = [r for r in history if "eval" in r]
    if evaluator is not None and step == 0:
        evals.append({"step": 0, "eval": evaluator(model, 0)})
        _append(log_path, evals[-1])
    model.train()
    t0, tok0 = time.perf_counter(), step * tokens_per_step
    bar = tqdm(total=last_step, initial=step, unit="step", file=sys.stderr, disable=not (progress and main),
               dynamic_ncols=True)
    loss_val = math.nan
    while step < last_step:
        lr = lr_at(step, tokens_per_step, cfg.lr_init, cfg.lr_final, cfg.warmup_steps, token_budget)
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
        optimizer.step()
        step += 1
        loss_val = distributed.mean(loss_sum / cfg.grad_accum)  # the global batch's loss under torchrun
        if not math.isfinite(loss_val):
            raise ConfigError(f"loss became {loss_val} at step {step}; lower lr_init (now {cfg.lr_init})")
        elapsed = time.perf_counter() - t0
        tok_s = (step * tokens_per_step - tok0) / max(elapsed, 1e-9)
        bar.update(1)
        bar.set_postfix(loss=f"{loss_val:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}", refresh=False)
        if step % max(1, cfg.log_every) == 0 or step == last_step:
            done = step - tok0 // tokens_per_step  # steps run in this session
            row = {"step": step, "loss": loss_val, "lr": lr, "grad_norm": float(gnorm),
                   "tokens": step * tokens_per_step, "tok_s": tok_s, "eta_s": (last_step - step) * elapsed / done}
            _append(log_path, row)
        is_eval = evaluator is not None and (step == last_step or (cfg.eval_every > 0 and step % cfg.eval_every == 0))
        if is_eval:
            assert evaluator is not None
            evals.append({"step": step, "eval": evaluator(model, step)})
            _append(log_path, evals[-1])
            model.train()
        if main and ((cfg.save_every > 0 and step % cfg.save_every == 0) or step == last_step):
            save_training_state(out_dir, step, step * tokens_per_step, model, optimizer, cfg.save_dtype, export)
    bar.close()
    final = out_dir / "rwkv-final.pth"
    if main:
        export(model, final, cfg.save_dtype)
    elapsed = time.perf_counter() - t0
    return {"steps": step, "total_steps": total_steps, "tokens": step * tokens_per_step, "token_budget": token_budget,
            "final_loss": loss_val, "seconds": elapsed,
            "tokens_per_s": (step * tokens_per_step - tok0) / max(elapsed, 1e-9), "checkpoint": str(final),
            "evals": evals}


def _append(path: Path, row: dict[str, Any]) -> None:
    if not distributed.is_main():
        return
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def run(cfg: TrainConfig, progress: bool = True) -> dict[str, Any]:
    """Train from scratch (or ``cfg.init``) on ``cfg.data``; returns the stats also written to stats.json."""
    if not cfg.data:
        raise ConfigError("train needs --data PREFIX (a binidx prefix written by `rwkv-data shard`)")
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg, device = distributed.setup(cfg)  # under torchrun: join the process group, take rank and world_size
    source = WindowSource(cfg.data, cfg.ctx_len, cfg.micro_bsz, cfg.grad_accum, cfg.magic_prime, cfg.rank,
                          cfg.world_size)
    meta = read_meta(cfg.data)
    if cfg.init:
        model = modelio.load(cfg.init, device)
    else:
        vocab_size = cfg.vocab_size or modelio.vocab_size_for(meta, cfg.vocab)
        torch.manual_seed(cfg.seed)
        model = modelio.fresh(cfg.n_layer, cfg.n_embd, cfg.head_size, vocab_size, cfg.ctx_len, device)
    token_budget = cfg.token_budget or source.num_tokens
    if distributed.is_main():
        atomic_write_text(out_dir / "config.json", json.dumps(to_dict(cfg), indent=2))
    evaluator = _val_evaluator(cfg, device) if cfg.val_data and distributed.is_main() else None
    stats = fit(cfg, model, source, token_budget, out_dir, evaluator=evaluator, progress=progress)
    stats["magic_prime"] = source.sampler.magic_prime
    stats["data_tokens"] = source.num_tokens
    if distributed.is_main():
        atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=2))
    distributed.finish()  # under torchrun: wait for every rank, then leave the process group
    return stats


def _val_evaluator(cfg: TrainConfig, device: torch.device) -> Callable[[torch.nn.Module, int], dict[str, Any]]:
    """Per-language bpb on the first ``eval_docs`` documents per language of ``cfg.val_data``."""
    from rwkv_data.pipelines.train import evaluate  # noqa: PLC0415

    tok = evaluate.load_tokenizer(cfg.vocab)
    docs = evaluate.load_binidx_docs(cfg.val_data, tok, cfg.eval_docs)

    def run_eval(model: torch.nn.Module, step: int) -> dict[str, Any]:
        model.eval()
        rows = evaluate.evaluate_docs(model, docs, ctx_len=max(cfg.ctx_len, 256), batch_size=cfg.micro_bsz,
                                      n_boot=0, device=device)
        out = {r["lang"]: round(r["bpb"], 6) for r in rows}
        log.info("step %d: val bpb %s", step, out)
        return out

    return run_eval
