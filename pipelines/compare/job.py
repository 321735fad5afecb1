"""``rwkv-data compare``: train the same model on N tokenizer variants and compare per-language bits per byte.

Stages, each a folder of the run folder with ``config.json``, ``stats.json`` and a ``.done`` marker (the stage
runner of ``rwkv-data run``, :class:`rwkv_data.pipelines.run.Stage`: a rerun skips finished stages and redoes a
stage whose settings or inputs changed)::

    heldout/                     heldout.jsonl: the held-out documents, chosen by content (:mod:`.heldout`)
    <variant>/vocab/             the variant's vocabulary (tokenizer = "train": trained without held-out documents;
                                 bytes: the 256 single bytes; extend_lang: World + tokens of that language)
    <variant>/target/            fine-tuning variants: the target language's training documents
    <variant>/shard/             binidx shards (held-out documents left out by the same content rule)
    <variant>/t<TOKENS>-s<SEED>/ rwkv-final.pth trained on TOKENS token positions with SEED; scores.json: bits
                                 of every held-out document
    report/                      compare.json, compare.csv, report.html (:mod:`.report`)

Budgets: ``compute`` trains every variant on ``train_tokens`` token positions; ``text`` on the token count that
covers ``train_bytes`` of its own training text (tokens = bytes x the variant's tokens per byte on its training
split), so a tokenizer with fewer tokens per byte takes fewer steps. A model whose budget is the same under both
is trained once.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

from rwkv_data.config import CompareConfig, CompareVariant, FinetuneConfig, ShardConfig, TrainConfig, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.compare import heldout
from rwkv_data.pipelines.compare.spec import base_variant, compute_tokens
from rwkv_data.pipelines.run import Stage, _expand, _fingerprint, _set_threads, _write_json

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """The scoring stage: one checkpoint on the held-out documents, bits per document."""

    checkpoint: str = ""
    vocab: str = "world"
    heldout: str = ""
    ctx_len: int = 256
    batch_size: int = 4
    device: str = "auto"
    precision: str = "fp32"


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """The report stage: which budgets and baseline, the bootstrap settings."""

    baseline: str = ""
    budgets: tuple[str, ...] = ()
    bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class BytesVocabConfig:
    """The bytes baseline's vocabulary: ids 1..256 are the single bytes (greedy match = bytes)."""

    output: str = ""


@dataclasses.dataclass(frozen=True)
class TargetConfig:
    """A fine-tuning variant's corpus: the training documents (held-out ones left out) of one language."""

    shard: ShardConfig = dataclasses.field(default_factory=ShardConfig)
    lang: str = ""
    output: str = ""


@dataclasses.dataclass
class Variant:
    """What the stages found out about one variant: its vocab spec, shards and tokens per byte."""

    spec: CompareVariant
    vocab: str = "world"  # for train/evaluate: "world" or a vocab file
    shard: str = ""  # training prefix
    replay: str = ""  # fine-tuning: the whole corpus, for replay
    tokens_per_byte: float = 0.0
    key: str = ""  # the last stage key the models depend on


def run(cfg: CompareConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage not finished yet; returns the report (also written as report/compare.json)."""
    t0 = time.perf_counter()
    if not cfg.inputs:
        raise ConfigError("compare needs inputs (corpus files, folders or globs with a lang field)")
    out = Path(cfg.out or "runs/compare").resolve()
    out.mkdir(parents=True, exist_ok=True)
    _set_threads(cfg.threads)
    _write_json(out / "compare.json", to_dict(cfg))
    inputs = tuple(_expand(cfg.inputs))
    split = dataclasses.replace(cfg.shard, inputs=inputs)
    fp = _fingerprint(inputs)
    stages: dict[str, Stage] = {}

    hcfg = heldout.HeldoutConfig(shard=split, max_docs=cfg.heldout_docs, max_chars=cfg.heldout_chars,
                                 output=str(out / "heldout" / "heldout.jsonl"))
    st = stages["heldout"] = Stage(cfg, "heldout", out, hcfg, [fp])
    st.run(lambda: (heldout.select(hcfg), {"heldout": hcfg.output}))
    held_key, held_path = st.key, st.outputs["heldout"]

    variants = [_prepare(cfg, v, out, split, fp, stages, progress) for v in cfg.variants]
    base = next(x for x in variants if x.spec.name == base_variant(cfg).name)
    budgets = _budgets(cfg, variants, base)
    scores: dict[str, dict[str, str]] = {}  # variant -> "tokens-seed" -> scores.json
    for var in variants:
        for tokens in sorted({b[var.spec.name] for b in budgets.values()}):
            for seed in cfg.seeds:
                scores.setdefault(var.spec.name, {})[f"{tokens}-{seed}"] = _model(
                    cfg, var, tokens, seed, out, held_path, held_key, stages, progress)

    rcfg = ReportConfig(baseline=base.spec.name, budgets=cfg.budgets, bootstrap=cfg.evaluate.bootstrap,
                        confidence=cfg.evaluate.confidence, seed=cfg.evaluate.seed)
    st = stages["report"] = Stage(cfg, "report", out, rcfg, [s.key for n, s in stages.items() if n != "report"])

    def report_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.compare import report

        result = report.build(rcfg, held_path, variants, budgets, scores, cfg)
        files = report.write(result, st.folder)
        return {"verdicts": {b: t["verdicts"] for b, t in result["budgets"].items()}}, files

    st.run(report_job)
    result = json.loads((out / "report" / "compare.json").read_text(encoding="utf-8"))
    result["stages"] = {n: {"status": s.status, "seconds": s.seconds} for n, s in stages.items()}
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["out"] = str(out)
    return result


def _prepare(cfg: CompareConfig, v: CompareVariant, out: Path, split: ShardConfig, fp: str,
             stages: dict[str, Stage], progress: bool) -> Variant:
    """The variant's vocabulary and shards (and, fine-tuning, its target-language corpus)."""
    var = Variant(spec=v)
    name = v.name
    corpus = split.inputs
    upstream = [fp]
    if v.init and (v.extend_lang or v.target_lang):  # fine-tuning on one language
        lang = v.target_lang or v.extend_lang
        target = out / name / "target" / "target.jsonl"
        tc = TargetConfig(shard=split, lang=lang, output=str(target))
        st = stages[f"{name}/target"] = Stage(cfg, f"{name}/target", out, tc, [fp])
        st.run(lambda: ({"documents": heldout.write_language_subset(split.inputs, split, lang, target)},
                        {"corpus": str(target)}))
        corpus, upstream = (st.outputs["corpus"],), [st.key]
    if v.tokenizer == "train" or v.extend_lang:
        vcfg = dataclasses.replace(cfg.vocab, inputs=corpus, output=str(out / name / "vocab" / "vocab.txt"),
                                   vocab_size=v.vocab_size or cfg.vocab.vocab_size, threads=cfg.vocab.threads or
                                   cfg.threads)
        if v.extend_lang:
            vcfg = dataclasses.replace(vcfg, base="" if v.tokenizer == "world" else v.tokenizer,
                                       add_tokens=v.extend_tokens)
        st = stages[f"{name}/vocab"] = Stage(cfg, f"{name}/vocab", out, vcfg, upstream + [
            *(repr(getattr(split, k)) for k in _split_options())])

        def vocab_job() -> tuple[dict[str, Any], dict[str, str]]:
            from rwkv_data.pipelines.shard.job import validation_split_of
            from rwkv_data.pipelines.vocab import job as vocab_job

            if v.extend_lang:  # its corpus is the target's training documents already
                s = vocab_job.run_extend(vcfg)
                return s, {"vocab": s["output"], "idmap": s["idmap"]}
            s = vocab_job.run(vcfg, exclude=validation_split_of(split).is_validation)
            return s, {"vocab": s["output"]}

        st.run(vocab_job)
        var.vocab, upstream = st.outputs["vocab"], [st.key]
    elif v.tokenizer == "bytes":
        bcfg = BytesVocabConfig(output=str(out / name / "vocab" / "bytes.txt"))
        st = stages[f"{name}/vocab"] = Stage(cfg, f"{name}/vocab", out, bcfg, [])
        st.run(lambda: _bytes_vocab(bcfg))
        var.vocab, upstream = st.outputs["vocab"], upstream + [st.key]
    elif v.tokenizer != "world":
        var.vocab, upstream = str(Path(v.tokenizer).resolve()), upstream + [_fingerprint((v.tokenizer,))]
    shard_vocab = "" if var.vocab == "world" else var.vocab
    scfg = dataclasses.replace(split, inputs=corpus, output=str(out / name / "shard" / "data"), vocab=shard_vocab,
                               progress=progress and split.progress)
    st = stages[f"{name}/shard"] = Stage(cfg, f"{name}/shard", out, scfg, upstream)
    st.run(lambda: _shard(scfg))
    var.shard, var.key = st.outputs["train"], st.key
    meta = json.loads(Path(st.outputs["meta"]).read_text(encoding="utf-8"))
    var.tokens_per_byte = meta["tokens"] / max(1, meta["bytes"])
    if v.init and v.replay_share > 0:
        rcfg = dataclasses.replace(scfg, inputs=split.inputs, output=str(out / name / "replay" / "data"))
        st = stages[f"{name}/replay"] = Stage(cfg, f"{name}/replay", out, rcfg, [fp, *upstream])
        st.run(lambda: _shard(rcfg))
        var.replay, var.key = st.outputs["train"], st.key
        rmeta = json.loads(Path(st.outputs["meta"]).read_text(encoding="utf-8"))
        s = v.replay_share  # bytes per token of the mix: the target's and the replayed text's, by sample share
        var.tokens_per_byte = 1.0 / ((1 - s) / var.tokens_per_byte + s * rmeta["bytes"] / max(1, rmeta["tokens"]))
    return var


def _split_options() -> tuple[str, ...]:
    from rwkv_data.pipelines.shard.job import SPLIT_OPTIONS

    return SPLIT_OPTIONS


def _bytes_vocab(cfg: BytesVocabConfig) -> tuple[dict[str, Any], dict[str, str]]:
    from rwkv_data.tokenizer.vocab import Vocab, write_vocab

    write_vocab(Vocab.from_tokens({i + 1: bytes([i]) for i in range(256)}, name="bytes"), cfg.output)
    return {"tokens": 256}, {"vocab": cfg.output}


def _shard(scfg: ShardConfig) -> tuple[dict[str, Any], dict[str, str]]:
    from rwkv_data.pipelines.shard import job as shard

    metas = shard.run(scfg)
    stats = {split: {k: m[k] for k in ("documents", "tokens", "bytes", "per_language") if k in m}
             for split, m in metas.items()}
    return stats, {"train": scfg.output, "meta": f"{scfg.output}.meta.json"}


def _budgets(cfg: CompareConfig, variants: list[Variant], base: Variant) -> dict[str, dict[str, int]]:
    """Token positions each variant trains under each budget (rounded to whole steps)."""
    t = cfg.train
    per_step = t.micro_bsz * t.grad_accum * t.ctx_len
    steps = lambda tokens: max(1, round(tokens / per_step)) * per_step  # noqa: E731
    tokens = compute_tokens(cfg)
    out: dict[str, dict[str, int]] = {}
    if "compute" in cfg.budgets:
        out["compute"] = {v.spec.name: steps(tokens) for v in variants}
    if "text" in cfg.budgets:
        text_bytes = cfg.train_bytes or steps(tokens) / base.tokens_per_byte
        out["text"] = {v.spec.name: steps(text_bytes * v.tokens_per_byte) for v in variants}
    return out


def _model(cfg: CompareConfig, var: Variant, tokens: int, seed: int, out: Path, held_path: str, held_key: str,
           stages: dict[str, Stage], progress: bool) -> str:
    """Train (or fine-tune) one model and score the held-out documents; returns the scores.json path."""
    v = var.spec
    name = f"{v.name}/t{tokens}-s{seed}"
    folder = out / name
    fields = {f.name: getattr(cfg.train, f.name) for f in dataclasses.fields(TrainConfig)}
    fields.update(data=var.shard, out_dir=str(folder / "train"), vocab=var.vocab, token_budget=tokens, seed=seed,
                  val_data="", eval_every=0, resume=False)
    if v.init:
        if v.extend_lang:  # finetune extends the checkpoint's own vocab with the id map (and writes the result)
            fields["vocab"] = "world" if v.tokenizer == "world" else v.tokenizer
        tcfg: TrainConfig = FinetuneConfig(**{**fields, "init": str(Path(v.init).resolve()),
                                              "new_tokens": _idmap(stages, v) if v.extend_lang else "",
                                              "replay_data": var.replay, "replay_share": v.replay_share})
    else:
        tcfg = TrainConfig(**fields)
    st = stages[f"{name}/train"] = Stage(cfg, f"{name}/train", out, tcfg, [var.key])

    def train_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.train import finetune
        from rwkv_data.pipelines.train import job as train

        s = finetune.run(tcfg, progress=progress) if v.init else train.run(tcfg, progress=progress)
        return s, {"checkpoint": s["checkpoint"]}

    st.run(train_job, writes_own_json=True)
    e = cfg.evaluate
    scfg = ScoreConfig(checkpoint=st.outputs["checkpoint"], vocab=var.vocab, heldout=held_path, ctx_len=e.ctx_len,
                       batch_size=e.batch_size, device=e.device, precision=e.precision)
    st = stages[f"{name}/score"] = Stage(cfg, f"{name}/score", out, scfg, [st.key, held_key])
    st.run(lambda: _score(scfg, out / name / "score" / "scores.json", progress))
    return st.outputs["scores"]


def _idmap(stages: dict[str, Stage], v: CompareVariant) -> str:
    return stages[f"{v.name}/vocab"].outputs["idmap"]


def _score(cfg: ScoreConfig, path: Path, progress: bool) -> tuple[dict[str, Any], dict[str, str]]:
    import numpy as np

    from rwkv_data.pipelines.train import evaluate, modelio

    docs_in = heldout.load(cfg.heldout)
    tok = evaluate.load_tokenizer(cfg.vocab)
    docs = [evaluate.doc_from_text(d["lang"], d["text"], tok) for d in docs_in]
    device = modelio.resolve_device(cfg.device)
    model = modelio.load(cfg.checkpoint, device)
    if tok.vocab_size > modelio.vocab_rows(model):
        raise ConfigError(f"{cfg.checkpoint}: {modelio.vocab_rows(model)} embedding rows for a {tok.vocab_size}-id "
                          f"vocab {cfg.vocab!r}")
    model.eval()
    bits = evaluate.score_tokens(model, [d.tokens for d in docs], cfg.ctx_len, cfg.batch_size, device,
                                 modelio.autocast_dtype(cfg.precision))
    nbytes = np.array([d.n_bytes for d in docs])
    rows = {"ids": [d["id"] for d in docs_in], "langs": [d.lang for d in docs], "bytes": nbytes.tolist(),
            "tokens": [len(d.tokens) for d in docs], "bits": bits.tolist()}
    _write_json(path, rows)
    return {"documents": len(docs), "bpb": float(bits.sum() / nbytes.sum())}, {"scores": str(path)}
