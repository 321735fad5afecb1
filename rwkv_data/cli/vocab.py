"""Vocabulary commands: ``vocab info``, ``vocab train`` and ``vocab extend``."""

from __future__ import annotations

from typing import Any

import click

from rwkv_data.cli.app import cli, config_option, corpus_options, default_of, emit, load_config, skip_lines


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
    from rwkv_data.config import VocabConfig

    return default_of(VocabConfig, name)


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
        config_option(),
        click.option("--languages", help="Comma-separated languages to use (default: all in the input)."),
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
        click.option("--candidates", help="Comma-separated sources: bpe, unigram, ngram, phrase. "
                     + _vocab_default("candidates")),
        click.option("--candidate-factor", type=float, help=_vocab_default("candidate_factor")),
        click.option("--char-min-count", type=int, help="Character completeness floor. "
                     + _vocab_default("char_min_count")),
        click.option("--char-seed", help="'auto', 'charsets', 'world', a vocab file, or '' for none. "
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
    return corpus_options(fn)


def _vocab_config(inputs: tuple[str, ...], config_path: str | None, lang_weight: tuple[str, ...],
                  lang_cap: tuple[str, ...], values: dict[str, Any]) -> Any:
    from rwkv_data.config import VocabConfig

    for key in ("languages", "candidates", "focus_scripts"):
        if values.get(key) is not None:
            values[key] = tuple(x.strip() for x in values[key].split(",") if x.strip())
    values.update(inputs=tuple(inputs) or None, lang_weights=_lang_values(lang_weight, "--lang-weight", float),
                  lang_caps=_lang_values(lang_cap, "--lang-cap", int))
    return load_config(VocabConfig, config_path, "vocab", values)


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
         f"(sha256 {s['sha256'][:12]}); statistics in {s['meta']}\n" + "\n".join(skip_lines(s)))


@vocab_group.command("extend")
@_vocab_options
@click.option("--base", help="Vocab to extend (a vocab file, or 'world'). " + _vocab_default("base"))
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
         f"{s['replaced']} replaced; id map {s['idmap']}\n" + "\n".join(skip_lines(s)))
