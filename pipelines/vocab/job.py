"""The vocab jobs: ``rwkv-data vocab train`` (:func:`run`) and ``rwkv-data vocab extend`` (:func:`run_extend`).

Each reads the corpus once as its corpus spec says (:mod:`rwkv_data.pipelines.corpus.spec`; records need a
language), runs the library code in ``rwkv_data.tokenizer.vocab_train`` / ``vocab_extend`` with a progress bar on
stderr, and writes the vocab (World text form, or JSON for ``.json``) plus ``<output>.meta.json``: the config,
a corpus fingerprint (sha256 over every document's language and text, and the input files' sizes) and the
per-language statistics. ``extend`` also writes the id map (``<output>.idmap.json`` unless set).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rwkv_data.atomic import atomic_write_json
from rwkv_data.config import MAX_LANGUAGES, VocabConfig, to_dict
from rwkv_data.errors import ConfigError
from rwkv_data.pipelines.corpus.documents import ReadStats, too_many_languages
from rwkv_data.pipelines.corpus.spec import documents
from rwkv_data.tokenizer import Vocab, write_vocab
from rwkv_data.tokenizer.resolve import is_world, load_trie

log = logging.getLogger(__name__)


Exclude = Callable[[bytes, str], bool]  # (UTF-8 text, language) -> leave the document out


class _Corpus:
    """Streams ``(text, lang)`` pairs from the inputs, fingerprinting them on the way; documents for which
    ``exclude`` holds are left out (and counted per language)."""

    def __init__(self, cfg: VocabConfig, exclude: Exclude | None = None) -> None:
        if not cfg.inputs:
            raise ConfigError("no inputs: pass corpus files or folders (jsonl[.zst], parquet, ...) with a lang field")
        self.cfg = cfg
        self.exclude = exclude
        self.sha = hashlib.sha256()
        self.docs: Counter[str] = Counter()
        self.chars: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()
        self.read = ReadStats()  # records read and skipped (on_error="skip"), by reason

    def __iter__(self) -> Iterator[tuple[str, str]]:
        bar = tqdm(desc="reading", unit=" docs", leave=False, dynamic_ncols=True)
        for doc in documents(self.cfg, self.read):
            if self.exclude is not None and self.exclude(doc.data or doc.text.encode("utf-8"), doc.lang):
                self.excluded[doc.lang] += 1
                continue
            if doc.lang not in self.docs and len(self.docs) >= MAX_LANGUAGES:
                raise too_many_languages(f"{doc.location}: language {doc.lang!r}", len(self.docs) + 1, MAX_LANGUAGES)
            self.sha.update(f"{doc.lang}\0{len(doc.text)}\0".encode())
            self.sha.update(doc.text.encode("utf-8", "surrogatepass"))
            self.docs[doc.lang] += 1
            self.chars[doc.lang] += len(doc.text)
            bar.update()
            yield doc.text, doc.lang
        bar.close()

    def fingerprint(self) -> dict[str, Any]:
        files = []
        for p in self.cfg.inputs:
            path = Path(p)
            if path.is_file():
                files.append({"path": str(path), "bytes": path.stat().st_size})
        return {"sha256": self.sha.hexdigest(), "documents": sum(self.docs.values()),
                "characters": sum(self.chars.values()), "files": files,
                "per_language": {k: {"documents": self.docs[k], "characters": self.chars[k]}
                                 for k in sorted(self.docs)},
                **self.read.skips(),
                **({"excluded": {"documents": sum(self.excluded.values()), "per_language": dict(sorted(
                    self.excluded.items()))}} if self.exclude is not None else {})}


class _Bar:
    """A step progress bar fed by the library's ``progress(description)`` callback."""

    def __init__(self, total: int, desc: str) -> None:
        self.bar = tqdm(total=total, desc=desc, unit=" step", dynamic_ncols=True)
        self.t0 = time.perf_counter()

    def __call__(self, what: str) -> None:
        self.bar.set_postfix_str(what[:60])
        self.bar.update()
        log.debug("%.1fs %s", time.perf_counter() - self.t0, what)

    def close(self) -> None:
        self.bar.close()


def _steps(cfg: VocabConfig) -> int:
    return 2 + len(cfg.candidates) + cfg.rounds + cfg.refill_rounds + 1 + int(cfg.replace_unused)


def _threads(cfg: VocabConfig) -> None:
    if cfg.threads:  # HF tokenizers reads its pool size from the environment when it first trains
        os.environ.setdefault("RAYON_NUM_THREADS", str(cfg.threads))


def _refuse_overwriting_inputs(cfg: VocabConfig, *outputs: Path) -> None:
    """ConfigError when a file this job writes is one of its input files (it would be replaced by the vocab)."""
    from rwkv_data.pipelines.corpus.inputs import expand_inputs
    from rwkv_data.pipelines.corpus.spec import read_options

    written = [o for o in outputs if o.exists()]
    if not written:
        return
    for unit in expand_inputs(list(cfg.inputs), read_options(cfg)):
        for o in written:
            with contextlib.suppress(OSError):
                if os.path.samefile(unit.path, o):
                    raise ConfigError(f"-o {o} is the input file {unit.path}: writing the vocab there would destroy "
                                      "the corpus; choose another -o")


def run(cfg: VocabConfig, exclude: Exclude | None = None) -> dict[str, Any]:
    """Train a vocabulary; writes ``cfg.output`` and ``<output>.meta.json``; returns a summary.

    ``exclude(utf8_text, lang)`` leaves documents out of training (``rwkv-data run``: the shard job's validation
    documents); the meta's ``corpus`` fingerprints only the documents trained on and counts the excluded ones.
    """
    from rwkv_data.tokenizer.vocab_train import check_config, train_vocab

    check_config(cfg)
    _threads(cfg)
    out = Path(cfg.output)
    _refuse_overwriting_inputs(cfg, out, out.with_name(out.name + ".meta.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    corpus = _Corpus(cfg, exclude)
    t0 = time.perf_counter()
    bar = _Bar(_steps(cfg), "vocab train")
    try:
        result = train_vocab(corpus, cfg, progress=bar)
    finally:
        bar.close()
    vocab = Vocab.from_tokens(result.tokens, name=out.stem)
    write_vocab(vocab, out)
    meta = {"format": "rwkv-vocab-meta", "version": 1, "job": "vocab train", "vocab_sha256": vocab.sha256,
            "tokens": len(vocab), "max_id": vocab.max_id, "seconds": round(time.perf_counter() - t0, 1),
            "config": to_dict(cfg), "corpus": corpus.fingerprint(), **result.stats}
    atomic_write_json(out.with_name(out.name + ".meta.json"), meta, indent=1)
    langs = result.stats["languages"]
    return {"output": str(out), "meta": str(out.with_name(out.name + ".meta.json")), "tokens": len(vocab),
            "sha256": vocab.sha256, "languages": len(langs), "seconds": meta["seconds"],
            "worst_parity_proxy": max((v.get("parity_proxy", 0), k) for k, v in langs.items()),
            "documents": meta["corpus"]["documents"], **_skips(meta["corpus"]),
            **({"excluded": meta["corpus"]["excluded"]} if exclude is not None else {})}


def run_extend(cfg: VocabConfig) -> dict[str, Any]:
    """Extend ``cfg.base`` (default World); writes the vocab, the id map and the meta JSON; returns a summary."""
    from rwkv_data.tokenizer.vocab_extend import extend_vocab
    from rwkv_data.tokenizer.vocab_train import check_config

    check_config(cfg)
    _threads(cfg)
    base = load_trie(cfg.base).vocab
    out = Path(cfg.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    idmap_path = Path(cfg.idmap) if cfg.idmap else out.with_name(out.name + ".idmap.json")
    _refuse_overwriting_inputs(cfg, out, idmap_path, out.with_name(out.name + ".meta.json"))
    corpus = _Corpus(cfg)
    t0 = time.perf_counter()
    bar = _Bar(_steps(cfg), "vocab extend")
    try:
        result = extend_vocab(base, corpus, cfg, progress=bar)
    finally:
        bar.close()
    vocab = Vocab.from_tokens(result.tokens, name=out.stem)
    write_vocab(vocab, out)
    atomic_write_json(idmap_path, result.idmap, indent=1)
    meta = {"format": "rwkv-vocab-meta", "version": 1, "job": "vocab extend",
            "base": "World" if is_world(cfg.base) else cfg.base,
            "base_sha256": base.sha256, "vocab_sha256": vocab.sha256, "idmap": str(idmap_path),
            "seconds": round(time.perf_counter() - t0, 1), "config": to_dict(cfg), "corpus": corpus.fingerprint(),
            **result.stats}
    atomic_write_json(out.with_name(out.name + ".meta.json"), meta, indent=1)
    return {"output": str(out), "idmap": str(idmap_path), "tokens": len(vocab), "max_id": vocab.max_id,
            "added": result.stats["added"], "replaced": result.stats["replaced"], "sha256": vocab.sha256,
            "seconds": meta["seconds"], **_skips(meta["corpus"])}


def _skips(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {k: fingerprint[k] for k in ("skipped", "skipped_examples")}
