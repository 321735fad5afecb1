"""The ``rwkv-data compare`` config file: top-level keys, ``[[variants]]`` and one section per shared job.

>>> cfg = load_compare_config(None, variants=({"name": "w", "tokenizer": "world"}, {"name": "b", "tokenizer": "bytes"}))
>>> [v.name for v in cfg.variants], base_variant(cfg).name
(['w', 'b'], 'w')
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from rwkv_data.config import (
    CompareConfig,
    CompareVariant,
    EvalConfig,
    ShardConfig,
    TrainConfig,
    VocabConfig,
    check_threads,
    load_toml,
)
from rwkv_data.config_load import read_toml
from rwkv_data.errors import ConfigError

SECTIONS: dict[str, type] = {"vocab": VocabConfig, "shard": ShardConfig, "train": TrainConfig,
                             "evaluate": EvalConfig}
BUDGETS = ("compute", "text")
BUILTIN = ("world", "bytes", "train")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def load_compare_config(path: str | Path | None, **overrides: Any) -> CompareConfig:
    """The :class:`CompareConfig` of a TOML file with overrides (``None`` = unset), checked (:func:`check`)."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = read_toml(path)  # bounded; ConfigError naming the file
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    top.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(CompareConfig)} - set(SECTIONS)
    unknown = sorted(set(top) - names)
    if unknown:
        raise ConfigError(f"{path or 'options'}: unknown key(s) {unknown}; top-level keys: {sorted(names)}, "
                          f"sections: {', '.join(f'[{s}]' for s in SECTIONS)}, [[variants]]")
    for key in ("inputs", "budgets", "seeds", "skip", "redo"):
        if isinstance(top.get(key), str | int):
            top[key] = (top[key],)
        if key in top:
            top[key] = tuple(top[key])
    top["variants"] = tuple(_variant(v, i, path) for i, v in enumerate(top.get("variants", ())))
    base = CompareConfig()
    stages: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        sec = getattr(base, name)
        if name in raw:
            loaded = load_toml(cls, path, name)  # validates the keys against the job's dataclass
            sec = dataclasses.replace(sec, **{k: _plain(getattr(loaded, k)) for k in raw[name]})
        stages[name] = sec
    cfg = CompareConfig(**top, **stages)
    check(cfg, str(path or "options"))
    return cfg


def _plain(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def _variant(v: Any, i: int, where: Any) -> CompareVariant:
    if isinstance(v, CompareVariant):
        return v
    if not isinstance(v, dict):
        raise ConfigError(f"{where}: variants[{i}] must be a table ([[variants]] name = ..., tokenizer = ...)")
    fields = {f.name for f in dataclasses.fields(CompareVariant)}
    bad = sorted(set(v) - fields)
    if bad:
        raise ConfigError(f"{where}: variants[{i}]: unknown key(s) {bad}; valid keys: {sorted(fields)}")
    v = dict(v)
    v.setdefault("name", str(v.get("tokenizer", "world")))
    return CompareVariant(**v)


def check(cfg: CompareConfig, where: str = "options") -> None:
    """Reject configs that cannot give a fair comparison, each with one line naming the fix."""
    check_threads(cfg.threads)
    if len(cfg.variants) < 2:
        raise ConfigError(f"{where}: compare needs at least 2 [[variants]] (e.g. tokenizer = \"world\" and \"bytes\")")
    names = [v.name for v in cfg.variants]
    for n in names:
        if not NAME_RE.match(n):
            raise ConfigError(f"{where}: variant name {n!r}: use letters, digits, '_', '-' or '.' (it names a folder)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{where}: variant names {dup} appear twice; give each variant its own name")
    if cfg.baseline and cfg.baseline not in names:
        raise ConfigError(f"{where}: baseline {cfg.baseline!r} is not a variant; variants: {names}")
    bad = [b for b in cfg.budgets if b not in BUDGETS]
    if bad or not cfg.budgets:
        raise ConfigError(f"{where}: budgets {list(cfg.budgets)}: use one or both of {list(BUDGETS)}")
    if cfg.skip:
        raise ConfigError(f"{where}: skip {list(cfg.skip)}: compare needs every stage; use redo to run one again")
    if not cfg.seeds:
        raise ConfigError(f"{where}: seeds is empty; give at least one seed (e.g. seeds = [0])")
    for v in cfg.variants:
        if v.tokenizer not in BUILTIN and not Path(v.tokenizer).is_file():
            raise ConfigError(f"{where}: variant {v.name!r}: tokenizer {v.tokenizer!r} is none of {list(BUILTIN)} "
                              "and not a vocab file")
        if (v.extend_lang or v.replay_share) and not v.init:
            raise ConfigError(f"{where}: variant {v.name!r}: extend_lang and replay_share need init (a checkpoint)")
        if v.init and not Path(v.init).is_file():
            raise ConfigError(f"{where}: variant {v.name!r}: init {v.init!r}: no such checkpoint file")
        if not 0.0 <= v.replay_share < 1.0:
            raise ConfigError(f"{where}: variant {v.name!r}: replay_share must lie in [0, 1), got {v.replay_share}")
    if any(v.init for v in cfg.variants) and "text" in cfg.budgets:
        raise ConfigError(f"{where}: fine-tuning variants (init) are compared at equal compute; set "
                          "budgets = [\"compute\"]")


def base_variant(cfg: CompareConfig) -> CompareVariant:
    """The variant the others are compared with: ``baseline``, else the first."""
    return next((v for v in cfg.variants if v.name == cfg.baseline), cfg.variants[0])


def compute_tokens(cfg: CompareConfig) -> int:
    """Token positions every variant trains at equal compute."""
    return cfg.train_tokens or cfg.train.token_budget
