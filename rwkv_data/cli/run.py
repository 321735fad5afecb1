"""The ``run`` command (the whole pipeline in one run folder) and ``compare`` (tokenizer variants side by side)."""

from __future__ import annotations

import click

from rwkv_data.cli.app import cli, emit


@cli.command("run")
@click.argument("config_path", metavar="[CONFIG.toml]", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out-dir", "--out", "out", help="Run folder (default: the config's `out_dir`, else runs/demo or "
              "runs/<CONFIG stem>).")
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
