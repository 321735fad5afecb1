"""Interoperability: a checkpoint saved by our RWKV7 loads in the ``rwkv`` pip package (RWKV_x070, "cpu fp32")
and gives the same logits (max abs difference <= 1e-3), both for a whole sequence and token by token.

The pip package reads RWKV_V7_ON / RWKV_JIT_ON / RWKV_CUDA_ON at import and changes global torch flags, so it
runs in a subprocess. Run: pytest tests/model/test_model_rwkv_pip.py -q
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from rwkv7_tiny import perturbed

from rwkv_data.model import RWKV7Config, save_checkpoint

SCRIPT = r"""
import json, sys
import torch
from rwkv.model import RWKV
model = RWKV(model=sys.argv[1], strategy="cpu fp32")  # the package appends ".pth"
tokens = json.loads(sys.argv[2])
seq, _ = model.forward(tokens, None, full_output=True)
state, steps = None, []
for t in tokens:
    out, state = model.forward([t], state)
    steps.append(out.tolist())
print("RESULT " + json.dumps({"seq": seq.tolist(), "steps": steps}))
"""


@pytest.mark.skipif(importlib.util.find_spec("rwkv") is None, reason="pip package rwkv not installed (.[dev])")
@pytest.mark.parametrize("n_layer,head_size", [(2, 64), (3, 32)], ids=["L2-N64", "L3-N32"])
def test_rwkv_pip_package_gives_our_logits(tmp_path: Path, n_layer: int, head_size: int) -> None:
    cfg = RWKV7Config(vocab_size=120, n_embd=128, n_layer=n_layer, head_size=head_size)
    model = perturbed(cfg, seed=n_layer)
    save_checkpoint(model, tmp_path / "ours.pth")
    tokens = torch.randint(0, 120, (19,), generator=torch.Generator().manual_seed(0)).tolist()
    env = {**os.environ, "RWKV_V7_ON": "1", "RWKV_JIT_ON": "0", "RWKV_CUDA_ON": "0", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "ours"), json.dumps(tokens)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    theirs = json.loads(line.removeprefix("RESULT "))
    with torch.no_grad():
        ours = model(torch.tensor([tokens]))[0]
    seq_diff = (torch.tensor(theirs["seq"]) - ours).abs().max().item()
    step_diff = (torch.tensor(theirs["steps"]) - ours).abs().max().item()
    assert seq_diff <= 1e-3 and step_diff <= 1e-3, (seq_diff, step_diff)
