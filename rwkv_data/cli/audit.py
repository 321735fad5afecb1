"""The ``audit`` command: tokenization efficiency per language and tokenizer."""

from __future__ import annotations

import sys
from typing import Any

import click

from rwkv_data.cli.app import cli, config_option, corpus_options, default_of, emit, load_config, skip_lines


def _audit_default(name: str) -> str:
    from rwkv_data.config import AuditConfig

    return default_of(AuditConfig, name)


@cli.command("audit")
@click.argument("corpus", required=False)
@click.option("-t", "--tokenizer", "tokenizers", multiple=True, metavar="SPEC",
              help="[label=][trie:|hf:|tiktoken:|sp:]PATH[#pattern], 'world' or 'bytes'; repeatable. "
              + _audit_default("tokenizers"))
@click.option("-o", "--out-dir", help="Output folder. " + _audit_default("out_dir"))
@config_option()
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
@click.option("--threads", "--num-threads", "threads", type=int,
              help="Encoder threads for trie tokenizers (0 = default).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@corpus_options(skip=("lang",))  # --lang picks the languages to audit here
def audit_cmd(corpus: str | None, config_path: str | None, tokenizers: tuple[str, ...], langs: tuple[str, ...],
              fail_if: tuple[str, ...], as_json: bool, **values: Any) -> None:
    """Tokenization efficiency per language and tokenizer: parity, fertility, fallback, Rényi, greedy gap, CIs."""
    from rwkv_data.config import AuditConfig
    from rwkv_data.pipelines.audit.job import run

    values.update(corpus=corpus, tokenizers=tokenizers or None, langs=langs or None, fail_if=fail_if or None)
    cfg = load_config(AuditConfig, config_path, "audit", values)
    result = run(cfg)
    read = result.report["corpus"]
    skips = "\n".join(skip_lines(read)) + "\n" if "skipped" in read else ""
    emit(result.report["summary"], as_json, result.table + f"\n{skips}written to {result.out_dir}/")
    for failure in result.failures:
        click.echo(f"threshold failed: {failure}", err=True)
    if result.failures:
        sys.exit(1)
