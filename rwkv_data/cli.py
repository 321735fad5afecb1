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
