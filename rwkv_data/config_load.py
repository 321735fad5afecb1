"""Loading config dataclasses from TOML files and flags, with every value checked against its field's type.

:func:`load_toml` reads a file (a ``[section]`` when the file has one, else its top-level keys), renames old
spellings of keys (a class's ``ALIASES``), refuses unknown keys and values of the wrong type (naming the file,
the section, the key and what is expected), then builds the frozen dataclass, whose ``__post_init__`` checks
ranges. :func:`to_dict` turns a config back into JSON-ready values.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
import types
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

from rwkv_data.errors import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


TOML_LIMIT = 16 << 20  # a config file is a few KB; a larger "config" is something else (/dev/zero, a corpus)


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table of TOML file ``path``; ConfigError naming the file when it cannot be read or parsed, is not a
    regular file (a FIFO or a device would block or never end) or is over TOML_LIMIT bytes."""
    from rwkv_data.jsonfile import read_small

    try:
        try:
            raw = read_small(path, TOML_LIMIT)
        except ValueError as exc:  # a FIFO, a device, or far too large
            raise ConfigError(f"{path}: {exc}; give a TOML config file") from None
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config file as UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML for a config: arrays or tables nested too deeply") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror or exc}") from exc


def _describe(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin is tuple:
        return f"a list of {_describe(args[0])}s"
    if origin is dict:
        return f"a table of {_describe(args[0])} = {_describe(args[1])}"
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in args)
    names = {bool: "true/false", int: "an integer", float: "a number", str: "a string", type(None): "nothing"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _coerce(value: Any, tp: Any) -> Any:
    """``value`` as field type ``tp`` (lists become tuples, ints become floats), or raise TypeError."""
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        for a in args:
            try:
                return _coerce(value, a)
            except TypeError:
                pass
        raise TypeError
    if origin is tuple:
        if isinstance(value, str) and args[0] is str:
            return (value,)  # inputs = "corpus/" means one input
        if not isinstance(value, list | tuple):
            raise TypeError
        return tuple(_coerce(v, args[0]) for v in value)
    if origin is dict:
        if not isinstance(value, dict):
            raise TypeError
        return {_coerce(k, args[0]): _coerce(v, args[1]) for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is type(None):
        if value is not None:
            raise TypeError
        return value
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise TypeError
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_values(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """``data`` with old key spellings renamed and every value checked against ``cls``'s field types.

    ConfigError naming ``where`` and the key for an unknown key, a key given twice (old and new name) or a
    value of the wrong type. Nested config dataclasses are not handled here (``rwkv-data run`` does that).
    """
    aliases: dict[str, str] = getattr(cls, "ALIASES", {})
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in data.items():
        name = aliases.get(key, key)
        if name in out:
            raise ConfigError(f"{where}: {given[name]!r} and {key!r} are the same setting; give it once")
        out[name], given[name] = value, key
    hints = get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(out) - fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(fields)}")
    for key, value in out.items():
        try:
            out[key] = _coerce(value, hints[key])
        except TypeError:
            raise ConfigError(f"{where}: {key} must be {_describe(hints[key])}, not {_shown(value)} "
                              f"({type(value).__name__})") from None
    return out


def build(cls: type[T], values: dict[str, Any], where: str) -> T:
    """``cls(**values)``; a range error of its ``__post_init__`` gets ``where`` in front."""
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def where_of(path: str | Path | None, section: str | None) -> str:
    """``FILE [section]``, ``FILE`` or ``options``: where a bad value came from, for error messages."""
    if path is None:
        return "options"
    return f"{path} [{section}]" if section else str(path)


def load_toml(cls: type[T], path: str | Path | None, section: str | None = None, **overrides: Any) -> T:
    """Build the frozen dataclass ``cls`` from a TOML file and overrides.

    With ``section``, the file's ``[section]`` table is read when the file has one, else its top-level keys.
    Overrides whose value is ``None`` are ignored, so unset CLI flags keep the file's value or the default.
    """
    data: dict[str, Any] = {}
    used = None
    if path is not None:
        raw = read_toml(path)
        if section and section in raw:
            used = section
            data = raw[section]
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: [{section}] must be a table of settings, not {_shown(data)}")
            names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
            ignored = sorted(k for k, v in raw.items() if k in names and k not in data and not isinstance(v, dict))
            if ignored:  # e.g. run.toml's own keys: not an error, but never silently dropped
                log.warning("%s: top-level %s ignored by this command: it reads the [%s] table (move %s into "
                            "[%s] to use %s)", path, ", ".join(ignored), section, "them" if len(ignored) > 1 else
                            "it", section, "them" if len(ignored) > 1 else "it")
        else:
            data = raw
    values = check_values(cls, data, where_of(path, used))
    values.update(check_values(cls, {k: v for k, v in overrides.items() if v is not None}, "options"))
    return build(cls, values, where_of(path, used))


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


__all__ = ["build", "check_values", "load_toml", "read_toml", "to_dict", "where_of"]
