"""Model commands: ``train``, ``finetune`` and ``evaluate``; their flags are generated from the config classes."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from rwkv_data.cli.app import cli, config_option, emit, load_config
from rwkv_data.config import EvalConfig, FinetuneConfig, TrainConfig

_MODEL_HELP = {
    "data": "binidx prefix P written by `rwkv-data shard` (P.bin, P.idx, P.meta.json).",
    "val_data": "P_val prefix: per-language bits per byte before, during (--eval-every) and after training.",
    "out_dir": "Output folder (checkpoints, train_log.jsonl, config.json, stats.json).",
    "vocab": "'world' or a vocab file: the one the shards were made with (checked against their P.meta.json; "
             "default: the vocab it records).",
    "init": "Start from this official-format checkpoint.",
    "token_budget": "Tokens the cosine schedule spans (0 = one pass over the data).",
    "max_steps": "Stop after this many optimizer steps (0 = at the end of the budget).",
    "precision": "fp32 or bf16 (autocast).",
    "resume": "Continue exactly from OUT_DIR/last.json.",
    "new_tokens": "Vocab file or token list (one per line) to add before fine-tuning.",
    "replay_data": "binidx prefix of the original data to replay.",
    "trainable": "all | embeddings | last:N.",
    "lora_rank": "LoRA rank on the large matrices (0 = off; merged into the saved weights).",
    "data_eval": "P_val binidx prefix (languages from its metadata).",
}


def _config_options(cls: Any, skip: tuple[str, ...] = ()) -> Any:
    """Click options for every field of the config dataclass ``cls`` (and its ``ALIASES``); defaults are shown
    from the class and left as None here, so a --config file's values survive unless a flag overrides them."""
    aliases: dict[str, list[str]] = {}
    for old, new in getattr(cls, "ALIASES", {}).items():
        aliases.setdefault(new, []).append("--" + old.replace("_", "-"))

    def deco(f: Any) -> Any:
        for fld in reversed(dataclasses.fields(cls)):
            if fld.name in skip:
                continue
            default = fld.default
            flags = ["--" + fld.name.replace("_", "-"), *aliases.get(fld.name, [])]
            helptext = _MODEL_HELP.get(fld.name, "") + f" [default: {default!r}]"
            if isinstance(default, bool):
                f = click.option(f"{flags[0]}/--no-{flags[0][2:]}", fld.name, default=None, help=helptext)(f)
            else:
                f = click.option(*flags, fld.name, type=type(default), default=None, help=helptext)(f)
        f = config_option()(f)
        return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)

    return deco


def _train_summary(stats: dict[str, Any]) -> str:
    ev = stats.get("evals") or []
    bpb = ""
    if len(ev) >= 2:
        first, last = ev[0]["eval"], ev[-1]["eval"]
        key = "all" if "all" in last else next(iter(last))
        bpb = f", val bpb ({key}) {first.get(key, float('nan')):.4f} -> {last[key]:.4f}"
    return (f"{stats['steps']} steps, {stats['tokens']:,} tokens, loss {stats['final_loss']:.4f}, "
            f"{stats['tokens_per_s']:,.0f} tok/s{bpb}; checkpoint {stats['checkpoint']}")


@cli.command("train")
@_config_options(TrainConfig)
def train_cmd(config_path: str | None, as_json: bool, **values: Any) -> None:
    """Train RWKV-7 on binidx shards (RWKV-LM's sampler and optimiser recipe; exact resume)."""
    from rwkv_data.pipelines.train import distributed
    from rwkv_data.pipelines.train import job as train

    cfg = load_config(TrainConfig, config_path, "train", values)
    stats = train.run(cfg)
    if distributed.is_main():  # under torchrun every rank returns; rank 0 speaks for the job
        emit(stats, as_json, _train_summary(stats))


@cli.command("finetune")
@_config_options(FinetuneConfig)
def finetune_cmd(config_path: str | None, as_json: bool, **values: Any) -> None:
    """Fine-tune an official checkpoint (optional vocab extension, freezing, LoRA, replay of original data)."""
    from rwkv_data.pipelines.train import finetune

    cfg = load_config(FinetuneConfig, config_path, "finetune", values)
    stats = finetune.run(cfg)
    emit(stats, as_json, _train_summary(stats))


@cli.command("evaluate")
@click.argument("texts", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@_config_options(EvalConfig, skip=("inputs",))
def evaluate_cmd(texts: tuple[str, ...], config_path: str | None, as_json: bool, **values: Any) -> None:
    """Bits per byte / per char per language of --checkpoint on --data P_val or on TEXTS (.txt, .jsonl).

    Writes OUT_DIR/eval.json and eval.csv and prints the table.
    """
    from rwkv_data.pipelines.train import evaluate

    if texts:
        values["inputs"] = tuple(texts)
    cfg = load_config(EvalConfig, config_path, "evaluate", values)
    result = evaluate.run(cfg)
    table = result.pop("table")
    emit(result, as_json, table)
