"""Training state on disk: the resumable ``rwkv-<step>.state.pt`` and ``last.json``.

``save_training_state`` writes the official ``.pth`` (through ``export``), then the state file (optimiser, RNG
states as tensors, exact weights, step), then ``last.json`` last, so a crash mid-save leaves the previous
checkpoint as the resume point. Everything loads with ``torch.load(weights_only=True)``; a damaged or foreign
file is a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rwkv_data.atomic import atomic_path, atomic_write
from rwkv_data.errors import CheckpointError
from rwkv_data.jsonfile import read_json

STATE_FORMAT = "rwkv-data-train-state/1"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def rng_state() -> dict[str, Any]:
    """Torch RNG states as tensors (``weights_only``-loadable)."""
    out: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`'s states."""
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(out_dir: Path, step: int, tokens: int, model: torch.nn.Module,
                        optimizer: torch.optim.Optimizer, save_dtype: str,
                        export: Callable[[torch.nn.Module, Path, str], Any]) -> Path:
    """Write ``rwkv-<step>.pth`` (+ config), ``rwkv-<step>.state.pt`` and then ``last.json``."""
    pth = out_dir / f"rwkv-{step}.pth"
    export(model, pth, save_dtype)
    state: dict[str, Any] = {"format": STATE_FORMAT, "step": step, "tokens": tokens,
                             "optimizer": optimizer.state_dict(), "rng": rng_state(),
                             # Exact weights (the .pth may be bf16 or LoRA-merged); a few MB for tiny models.
                             "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    atomic_torch_save(state, out_dir / f"rwkv-{step}.state.pt")
    atomic_write(out_dir / "last.json", json.dumps({"step": step, "pth": pth.name,
                                                          "state": f"rwkv-{step}.state.pt"}))
    return pth


def load_training_state(out_dir: Path) -> dict[str, Any]:
    """The state named by ``out_dir/last.json`` (``torch.load(weights_only=True)``), checked for its format."""
    last = out_dir / "last.json"
    if not last.is_file():
        raise CheckpointError(f"{last}: nothing to resume from (run without --resume first)")
    try:
        info = read_json(last)
        name = info["state"]
        if not isinstance(name, str) or "/" in name or "\\" in name or not isinstance(info.get("step"), int):
            raise ValueError(f"bad entries {info!r}")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{last}: damaged ({exc}); delete it to resume from an older rwkv-<step>.state.pt "
                              "by hand, or train without --resume") from exc
    path = out_dir / name
    if not path.is_file():
        raise CheckpointError(f"{path}: named by {last} but missing; train without --resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - zip, pickle and weights_only errors all mean "cannot read"
        raise CheckpointError(f"{path}: cannot read the training state (weights_only=True): {exc}") from exc
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a {STATE_FORMAT} file")
    missing = [k for k in ("step", "optimizer", "rng", "model") if k not in state]
    if missing or state["step"] != info["step"]:
        raise CheckpointError(f"{path}: incomplete training state (missing {missing}, step {state.get('step')} "
                              f"where {last} says {info['step']})")
    return state


def restore(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, where: Path) -> int:
    """Load ``state`` into ``model`` and ``optimizer``, set the RNG; returns the step. CheckpointError when the
    state does not fit the model (another shape or trainable set than the run that wrote it)."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
    except (RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{where}: the saved state does not fit this model and optimiser (resume with the "
                              f"same model and trainable settings): {str(exc).splitlines()[0]}") from exc
    return int(state["step"])
