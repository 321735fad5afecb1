"""`evaluate` against an independent implementation: the `rwkv` pip package's x070 model, same checkpoint, same
documents, same convention ([0] prefix, closing 0 scored, NLL bits / UTF-8 bytes); agreement within 1e-3 bpb.

The pip model runs in a subprocess (RWKV_V7_ON=1, RWKV_JIT_ON=0, RWKV_CUDA_ON=0 set before `import rwkv.model`,
strategy "cpu fp32"). The checkpoint is a tiny random L2-C128 model whose every weight is perturbed, so every
path of the block (LoRAs, value residual, gates, bonus term) affects the logits. Documents are evaluated in chunks
of 16 tokens here, so the state carry-over across chunks is part of what is compared.

Run: pytest tests/pipelines/test_evaluate_rwkv_parity.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rwkv")

from rwkv_data.pipelines.train import evaluate, modelio  # noqa: E402
from rwkv_data.tokenizer.resolve import load_trie

PIP_SCRIPT = r"""
import json, math, os, sys
os.environ["RWKV_V7_ON"] = "1"
os.environ["RWKV_JIT_ON"] = "0"
os.environ["RWKV_CUDA_ON"] = "0"
import torch
from rwkv.model import RWKV
model = RWKV(model=sys.argv[1], strategy="cpu fp32")
items = json.load(open(sys.argv[2]))
out = []
for item in items:
    inp = [0] + item[:-1]
    logits, _ = model.forward(inp, None, full_output=True)
    logits = logits.reshape(len(inp), -1).double()
    nll = torch.nn.functional.cross_entropy(logits, torch.tensor(item), reduction="sum").item()
    out.append(nll / math.log(2))
print(json.dumps(out))
"""

TEXTS = {
    "en": ["All human beings are born free and equal in dignity and rights.", "Hello, world! " * 5],
    "de": ["Alle Menschen sind frei und gleich an Würde und Rechten geboren."],
    "ja": ["すべての人間は、生まれながらにして自由であり、かつ、尊厳と権利とについて平等である。"],
}


def _noisy_checkpoint(path: Path) -> None:
    torch.manual_seed(0)
    model = modelio.fresh(n_layer=2, n_embd=128, head_size=64, vocab_size=65536, ctx_len=64, device="cpu")
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.02 if name.endswith(("emb.weight", "head.weight")) else 0.2
            p.add_(torch.randn_like(p) * scale)
    modelio.export_checkpoint(model, path, "fp32")


def test_evaluate_matches_rwkv_pip_package(tmp_path: Path) -> None:
    ckpt = tmp_path / "tiny.pth"
    _noisy_checkpoint(ckpt)
    tok = load_trie("world")
    docs = [evaluate.doc_from_text(lang, t, tok) for lang, ts in TEXTS.items() for t in ts]
    model = modelio.load(ckpt, "cpu")
    ours = evaluate.score_tokens(model, [d.tokens for d in docs], ctx_len=16, batch_size=3)

    items = tmp_path / "items.json"
    items.write_text(json.dumps([d.tokens.tolist() for d in docs]))
    env = {**os.environ, "RWKV_V7_ON": "1", "RWKV_JIT_ON": "0", "RWKV_CUDA_ON": "0"}
    res = subprocess.run([sys.executable, "-c", PIP_SCRIPT, str(ckpt.with_suffix("")), str(items)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert res.returncode == 0, res.stderr[-3000:]
    theirs = np.array(json.loads(res.stdout.strip().splitlines()[-1]))

    nbytes = np.array([d.n_bytes for d in docs], dtype=float)
    np.testing.assert_allclose(ours / nbytes, theirs / nbytes, atol=1e-4)  # per document, bpb
    for lang in TEXTS:
        m = np.array([d.lang == lang for d in docs])
        assert abs(ours[m].sum() / nbytes[m].sum() - theirs[m].sum() / nbytes[m].sum()) < 1e-3
    assert (ours / nbytes > 0.5).all()  # a random model is far from perfect: the comparison is not vacuous
