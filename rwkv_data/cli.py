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


def _load_tokenizer(vocab: str | None) -> Any:
    """The tokenizer of ``--vocab`` (a spec: ``world`` or a .txt/.json vocab), RWKV World when not given."""
    from rwkv_data.tokenizer.resolve import load_trie

    return load_trie(vocab or "world")


_VOCAB_HELP = "Vocab file (World .txt or .json); default: RWKV World (bundled)."


def _read_input(path: str | None) -> bytes:
    """--file's bytes (stdin without one), at most MAX_RECORD_BYTES: /dev/zero or a huge file is one error."""
    from rwkv_data.config import MAX_RECORD_BYTES
    from rwkv_data.errors import InputFormatError

    if path is None:
        data, name = sys.stdin.buffer.read(MAX_RECORD_BYTES + 1), "stdin"
    else:
        with open(path, "rb") as f:
            data, name = f.read(MAX_RECORD_BYTES + 1), path
    if len(data) > MAX_RECORD_BYTES:
        raise InputFormatError(f"{name}: over {MAX_RECORD_BYTES:,} bytes; encode reads one document into memory: "
                               "tokenize corpora with `rwkv-data shard`")
    return data


@cli.command("encode")
@click.argument("text", required=False)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False), help="Encode this file's bytes.")
@click.option("--vocab", type=click.Path(exists=True, dir_okay=False), help=_VOCAB_HELP)
@click.option("--pieces", is_flag=True, help="Show each token's id and bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def encode_cmd(text: str | None, file_: str | None, vocab: str | None, pieces: bool, as_json: bool) -> None:
    """Encode TEXT, --file F, or stdin (when neither is given) to token ids."""
    from rwkv_data.tokenizer.literal import token_literal

    if text is not None and file_ is not None:
        raise click.UsageError("give TEXT or --file, not both")
    data = text.encode("utf-8") if text is not None else _read_input(file_)
    tok = _load_tokenizer(vocab)
    pairs = tok.pieces(data)
    ids = [i for i, _ in pairs]
    if as_json:
        out: dict[str, Any] = {"ids": ids, "tokens": len(ids), "bytes": len(data), "vocab": tok.name}
        if pieces:
            out["pieces"] = [{"id": i, "literal": token_literal(b)} for i, b in pairs]
        emit(out, True)
    elif pieces:
        emit(None, False, "\n".join(f"{i}\t{token_literal(b)}" for i, b in pairs))
    else:
        emit(None, False, " ".join(map(str, ids)))


@cli.command("decode")
@click.argument("ids", nargs=-1)
@click.option("--vocab", type=click.Path(exists=True, dir_okay=False), help=_VOCAB_HELP)
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="strict: fail naming the ids that are not valid UTF-8; replace: U+FFFD for just those bytes.")
def decode_cmd(ids: tuple[str, ...], vocab: str | None, errors: str) -> None:
    """Decode IDS (separated by spaces or commas; stdin when none) to text."""
    import re

    words = re.split(r"[\s,\[\]]+", " ".join(ids) if ids else sys.stdin.read())
    try:
        values = [int(w) for w in words if w]
    except ValueError as exc:
        raise click.BadParameter(f"ids must be integers ({exc})", param_hint="IDS") from None
    tok = _load_tokenizer(vocab)
    try:
        text = tok.decode(values, errors=errors)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(text)


@cli.group("vocab")
def vocab_group() -> None:
    """Vocabulary files: inspect (and, with the vocab pipeline, train / extend)."""


@vocab_group.command("info")
@click.argument("path", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def vocab_info_cmd(path: str | None, as_json: bool) -> None:
    """Size, byte coverage, tokens per script, longest token and sha256 of PATH (default: RWKV World)."""
    from rwkv_data.tokenizer import read_vocab, world_vocab_path
    from rwkv_data.tokenizer.info import format_info, vocab_info

    info = vocab_info(read_vocab(path or world_vocab_path()))
    info["path"] = str(path or world_vocab_path())
    emit(info, as_json, format_info(info))


def _vocab_default(name: str) -> str:
    """``[default: X]`` from VocabConfig, for help texts (click defaults stay None so --config values survive)."""
    import dataclasses

    from rwkv_data.config import VocabConfig

    f = next(f for f in dataclasses.fields(VocabConfig) if f.name == name)
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return f"[default: {value!r}]"


def _lang_values(values: tuple[str, ...], option: str, kind: type) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    for v in values:
        lang, sep, num = v.partition("=")
        try:
            if not sep or not lang:
                raise ValueError
            out[lang] = kind(float(num))
        except ValueError:
            raise click.BadParameter(f"{v!r}: expected LANG=NUMBER, e.g. en=2", param_hint=option) from None
    return out or None


def _vocab_options(fn: Any) -> Any:
    """The options `vocab train` and `vocab extend` share (corpus, sampling, candidates, selection)."""
    opts = [
        click.argument("inputs", nargs=-1),
        click.option("-o", "--output", help="Vocab file to write (.json: JSON form). " + _vocab_default("output")),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                     help="TOML config (a [vocab] section or top-level keys of VocabConfig); flags override it."),
        click.option("--languages", help="Comma-separated languages to use (default: all in the input)."),
        click.option("--max-record-bytes", type=click.IntRange(min=1), help="Longest line / document / cell read. "
                     + _vocab_default("max_record_bytes")),
        click.option("--sampling", type=click.Choice(["unimax", "temperature"]), help=_vocab_default("sampling")),
        click.option("--sample-chars", type=int, help="Characters fed to the candidate trainers. "
                     + _vocab_default("sample_chars")),
        click.option("--max-epochs", type=float, help="Most repetitions of a language. "
                     + _vocab_default("max_epochs")),
        click.option("--temperature", type=float, help=_vocab_default("temperature")),
        click.option("--lang-weight", "lang_weight", multiple=True, metavar="LANG=W",
                     help="Weight of a language in sampling and selection; repeatable. "
                     + _vocab_default("lang_weights")),
        click.option("--lang-cap", "lang_cap", multiple=True, metavar="LANG=CHARS",
                     help="Most characters sampled from a language; repeatable."),
        click.option("--heldout-chars", type=int, help="Held-out text per language for scoring. "
                     + _vocab_default("heldout_chars")),
        click.option("--pretokenizer", type=click.Choice(["mark-aware", "gpt2"]), help=_vocab_default("pretokenizer")),
        click.option("--candidates", help="Comma-separated sources: bpe, unigram, ngram. "
                     + _vocab_default("candidates")),
        click.option("--candidate-factor", type=float, help=_vocab_default("candidate_factor")),
        click.option("--char-min-count", type=int, help="Character completeness floor. "
                     + _vocab_default("char_min_count")),
        click.option("--char-seed", help="'charsets', 'world', a vocab file, or '' for none. "
                     + _vocab_default("char_seed")),
        click.option("--rounds", type=int, help="Greedy pruning rounds. " + _vocab_default("rounds")),
        click.option("--refill-rounds", type=int, help=_vocab_default("refill_rounds")),
        click.option("--max-variants", type=int, help="Case/leading-space variants per family. "
                     + _vocab_default("max_variants")),
        click.option("--fairness", type=float, help="0 = equal relative weight per language; higher favours the "
                     "worst-off languages over English. " + _vocab_default("fairness")),
        click.option("--seed", type=int, help=_vocab_default("seed")),
        click.option("--threads", type=int, help="0 = all cores. " + _vocab_default("threads")),
        click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _vocab_config(inputs: tuple[str, ...], config_path: str | None, lang_weight: tuple[str, ...],
                  lang_cap: tuple[str, ...], values: dict[str, Any]) -> Any:
    from rwkv_data.config import VocabConfig, load_toml

    section = None
    if config_path is not None:
        import tomllib

        with open(config_path, "rb") as fh:
            section = "vocab" if "vocab" in tomllib.load(fh) else None
    for key in ("languages", "candidates", "focus_scripts"):
        if values.get(key) is not None:
            values[key] = tuple(x.strip() for x in values[key].split(",") if x.strip())
    values.update(inputs=tuple(inputs) or None, lang_weights=_lang_values(lang_weight, "--lang-weight", float),
                  lang_caps=_lang_values(lang_cap, "--lang-cap", int))
    return load_toml(VocabConfig, config_path, section, **values)


@vocab_group.command("train")
@_vocab_options
@click.option("--vocab-size", type=int, help="Ids 0..N-1 (0 reserved, 1-256 the bytes). "
              + _vocab_default("vocab_size"))
@click.option("--coverage", help="Coverage floor: keep this vocab's characters (and its tokens of scripts thin in "
              "the corpus): 'world', a vocab file, or '' for none (docs/vocab.md). " + _vocab_default("coverage"))
@click.option("--coverage-share", type=float, help="Most of the vocab the floor may take. "
              + _vocab_default("coverage_share"))
def vocab_train_cmd(inputs: tuple[str, ...], config_path: str | None, lang_weight: tuple[str, ...],
                    lang_cap: tuple[str, ...], as_json: bool, **values: Any) -> None:
    """Train a vocabulary for greedy longest match from a multilingual corpus (records need a language field)."""
    from rwkv_data.pipelines.vocab.job import run

    cfg = _vocab_config(inputs, config_path, lang_weight, lang_cap, values)
    s = run(cfg)
    emit(s, as_json, f"{s['output']}: {s['tokens']:,} tokens from {s['languages']} languages in {s['seconds']:.0f} s "
         f"(sha256 {s['sha256'][:12]}); statistics in {s['meta']}")


@vocab_group.command("extend")
@_vocab_options
@click.option("--base", help="Vocab to extend ('' = RWKV World). " + _vocab_default("base"))
@click.option("--add-tokens", type=int, help="New tokens (replaced ids first, then fresh ids). "
              + _vocab_default("add_tokens"))
@click.option("--replace-unused/--no-replace-unused", default=None,
              help="Also replace base tokens greedy never uses on the inputs. " + _vocab_default("replace_unused"))
@click.option("--first-new-id", type=int, help="0 = past the base max id, rounded up to 64. "
              + _vocab_default("first_new_id"))
@click.option("--idmap", help="Id map JSON for finetune's embedding init ('' = <output>.idmap.json).")
@click.option("--focus/--no-focus", default=None, help="Add only tokens holding a character of the target "
              "scripts (English ids stay identical for a non-Latin target). " + _vocab_default("focus"))
@click.option("--focus-scripts", help="Comma-separated ISO 15924 codes ('' = the inputs' scripts). "
              + _vocab_default("focus_scripts"))
def vocab_extend_cmd(inputs: tuple[str, ...], config_path: str | None, lang_weight: tuple[str, ...],
                     lang_cap: tuple[str, ...], as_json: bool, **values: Any) -> None:
    """Add tokens for the languages of INPUTS to an existing vocab, keeping every kept token's id."""
    from rwkv_data.pipelines.vocab.job import run_extend

    cfg = _vocab_config(inputs, config_path, lang_weight, lang_cap, values)
    s = run_extend(cfg)
    emit(s, as_json, f"{s['output']}: {s['tokens']:,} tokens (max id {s['max_id']}), {s['added']} added, "
         f"{s['replaced']} replaced; id map {s['idmap']}")


# ---- shard commands: shard, inspect, verify ------------------------------------------------------------


def _shard_default(name: str) -> str:
    """``[default: X]`` from ShardConfig, for help texts (click defaults stay None so --config values survive)."""
    import dataclasses

    from rwkv_data.config import ShardConfig

    f = next(f for f in dataclasses.fields(ShardConfig) if f.name == name)
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return f"[default: {value!r}]"


def _budgets(values: tuple[str, ...]) -> dict[str, int] | None:
    out: dict[str, int] = {}
    for v in values:
        lang, sep, num = v.partition("=")
        if not sep or not lang:
            raise click.BadParameter(f"{v!r}: expected LANG=TOKENS, e.g. en=2000000", param_hint="--lang-budget")
        try:
            out[lang] = int(float(num))
        except ValueError:
            raise click.BadParameter(f"{v!r}: {num!r} is not a token count", param_hint="--lang-budget") from None
    return out or None


@cli.command("shard")
@click.argument("inputs", nargs=-1)
@click.option("-o", "--output", help="Output prefix P: P.bin/.idx/.meta.json/.lang.npy and P_val.* "
              + _shard_default("output"))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="TOML config (a [shard] section or top-level keys of ShardConfig); flags override it.")
@click.option("--vocab", help="Vocab file ('' = RWKV World). " + _shard_default("vocab"))
@click.option("--tokenizer-impl", type=click.Choice(["auto", "native", "python"]),
              help=_shard_default("tokenizer_impl"))
@click.option("--text-field", help="jsonl key / column of the text. " + _shard_default("text_field"))
@click.option("--lang-field", help="jsonl key / column of the language. " + _shard_default("lang_field"))
@click.option("--lang", help="Language of records without the field and of .txt files (else 'und').")
@click.option("--split-paragraphs/--no-split-paragraphs", default=None,
              help=".txt: one document per blank-line separated paragraph. " + _shard_default("split_paragraphs"))
@click.option("--hf-split", help="Split of a DatasetDict folder or hf:NAME. " + _shard_default("hf_split"))
@click.option("--on-error", type=click.Choice(["raise", "skip"]),
              help="Bad records: stop naming file and line, or skip and count by reason. " + _shard_default("on_error"))
@click.option("--max-record-bytes", type=click.IntRange(min=1), help="Longest line / document / cell read; a longer "
              "one is a bad record (record_too_large). " + _shard_default("max_record_bytes"))
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
def shard_cmd(inputs: tuple[str, ...], config_path: str | None, lang_budget: tuple[str, ...],
              ctx_len: tuple[int, ...], as_json: bool, **values: Any) -> None:
    """Tokenize corpora (txt, jsonl[.zst|.gz], parquet, HF datasets) into RWKV binidx shards P and P_val."""
    from rwkv_data.config import ShardConfig, load_toml
    from rwkv_data.pipelines.shard.job import run

    section = None
    if config_path is not None:
        import tomllib

        with open(config_path, "rb") as fh:
            section = "shard" if "shard" in tomllib.load(fh) else None
    values.update(inputs=tuple(inputs) or None, lang_budgets=_budgets(lang_budget), ctx_lens=tuple(ctx_len) or None)
    cfg = load_toml(ShardConfig, config_path, section, **values)
    metas = run(cfg)
    tr, va = metas["train"], metas["val"]
    lines = [f"{cfg.output}: {tr['documents']:,} documents, {tr['tokens']:,} tokens ({tr['dtype']}); "
             f"{va['prefix']}: {va['documents']:,} documents, {va['tokens']:,} tokens; "
             f"{len(tr['languages'])} languages"]
    lines += [f"ctx_len {m['ctx_len']}: {m['train_args']}" + ("" if m["ok"] else f"  (!) {m['problem']}")
              for m in tr["rwkv_lm"]]
    lines.append("skipped: " + (", ".join(f"{k}={v}" for k, v in tr["skipped"].items()) or "none"))
    lines += [f"  first {k}: {v}" for k, v in tr.get("skipped_examples", {}).items()]  # file, line / byte offset
    emit(metas, as_json, "\n".join(lines))


@cli.command("inspect")
@click.argument("prefix")
@click.option("--vocab", help="Vocab to decode the sample with (default: the one recorded in P.meta.json).")
@click.option("--sample", type=int, default=0, show_default=True, help="Item to decode.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def inspect_cmd(prefix: str, vocab: str | None, sample: int, as_json: bool) -> None:
    """Counts, the per-language table and a decoded sample document of shard PREFIX."""
    from rwkv_data.pipelines.shard.check import format_inspect, inspect
    from rwkv_data.pipelines.shard.meta import tokenizer_for_shard

    info = inspect(prefix, tokenizer_for_shard(prefix, vocab, strict=False), sample=sample)
    emit(info, as_json, format_inspect(info))


@cli.command("verify")
@click.argument("prefix")
@click.option("--vocab-size", type=int, help="Ids must be below it (default: from P.meta.json).")
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


# ---- model commands: train, evaluate, finetune ---------------------------------------------------------


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
    from rwkv_data.pipelines.train import distributed
    from rwkv_data.pipelines.train import job as train

    cfg = _load_model_config(TrainConfig, config_path, "train", values)
    stats = train.run(cfg)
    if distributed.is_main():  # under torchrun every rank returns; rank 0 speaks for the job
        emit(stats, as_json, _train_summary(stats))


@cli.command("finetune")
@_config_options(_finetune_config_class())
def finetune_cmd(config_path: str | None, as_json: bool, **values: Any) -> None:
    """Fine-tune an official checkpoint (optional vocab extension, freezing, LoRA, replay of original data)."""
    from rwkv_data.config import FinetuneConfig
    from rwkv_data.pipelines.train import finetune

    cfg = _load_model_config(FinetuneConfig, config_path, "finetune", values)
    stats = finetune.run(cfg)
    emit(stats, as_json, _train_summary(stats))


@cli.command("evaluate")
@click.argument("texts", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@_config_options(_eval_config_class(), skip=("inputs",))
def evaluate_cmd(texts: tuple[str, ...], config_path: str | None, as_json: bool, **values: Any) -> None:
    """Bits per byte / per char per language of --checkpoint on --data P_val or on TEXTS (.txt, .jsonl).

    Writes OUT_DIR/eval.json and eval.csv and prints the table.
    """
    from rwkv_data.config import EvalConfig
    from rwkv_data.pipelines.train import evaluate

    if texts:
        values["inputs"] = tuple(texts)
    cfg = _load_model_config(EvalConfig, config_path, "evaluate", values)
    result = evaluate.run(cfg)
    table = result.pop("table")
    emit(result, as_json, table)



# ---- audit command ---------------------------------------------------------------------------------------


def _audit_default(name: str) -> str:
    """``[default: X]`` from AuditConfig for help texts (click defaults stay None so --config values survive)."""
    import dataclasses

    from rwkv_data.config import AuditConfig

    return f"[default: {next(f.default for f in dataclasses.fields(AuditConfig) if f.name == name)!r}]"


@cli.command("audit")
@click.argument("corpus", required=False)
@click.option("-t", "--tokenizer", "tokenizers", multiple=True, metavar="SPEC",
              help="[label=][trie:|hf:|tiktoken:|sp:]PATH[#pattern], 'world' or 'bytes'; repeatable. "
              + _audit_default("tokenizers"))
@click.option("-o", "--out-dir", help="Output folder. " + _audit_default("out_dir"))
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="TOML file (an [audit] table or top-level keys); flags override it.")
@click.option("--layout", type=click.Choice(["auto", "parallel", "mono"]), help=_audit_default("layout"))
@click.option("--reference", help="Parity reference language. " + _audit_default("reference"))
@click.option("--lang", "langs", multiple=True, help="Audit only this language (key or tag); repeatable.")
@click.option("--max-bytes-per-lang", type=int, help="Mono corpora: bytes per language (0 = all). "
              + _audit_default("max_bytes_per_lang"))
@click.option("--bootstrap", type=int, help="Bootstrap resamples. " + _audit_default("bootstrap"))
@click.option("--confidence", type=float, help="Interval level. " + _audit_default("confidence"))
@click.option("--seed", type=int, help="Bootstrap seed. " + _audit_default("seed"))
@click.option("--alpha", type=float, help="Rényi order. " + _audit_default("alpha"))
@click.option("--vocab-size", type=int, help="|V| for Rényi efficiency (0 = each tokenizer's size).")
@click.option("--greedy-gap/--no-greedy-gap", default=None, help="Minimum-token DP for trie tokenizers.")
@click.option("--fail-if", "fail_if", multiple=True, metavar="COND",
              help="Exit 1 when e.g. 'max_parity>2.5' or 'World:gini>=0.3' holds; repeatable.")
@click.option("--html/--no-html", default=None, help="Write report.html. " + _audit_default("html"))
@click.option("--threads", "threads", type=int, help="Encoder threads for trie tokenizers (0 = default).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def audit_cmd(corpus: str | None, config_path: str | None, tokenizers: tuple[str, ...], langs: tuple[str, ...],
              fail_if: tuple[str, ...], as_json: bool, **values: Any) -> None:
    """Tokenization efficiency per language and tokenizer: parity, fertility, fallback, Rényi, greedy gap, CIs."""
    from rwkv_data.config import AuditConfig, load_toml
    from rwkv_data.pipelines.audit.job import run

    section = None
    if config_path is not None:
        import tomllib

        with open(config_path, "rb") as fh:
            section = "audit" if "audit" in tomllib.load(fh) else None
    values.update(corpus=corpus, tokenizers=tokenizers or None, langs=langs or None, fail_if=fail_if or None)
    cfg = load_toml(AuditConfig, config_path, section, **values)
    result = run(cfg)
    emit(result.report["summary"], as_json, result.table + f"\nwritten to {result.out_dir}/")
    for failure in result.failures:
        click.echo(f"threshold failed: {failure}", err=True)
    if result.failures:
        sys.exit(1)


# ---- run command (end-to-end pipeline) ------------------------------------------------------------------


@cli.command("run")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", help="Run folder (default: the config's `out`, else runs/demo or runs/<CONFIG stem>).")
@click.option("--skip", multiple=True, metavar="STAGE",
              help="Do not run STAGE (vocab, shard, train, evaluate, audit); repeatable or comma-separated.")
@click.option("--redo", multiple=True, metavar="STAGE", help="Run STAGE again although it finished; repeatable.")
@click.option("--threads", type=int, help="torch CPU threads (0 = torch's default, 1 when the CPU is busy).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (table rows, stages, files) as JSON.")
def run_cmd(config_path: str | None, out: str | None, skip: tuple[str, ...], redo: tuple[str, ...],
            threads: int | None, as_json: bool) -> None:
    """The whole pipeline: vocab, shards with a validation split, a tiny RWKV-7, bits per byte per language, audit.

    Without CONFIG.toml it runs on the bundled demo corpus (38 languages, a few minutes on a CPU). Finished
    stages are not redone on a rerun; see examples/demo.toml for pointing it at your own corpus.
    """
    from rwkv_data.pipelines.run import StageFailed, default_out, format_result, load_run_config, run

    cfg = load_run_config(config_path, out_dir=out, skip=skip or None, redo=redo or None, threads=threads)
    if not cfg.out_dir:
        import dataclasses

        cfg = dataclasses.replace(cfg, out_dir=default_out(config_path))
    try:
        result = run(cfg)
    except StageFailed as exc:  # what finished and every file written, then the one-line error
        emit({**exc.result, "error": str(exc)}, as_json, format_result(exc.result))
        raise
    emit(result, as_json, format_result(result))


@cli.command("compare")
@click.argument("config_path", metavar="CONFIG.toml", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out", help="Run folder (default: the config's `out`, else runs/<CONFIG stem>).")
@click.option("--redo", multiple=True, metavar="STAGE", help="Run STAGE again although it finished (e.g. report).")
@click.option("--threads", type=int, help="torch CPU threads (0 = torch's default, 1 when the CPU is busy).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole comparison as JSON.")
def compare_cmd(config_path: str, out: str | None, redo: tuple[str, ...], threads: int | None, as_json: bool) -> None:
    """Per-language bits per byte of tokenizer variants on the same held-out documents, with paired intervals.

    Each variant is sharded, trained (same layers and width) and scored; differences against the baseline get a
    paired bootstrap interval and a verdict. Finished stages are not redone. See docs/compare.md.
    """
    from rwkv_data.pipelines.compare.job import run
    from rwkv_data.pipelines.compare.spec import load_compare_config

    cfg = load_compare_config(config_path, out=out, redo=redo or None, threads=threads)
    if not cfg.out:
        import dataclasses
        from pathlib import Path

        cfg = dataclasses.replace(cfg, out=f"runs/{Path(config_path).stem}")
    result = run(cfg)
    emit(result, as_json, result["table"] + f"\nreport: {result['out']}/report/report.html\n"
         f"total {result['seconds']:.1f} s")


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
