"""The ``rwkv-data`` command line: a click group whose commands each build a config, run a job, print a summary.

This is the only module that reads argv. Job modules are imported inside each command, so
``rwkv-data --help`` never loads torch. Logs and progress go to stderr, results to stdout (``--json`` for
machines). Exit codes: 0 success, 1 domain error (``RwkvDataError``, printed without traceback), 2 usage.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from rwkv_data.errors import RwkvDataError


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print a result to stdout: JSON when asked, else ``text`` (or a plain rendering of ``obj``)."""
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
    else:
        click.echo(text if text is not None else str(obj))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="rwkv-data")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """rwkv-data: multilingual corpus -> tokenizer -> binidx shards -> validated RWKV-7 model."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


# ---- tokenizer commands: encode, decode, vocab ---------------------------------------------------------


# ---- shard commands: shard, inspect, verify ------------------------------------------------------------


# ---- model commands: train, evaluate, finetune ---------------------------------------------------------


_MODEL_HELP = {
    "data": "binidx prefix P written by `rwkv-data shard` (P.bin, P.idx, P.meta.json).",
    "val_data": "P_val prefix: per-language bits per byte before, during (--eval-every) and after training.",
    "out_dir": "Output folder (checkpoints, train_log.jsonl, config.json, stats.json).",
    "vocab": "'world' or a vocab file (for evaluation and vocab extension).",
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
    """Click options for every field of the config dataclass ``cls``; defaults are shown from the class and
    left as None here, so a --config file's values survive unless a flag overrides them."""
    import dataclasses

    def deco(f: Any) -> Any:
        for fld in reversed(dataclasses.fields(cls)):
            if fld.name in skip:
                continue
            default = fld.default
            flag = "--" + fld.name.replace("_", "-")
            helptext = _MODEL_HELP.get(fld.name, "") + f" [default: {default!r}]"
            if isinstance(default, bool):
                f = click.option(f"{flag}/--no-{flag[2:]}", fld.name, default=None, help=helptext)(f)
            else:
                f = click.option(flag, fld.name, type=type(default), default=None, help=helptext)(f)
        f = click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                         help="TOML config ([section] named after the command, or top-level keys); flags override.")(f)
        return click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")(f)

    return deco


def _load_model_config(cls: Any, path: str | None, section: str, values: dict[str, Any]) -> Any:
    import tomllib

    from rwkv_data.config import load_toml

    if path is not None:
        with open(path, "rb") as fh:
            has_section = section in tomllib.load(fh)
        return load_toml(cls, path, section if has_section else None, **values)
    return load_toml(cls, None, **values)


def _train_summary(stats: dict[str, Any]) -> str:
    ev = stats.get("evals") or []
    bpb = ""
    if len(ev) >= 2:
        first, last = ev[0]["eval"], ev[-1]["eval"]
        key = "all" if "all" in last else next(iter(last))
        bpb = f", val bpb ({key}) {first.get(key, float('nan')):.4f} -> {last[key]:.4f}"
    return (f"{stats['steps']} steps, {stats['tokens']:,} tokens, loss {stats['final_loss']:.4f}, "
            f"{stats['tokens_per_s']:,.0f} tok/s{bpb}; checkpoint {stats['checkpoint']}")


def _train_config_class() -> Any:
    from rwkv_data.config import TrainConfig

    return TrainConfig


def _finetune_config_class() -> Any:
    from rwkv_data.config import FinetuneConfig

    return FinetuneConfig


def _eval_config_class() -> Any:
    from rwkv_data.config import EvalConfig

    return EvalConfig


@cli.command("train")
@_config_options(_train_config_class())
def train_cmd(config_path: str | None, as_json: bool, **values: Any) -> None:
    """Train RWKV-7 on binidx shards (RWKV-LM's sampler and optimiser recipe; exact resume)."""
    from rwkv_data.config import TrainConfig
    from rwkv_data.pipelines import train

    cfg = _load_model_config(TrainConfig, config_path, "train", values)
    stats = train.run(cfg)
    emit(stats, as_json, _train_summary(stats))


@cli.command("finetune")
@_config_options(_finetune_config_class())
def finetune_cmd(config_path: str | None, as_json: bool, **values: Any) -> None:
    """Fine-tune an official checkpoint (optional vocab extension, freezing, LoRA, replay of original data)."""
    from rwkv_data.config import FinetuneConfig
    from rwkv_data.pipelines import finetune

    cfg = _load_model_config(FinetuneConfig, config_path, "finetune", values)
    stats = finetune.run(cfg)
    emit(stats, as_json, _train_summary(stats))


@cli.command("evaluate")
@click.argument("texts", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@_config_options(_eval_config_class(), skip=("texts",))
def evaluate_cmd(texts: tuple[str, ...], config_path: str | None, as_json: bool, **values: Any) -> None:
    """Bits per byte / per char per language of --checkpoint on --data P_val or on TEXTS (.txt, .jsonl).

    Writes OUT_DIR/eval.json and eval.csv and prints the table.
    """
    from rwkv_data.config import EvalConfig
    from rwkv_data.pipelines import evaluate

    if texts:
        values["texts"] = tuple(texts)
    cfg = _load_model_config(EvalConfig, config_path, "evaluate", values)
    result = evaluate.run(cfg)
    table = result.pop("table")
    emit(result, as_json, table)



# ---- audit command ---------------------------------------------------------------------------------------


# ---- run command (end-to-end pipeline) ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rwkv-data`` console script."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="rwkv-data", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except RwkvDataError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
