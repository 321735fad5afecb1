"""The ``rwkv-data`` click group and what every command group shares: output, defaults in help texts, the
corpus options, and building a job config from ``--config`` and flags."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from typing import Any

import click


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


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print a result to stdout: JSON when asked, else ``text`` (or a plain rendering of ``obj``)."""
    if as_json:
        click.echo(json.dumps(obj, ensure_ascii=False, indent=2))
    else:
        click.echo(text if text is not None else str(obj))


def skip_lines(result: dict[str, Any]) -> list[str]:
    """What a reading job skipped, as lines (see ``pipelines.corpus.documents.skip_lines``)."""
    from rwkv_data.pipelines.corpus.documents import skip_lines as lines_of

    return lines_of(result)


def default_of(cls: type, name: str) -> str:
    """``[default: X]`` of field ``name`` of config class ``cls``, for help texts (click defaults stay None so
    that a ``--config`` file's values survive unless a flag overrides them)."""
    f = next(f for f in dataclasses.fields(cls) if f.name == name)
    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
    return f"[default: {value!r}]"


def config_option() -> Any:
    """``--config FILE``: a TOML file whose ``[section]`` named after the command (or its top-level keys) sets
    the job's config; flags override it."""
    return click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
                        help="TOML config (a section named after the command, or top-level keys); flags override it.")


def corpus_options(fn: Any = None, *, skip: tuple[str, ...] = ()) -> Any:
    """The corpus spec's flags (rwkv_data.config.CorpusSpec), shared by every command that reads text;
    ``skip`` leaves out flags whose names the command uses otherwise (``audit --lang``)."""
    from rwkv_data.config import CorpusSpec

    if fn is None:
        return lambda f: corpus_options(f, skip=skip)

    def d(name: str) -> str:
        return default_of(CorpusSpec, name)

    opts = {
        "text_field": click.option("--text-field", help="jsonl key / column of the text. " + d("text_field")),
        "lang_field": click.option("--lang-field", help="jsonl key / column of the language. " + d("lang_field")),
        "lang": click.option("--lang", help="Language of records without the field and of .txt files (else 'und')."),
        "on_error": click.option("--on-error", type=click.Choice(["raise", "skip"]),
                                 help="Bad records: stop naming file and line, or skip and count by reason. "
                                 + d("on_error")),
        "max_record_bytes": click.option("--max-record-bytes", type=click.IntRange(min=1),
                                         help="A longer record is a bad record. " + d("max_record_bytes")),
        "split_paragraphs": click.option("--split-paragraphs/--no-split-paragraphs", default=None,
                                         help=".txt: one document per blank-line separated paragraph. "
                                         + d("split_paragraphs")),
        "hf_split": click.option("--hf-split", help="Split of a DatasetDict folder or hf:NAME. " + d("hf_split")),
    }
    for name, opt in reversed(opts.items()):
        if name not in skip:
            fn = opt(fn)
    return fn


def load_config(cls: type, config_path: str | None, section: str, values: dict[str, Any]) -> Any:
    """The job config from ``--config`` (its ``[section]`` when present) and the flags (None = not given)."""
    from rwkv_data.config import load_toml

    return load_toml(cls, config_path, section, **values)
