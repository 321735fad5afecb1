"""Checkpoint format: save/load round trip, config inferred from shapes, and one test per loader error.

Run: pytest tests/model/test_model_checkpoint.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rwkv7_tiny import perturbed

from rwkv_data.errors import CheckpointError
from rwkv_data.model import RWKV7, RWKV7Config, load_checkpoint, save_checkpoint
from rwkv_data.model.checkpoint import infer_config

LAYER0_V = {"blocks.0.att.v0", "blocks.0.att.v1", "blocks.0.att.v2"}
TOKENS = torch.tensor([[0, 5, 17, 3, 96, 40, 2, 2, 11]])


def test_round_trip_fp32(tiny_model: RWKV7, tmp_path: Path) -> None:
    path = save_checkpoint(tiny_model, tmp_path / "rwkv-final.pth")
    assert path == tmp_path / "rwkv-final.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rwkv-final.json", "rwkv-final.pth"]  # no temp files
    meta = json.loads((tmp_path / "rwkv-final.json").read_text())
    assert meta["format"] == "rwkv-x070" and RWKV7Config.from_dict(meta["config"]) == tiny_model.config
    raw = torch.load(path, weights_only=True)
    assert list(raw) == list(tiny_model.state_dict())  # plain dict, official keys, no prefix
    model, cfg = load_checkpoint(path)
    assert cfg == tiny_model.config
    assert all(p.requires_grad and p.device.type == "cpu" for p in model.parameters())  # trainable as loaded
    for k, v in tiny_model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    with torch.no_grad():
        assert torch.equal(model(TOKENS), tiny_model(TOKENS))


def test_bf16_on_disk_loads_as_fp32_or_bf16(tiny_model: RWKV7, tmp_path: Path) -> None:
    path = save_checkpoint(tiny_model, tmp_path / "m.pth", dtype=torch.bfloat16)
    assert all(v.dtype == torch.bfloat16 for v in torch.load(path, weights_only=True).values())
    model, _ = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        assert (model(TOKENS) - tiny_model(TOKENS)).abs().max() < 0.1
    model16, _ = load_checkpoint(path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model16.parameters())


def test_config_is_inferred_from_shapes_including_unusual_ranks(tmp_path: Path) -> None:
    cfg = RWKV7Config(vocab_size=77, n_embd=128, n_layer=2, head_size=32, dim_ffn=384,
                      d_decay_lora=40, d_aaa_lora=24, d_mv_lora=48, d_gate_lora=16)
    path = save_checkpoint(perturbed(cfg), tmp_path / "odd.pth")
    assert load_checkpoint(path)[1] == cfg


def _save_sd(sd: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(sd, path)
    return path


def test_missing_layer0_value_residual_is_accepted(tiny_model: RWKV7, tmp_path: Path) -> None:
    sd = {k: v for k, v in tiny_model.state_dict().items() if k not in LAYER0_V}
    sd = {("_forward_module." + k if k == "emb.weight" else k): v for k, v in sd.items()}  # lightning prefix
    model, cfg = load_checkpoint(_save_sd(sd, tmp_path / "official.pth"))
    assert cfg == tiny_model.config
    with torch.no_grad():
        assert torch.equal(model(TOKENS), tiny_model(TOKENS))


def _variant(sd: dict[str, torch.Tensor], drop: tuple[str, ...], add: dict[str, torch.Tensor]) -> dict:
    out = {k: v for k, v in sd.items() if not any(d in k for d in drop)}
    out.update(add)
    return out


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        (("att.x_", "att.w0"), {"blocks.0.att.time_maa_x": torch.zeros(1, 1, 64),
                                "blocks.0.att.time_faaaa": torch.zeros(2, 32)}, r"RWKV-6 \(x060\).*time_maa_x"),
        (("att.x_",), {"blocks.0.att.time_mix_k": torch.zeros(1, 1, 64)}, r"RWKV-5 \(x052\).*time_mix_k"),
        ((), {"blocks.1.ffn.s_emb.weight": torch.zeros(97, 1024), "blocks.1.ffn.s1": torch.zeros(64, 32)},
         r"DeepEmbed.*blocks.1.ffn.s1, blocks.1.ffn.s_emb.weight"),
        (("blocks.1.att.k_k",), {}, r"missing \['blocks.1.att.k_k'\]"),
        ((), {"blocks.2.att.time_state": torch.zeros(2, 32, 32)}, r"RWKV-4/5/6|unexpected"),
        ((), {"blocks.0.att.bonus": torch.zeros(3)}, r"unexpected \['blocks.0.att.bonus'\]"),
        ((), {"blocks.1.att.k_a": torch.zeros(1, 1, 65)}, r"blocks.1.att.k_a has shape \(1, 1, 65\), expected"),
        (("emb.weight",), {}, r"not an RWKV-7 x070 checkpoint: no 'emb.weight'"),
    ],
    ids=["x060", "x052", "deepembed", "missing-key", "state-tuning-key", "unexpected-key", "misshapen", "no-emb"],
)
def test_loader_errors_name_what_was_found(tiny_model: RWKV7, tmp_path: Path, drop: tuple[str, ...],
                                           add: dict[str, torch.Tensor], message: str) -> None:
    path = _save_sd(_variant(tiny_model.state_dict(), drop, add), tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a zip or pickle")
    with pytest.raises(CheckpointError, match="cannot read as a torch checkpoint"):
        load_checkpoint(tmp_path / "junk.pth")
    torch.save([torch.zeros(2)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="expected a state dict"):
        load_checkpoint(tmp_path / "list.pth")


def test_infer_config_reads_the_v_rank_from_layer_1() -> None:
    cfg = RWKV7Config(vocab_size=50, n_embd=64, n_layer=2, head_size=32, d_mv_lora=40)
    sd = {k: v for k, v in RWKV7(cfg).state_dict().items() if k not in LAYER0_V}
    assert infer_config(sd) == cfg


def test_save_needs_an_existing_directory(tiny_model: RWKV7, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tiny_model, tmp_path / "no" / "m.pth")
