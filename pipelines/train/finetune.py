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

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch.nn.utils import parametrize

from rwkv_data.config import FinetuneConfig, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.train import modelio
from rwkv_data.pipelines.train.job import MixedSource, WindowSource, atomic_write_text, fit

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


def prepare(cfg: FinetuneConfig, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Load ``cfg.init``, extend the vocab if asked (writing vocab.txt and rwkv-init.pth), wrap LoRA, freeze."""
    from rwkv_data.pipelines.train.evaluate import load_tokenizer  # noqa: PLC0415
    from rwkv_data.pipelines.train.vocab_growth import (  # noqa: PLC0415
        grow_state_dict,
        is_idmap,
        plan_extension,
        plan_from_idmap,
        read_new_tokens,
    )
    from rwkv_data.tokenizer.vocab import write_vocab  # noqa: PLC0415

    if not cfg.init:
        raise ConfigError("finetune needs --init CHECKPOINT (an official-format .pth)")
    out_dir = Path(cfg.out_dir)
    info: dict[str, Any] = {"init": cfg.init}
    sd = modelio.read_state_dict(cfg.init)
    if cfg.new_tokens:
        tok = load_tokenizer(cfg.vocab)
        if is_idmap(cfg.new_tokens):
            vocab, parts = plan_from_idmap(tok, cfg.new_tokens)
        else:
            vocab, parts = plan_extension(tok, read_new_tokens(cfg.new_tokens), sd["emb.weight"].shape[0])
        sd = grow_state_dict(sd, parts)
        write_vocab(vocab, out_dir / "vocab.txt")
        info.update(added_tokens=len(parts), vocab=str(out_dir / "vocab.txt"),
                    vocab_size=int(sd["emb.weight"].shape[0]))
        log.info("vocab extended by %d tokens to %d rows", len(parts), sd["emb.weight"].shape[0])
    model = modelio.from_state_dict(sd, device)
    if cfg.new_tokens:
        modelio.export_checkpoint(model, out_dir / "rwkv-init.pth", cfg.save_dtype)
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
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = modelio.resolve_device(cfg.device)
    model, info = prepare(cfg, device)
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
    atomic_write_text(out_dir / "config.json", json.dumps(to_dict(cfg), indent=2))
    evaluator = None
    if cfg.val_data:
        from rwkv_data.pipelines.train.job import _val_evaluator  # noqa: PLC0415

        evaluator = _val_evaluator(cfg if not cfg.new_tokens else _with_vocab(cfg, info["vocab"]), device)
    stats = fit(cfg, model, source, budget, out_dir, evaluator=evaluator, progress=progress)
    stats.update(info)
    atomic_write_text(out_dir / "stats.json", json.dumps(stats, indent=2))
    return stats


def _with_vocab(cfg: FinetuneConfig, vocab: str) -> FinetuneConfig:
    import dataclasses  # noqa: PLC0415

    return dataclasses.replace(cfg, vocab=vocab)
