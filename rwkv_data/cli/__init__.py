"""The ``rwkv-data`` command line: a click group whose commands each build a config, run a job, print a summary.

One module per command group: ``tokens`` (encode, decode, vocab info), ``vocab`` (vocab train / extend),
``shard`` (shard, shard inspect, shard verify; ``inspect`` and ``verify`` also at the top level), ``model``
(train, finetune, evaluate), ``audit`` and ``run``; ``app`` holds the group and the shared options. This is the
only package that reads argv. Job modules are imported inside each command, so ``rwkv-data --help`` never
loads torch. Logs and progress go to stderr, results to stdout (``--json`` for machines). Exit codes: 0
success, 1 an error (one ``error: ...`` line; ``--debug`` shows the traceback), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import sys

import click

from rwkv_data.cli import audit, model, run, shard, tokens, vocab  # noqa: F401 - each registers its commands
from rwkv_data.cli.app import cli, emit
from rwkv_data.errors import describe

__all__ = ["cli", "emit", "main"]


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rwkv-data`` console script: every failure ends in one ``error:`` line and exit 1."""
    args = list(argv if argv is not None else sys.argv[1:])
    debug = "--debug" in args
    try:
        code = cli.main(args=args, prog_name="rwkv-data", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    except Exception as exc:  # domain errors, OS errors, bad data, and (reported as such) internal errors
        if debug:
            raise
        click.echo(f"error: {describe(exc)}", err=True)
        sys.exit(1)
    if isinstance(code, int) and code:
        sys.exit(code)
