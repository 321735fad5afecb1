"""train, evaluate and finetune refuse wrong combinations with one ``error:`` line and exit 1, before training.

Each case runs the real CLI entry point (``rwkv_data.cli.main``) in-process on tiny shards and checkpoints made
once per module (byte vocab A; vocab B with an extra token; vocab C, same size as B, other extra token), and
checks the exit status, that stderr is one ``error:`` line naming what is wrong, and that no traceback shows.

Run: pytest tests/pipelines/test_model_jobs_refuse.py
"""

from __future__ import annotations

import json
import math
import os
import pickle
import shutil
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from model_fixtures import byte_vocab, make_corpus, one_thread  # noqa: F401

from rwkv_data.cli import main
from rwkv_data.pipelines.train import modelio
from rwkv_data.tokenizer.vocab import Vocab, write_vocab

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--n-layer", "1", "--n-embd", "32", "--head-size", "32", "--ctx-len", "16", "--micro-bsz", "2",
        "--device", "cpu"]


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("echo pwned",))


@pytest.fixture(scope="module")
def w(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The files every case uses (made once: a few seconds)."""
    root = tmp_path_factory.mktemp("refuse")
    tok, P, P_val = make_corpus(root, train_docs=6, val_docs=2)
    base = {i + 1: bytes([i]) for i in range(256)}
    write_vocab(Vocab.from_tokens({**base, 257: b"ab"}, name="B"), root / "B.txt")
    write_vocab(Vocab.from_tokens({**base, 257: b"ba"}, name="C"), root / "C.txt")
    torch.manual_seed(0)
    modelio.export_checkpoint(modelio.fresh(1, 32, 32, 320, 16), root / "m.pth")
    modelio.export_checkpoint(modelio.fresh(1, 32, 32, 320, 16), root / "mA.pth", vocab=tok)  # .json names A
    modelio.export_checkpoint(modelio.fresh(1, 32, 32, 64, 16), root / "small.pth")  # ids >= 64 do not fit
    nan = modelio.fresh(1, 32, 32, 320, 16)
    with torch.no_grad():
        nan.blocks[0].att.key.weight[0, 0] = math.nan
    modelio.export_checkpoint(nan, root / "nan.pth")
    sd = torch.load(root / "m.pth", weights_only=True)
    torch.save({k: v.to(torch.int64) for k, v in sd.items()}, root / "ints.pth")  # right keys and shapes, not weights
    raw = (root / "m.pth").read_bytes()
    (root / "trunc.pth").write_bytes(raw[: len(raw) // 2])
    (root / "garbage.pth").write_bytes(b"\x00garbage" * 100)
    (root / "notckpt.pth").write_text('{"a": 1}', encoding="utf-8")
    (root / "evil.pth").write_bytes(pickle.dumps({"emb.weight": _Evil()}, protocol=2))
    shutil.copy(root / "m.pth", root / "wrongcfg.pth")
    side = json.loads((root / "m.json").read_text())
    side["config"]["n_layer"] = 3
    (root / "wrongcfg.json").write_text(json.dumps(side))
    for ext in ("bin", "idx", "lang.npy"):  # the same shard without its metadata
        shutil.copy(f"{P}.{ext}", root / f"nometa.{ext}")
    (root / "afile").write_text("x")
    (root / "badtok.txt").write_bytes(b"abc\n\xff\xfe\n")
    (root / "ab.txt").write_text("ab\nbc\n", encoding="utf-8")
    (root / "new.txt").write_text("\n".join(chr(c) for c in range(97, 100)) + "\n", encoding="utf-8")
    (root / "idmap.json").write_text(json.dumps({"format": "rwkv-vocab-idmap", "old_vocab_sha256": tok.sha256,
                                                 "added": [[5, b"zz".hex()]], "init": {"5": [1, 2]}}))
    return {"root": root, "P": P, "P_val": P_val, "A": root / "bytes.txt", **{
        k: root / k for k in ("B.txt", "C.txt", "m.pth", "mA.pth", "small.pth", "nan.pth", "trunc.pth", "garbage.pth",
                              "notckpt.pth", "evil.pth", "wrongcfg.pth", "ints.pth", "nometa", "afile", "new.txt",
                              "ab.txt", "badtok.txt", "idmap.json")}}


def cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run the console entry point; (exit status, stderr)."""
    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def refused(args: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    code, err = cli(args, capsys)
    lines = [x for x in err.splitlines() if x.strip()]
    assert code == 1, err
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in err, err
    for n in needles:
        assert n in lines[-1], (n, lines[-1])
    return lines[-1]


def _sha(path: Path) -> str:
    from rwkv_data.tokenizer import TrieTokenizer

    return TrieTokenizer.from_file(path).sha256[:12]


# ---- the shard's vocab against --vocab -----------------------------------------------------------------------


@pytest.mark.parametrize("job", ["train", "evaluate", "finetune"])
@pytest.mark.parametrize("other", ["B.txt", "C.txt"])  # B: one id more; C: same size as B, another token
def test_a_shard_made_with_another_vocab_is_refused_naming_both(w: dict[str, Path], job: str, other: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = w["root"] / f"o-{job}-{other}"
    args = {"train": ["train", "--data", w["P"], *TINY],
            "evaluate": ["evaluate", "--checkpoint", w["m.pth"], "--data", w["P_val"], "--device", "cpu"],
            "finetune": ["finetune", "--init", w["m.pth"], "--data", w["P"], "--device", "cpu"]}[job]
    refused([*args, "--vocab", w[other], "--out-dir", out], capsys, _sha(w["A"]), _sha(w[other]), str(w[other]))
    assert not (out / "rwkv-final.pth").exists() and not (out / "eval.json").exists()


@pytest.mark.parametrize("job", ["evaluate", "finetune"])
def test_a_checkpoint_trained_with_another_vocab_is_refused(w: dict[str, Path], job: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    args = {"evaluate": ["evaluate", w["ab.txt"], "--checkpoint"], "finetune": ["finetune", "--data", w["P"],
                                                                                 "--init"]}[job]
    refused([*args, w["mA.pth"], "--vocab", w["C.txt"], "--device", "cpu", "--out-dir", w["root"] / f"o-ck-{job}"],
            capsys, "mA.pth", _sha(w["A"]), _sha(w["C.txt"]))


def test_a_trained_checkpoint_records_its_vocab(w: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = w["root"] / "o-records"
    code, err = cli(["train", "--data", w["P"], *TINY, "--max-steps", "1", "--out-dir", out], capsys)
    assert code == 0, err
    side = json.loads((out / "rwkv-final.json").read_text())
    assert side["vocab"]["sha256"][:12] == _sha(w["A"]) and side["vocab"]["vocab_size"] == 257


def test_a_shard_without_metadata_needs_vocab(w: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    refused(["train", "--data", w["nometa"], *TINY, "--out-dir", w["root"] / "o-nometa"], capsys, "--vocab",
            "meta.json")
    refused(["evaluate", "--checkpoint", w["m.pth"], "--data", w["nometa"], "--out-dir", w["root"] / "e-nometa"],
            capsys, "--vocab")


@pytest.mark.parametrize("job", ["train", "evaluate", "finetune"])
def test_a_missing_shard_is_named(w: dict[str, Path], job: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = {"train": ["train", *TINY], "evaluate": ["evaluate", "--checkpoint", w["m.pth"]],
            "finetune": ["finetune", "--init", w["m.pth"], *TINY]}[job]
    out = ["--out-dir", w["root"] / f"o-missing-{job}"]
    refused([*args, "--data", w["root"] / "nowhere", *out], capsys, "nowhere", "no shard")
    refused([*args, "--data", f"{w['P']}.bin", *out], capsys, "without .bin")
    if job != "evaluate":
        refused([*args, "--data", w["P"], "--val-data", w["root"] / "nowhere", *out], capsys, "nowhere", "no shard")


def test_without_vocab_the_recorded_one_is_used(w: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, err = cli(["evaluate", "--checkpoint", w["m.pth"], "--data", w["P_val"], "--device", "cpu",
                     "--bootstrap", "0", "--out-dir", w["root"] / "e-rec"], capsys)
    assert code == 0, err
    rows = json.loads((w["root"] / "e-rec" / "eval.json").read_text())["languages"]
    assert all(4 < r["bpb"] < 12 for r in rows)  # an untrained model over ~320 ids: ~8.3 bits per byte


# ---- ids, checkpoints, non-finite numbers -------------------------------------------------------------------


@pytest.mark.parametrize("case,args,needles", [
    ("vocab-size below the ids", ["train", "--vocab-size", "64"], ["64", "ids"]),
    ("init smaller than the ids", ["train", "--init", "small.pth"], ["small.pth", "64 embedding rows"]),
    ("evaluate with too few rows", ["evaluate", "--checkpoint", "small.pth"], ["small.pth", "64"]),
    ("finetune with too few rows", ["finetune", "--init", "small.pth"], ["small.pth", "64"]),
    ("texts need more rows than the checkpoint has", ["evaluate", "--checkpoint", "small.pth", "ab.txt"],
     ["small.pth", "64 embedding rows"]),
    ("huge magic prime", ["train", "--magic-prime", "1000000000000000000000000000000"], ["magic_prime"]),
    ("huge LoRA rank", ["finetune", "--init", "m.pth", "--lora-rank", "100000"], ["--lora-rank"]),
    ("init of another shape", ["train", "--init", "m.pth", "--n-layer", "3"], ["--n-layer 3", "m.pth", "n_layer 1"]),
    ("finetune init of another width", ["finetune", "--init", "m.pth", "--n-embd", "64"], ["--n-embd 64", "n_embd 32"]),
    ("new tokens not UTF-8", ["finetune", "--init", "m.pth", "--new-tokens", "badtok.txt"], ["badtok.txt", "UTF-8"]),
    ("truncated", ["train", "--init", "trunc.pth"], ["trunc.pth", "cannot read"]),
    ("garbage", ["evaluate", "--checkpoint", "garbage.pth"], ["garbage.pth", "cannot read"]),
    ("integer tensors", ["train", "--init", "ints.pth"], ["ints.pth", "torch.int64", "not floating-point"]),
    ("not a checkpoint", ["finetune", "--init", "notckpt.pth"], ["notckpt.pth"]),
    ("pickle with code", ["evaluate", "--checkpoint", "evil.pth"], ["evil.pth", "weights_only"]),
    ("config and shapes disagree", ["evaluate", "--checkpoint", "wrongcfg.pth"], ["wrongcfg", "n_layer"]),
    ("NaN weights", ["evaluate", "--checkpoint", "nan.pth"], ["nan.pth", "NaN"]),
    ("NaN weights to finetune", ["finetune", "--init", "nan.pth"], ["nan.pth", "NaN"]),
    ("lr 1e10 diverges", ["train", "--lr-init", "1e10", "--lr-final", "1e10", "--warmup-steps", "0"],
     ["diverged at step", "lr"]),
    ("out_dir is a file", ["train", "--out-dir", "afile"], ["afile", "not a folder"]),
    ("new tokens all known", ["finetune", "--init", "m.pth", "--new-tokens", "new.txt"], ["adds no token"]),
    ("id map conflicts", ["finetune", "--init", "m.pth", "--new-tokens", "idmap.json"], ["idmap.json", "id 5"]),
])
def test_refused_before_training(w: dict[str, Path], capsys: pytest.CaptureFixture[str], case: str, args: list[str],
                                 needles: list[str]) -> None:
    args = [w[a] if a in w else a for a in args]
    job = args[0]
    texts = job == "evaluate" and str(args[-1]).endswith(".txt")
    data = [] if texts else ["--data", w["P_val"] if job == "evaluate" else w["P"]]
    extra = ["--device", "cpu"] if job == "evaluate" else [*TINY, "--max-steps", "4"]
    if "--out-dir" not in args:
        extra += ["--out-dir", w["root"] / f"o-{case.replace(' ', '-')}"]
    refused([job, *data, *extra, *args[1:]], capsys, *needles)  # the case's flags last: they win


def test_resume_from_a_damaged_last_json(w: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = w["root"] / "o-resume"
    out.mkdir()
    refused(["train", "--data", w["P"], *TINY, "--out-dir", out, "--resume"], capsys, "last.json", "nothing")
    (out / "last.json").write_text('{"step": 3, "sta')
    refused(["train", "--data", w["P"], *TINY, "--out-dir", out, "--resume"], capsys, "last.json", "damaged")
    (out / "last.json").write_text('{"step": 3, "state": "rwkv-3.state.pt"}')
    refused(["train", "--data", w["P"], *TINY, "--out-dir", out, "--resume"], capsys, "rwkv-3.state.pt", "missing")
    (out / "rwkv-3.state.pt").write_bytes(b"PK\x03\x04 not really")
    refused(["train", "--data", w["P"], *TINY, "--out-dir", out, "--resume"], capsys, "rwkv-3.state.pt")


# ---- option ranges --------------------------------------------------------------------------------------------

BAD_OPTIONS = [
    *[("train", f, v) for f in ("--ctx-len", "--micro-bsz", "--grad-accum", "--n-layer", "--n-embd", "--head-size")
      for v in ("0", "-1")],
    *[("train", f, v) for f in ("--lr-init", "--lr-final", "--weight-decay", "--grad-clip")
      for v in ("-1", "nan", "inf")],
    *[("train", f, v) for f in ("--beta1", "--beta2") for v in ("1.0", "-0.1", "nan")],
    ("train", "--adam-eps", "0"), ("train", "--vocab-size", "-5"), ("train", "--max-steps", "-1"),
    ("train", "--token-budget", "-1"), ("train", "--seed", "-1"), ("train", "--save-every", "-2"),
    ("evaluate", "--device", "cuda:99"), ("train", "--device", "mps" if not torch.backends.mps.is_available() else "x"),
    ("train", "--precision", "fp8"), ("train", "--save-dtype", "fp16"), ("train", "--device", "gpu"),
    ("train", "--n-embd", "48"),  # not a multiple of --head-size 32
    ("train", "--n-layer", "1000000000"), ("train", "--micro-bsz", "1000000000"),
    ("train", "--ctx-len", "1000000000"), ("train", "--grad-accum", "1000000000"),
    ("finetune", "--grad-accum", "1000000000"),
    *[("evaluate", "--confidence", v) for v in ("0", "1", "1.5", "-0.5", "nan", "inf")],
    *[("evaluate", f, "-1") for f in ("--bootstrap", "--max-docs", "--seed")],
    ("evaluate", "--bootstrap", "99999999999999999999"),
    *[("evaluate", f, "0") for f in ("--ctx-len", "--batch-size")],
    ("finetune", "--replay-share", "1.0"), ("finetune", "--replay-share", "-0.1"),
    ("finetune", "--replay-share", "nan"), ("finetune", "--lora-rank", "-1"), ("finetune", "--lora-alpha", "0"),
    ("finetune", "--trainable", "last:0"), ("finetune", "--trainable", "some"),
]


@pytest.mark.parametrize("job,flag,value", BAD_OPTIONS)
def test_bad_option_values_are_refused(w: dict[str, Path], capsys: pytest.CaptureFixture[str], job: str, flag: str,
                                       value: str) -> None:
    base = {"train": ["train", "--data", w["P"], *TINY],
            "evaluate": ["evaluate", "--checkpoint", w["m.pth"], "--data", w["P_val"], "--device", "cpu"],
            "finetune": ["finetune", "--init", w["m.pth"], "--data", w["P"], *TINY]}[job]
    out = w["root"] / f"bad-{job}-{flag}-{value}"
    line = refused([*base, flag, value, "--out-dir", out], capsys)
    assert flag[2:].replace("-", "_") in line or flag in line or "needs about" in line or "magic_prime" in line, line
    assert "Traceback" not in line
    assert not (out / "config.json").exists()


@pytest.mark.parametrize("body,needles", [
    ('ctx_len = "abc"\n', ["ctx_len"]),
    ("ctx_len = 0\n", ["ctx_len", ">= 1"]),
    ("lr_init = nan\n", ["lr_init"]),
    ("micro_bsz = 2.5\n", ["micro_bsz"]),
    ("resume = 1\n", ["resume"]),
    ("no_such_key = 1\n", ["no_such_key"]),
])
def test_bad_toml_values_are_refused(w: dict[str, Path], capsys: pytest.CaptureFixture[str], body: str,
                                     needles: list[str]) -> None:
    conf = w["root"] / "bad.toml"
    conf.write_text(f'[train]\ndata = "{w["P"]}"\n{body}', encoding="utf-8")
    refused(["train", "--config", conf], capsys, *needles)


# ---- file modes follow the umask -------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_written_files_follow_the_umask(w: dict[str, Path], capsys: pytest.CaptureFixture[str], mask: int) -> None:
    from rwkv_data import fsmode

    old = os.umask(mask)
    fsmode.umask.cache_clear()
    try:
        out = w["root"] / f"umask-{mask:o}"
        code, err = cli(["finetune", "--init", w["m.pth"], "--data", w["P"], *TINY, "--max-steps", "1",
                         "--new-tokens", w["ab.txt"], "--out-dir", out], capsys)
        assert code == 0, err
        code, err = cli(["evaluate", "--checkpoint", out / "rwkv-final.pth", "--vocab", out / "vocab.txt",
                         w["ab.txt"], "--device", "cpu", "--out-dir", out / "eval"], capsys)
    finally:
        os.umask(old)
        fsmode.umask.cache_clear()
    assert code == 0, err
    files = [p for p in [*out.iterdir(), *(out / "eval").iterdir()] if p.is_file()]
    assert {"rwkv-final.pth", "rwkv-final.json", "vocab.txt", "last.json", "rwkv-1.state.pt", "config.json",
            "eval.json", "eval.csv"} <= {p.name for p in files}
    for p in files:
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, (p.name, oct(p.stat().st_mode))


@pytest.mark.parametrize("job", ["train", "finetune"])
def test_a_second_job_on_the_same_out_dir_is_refused(w: dict[str, Path], capsys: pytest.CaptureFixture[str],
                                                     job: str) -> None:
    """Two jobs on one --out-dir interleaved their checkpoints and train_log.jsonl and both exited 0."""
    out = w["root"] / f"o-locked-{job}"
    out.mkdir()
    init = ["--init", w["m.pth"]] if job == "finetune" else []
    with modelio.job_lock(out, job):  # the first job, still running
        refused([job, "--data", w["P"], *TINY, *init, "--max-steps", "1", "--out-dir", out], capsys,
                f"another rwkv-data {job} job", "--out-dir")
    assert not (out / "config.json").exists()
    code, err = cli([job, "--data", w["P"], *TINY, *init, "--max-steps", "1", "--out-dir", out], capsys)
    assert code == 0, err  # once the first has finished
    assert not (out / modelio.LOCK_NAME).exists()


# ---- a damaged shard is refused before training or evaluation ------------------------------------------------


def _idx_edit(path: Path, offset: int, fmt: str, value: int) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))


def _n_items(p: Path) -> int:
    return struct.unpack_from("<Q", Path(f"{p}.idx").read_bytes(), 18)[0]


DAMAGE = {  # each once trained or evaluated to exit 0 (or an IndexError) on the damaged data
    "bin-truncated": lambda p: Path(f"{p}.bin").write_bytes(Path(f"{p}.bin").read_bytes()[:-100]),
    "bin-one-byte-more": lambda p: Path(f"{p}.bin").write_bytes(Path(f"{p}.bin").read_bytes() + b"\x05"),
    "idx-size-negative": lambda p: _idx_edit(Path(f"{p}.idx"), 34, "<i", -7),
    "idx-pointer-huge": lambda p: _idx_edit(Path(f"{p}.idx"), 34 + 4 * _n_items(p), "<q", 1 << 62),
    "idx-dtype-int8": lambda p: _idx_edit(Path(f"{p}.idx"), 17, "<B", 2),
    "meta-tokenizer-a-string": lambda p: Path(f"{p}.meta.json").write_text(
        json.dumps({**json.loads(Path(f"{p}.meta.json").read_text()), "tokenizer": "x"})),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
@pytest.mark.parametrize("job", ["train", "evaluate"])
def test_a_damaged_shard_is_refused(w: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    case: str, job: str) -> None:
    src = w["P"] if job == "train" else w["P_val"]
    for ext in ("bin", "idx", "lang.npy", "meta.json"):
        shutil.copy(f"{src}.{ext}", tmp_path / f"D.{ext}")
    DAMAGE[case](tmp_path / "D")
    args = ["train", "--data", tmp_path / "D", *TINY, "--max-steps", "2"] if job == "train" else [
        "evaluate", "--checkpoint", w["m.pth"], "--data", tmp_path / "D", "--device", "cpu"]
    refused([*args, "--out-dir", tmp_path / "out"], capsys, str(tmp_path / "D"))
    assert not (tmp_path / "out" / "rwkv-final.pth").exists() and not (tmp_path / "out" / "eval.json").exists()
