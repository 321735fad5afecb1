"""Audit corpora: parallel text (aligned units per language) or monolingual text (documents per language).

- Parallel, the UDHR layout (``udhr.jsonl.zst``): one JSON record per translation with a
  list of aligned ``articles`` (also accepted: ``sentences`` or ``units``) and ``code``/``lang``/``script``/
  ``name``. The key of a language is its ``code`` (unique per translation), else its ``lang``.
- Monolingual, the mono layout: ``<lang>.jsonl.zst`` files of ``{"text", "lang"}`` documents (or any inputs),
  read as the corpus spec says (:mod:`rwkv_data.pipelines.corpus.spec`: fields, language, error policy).
- FLORES+ through Hugging Face datasets (:func:`load_flores`): for users who are online and accepted the
  dataset's terms; nothing in the tests calls it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rwkv_data.config import MAX_LANGUAGES, CorpusSpec
from rwkv_data.errors import DependencyMissing, InputFormatError
from rwkv_data.pipelines.audit.metrics import dominant_script

UNIT_FIELDS = ("articles", "sentences", "units")


@dataclass
class LangText:
    """The texts of one language: ``units`` are articles, sentences or documents."""

    key: str
    lang: str
    script: str
    name: str
    units: list[str] = field(default_factory=list)


@dataclass
class AuditCorpus:
    """A corpus to audit; in a parallel corpus unit i of every language is the same content."""

    kind: str  # "parallel" | "mono"
    source: str
    unit: str  # what a unit is ("article", "sentence", "document")
    langs: list[LangText]
    read: dict[str, Any] | None = None  # the readers' report (records, documents, skipped by reason), mono only

    def find(self, name: str) -> LangText | None:
        """The language whose key, else whose lang tag, is ``name``."""
        for lt in self.langs:
            if lt.key == name:
                return lt
        return next((lt for lt in self.langs if lt.lang == name), None)


def _wanted(lt: LangText, langs: Sequence[str]) -> bool:
    return not langs or lt.key in langs or lt.lang in langs


def _jsonl_lines(path: Path) -> Iterable[tuple[int, str]]:
    """(1-based number, line) of a jsonl[.zst|.gz] file, in bounded memory (the corpus readers' line splitter:
    a line over MAX_RECORD_BYTES, invalid UTF-8 or a damaged stream is an InputFormatError naming the line)."""
    from rwkv_data.config import MAX_RECORD_BYTES
    from rwkv_data.pipelines.corpus.streams import LineState, Oversize, StreamError, numbered_lines, open_chunks

    st = LineState()
    try:
        for n, raw in numbered_lines(open_chunks(str(path)), MAX_RECORD_BYTES, st):
            if type(raw) is Oversize:
                raise InputFormatError(f"{path}:{n}: a line longer than {MAX_RECORD_BYTES:,} bytes; is this "
                                       "an audit corpus?")
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputFormatError(f"{path}:{n}: invalid UTF-8 at byte {exc.start} of the line") from None
    except StreamError as exc:
        raise InputFormatError(f"{exc}; lines 1-{st.lines} were read") from None


def is_parallel_file(path: str | Path) -> bool:
    """True when the first record of a jsonl(.zst) file has a list of aligned units."""
    for _, line in _jsonl_lines(Path(path)):
        if line.strip():
            try:
                rec = json.loads(line)
            except ValueError:  # not JSON: the mono reader reports it with its line
                return False
            return isinstance(rec, dict) and any(isinstance(rec.get(k), list) for k in UNIT_FIELDS)
    return False


def load_parallel(path: str | Path, langs: Sequence[str] = ()) -> AuditCorpus:
    """Read a parallel corpus in the UDHR layout; every record must have the same number of units."""
    path = Path(path)
    out: list[LangText] = []
    n_units = None
    for lineno, line in _jsonl_lines(path):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFormatError(f"{path}:{lineno}: not JSON: {exc}") from exc
        units = next((rec[k] for k in UNIT_FIELDS if isinstance(rec.get(k), list)), None)
        if units is None or "lang" not in rec and "code" not in rec:
            raise InputFormatError(f"{path}:{lineno}: a parallel record needs 'lang' (or 'code') and a list "
                                   f"field {UNIT_FIELDS}")
        if n_units is None:
            n_units = len(units)
        elif len(units) != n_units:
            raise InputFormatError(f"{path}:{lineno}: {len(units)} units where earlier records have {n_units}; "
                                   "parallel units must be aligned")
        key = str(rec.get("code") or rec["lang"])
        lang = str(rec.get("lang") or key)
        script = rec.get("script") or dominant_script("".join(units)[:2000])
        lt = LangText(key, lang, script, str(rec.get("name", lang)), [str(u) for u in units])
        if _wanted(lt, langs):
            if len(out) >= MAX_LANGUAGES:
                raise InputFormatError(f"{path}:{lineno}: more than {MAX_LANGUAGES:,} languages, the most an audit "
                                       "accepts; pick languages with --lang")
            out.append(lt)
    unit = "article" if "udhr" in path.name else "unit"
    return AuditCorpus("parallel", str(path), unit, out)


def load_mono(paths: str | Path | Sequence[str | Path], langs: Sequence[str] = (),
              max_bytes_per_lang: int = 0, spec: CorpusSpec | None = None) -> AuditCorpus:
    """Read monolingual documents (grouped by their language), at most ``max_bytes_per_lang`` per language;
    ``spec`` says how records are read (fields, language, error policy), its inputs aside."""
    from rwkv_data.pipelines.corpus.documents import ReadStats, too_many_languages
    from rwkv_data.pipelines.corpus.spec import documents

    items = [paths] if isinstance(paths, str | Path) else list(paths)
    inputs: list[str] = []
    for p in map(Path, items):
        if p.is_dir():
            inputs += [str(f) for f in sorted(p.iterdir()) if f.name.endswith((".jsonl", ".jsonl.zst", ".jsonl.gz"))
                       and (not langs or f.name.split(".")[0] in langs)]
        else:
            inputs.append(str(p))
    if not inputs:
        raise InputFormatError(f"{paths}: no .jsonl(.zst) files found (or none for languages {list(langs)})")
    by_lang: dict[str, LangText] = {}
    size: dict[str, int] = {}
    stats = ReadStats()
    for doc in documents(dataclasses.replace(spec or CorpusSpec(), inputs=tuple(inputs)), stats):
        if langs and doc.lang not in langs:
            continue
        n = len(doc.text.encode("utf-8"))
        if max_bytes_per_lang and size.get(doc.lang, 0) + n > max_bytes_per_lang and doc.lang in by_lang:
            continue
        if doc.lang not in by_lang and len(by_lang) >= MAX_LANGUAGES:
            raise too_many_languages(f"{doc.location}: language {doc.lang!r}", len(by_lang) + 1, MAX_LANGUAGES)
        lt = by_lang.setdefault(doc.lang, LangText(doc.lang, doc.lang, "", doc.lang))
        lt.units.append(doc.text)
        size[doc.lang] = size.get(doc.lang, 0) + n
    for lt in by_lang.values():
        lt.script = dominant_script("".join(lt.units)[:20000])
    return AuditCorpus("mono", ", ".join(map(str, items)), "document", sorted(by_lang.values(), key=lambda x: x.key),
                       stats.report())


def load_flores(split: str = "devtest", langs: Sequence[str] = (),
                dataset: str = "openlanguagedata/flores_plus") -> AuditCorpus:
    """FLORES+ from the Hugging Face hub (gated: accept the terms and log in first). Needs the network.

    Keys are ``<iso_639_3>_<iso_15924>`` (``eng_Latn``); sentences are aligned by their ``id``. OLDI asks users
    not to re-host the text, so it stays in the datasets cache and is never written by the audit.
    """
    try:
        import datasets
    except ImportError as exc:
        raise DependencyMissing("FLORES+ needs the datasets package: pip install datasets") from exc
    configs = list(langs) or [None]
    rows: dict[str, dict[int, str]] = {}
    for cfg in configs:
        ds = datasets.load_dataset(dataset, cfg, split=split) if cfg else datasets.load_dataset(dataset, split=split)
        for r in ds:
            rows.setdefault(f"{r['iso_639_3']}_{r['iso_15924']}", {})[int(r["id"])] = r["text"]
    out = []
    for key, sents in sorted(rows.items()):
        lang, script = key.split("_", 1)
        out.append(LangText(key, lang, script, key, [sents[i] for i in sorted(sents)]))
    if len({len(lt.units) for lt in out}) > 1:
        raise InputFormatError(f"{dataset} {split}: languages have different sentence counts; pass --langs")
    return AuditCorpus("parallel", f"hf:{dataset}:{split}", "sentence", out)


def load_corpus(corpus: str, layout: str = "auto", langs: Sequence[str] = (), max_bytes_per_lang: int = 0,
                spec: CorpusSpec | None = None) -> AuditCorpus:
    """Dispatch on ``layout`` (``auto`` looks at the path and the first record)."""
    if corpus.startswith("flores"):
        _, _, split = corpus.partition(":")
        return load_flores(split or "devtest", langs)
    if layout not in ("auto", "parallel", "mono"):
        raise ValueError(f"layout must be auto, parallel or mono, not {layout!r}")
    path = Path(corpus)
    if not path.exists():
        raise InputFormatError(f"corpus {corpus} not found (a UDHR-layout .jsonl.zst, a mono folder, "
                               "or flores:devtest)")
    if layout == "parallel" or (layout == "auto" and path.is_file() and is_parallel_file(path)):
        return load_parallel(path, langs)
    return load_mono(path, langs, max_bytes_per_lang, spec)
