"""Reading the run TOML of ``rwkv-data run``: top-level keys, a ``[corpus]`` section and one section per stage.

Every value is checked against its config field's type before any stage starts (rwkv_data/config_load.py);
errors name the file, the section and the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

from rwkv_data.config import STAGES, CorpusSpec, RunConfig
from rwkv_data.config_load import build, check_values, read_toml, where_of
from rwkv_data.errors import ConfigError

SECTIONS: dict[str, type] = {name: tp for name, tp in get_type_hints(RunConfig).items() if name in STAGES}


def split_stages(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``("train,audit", "shard")`` -> ``("train", "audit", "shard")`` (RunConfig checks the names)."""
    return tuple(s.strip() for n in names for s in n.split(",") if s.strip())


def _table(raw: dict[str, Any], name: str, path: str | Path | None) -> dict[str, Any]:
    value = raw.pop(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{where_of(path, None)}: [{name}] must be a table of settings, not {value!r}")
    return value


def load_run_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """The RunConfig of a TOML file (top-level keys, ``[corpus]`` and one section per stage) with overrides
    (None = unset).

    Without corpus ``inputs`` (the demo corpus) a stage section overrides the demo settings of ``RunConfig()``;
    with inputs it overrides the job's own defaults (the same as ``rwkv-data <job>``), which suit a real corpus.
    A top-level ``inputs`` (older configs) is the ``[corpus]`` section's.
    """
    raw = read_toml(path) if path is not None else {}
    sections = {name: _table(raw, name, path) for name in (*STAGES, "corpus") if name in raw}
    corpus_raw = sections.pop("corpus", {})
    if "inputs" in raw:
        if "inputs" in corpus_raw:
            raise ConfigError(f"{path}: inputs is given both at the top and in [corpus]; keep the [corpus] one")
        corpus_raw["inputs"] = raw.pop("inputs")
    if overrides.get("inputs") is not None:
        corpus_raw["inputs"] = overrides.pop("inputs")
    top = check_values(RunConfig, raw, where_of(path, None))
    top.update(check_values(RunConfig, {k: v for k, v in overrides.items() if v is not None}, "options"))
    for key in ("skip", "redo"):
        top[key] = split_stages(top.get(key, ()))
    where = where_of(path, "corpus")
    corpus = build(CorpusSpec, check_values(CorpusSpec, corpus_raw, where), where)
    demo = RunConfig()
    stages: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        base = getattr(demo, name) if not corpus.inputs else cls()
        where = where_of(path, name)
        values = check_values(cls, sections.get(name, {}), where)
        stages[name] = build(lambda **v: dataclasses.replace(base, **v), values, where)  # noqa: B023
    return build(RunConfig, {**top, "corpus": corpus, **stages}, where_of(path, None))


def default_out(config_path: str | Path | None) -> str:
    """``runs/demo`` without a config file, else ``runs/<config file stem>``: a rerun finds its run folder."""
    return f"runs/{Path(config_path).stem}" if config_path else "runs/demo"
