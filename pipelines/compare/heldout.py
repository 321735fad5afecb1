"""The held-out documents of a comparison, chosen by content so that every variant scores the same texts.

The shard job splits each language's documents by a content hash (docs/shard-format.md); this module applies
the same rule (:func:`rwkv_data.pipelines.shard.job.validation_split_of`) once, before any tokenizer is
involved, and writes the chosen documents to ``heldout.jsonl`` in a fixed order (language, then content id).
Every variant's shards leave exactly these documents out of training (the same split options), and every model
is scored on these texts, so per-document bits are paired across variants.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from rwkv_data.config import ShardConfig
from rwkv_data.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class HeldoutConfig:
    """The held-out stage: the corpus, the shard job's split options, a per-language cap, the output file."""

    shard: ShardConfig = dataclasses.field(default_factory=ShardConfig)
    max_docs: int = 0  # per language, the first by content id (0 = all held-out documents)
    max_chars: int = 0  # keep the first N characters of each document (0 = whole); the same text for every variant
    output: str = "heldout.jsonl"


def doc_id(text: str) -> str:
    """A document's content id: the first 16 hex digits of the sha256 of its UTF-8 text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _read_options(cfg: ShardConfig) -> dict[str, Any]:
    return {"text_field": cfg.text_field, "lang_field": cfg.lang_field, "lang": cfg.lang or None,
            "on_error": cfg.on_error, "split_paragraphs": cfg.split_paragraphs, "hf_split": cfg.hf_split}


def select(cfg: HeldoutConfig) -> dict[str, Any]:
    """Write ``cfg.output`` (one ``{"id", "lang", "text"}`` per line); returns per-language counts."""
    from rwkv_data.pipelines.corpus.readers import iter_documents
    from rwkv_data.pipelines.shard.job import validation_split_of

    split = validation_split_of(cfg.shard)
    docs: dict[str, dict[str, str]] = {}
    total = 0
    for d in iter_documents(list(cfg.shard.inputs), **_read_options(cfg.shard)):
        total += 1
        if split.is_validation(d.data if d.data is not None else d.text, d.lang):
            docs.setdefault(d.lang, {})[doc_id(d.text)] = d.text  # duplicates of one text count once
    if not docs:
        raise ConfigError(f"no held-out documents in {list(cfg.shard.inputs)}; raise [shard] val_min_docs")
    rows = []
    for lang in sorted(docs):
        ids = sorted(docs[lang])
        ids = ids[:cfg.max_docs] if cfg.max_docs > 0 else ids
        rows += [{"id": i, "lang": lang, "text": docs[lang][i][:cfg.max_chars] if cfg.max_chars else docs[lang][i]}
                 for i in ids]
    out = Path(cfg.output)
    tmp = out.with_name(f".{out.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    os.replace(tmp, out)
    per_lang = {lang: sum(1 for r in rows if r["lang"] == lang) for lang in sorted(docs)}
    return {"documents": len(rows), "corpus_documents": total, "per_language": per_lang,
            "bytes": sum(len(r["text"].encode("utf-8")) for r in rows), "output": str(out)}


def load(path: str | Path) -> list[dict[str, str]]:
    """The held-out documents written by :func:`select`, in their order."""
    with Path(path).open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_language_subset(inputs: tuple[str, ...], shard: ShardConfig, lang: str, output: Path) -> int:
    """The training documents (held-out ones left out) of one language as a jsonl corpus; returns their number.

    Fine-tuning variants shard and extend their vocabulary on this file, so the target language's held-out
    documents are never trained on.
    """
    from rwkv_data.pipelines.corpus.readers import iter_documents
    from rwkv_data.pipelines.shard.job import validation_split_of

    split = validation_split_of(dataclasses.replace(shard, inputs=inputs))
    n = 0
    tmp = output.with_name(f".{output.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for d in iter_documents(list(inputs), **_read_options(shard)):
            if d.lang == lang and not split.is_validation(d.data if d.data is not None else d.text, d.lang):
                f.write(json.dumps({"lang": d.lang, "text": d.text}, ensure_ascii=False) + "\n")
                n += 1
    os.replace(tmp, output)
    if n == 0:
        raise ConfigError(f"no training documents of language {lang!r} in {list(inputs)}; check target_lang")
    return n
