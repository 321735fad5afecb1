"""Acceptance run for issue 5 on the shared corpus (CPU, ~10 minutes): train a tiny RWKV-7 from scratch, check
that validation bits per byte fell in every language, then fine-tune it with the default recipe on a language it
never saw and check: target bpb -10% or better, every other language +5% or less (relative).

    python benchmarks/finetune_acceptance.py                      # ../shared/corpus, results in a temp folder
    python benchmarks/finetune_acceptance.py --work /tmp/acc --base-steps 300 --ft-steps 120

Tokenizer: the 256 single bytes (ids 1..256), so the bits per token of the model are bits per byte and a
tiny model trains at thousands of tokens/s on a CPU; with the 65536-token World vocab the head alone holds
95% of an L2-C128 model's weights and training runs ~15x slower (benchmarks/train_speed.py). Shards come from the
real shard job (``rwkv-data shard``), training and fine-tuning from the real jobs; only run lengths are set here.
The fine-tuning recipe is FinetuneConfig's defaults (all weights, replay of the base data, lr, warm-up).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from rwkv_data.config import FinetuneConfig, ShardConfig, TrainConfig
from rwkv_data.pipelines.shard import job as shard
from rwkv_data.pipelines.train import evaluate, finetune, modelio
from rwkv_data.pipelines.train import job as train
from rwkv_data.tokenizer.resolve import load_trie
from rwkv_data.tokenizer.vocab import Vocab, write_vocab

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "mono"


def make_shard(work: Path, name: str, langs: list[str], vocab: Path) -> tuple[Path, Path]:
    out = work / name
    if not Path(f"{out}.meta.json").is_file():
        shard.run(ShardConfig(inputs=tuple(str(CORPUS / f"{lg}.jsonl.zst") for lg in langs), output=str(out),
                              vocab=str(vocab), val_min_docs=8, ctx_lens=(256,), progress=False))
    return out, Path(f"{out}_val")


def bpb_table(ckpt: Path, docs: list[evaluate.EvalDoc]) -> dict[str, float]:
    rows = evaluate.evaluate_docs(modelio.load(ckpt), docs, ctx_len=1024, batch_size=8, n_boot=0)
    return {r["lang"]: r["bpb"] for r in rows if r["lang"] != "all"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--langs", default="en,de,fr,es,ru", help="languages of the base model")
    ap.add_argument("--target", default="sw", help="the language the base model never sees")
    ap.add_argument("--base-steps", type=int, default=240)
    ap.add_argument("--ft-steps", type=int, default=90)
    ap.add_argument("--eval-docs", type=int, default=8, help="validation documents per language")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="rwkv-acceptance-"))
    work.mkdir(parents=True, exist_ok=True)
    langs = args.langs.split(",")
    vocab = work / "bytes.txt"
    write_vocab(Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)}, name="bytes"), vocab)
    t0 = time.perf_counter()
    P, P_val = make_shard(work, "base", langs, vocab)
    T, T_val = make_shard(work, "target", [args.target], vocab)
    print(f"shards ready in {time.perf_counter() - t0:.0f}s", file=sys.stderr)

    common = dict(n_layer=2, n_embd=128, head_size=64, ctx_len=256, micro_bsz=8, device="cpu", vocab=str(vocab),
                  eval_docs=args.eval_docs, log_every=10)
    tps = 8 * 256
    done = work / "train" / "stats.json"
    if done.is_file() and json.loads(done.read_text())["steps"] == args.base_steps:  # rerun: reuse the base model
        base = json.loads(done.read_text())
    else:
        base = train.run(TrainConfig(data=str(P), val_data=str(P_val), out_dir=str(work / "train"),
                                     max_steps=args.base_steps, token_budget=args.base_steps * tps, **common))
    step0, trained = base["evals"][0]["eval"], base["evals"][-1]["eval"]
    ckpt = Path(base["checkpoint"])

    ft_dir = work / "ft"
    ft = finetune.run(FinetuneConfig(init=str(ckpt), data=str(T), replay_data=str(P), out_dir=str(ft_dir),
                                     max_steps=args.ft_steps, token_budget=args.ft_steps * tps, **common))
    tok = load_trie(str(vocab))
    docs = (evaluate.load_binidx_docs(P_val, tok, args.eval_docs)
            + evaluate.load_binidx_docs(T_val, tok, args.eval_docs))
    before, after = bpb_table(ckpt, docs), bpb_table(Path(ft["checkpoint"]), docs)

    print(f"\nbase model: L2 C128 bytes, {base['steps']} steps, {base['tokens']:,} tokens, {base['seconds']:.0f}s, "
          f"{base['tokens_per_s']:,.0f} tok/s")
    print(f"{'lang':<6} {'bpb step 0':>10} {'bpb trained':>11} {'change':>8}")
    ok_train = True
    for lg in langs:
        ok_train &= trained[lg] < step0[lg]
        print(f"{lg:<6} {step0[lg]:>10.4f} {trained[lg]:>11.4f} {trained[lg] / step0[lg] - 1:>+8.1%}")
    print(f"\nfine-tune on {args.target}: {ft['steps']} steps, {ft['tokens']:,} tokens "
          f"({FinetuneConfig.replay_share:.0%} replayed), {ft['seconds']:.0f}s")
    print(f"{'lang':<6} {'bpb before':>10} {'bpb after':>10} {'change':>8}  limit")
    ok_ft = True
    for lg in [*langs, args.target]:
        rel = after[lg] / before[lg] - 1
        limit = -0.10 if lg == args.target else 0.05
        ok = rel <= limit
        ok_ft &= ok
        print(f"{lg:<6} {before[lg]:>10.4f} {after[lg]:>10.4f} {rel:>+8.1%}  <= {limit:+.0%} {'ok' if ok else 'FAIL'}")
    result = {"base": {"step0": step0, "trained": trained, "steps": base["steps"], "tokens": base["tokens"],
                       "seconds": base["seconds"]},
              "finetune": {"target": args.target, "before": before, "after": after, "steps": ft["steps"],
                           "tokens": ft["tokens"], "seconds": ft["seconds"]},
              "pass_train": ok_train, "pass_finetune": ok_ft}
    (work / "acceptance.json").write_text(json.dumps(result, indent=2))
    print(f"\ntrain: {'PASS' if ok_train else 'FAIL'}; finetune: {'PASS' if ok_ft else 'FAIL'}; details in "
          f"{work / 'acceptance.json'}")
    return 0 if ok_train and ok_ft else 1


if __name__ == "__main__":
    sys.exit(main())
