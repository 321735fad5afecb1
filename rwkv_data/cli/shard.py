"""Shard commands: ``shard`` (``shard build``), ``shard inspect`` and ``shard verify``; ``inspect`` and
``verify`` are also top-level commands (the names the README has always used)."""

from __future__ import annotations

from typing import Any

import click

from rwkv_data.cli.app import cli, config_option, corpus_options, default_of, emit, load_config, skip_lines


class DefaultGroup(click.Group):
    """A group that runs ``default`` when the first argument is not one of its commands (``shard IN... -o P``)."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


@cli.group("shard", cls=DefaultGroup, default="build")
def shard_group() -> None:
    """Binidx shards: build (the default), inspect, verify."""


def _shard_default(name: str) -> str:
    from rwkv_data.config import ShardConfig

    return default_of(ShardConfig, name)


def _budgets(values: tuple[str, ...]) -> dict[str, int] | None:
    out: dict[str, int] = {}
    for v in values:
        lang, sep, num = v.partition("=")
        if not sep or not lang:
            raise click.BadParameter(f"{v!r}: expected LANG=TOKENS, e.g. en=2000000", param_hint="--lang-budget")
        try:
            out[lang] = int(float(num))
        except (ValueError, OverflowError):
            raise click.BadParameter(f"{v!r}: {num!r} is not a token count", param_hint="--lang-budget") from None
    return out or None


@shard_group.command("build")
@click.argument("inputs", nargs=-1)
@click.option("-o", "--output", help="Output prefix P: P.bin/.idx/.meta.json/.lang.npy and P_val.* "
              + _shard_default("output"))
@config_option()
@click.option("--vocab", help="Tokenizer: 'world' or an RWKV vocab file. " + _shard_default("vocab"))
@click.option("--tokenizer-impl", type=click.Choice(["auto", "native", "python"]),
              help=_shard_default("tokenizer_impl"))
@click.option("--val-fraction", type=float, help="Share of each language in P_val. " + _shard_default("val_fraction"))
@click.option("--val-min-docs", type=int, help="Minimum P_val documents per language. "
              + _shard_default("val_min_docs"))
@click.option("--seed", type=int, help="Shuffle / subsampling seed. " + _shard_default("seed"))
@click.option("--lang-budget", "lang_budget", multiple=True, metavar="LANG=TOKENS",
              help="Training-token target of a language (repeat or subsample toward it); repeatable.")
@click.option("--temperature", type=float, help="Weight languages to p**(1/T) of their token share (0 = off). "
              + _shard_default("temperature"))
@click.option("--ctx-len", "ctx_len", type=int, multiple=True, help="magic_prime for this ctx_len; repeatable. "
              + _shard_default("ctx_lens"))
@click.option("--lang-array/--no-lang-array", default=None, help="Write P.lang.npy. " + _shard_default("lang_array"))
@click.option("--workers", type=int, help="Tokenizer processes (0: one per CPU; the output is the same for any "
              "count). " + _shard_default("workers"))
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where parts are tokenized: local processes or Ray tasks (pip install 'rwkv-data[ray]'). "
              + _shard_default("executor"))
@click.option("--ray-address", help="Ray cluster to use: auto, HOST:PORT or ray://HOST:10001 (default: a local "
              "Ray instance with --workers CPUs).")
@click.option("--work-dir", help="Parts and completion markers ('' = P.work). " + _shard_default("work_dir"))
@click.option("--keep-work/--no-keep-work", default=None, help="Keep the parts after success.")
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr. " + _shard_default("progress"))
@click.option("--force", is_flag=True, default=None, help="Overwrite existing output files not written by rwkv-data.")
@click.option("--json", "as_json", is_flag=True, help="Print the train and val meta as JSON.")
@corpus_options
def shard_cmd(inputs: tuple[str, ...], config_path: str | None, lang_budget: tuple[str, ...],
              ctx_len: tuple[int, ...], as_json: bool, **values: Any) -> None:
    """Tokenize corpora (txt, jsonl[.zst|.gz], parquet, HF datasets) into RWKV binidx shards P and P_val.

    `rwkv-data shard INPUTS...` is short for `rwkv-data shard build INPUTS...`; see also `rwkv-data shard
    inspect P` and `rwkv-data shard verify P`.
    """
    from rwkv_data.config import ShardConfig
    from rwkv_data.pipelines.shard.job import run

    values.update(inputs=tuple(inputs) or None, lang_budgets=_budgets(lang_budget), ctx_lens=tuple(ctx_len) or None)
    cfg = load_config(ShardConfig, config_path, "shard", values)
    metas = run(cfg)
    tr, va = metas["train"], metas["val"]
    lines = [f"{cfg.output}: {tr['documents']:,} documents, {tr['tokens']:,} tokens ({tr['dtype']}); "
             f"{va['prefix']}: {va['documents']:,} documents, {va['tokens']:,} tokens; "
             f"{len(tr['languages'])} languages"]
    lines += [f"ctx_len {m['ctx_len']}: {m['train_args']}" + ("" if m["ok"] else f"  (!) {m['problem']}")
              for m in tr["rwkv_lm"]]
    lines += skip_lines(tr)  # counts by reason, and the first of each (file, line / byte offset)
    emit(metas, as_json, "\n".join(lines))


@shard_group.command("inspect")
@click.argument("prefix")
@click.option("--vocab", help="Vocab to decode the sample with (default: the one recorded in P.meta.json).")
@click.option("--sample", type=click.IntRange(min=0), default=0, show_default=True, help="Item to decode.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_cmd(prefix: str, vocab: str | None, sample: int, as_json: bool) -> None:
    """Counts, the per-language table and a decoded sample document of shard PREFIX."""
    from rwkv_data.pipelines.shard.check import format_inspect, inspect
    from rwkv_data.pipelines.shard.meta import tokenizer_for_shard

    info = inspect(prefix, tokenizer_for_shard(prefix, vocab, strict=False), sample=sample)
    emit(info, as_json, format_inspect(info))


@shard_group.command("verify")
@click.argument("prefix")
@click.option("--vocab-size", type=click.IntRange(1, 1 << 32), help="Ids must be below it (default: from P.meta.json).")
@click.option("--no-meta", is_flag=True, help="A binidx not written by rwkv-data: check the structure only.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify_cmd(prefix: str, vocab_size: int | None, no_meta: bool, as_json: bool) -> None:
    """Check shard PREFIX: header, sizes, pointers, doc_idx, EOS, ids, hashes and meta; exit 1 on any failure."""
    from rwkv_data.errors import ShardFormatError
    from rwkv_data.pipelines.shard.check import format_verify, verify

    report = verify(prefix, vocab_size, require_meta=not no_meta)
    emit(report, as_json, format_verify(report))
    if not report["ok"]:
        raise ShardFormatError(f"{prefix}: failed {', '.join(f['check'] for f in report['failures'])}")


cli.add_command(inspect_cmd, "inspect")
cli.add_command(verify_cmd, "verify")
