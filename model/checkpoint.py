"""Official RWKV-7 checkpoint format: a plain ``torch.save`` of the state dict (RWKV-LM's key names, no prefix).

``load_checkpoint`` infers the whole config from tensor shapes (as the ``rwkv`` pip package and fla's converter
do), so any x070 World/Pile checkpoint loads without flags; other variants are refused by name.
``save_checkpoint`` writes the same format plus ``<stem>.json`` with the config, both atomically.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from rwkv_data.atomic import atomic_path, atomic_write
from rwkv_data.errors import CheckpointError
from rwkv_data.model.config import RWKV7Config
from rwkv_data.model.rwkv7 import RWKV7

FORMAT = "rwkv-x070"
# Official World checkpoints lack these (layer 0 has no value residual); train_temp writes them unused.
OPTIONAL_KEYS = ("blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2")
# key fragment -> the variant it reveals (checked before anything else, so the message names the variant)
FOREIGN_MARKERS = (
    (re.compile(r"\.ffn\.(s_emb|s_emb_x)\.weight$|\.ffn\.s[012]$"), "RWKV-7 DeepEmbed (rwkv7a/rwkv7b)"),
    (re.compile(r"\.att\.(time_maa_\w+|time_decay_w[12])$"), "RWKV-6 (x060)"),
    (re.compile(r"\.att\.time_mix_\w+$"), "RWKV-5 (x052) or older"),
    (re.compile(r"\.att\.(time_faaaa|time_first|time_decay)$"), "RWKV-4/5/6 (x052/x060 family)"),
)


def _read(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and weights_only errors all mean "cannot read"
        raise CheckpointError(f"{path}: cannot read as a torch checkpoint (weights_only=True): {_why(exc)}") from exc
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                               for k, v in raw.items()):
        raise CheckpointError(f"{path}: expected a state dict (str -> tensor), got {type(raw).__name__}")
    # RWKV-LM's lightning saves may carry this prefix; train.py strips it too
    return {k.removeprefix("_forward_module."): v for k, v in raw.items()}


def _why(exc: Exception) -> str:
    """One line for a torch.load failure (torch's own messages run to a dozen lines)."""
    text = str(exc).strip()
    found = re.search(r"WeightsUnpickler error:\s*(\S.*)", text)
    if found:  # a pickle that is more than tensors (objects, code): never unpickled
        return f"it holds more than tensors ({found.group(1).strip()}); refusing to unpickle it"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _check_variant(path: Path, sd: Mapping[str, torch.Tensor]) -> None:
    for pattern, variant in FOREIGN_MARKERS:
        found = sorted(k for k in sd if pattern.search(k))
        if found:
            shown = ", ".join(found[:3]) + (f" (+{len(found) - 3} more)" if len(found) > 3 else "")
            raise CheckpointError(f"{path}: this is a {variant} checkpoint (found {shown}); "
                                  "only RWKV-7 x070 checkpoints are supported")
    for key in ("emb.weight", "blocks.0.att.r_k", "blocks.0.att.w1", "blocks.0.ffn.key.weight"):
        if key not in sd:
            raise CheckpointError(f"{path}: not an RWKV-7 x070 checkpoint: no {key!r} "
                                  f"(first keys: {sorted(sd)[:5]})")


def infer_config(sd: Mapping[str, torch.Tensor]) -> RWKV7Config:
    """The RWKV7Config that the shapes in ``sd`` (an x070 state dict) describe."""
    vocab_size, n_embd = sd["emb.weight"].shape
    _, head_size = sd["blocks.0.att.r_k"].shape
    n_layer = 1 + max(int(k.split(".")[1]) for k in sd if k.startswith("blocks."))
    mv_key = "blocks.1.att.v1" if n_layer > 1 else "blocks.0.att.v1"  # layer 0 may lack it
    return RWKV7Config(
        vocab_size=int(vocab_size), n_embd=int(n_embd), n_layer=n_layer, head_size=int(head_size),
        dim_ffn=int(sd["blocks.0.ffn.key.weight"].shape[0]),
        d_decay_lora=int(sd["blocks.0.att.w1"].shape[1]),
        d_aaa_lora=int(sd["blocks.0.att.a1"].shape[1]) if "blocks.0.att.a1" in sd else None,
        d_mv_lora=int(sd[mv_key].shape[1]) if mv_key in sd else None,
        d_gate_lora=int(sd["blocks.0.att.g1"].shape[1]) if "blocks.0.att.g1" in sd else None,
    )


def load_checkpoint(
    path: str | Path, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu", impl: str = "auto"
) -> tuple[RWKV7, RWKV7Config]:
    """Load an official-format x070 checkpoint (``torch.load(..., weights_only=True)``).

    Args:
        path: the ``.pth`` file (bf16 official weights or our fp32/bf16 saves).
        dtype: dtype of the returned model's parameters (float32 for CPU training and evaluation).
        device: where the model goes.
        impl: the model's WKV implementation (see :class:`RWKV7`).

    Returns:
        ``(model, config)``, config inferred from the shapes (vocab, width, layers, head size, LoRA ranks).

    Raises:
        CheckpointError: unreadable file; another variant (x060, x052, DeepEmbed: the message names the keys);
            missing, unexpected or misshapen keys. Missing ``blocks.0.att.v0/v1/v2`` is accepted.
    """
    path = Path(path)
    sd = _read(path)
    _check_variant(path, sd)
    try:
        cfg = infer_config(sd)
    except (ValueError, KeyError, IndexError) as exc:
        raise CheckpointError(f"{path}: cannot infer the model shape: {exc}") from exc
    with torch.device("meta"):  # shapes only: skips the init (seconds of orthogonal_ for a 65536-row head)
        model = RWKV7(cfg, impl=impl)
    want = model.state_dict()
    missing = [k for k in want if k not in sd and k not in OPTIONAL_KEYS]
    unexpected = [k for k in sd if k not in want]
    if missing or unexpected:
        raise CheckpointError(f"{path}: keys do not match an x070 model of {cfg}: missing {missing[:8]}"
                              f"{' ...' if len(missing) > 8 else ''}, unexpected {unexpected[:8]}"
                              f"{' ...' if len(unexpected) > 8 else ''}")
    for k, v in sd.items():
        if v.shape != want[k].shape:
            raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, expected {tuple(want[k].shape)} "
                                  f"for {cfg}")
        if not v.is_floating_point():  # weights cast from integers would load and silently mean nothing
            raise CheckpointError(f"{path}: {k} holds {v.dtype} values, not floating-point weights; the file is "
                                  "not a model checkpoint (or was converted wrongly)")
    for k in OPTIONAL_KEYS:
        if k not in sd:  # layer 0 has no value residual: never read; zeros so that a re-save is complete
            sd[k] = torch.zeros(want[k].shape)
    model.load_state_dict({k: v.to(dtype) for k, v in sd.items()}, assign=True)
    assert not any(t.is_meta for t in model.state_dict().values())
    return model.to(device=device), cfg


def save_checkpoint(model: RWKV7, path: str | Path, *, dtype: torch.dtype | None = None,
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` as an official checkpoint at ``path`` and its config as ``path.with_suffix('.json')``.

    Args:
        model: the model to save (its ``state_dict`` keys are the official names).
        path: target ``.pth`` file; the parent directory must exist. Both files are written atomically.
        dtype: tensor dtype on disk (``torch.bfloat16`` as official releases); ``None`` keeps the model's.
        extra: more entries for the ``.json`` (e.g. ``vocab``: the tokenizer the model was trained with); they
            never replace ``format``, ``config`` or ``dtype``.

    Returns:
        The ``.pth`` path. It loads with :func:`load_checkpoint`, RWKV-LM and the ``rwkv`` pip package.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path.parent}: directory does not exist")
    sd = {k: v.detach().to("cpu", dtype or v.dtype).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(sd, tmp)
    meta = {**(extra or {}), "format": FORMAT, "config": model.config.to_dict(),
            "dtype": str(next(iter(sd.values())).dtype)}
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(path.with_suffix(".json"), text)
    return path
