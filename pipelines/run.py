"""``rwkv-data run``: the whole pipeline in one run folder, corpus in, per-language validated model and audit out.

Stages, in order, each in its own subfolder of the run folder::

    vocab/     vocab.txt (+ .meta.json)                pipelines/vocab/     (on the shard's training split)
    shard/     data.bin/.idx, data_val.*, *.meta.json  pipelines/shard/     (validation split by content hash)
    train/     rwkv-final.pth, train_log.jsonl         pipelines/train/     (tiny RWKV-7, GPU when there is one)
    evaluate/  eval.json, eval.csv                     pipelines/train/     (bits per byte per language)
    audit/     report.html, summary.json, languages.csv pipelines/audit/    (our vocab vs World on the corpus)

Every stage folder holds ``config.json`` (the stage's job config, paths filled in) and ``stats.json``, then a
completion marker ``.done`` written atomically last (datatrove style). The marker carries a key: the sha256 of
the stage's config, its input files' sizes and mtimes, and the keys of the stages it reads, so a rerun skips a
finished stage, and redoes it (in an emptied folder, and everything after it) when its settings, its corpus or
an input stage changed. A skipped stage (``--skip``) is not run;
later stages use its finished output when the folder has one (a skipped vocab otherwise means RWKV World, a
skipped shard or train means the stages that need them are skipped too).

>>> result = run(RunConfig(out="runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import logging
import os
import shutil
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rwkv_data import config as job_configs
from rwkv_data.config import RunConfig, load_toml, to_dict
from rwkv_data.demo import LANGUAGE_NAMES, demo_corpus_path
from rwkv_data.errors import ConfigError

log = logging.getLogger(__name__)

STAGES = ("vocab", "shard", "train", "evaluate", "audit")
SECTIONS: dict[str, type] = {"vocab": job_configs.VocabConfig, "shard": job_configs.ShardConfig,
                             "train": job_configs.TrainConfig, "evaluate": job_configs.EvalConfig,
                             "audit": job_configs.AuditConfig}
MARKER = ".done"
RUNTIME_ONLY = {"progress", "threads", "num_threads", "workers", "device"}  # never change a stage's outputs


# ---- config -------------------------------------------------------------------------------------------------


def check_stages(names: tuple[str, ...] | list[str], option: str) -> tuple[str, ...]:
    """Split comma-separated stage names and reject unknown ones (ConfigError naming the valid ones)."""
    out = tuple(s.strip() for n in names for s in n.split(",") if s.strip())
    bad = [s for s in out if s not in STAGES]
    if bad:
        raise ConfigError(f"{option}: unknown stage(s) {bad}; the stages are {', '.join(STAGES)}")
    return out


def load_run_config(path: str | Path | None = None, **overrides: Any) -> RunConfig:
    """The RunConfig of a TOML file (top-level keys and one section per stage) with overrides (None = unset).

    Without ``inputs`` (the demo corpus) a section overrides the demo settings of ``RunConfig()``; with
    ``inputs`` it overrides the job's own defaults (the same as ``rwkv-data <job>``), which suit a real corpus.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    top = {k: v for k, v in raw.items() if k not in SECTIONS}
    top.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(RunConfig)} - set(SECTIONS)
    unknown = sorted(set(top) - names)
    if unknown:
        raise ConfigError(f"{path or 'options'}: unknown key(s) {unknown}; top-level keys: {sorted(names)}, "
                          f"sections: {', '.join(f'[{s}]' for s in SECTIONS)}")
    for key in ("inputs", "skip", "redo"):
        if isinstance(top.get(key), str):
            top[key] = (top[key],)
        if key in top:
            top[key] = tuple(top[key])
    top["skip"] = check_stages(top.get("skip", ()), "skip")
    top["redo"] = check_stages(top.get("redo", ()), "redo")
    demo = RunConfig()
    stages: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        base = getattr(demo, name) if not top.get("inputs") else cls()
        if name in raw:
            loaded = load_toml(cls, path, name)  # validates the keys against the job's dataclass
            base = dataclasses.replace(base, **{k: _plain(getattr(loaded, k)) for k in raw[name]})
        stages[name] = base
    return RunConfig(**top, **stages)


def _plain(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def default_out(config_path: str | Path | None) -> str:
    """``runs/demo`` without a config file, else ``runs/<config file stem>``: a rerun finds its run folder."""
    return f"runs/{Path(config_path).stem}" if config_path else "runs/demo"


# ---- stage bookkeeping --------------------------------------------------------------------------------------


def _key(stage: str, cfg: Any, upstream: list[str], out: Path) -> str:
    conf = {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME_ONLY}
    blob = json.dumps({"stage": stage, "config": conf, "upstream": upstream}, sort_keys=True, default=str)
    blob = blob.replace(str(out), "<run>")  # a moved run folder keeps its keys
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _fingerprint(inputs: tuple[str, ...]) -> str:
    """Paths, sizes and mtimes of the input files: an edited corpus redoes the stages that read it."""
    files: list[str] = []
    for p in _expand(inputs):
        path = Path(p)
        found = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in found:
            st = f.stat() if f.is_file() else None
            files.append(f"{f}:{st.st_size}:{st.st_mtime_ns}" if st else str(f))  # hf:NAME and the like as given
    return hashlib.sha256("\n".join(files).encode()).hexdigest()[:16]


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _marker(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


class Stage:
    """One stage's folder, key and outcome; :meth:`run` runs the job unless it is finished or skipped."""

    def __init__(self, rc: RunConfig, name: str, out: Path, cfg: Any, upstream: list[str]) -> None:
        self.name, self.out, self.folder, self.cfg = name, out, out / name, cfg
        self.key = _key(name, cfg, upstream, out)
        self.status = "pending"
        self.outputs: dict[str, str] = {}
        self.seconds = 0.0
        self.skip, self.redo = name in rc.skip, name in rc.redo

    def run(self, job: Callable[[], tuple[dict[str, Any], dict[str, str]]], writes_own_json: bool = False) -> bool:
        """Run ``job`` (returns stats and outputs) unless finished with this key; False when skipped."""
        done = _marker(self.folder)
        if self.skip:
            if done:  # a finished earlier run: later stages may still use it
                self.status, self.key, self.outputs = "skipped (earlier output used)", done["key"], self._abs(done)
                log.info("%s: skipped; using the finished output in %s", self.name, self.folder)
                return True
            self.status = "skipped"
            log.info("%s: skipped (--skip)", self.name)
            return False
        if done and done.get("key") == self.key and not self.redo:
            self.status, self.outputs, self.seconds = "finished earlier", self._abs(done), done.get("seconds", 0.0)
            log.info("%s: finished earlier, not redone (%s; --redo %s to run it again)", self.name,
                     self.folder / MARKER, self.name)
            return True
        if done:  # start clean: no checkpoint or file of the old settings may survive next to the new ones
            log.info("%s: %s; running again", self.name, "--redo" if self.redo else "settings or inputs changed")
            (self.folder / MARKER).unlink()  # first, so an interrupted redo never looks finished
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)  # an interrupted run's files stay (shard parts resume)
        log.info("%s: running in %s", self.name, self.folder)
        t0 = time.perf_counter()
        stats, self.outputs = job()
        self.seconds = round(time.perf_counter() - t0, 2)
        if not writes_own_json:
            _write_json(self.folder / "config.json", to_dict(self.cfg))
            _write_json(self.folder / "stats.json", {**stats, "seconds": self.seconds})
        rel = {k: os.path.relpath(v, self.out) for k, v in self.outputs.items()}  # the folder may be moved
        _write_json(self.folder / MARKER, {"stage": self.name, "key": self.key, "outputs": rel,
                                           "seconds": self.seconds, "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
        self.status = "ran"
        log.info("%s: done in %.1f s", self.name, self.seconds)
        return True

    def _abs(self, marker: dict[str, Any]) -> dict[str, str]:
        return {k: str(self.out / v) for k, v in marker.get("outputs", {}).items()}

    def unavailable(self, why: str) -> None:
        self.status = f"not run ({why})"
        log.warning("%s: not run: %s", self.name, why)


# ---- the pipeline -------------------------------------------------------------------------------------------


def _expand(inputs: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for p in inputs:
        out += sorted(glob.glob(p)) if glob.has_magic(p) else [p]
    return out


def _set_threads(threads: int) -> None:
    """torch CPU threads: ``threads``, or with 0 torch's default unless the CPU is already busy.

    On a busy machine OpenMP's spin-waiting threads fight the other processes: on 2 cores at load average 8-9,
    the demo's 60 training steps took 341 s with 2 threads and 90 s with 1.
    """
    import torch

    if threads > 0:
        torch.set_num_threads(threads)
        return
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if torch.get_num_threads() > 1 and load >= cores:
        log.info("the CPU is busy (load average %.1f on %d cores): using 1 torch thread (--threads N to choose)",
                 load, cores)
        torch.set_num_threads(1)


def run(cfg: RunConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage not finished or skipped; returns the per-language table, statuses and written files."""
    from rwkv_data.pipelines.shard.job import SPLIT_OPTIONS, validation_split_of

    t_start = time.perf_counter()
    out = Path(cfg.out or "runs/demo").resolve()
    out.mkdir(parents=True, exist_ok=True)
    inputs = tuple(cfg.inputs) or (str(demo_corpus_path()),)
    _set_threads(cfg.threads)
    _write_json(out / "run.json", to_dict(cfg))
    stages: dict[str, Stage] = {}

    # 1. vocabulary, trained without the documents the shard stage holds out for validation
    vcfg = dataclasses.replace(cfg.vocab, inputs=cfg.vocab.inputs or inputs, output=str(out / "vocab" / "vocab.txt"),
                               threads=cfg.vocab.threads or cfg.threads)
    split_cfg = dataclasses.replace(cfg.shard, inputs=cfg.shard.inputs or inputs)  # its P_val is left out
    split_key = [_fingerprint(split_cfg.inputs), *(repr(getattr(split_cfg, k)) for k in SPLIT_OPTIONS)]
    st = stages["vocab"] = Stage(cfg, "vocab", out, vcfg, [_fingerprint(vcfg.inputs), *split_key])

    def vocab_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.vocab import job as build_vocab

        s = build_vocab.run(vcfg, exclude=validation_split_of(split_cfg).is_validation)  # stats: "excluded"
        return s, {"vocab": s["output"], "meta": s["meta"]}

    vocab = st.outputs["vocab"] if st.run(vocab_job) else ""
    if not vocab:
        log.info("vocab: no trained vocabulary; shard, train, evaluate and audit use RWKV World")
    vocab_key = st.key if vocab else "world"

    # 2. shards with a validation split
    scfg = dataclasses.replace(cfg.shard, inputs=cfg.shard.inputs or inputs, output=str(out / "shard" / "data"),
                               vocab=vocab)
    st = stages["shard"] = Stage(cfg, "shard", out, scfg, [vocab_key, _fingerprint(scfg.inputs)])

    def shard_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.shard import job as shard

        metas = shard.run(scfg)
        keep = ("documents", "tokens", "bytes", "characters", "items", "languages", "per_language", "rwkv_lm")
        stats = {split: {k: m[k] for k in keep if k in m} for split, m in metas.items()}
        return stats, {"train": scfg.output, "val": f"{scfg.output}_val"}

    shards = st.outputs if st.run(shard_job) else {}

    # 3. training
    tcfg = dataclasses.replace(cfg.train, data=shards.get("train", ""), val_data=shards.get("val", ""),
                               vocab=vocab or "world", out_dir=str(out / "train"))
    st = stages["train"] = Stage(cfg, "train", out, tcfg, [stages["shard"].key])

    def train_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.train import job as train

        s = train.run(tcfg, progress=progress)  # writes train/config.json and stats.json itself
        return s, {"checkpoint": s["checkpoint"], "log": str(out / "train" / "train_log.jsonl")}

    ckpt = ""
    if not shards and not st.skip:
        st.unavailable("no shards")
    elif st.run(train_job, writes_own_json=True):
        ckpt = st.outputs["checkpoint"]

    # 4. bits per byte per language on the validation split
    ecfg = dataclasses.replace(cfg.evaluate, checkpoint=ckpt, data=shards.get("val", ""), texts=(),
                               vocab=vocab or "world", out_dir=str(out / "evaluate"))
    st = stages["evaluate"] = Stage(cfg, "evaluate", out, ecfg, [stages["train"].key, stages["shard"].key])

    def eval_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.train import evaluate

        r = evaluate.run(ecfg, progress=progress)
        stats = {k: r[k] for k in ("languages", "tokens", "tokens_per_s", "convention")}
        return stats, {"eval": str(out / "evaluate" / "eval.json"), "csv": str(out / "evaluate" / "eval.csv")}

    if not ckpt and not st.skip:
        st.unavailable("no trained checkpoint")
    else:
        st.run(eval_job)

    # 5. tokenizer audit: ours vs World (and whatever [audit] tokenizers lists) on the corpus
    audit_inputs = _expand((cfg.audit.corpus,) if cfg.audit.corpus else inputs)
    toks = ((f"ours={vocab}",) if vocab else ()) + tuple(t for t in cfg.audit.tokenizers if t != f"ours={vocab}")
    acfg = dataclasses.replace(cfg.audit, corpus=cfg.audit.corpus or " ".join(audit_inputs), tokenizers=toks,
                               out_dir=str(out / "audit"), num_threads=cfg.audit.num_threads or cfg.threads)
    st = stages["audit"] = Stage(cfg, "audit", out, acfg, [vocab_key, _fingerprint(tuple(audit_inputs))])

    def audit_job() -> tuple[dict[str, Any], dict[str, str]]:
        from rwkv_data.pipelines.audit import job as audit
        from rwkv_data.pipelines.audit.corpus import load_mono

        corpus = None if len(audit_inputs) == 1 else load_mono(audit_inputs, acfg.langs, acfg.max_bytes_per_lang)
        r = audit.run(acfg, corpus=corpus)  # writes audit/config.json and stats.json itself
        for failure in r.failures:
            log.warning("audit threshold failed: %s", failure)
        return {}, {"summary": str(r.out_dir / "summary.json"), "csv": str(r.out_dir / "languages.csv"),
                    **({"report": str(r.out_dir / "report.html")} if acfg.html else {})}

    st.run(audit_job, writes_own_json=True)
    return _result(out, stages, time.perf_counter() - t_start)


# ---- results ------------------------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _untrained(out: Path, train_stats: dict[str, Any], evals: list[dict[str, Any]]) -> dict[str, float]:
    """The step-0 validation bpb of training, per language, where it scored the same documents as evaluate
    (training scores the first ``eval_docs`` of each language, evaluate ``max_docs`` or all of them)."""
    before = next((e["eval"] for e in train_stats.get("evals", []) if e.get("step") == 0), {})
    eval_docs = int((_read(out / "train" / "config.json") or {}).get("eval_docs", 0))
    val = ((_read(out / "shard" / "data_val.meta.json") or {}).get("per_language") or {})
    same = {r["lang"]: r["docs"] == min(val.get(r["lang"], {}).get("documents", -1), eval_docs) for r in evals}
    same["all"] = all(v for k, v in same.items() if k != "all")
    return {k: v for k, v in before.items() if same.get(k)}


def _result(out: Path, stages: dict[str, Stage], seconds: float) -> dict[str, Any]:
    evals = (_read(out / "evaluate" / "eval.json") or {}).get("languages", []) if stages["evaluate"].outputs else []
    train_stats = (_read(out / "train" / "stats.json") or {}) if stages["train"].outputs else {}
    before = _untrained(out, train_stats, evals)
    audit = (_read(out / "audit" / "summary.json") or {}) if stages["audit"].outputs else {}
    bpt: dict[str, dict[str, float]] = {}
    info: dict[str, tuple[str, str]] = {}
    for r in audit.get("languages", []):  # by language tag: parallel corpora key translations by their own codes
        bpt.setdefault(r["lang"], {}).setdefault(r["tokenizer"], r["bytes_per_token"])
        info.setdefault(r["lang"], (r.get("script", ""), r.get("name", "") if r.get("name") != r["lang"] else ""))
    if audit.get("summary"):
        bpt["all"] = {k: v["bytes_per_token"] for k, v in audit["summary"].items()}
    langs = [r["lang"] for r in evals] or sorted(bpt)
    rows = []
    for lang in langs:
        e = next((r for r in evals if r["lang"] == lang), {})
        script, name = info.get(lang, ("", ""))
        rows.append({"lang": lang, "name": "all languages" if lang == "all" else LANGUAGE_NAMES.get(lang, name),
                     "script": script, "val_docs": e.get("docs"), "val_bytes": e.get("bytes"),
                     "bpb_untrained": before.get(lang), "bpb": e.get("bpb"), "bpb_lo": e.get("bpb_lo"),
                     "bpb_hi": e.get("bpb_hi"), "bytes_per_token": bpt.get(lang, {})})
    files = sorted(str(p) for p in out.rglob("*") if p.is_file()
                   and not any(x.startswith(".") or x.endswith(".work") for x in p.relative_to(out).parts))
    return {"out": str(out), "seconds": round(seconds, 1), "languages": rows,
            "stages": {n: {"status": s.status, "seconds": s.seconds, "folder": str(s.folder), "key": s.key,
                           "outputs": s.outputs} for n, s in stages.items()},
            "audit_summary": {k: {m: v.get(m) for m in ("tokens", "bytes_per_token", "gini", "byte_fallback_tokens")}
                              for k, v in audit.get("summary", {}).items()},
            "files": files}


def _f(v: float | None, spec: str = ".3f") -> str:
    return "-" if v is None else format(v, spec)


def format_result(result: dict[str, Any]) -> str:
    """The per-language table, the stage lines and the files written, for the terminal."""
    toks = sorted({t for r in result["languages"] for t in r["bytes_per_token"]}, key=lambda t: (t != "ours", t))
    head = (f"{'lang':<8} {'language':<21} {'script':<6} {'val docs':>8} {'val bytes':>9} {'bpb@0':>6} {'bpb':>6} "
            f"{'95% CI':>13}" + "".join(f" {(t[:9] + ' B/tok'):>15}" for t in toks))
    from rwkv_data.pipelines.train.evaluate import format_ci  # the one "n < 10" rule

    min_docs = min((r["val_docs"] or 0 for r in result["languages"] if r["lang"] != "all"), default=0)
    lines = ["Per-language results (bpb: bits per byte of the trained model on the held-out split; bpb@0: the "
             "untrained model; B/tok: UTF-8 bytes per token, higher is better)", head, "-" * len(head)]
    for r in result["languages"]:
        docs = r["val_docs"] or 0 if r["lang"] != "all" else min_docs
        ci = format_ci(r["bpb_lo"], r["bpb_hi"], docs, ".2f") if r["bpb"] is not None else "-"
        lines.append(f"{r['lang']:<8} {r['name'][:21]:<21} {r['script']:<6} {_f(r['val_docs'], 'd'):>8} "
                     f"{_f(r['val_bytes'], 'd'):>9} {_f(r['bpb_untrained']):>6} {_f(r['bpb']):>6} {ci:>13}"
                     + "".join(f" {_f(r['bytes_per_token'].get(t)):>15}" for t in toks))
    for name, s in result["audit_summary"].items():
        lines.append(f"audit {name}: {s['tokens']:,} tokens on the corpus, {_f(s['bytes_per_token'])} bytes/token, "
                     f"Gini {_f(s['gini'])}, byte-fallback share {_f(s['byte_fallback_tokens'])}")
    lines.append("")
    lines += [f"{n:<9} {s['status']:<30} {s['seconds']:>7.1f} s  {s['folder']}" for n, s in result["stages"].items()]
    lines += ["", f"files written under {result['out']}:"] + [f"  {p}" for p in result["files"]]
    lines.append(f"total {result['seconds']:.1f} s")
    return "\n".join(lines)
