"""Frozen configuration dataclasses for every job; each default is defined here and nowhere else.

The CLI reads its option defaults from these classes (``default=ShardConfig.ctx_lens``), and TOML config
files load into them with :func:`load_toml`, flags overriding the file.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from rwkv_data.errors import ConfigError

T = TypeVar("T")


def load_toml(cls: type[T], path: str | Path | None, section: str | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from a TOML file (optionally one ``[section]``) and overrides.

    Overrides whose value is ``None`` are ignored, so unset CLI flags keep the file's value or the default.
    Unknown keys raise :class:`ConfigError` naming the key and the file.
    """
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as f:
                raw = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
        data = raw.get(section, {}) if section else raw
    data.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        where = f"{path}" + (f" [{section}]" if section else "") if path else "options"
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(names)}")
    return cls(**data)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (paths and tuples become strings and lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, Path):
            return str(v)
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}


# Job configs are added below, one frozen dataclass per job.
