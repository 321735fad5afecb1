"""``rwkv-data finetune``: continue an official-format checkpoint on new data, e.g. a language it never saw.

Steps: load the checkpoint (``weights_only``) and its vocab; optionally extend the vocab (:mod:`.vocab_growth`:
old ids kept, new ``emb``/``head`` rows = mean of the rows of the old tokens each new token encodes to) and
write ``vocab.txt`` + ``rwkv-init.pth``; optionally restrict what trains (``embeddings``: emb, head and the
outer LayerNorms; ``last:N``: the last N blocks plus ``ln_out`` and head) and/or add LoRA adapters to the large
matrices (att receptance/key/value/output, ffn key/value; merged into the exported weights, so every .pth is
a plain official checkpoint); then train with :func:`.train.fit`, mixing ``replay_share`` of the samples from
the original data (``replay_data``) to hold the other languages in place.

Default recipe (FinetuneConfig; measured with ``benchmarks/finetune_acceptance.py``, a tiny byte-level model
trained on en/de/fr/es/ru then fine-tuned on Swahili for 90 steps): all weights train, 75% of the samples
replayed from the original data, lr 3e-4 -> 3e-5 with 10 warm-up steps, one pass over the target data.
Sweep on that setup (largest rise of another language / Swahili change): replay 0.5 + lr 1e-4: +5.2% / -29%;
0.5 + 3e-4: +4.5% / -35%; 0.5 + 1e-3: +4.4% / -39%; 0.75 + 3e-4: +1.2% / -31%; 0.75 + 1e-3: +0.5% / -35%. A
lower lr does not protect the other languages of an under-trained model: replay does. For official 0.1B+
checkpoints RWKV-LM advises lr ~1e-5.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from rwkv_data.atomic import atomic_write
from rwkv_data.config import FinetuneConfig, to_dict
from rwkv_data.errors import CheckpointError, ConfigError
from rwkv_data.pipelines.train import modelio, vocab_check
from rwkv_data.pipelines.train.job import (
    MixedSource,
    Schedule,
    WindowSource,
    check_init_shape,
    fit,
    val_evaluator,
)
from rwkv_data.pipelines.train.state import load_training_state

log = logging.getLogger(__name__)

LORA_TARGETS = ("att.receptance", "att.key", "att.value", "att.output", "ffn.key", "ffn.value")


class LoRA(torch.nn.Module):
    """Parametrization ``W -> W + (alpha / r) * B @ A`` (A Kaiming-uniform, B zero: starts as the identity)."""

    def __init__(self, out_features: int, in_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.A = torch.nn.Parameter(torch.empty(rank, in_features))
        self.B = torch.nn.Parameter(torch.zeros(out_features, rank))
        torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.scale = alpha / rank

    def forward(self, W: torch.Tensor) -> torch.Tensor:
        return W + self.scale * (self.B @ self.A).to(W.dtype)


def add_lora(model: torch.nn.Module, rank: int, alpha: float) -> int:
    """Parametrize the large matrices with :class:`LoRA` and freeze their base weights; returns how many."""
    n = 0
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and name.endswith(LORA_TARGETS):
            out_f, in_f = mod.weight.shape
            if rank > min(out_f, in_f):
                raise ConfigError(f"--lora-rank {rank} exceeds the size of {name} ({out_f} x {in_f}); use at most "
                                  f"{min(out_f, in_f)}")
            mod.weight.requires_grad_(False)
            parametrize.register_parametrization(mod, "weight", LoRA(out_f, in_f, rank, alpha).to(mod.weight.device))
            n += 1
    if n == 0:
        raise ConfigError("LoRA found none of the large matrices " + ", ".join(LORA_TARGETS))
    return n


def set_trainable(model: torch.nn.Module, trainable: str, lora: bool) -> None:
    """``all`` | ``embeddings`` | ``last:N``; with LoRA the adapters always train and base matrices never."""
    names = [n for n, _ in model.named_parameters()]
    n_layer = 1 + max((int(n.split(".")[1]) for n in names if n.startswith("blocks.")), default=-1)
    if trainable == "all":
        keep = lambda n: True  # noqa: E731
    elif trainable == "embeddings":
        keep = lambda n: n.startswith(("emb.", "head.", "ln_out.", "blocks.0.ln0."))  # noqa: E731
    elif trainable.startswith("last:") and trainable[5:].isdigit() and 0 < int(trainable[5:]) <= n_layer:
        first = n_layer - int(trainable[5:])
        keep = lambda n: n.startswith(("head.", "ln_out.")) or (  # noqa: E731
            n.startswith("blocks.") and int(n.split(".")[1]) >= first)
    else:
        raise ConfigError(f"trainable must be all, embeddings or last:N with 1 <= N <= {n_layer}; got {trainable!r}")
    for n, p in model.named_parameters():
        if ".parametrizations." in n:
            p.requires_grad_(n.endswith((".A", ".B")) or not lora)
            if n.endswith(".original"):
                p.requires_grad_(False)
        else:
            p.requires_grad_(keep(n))


@dataclasses.dataclass
class Plan:
    """What a fine-tuning run will start from, worked out (and checked) before anything is written."""

    state_dict: dict[str, torch.Tensor]  # the checkpoint's weights, grown when the vocab is extended
    base: Any  # the checkpoint's tokenizer (--vocab)
    spec: str  # how --vocab was given (or where the recorded vocab was found)
    grown: Any = None  # the extended tokenizer (--new-tokens), else None
    added: int = 0


def plan(cfg: FinetuneConfig) -> Plan:
    """Load ``cfg.init`` and its vocab, check they fit each other, and extend both if ``cfg.new_tokens`` asks."""
    from rwkv_data.pipelines.train.vocab_growth import (  # noqa: PLC0415
        grow_state_dict,
        is_idmap,
        plan_extension,
        plan_from_idmap,
        read_new_tokens,
    )
    from rwkv_data.tokenizer import TrieTokenizer  # noqa: PLC0415

    if not cfg.init:
        raise ConfigError("finetune needs --init CHECKPOINT (an official-format .pth)")
    sd = modelio.read_state_dict(cfg.init)
    rows = int(sd["emb.weight"].shape[0])
    shard = cfg.replay_data or cfg.data  # the replayed data is the checkpoint's own
    if cfg.vocab or not shard:
        base, spec = vocab_check.load_tokenizer(cfg.vocab or "world"), cfg.vocab or "world"
    else:
        base, spec = vocab_check.recorded(shard)
    vocab_check.check_checkpoint_vocab(cfg.init, base, spec)
    if base.vocab_size > rows:
        raise CheckpointError(f"--vocab {vocab_check.describe(base, spec)} has ids up to {base.vocab_size - 1} but "
                              f"--init {cfg.init} has {rows} embedding rows; pass the vocab the checkpoint was "
                              "trained with")
    check_init_shape(cfg, modelio.shape_of(sd))
    out = Plan(sd, base, spec)
    if cfg.new_tokens:
        if is_idmap(cfg.new_tokens):
            vocab, parts = plan_from_idmap(base, cfg.new_tokens)
        else:
            vocab, parts = plan_extension(base, read_new_tokens(cfg.new_tokens), rows)
        if not parts:
            raise ConfigError(f"--new-tokens {cfg.new_tokens}: adds no token (all are already in "
                              f"{vocab_check.describe(base, spec)}); drop --new-tokens or list new tokens")
        out.state_dict, out.grown, out.added = grow_state_dict(sd, parts), TrieTokenizer(vocab), len(parts)
    return out


def check_data(cfg: FinetuneConfig, p: Plan) -> Any:
    """Refuse shards made with another vocab than the checkpoint's (or the extended one) and ids beyond the
    grown embedding; returns the tokenizer to decode ``cfg.val_data`` with (None without it)."""
    from rwkv_data.pipelines.shard.binidx import BinidxReader  # noqa: PLC0415

    also = [p.grown] if p.grown is not None else []
    rows = int(p.state_dict["emb.weight"].shape[0])
    for prefix in (cfg.data, cfg.replay_data):
        if prefix:
            vocab_check.check_shard_vocab(prefix, p.base, p.spec, also=also)
            vocab_check.check_ids_fit(prefix, BinidxReader(prefix).tokens, rows, f"--init {cfg.init}"
                                      + (" after --new-tokens" if also else ""))
    return vocab_check.check_shard_vocab(cfg.val_data, p.base, p.spec, also=also) if cfg.val_data else None


def prepare(cfg: FinetuneConfig, device: torch.device, planned: Plan | None = None
            ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Build the model of :func:`plan` (writing vocab.txt and rwkv-init.pth when the vocab grew), wrap LoRA and
    freeze what does not train."""
    from rwkv_data.tokenizer.vocab import write_vocab  # noqa: PLC0415

    p = planned or plan(cfg)
    out_dir = Path(cfg.out_dir)
    info: dict[str, Any] = {"init": cfg.init}
    if p.grown is not None:
        write_vocab(p.grown.vocab, out_dir / "vocab.txt")
        info.update(added_tokens=p.added, vocab=str(out_dir / "vocab.txt"),
                    vocab_size=int(p.state_dict["emb.weight"].shape[0]))
        log.info("vocab extended by %d tokens to %d rows", p.added, info["vocab_size"])
    model = modelio.from_state_dict(p.state_dict, device)
    if p.grown is not None:
        modelio.export_checkpoint(model, out_dir / "rwkv-init.pth", cfg.save_dtype, vocab=p.grown)
    if cfg.lora_rank > 0:
        torch.manual_seed(cfg.seed)
        info["lora_matrices"] = add_lora(model, cfg.lora_rank, cfg.lora_alpha)
    set_trainable(model, cfg.trainable, cfg.lora_rank > 0)
    info["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return model, info


def run(cfg: FinetuneConfig, progress: bool = True) -> dict[str, Any]:
    """Fine-tune ``cfg.init`` on ``cfg.data`` (+ replay); returns the stats also written to stats.json."""
    if not cfg.data:
        raise ConfigError("finetune needs --data PREFIX (binidx shards of the target data)")
    with modelio.job_lock(modelio.output_dir(cfg.out_dir), "finetune"):
        return _run(cfg, progress)


def _run(cfg: FinetuneConfig, progress: bool) -> dict[str, Any]:
    """:func:`run` inside the output folder's lock."""
    out_dir = modelio.output_dir(cfg.out_dir)
    if cfg.resume:
        load_training_state(out_dir)  # a missing or damaged resume point fails here, before any loading
    device = modelio.resolve_device(cfg.device)
    p = plan(cfg)
    val_tok = check_data(cfg, p)
    main = WindowSource(cfg.data, cfg.ctx_len, cfg.micro_bsz, cfg.grad_accum, cfg.magic_prime, cfg.rank,
                        cfg.world_size)
    source: Any = main
    budget = cfg.token_budget or main.num_tokens
    if cfg.replay_data and cfg.replay_share > 0:
        replay = WindowSource(cfg.replay_data, cfg.ctx_len, cfg.micro_bsz, cfg.grad_accum, 0, cfg.rank,
                              cfg.world_size)
        source = MixedSource(main, replay, cfg.replay_share)
        # One pass over the target data: the replayed samples come on top of it.
        budget = cfg.token_budget or int(main.num_tokens / (1.0 - cfg.replay_share))
    Schedule.of(cfg, budget)  # a step larger than the budget fails here, before anything is written
    model, info = prepare(cfg, device, p)
    modelio.check_batch_memory(model, cfg.micro_bsz, cfg.ctx_len)
    atomic_write(out_dir / "config.json", json.dumps(to_dict(cfg), indent=2))
    evaluator = val_evaluator(cfg, device, val_tok, f"--init {cfg.init}") if val_tok is not None else None
    export = functools.partial(modelio.export_checkpoint, vocab=p.grown or p.base)  # the .json records the vocab
    stats = fit(cfg, model, source, budget, out_dir, evaluator=evaluator, export=export, progress=progress)
    stats.update(info)
    atomic_write(out_dir / "stats.json", json.dumps(stats, indent=2))
    return stats
