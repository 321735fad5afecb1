"""``rwkv-data evaluate``: bits per byte and bits per character per language, with bootstrap intervals.

Convention (the same for every document, model and tokenizer): a document's item is its tokens followed by the
end-of-document token 0 (as the shard job writes it). The model reads ``[0] + item[:-1]`` from a zero state and
is scored on every token of ``item``, so the NLL includes predicting the closing 0 and excludes the leading 0,
which is context only (RWKV demos and uncheatable_eval prefix ``[0]`` too). Bits per byte is
``sum(NLL in bits) / sum(UTF-8 bytes of the text)`` over a language's documents (a ratio of sums, so long
documents weigh by their length); bits per character divides by Unicode code points instead. Documents longer
than ``ctx_len`` run in chunks with the RNN state carried over, which gives the same numbers as one pass.

Confidence intervals: percentile bootstrap over documents (resample documents with replacement, recompute the
ratio of sums), ``bootstrap`` resamples from a seeded generator; the ``all`` row resamples within each language.
A language with fewer than ``MIN_DOCS`` (10) documents gets no interval (``null`` in JSON, ``n < 10`` in tables).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rwkv_data.atomic import atomic_write
from rwkv_data.config import CorpusSpec, EvalConfig, to_dict
from rwkv_data.errors import CheckpointError, ConfigError
from rwkv_data.pipelines.corpus.documents import ReadStats, skip_lines
from rwkv_data.pipelines.shard.meta import read_shard_meta
from rwkv_data.pipelines.train import modelio, vocab_check
from rwkv_data.pipelines.train.vocab_check import load_tokenizer

log = logging.getLogger(__name__)

LN2 = math.log(2.0)
MAX_LOGITS = 1 << 25  # logits per forward in evaluation (128 MiB in fp32)


@dataclass(frozen=True)
class EvalDoc:
    """One document to score: its language, the tokens of its item (ending in 0), its UTF-8 bytes and chars."""

    lang: str
    tokens: np.ndarray
    n_bytes: int
    n_chars: int


# ---- statistics -------------------------------------------------------------------------------------------


MIN_DOCS = 10  # fewer documents in a language (or in any stratum of a pooled row): no bootstrap interval


def bootstrap_ratio(num: np.ndarray, den: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator,
                    strata: np.ndarray | None = None, min_docs: int = MIN_DOCS) -> tuple[float | None, float | None]:
    """Percentile interval of ``sum(num)/sum(den)`` under resampling of the (num, den) pairs with replacement.

    With ``strata`` (one label per pair) each stratum is resampled on its own, keeping its size (the pooled row
    of several languages). ``(None, None)`` when a stratum has fewer than ``min_docs`` pairs: a percentile
    bootstrap over 2 documents gave an interval ten times narrower than a t-interval, and over 1 document
    ``[x, x]``. Paired differences use it too: ``num`` = bits(a) - bits(b) per document, ``den`` = its bytes.

    >>> lo, hi = bootstrap_ratio(np.arange(1.0, 13.0), np.ones(12), 200, 0.9, np.random.default_rng(0))
    >>> 4.0 <= lo <= 6.5 <= hi <= 9.0
    True
    >>> bootstrap_ratio(np.array([1.0, 2.0]), np.ones(2), 200, 0.9, np.random.default_rng(0))
    (None, None)
    """
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    labels = np.zeros(len(num), np.int64) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1]
    groups = [np.flatnonzero(labels == g) for g in range(int(labels.max()) + 1)] if len(num) else []
    if n_boot <= 0 or not groups or min(len(g) for g in groups) < min_docs:
        return (None, None)
    s_num, s_den = np.zeros(n_boot), np.zeros(n_boot)
    for g in groups:
        n = len(g)
        step = max(1, 2_000_000 // n)  # resamples per block: bounds the index array to ~16 MB
        for start in range(0, n_boot, step):
            idx = g[rng.integers(0, n, size=(min(step, n_boot - start), n))]
            s_num[start:start + len(idx)] += num[idx].sum(1)
            s_den[start:start + len(idx)] += den[idx].sum(1)
    alpha = (1.0 - confidence) / 2
    lo, hi = np.quantile(s_num / s_den, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize(langs: Sequence[str], nll_bits: np.ndarray, n_tokens: np.ndarray, n_bytes: np.ndarray,
              n_chars: np.ndarray, n_boot: int, confidence: float, seed: int) -> list[dict[str, Any]]:
    """One row per language (sorted), plus an ``all`` row: docs, tokens, bytes, chars, bpb, bpc and intervals.

    The ``all`` row's interval resamples within each language (stratified), so it needs ``MIN_DOCS`` documents
    in every language; intervals that cannot be honest are ``None``.
    """
    langs_arr = np.asarray(langs)
    rows = []
    groups = sorted(set(langs_arr.tolist()))
    for lang in [*groups, "all"] if len(groups) > 1 else groups:
        m = np.ones(len(langs_arr), bool) if lang == "all" else langs_arr == lang
        nll, nb, nc, nt = nll_bits[m], n_bytes[m], n_chars[m], n_tokens[m]
        strata = langs_arr[m] if lang == "all" else None
        # One generator per language, seeded from the name: a language's interval does not depend on the others.
        rng = np.random.default_rng([seed, *lang.encode()])
        bpb_lo, bpb_hi = bootstrap_ratio(nll, nb, n_boot, confidence, rng, strata)
        bpc_lo, bpc_hi = bootstrap_ratio(nll, nc, n_boot, confidence, rng, strata)
        rows.append({
            "lang": lang, "docs": int(m.sum()), "tokens": int(nt.sum()), "bytes": int(nb.sum()),
            "chars": int(nc.sum()), "nll_bits": float(nll.sum()),
            "bpb": float(nll.sum() / nb.sum()), "bpb_lo": bpb_lo, "bpb_hi": bpb_hi,
            "bpc": float(nll.sum() / nc.sum()), "bpc_lo": bpc_lo, "bpc_hi": bpc_hi,
            "bits_per_token": float(nll.sum() / nt.sum()),
        })
    return rows


def format_ci(lo: float | None, hi: float | None, docs: int, spec: str = ".4f") -> str:
    """``[lo, hi]``, or ``n < 10`` where too few documents gave no interval (``-`` when none was asked for)."""
    if lo is not None and hi is not None:
        return f"[{lo:{spec}}, {hi:{spec}}]"
    return f"n < {MIN_DOCS}" if docs < MIN_DOCS else "-"


def format_table(rows: Sequence[dict[str, Any]], confidence: float) -> str:
    """A fixed-width text table of :func:`summarize` rows."""
    pct = f"{confidence:.0%}"
    head = (f"{'lang':<10} {'docs':>6} {'tokens':>9} {'bytes':>10} {'bpb':>7} {pct + ' CI':>17} {'bpc':>7} "
            f"{'bits/tok':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        ci = format_ci(r["bpb_lo"], r["bpb_hi"], r["docs"] if r["lang"] != "all" else min_docs_of(rows))
        lines.append(f"{r['lang']:<10} {r['docs']:>6} {r['tokens']:>9} {r['bytes']:>10} {r['bpb']:>7.4f} {ci:>17} "
                     f"{r['bpc']:>7.4f} {r['bits_per_token']:>8.4f}")
    return "\n".join(lines)


def min_docs_of(rows: Sequence[dict[str, Any]]) -> int:
    """The fewest documents of any language row (the pooled ``all`` row needs ``MIN_DOCS`` in each)."""
    return min((r["docs"] for r in rows if r["lang"] != "all"), default=0)


# ---- scoring ----------------------------------------------------------------------------------------------


@torch.no_grad()
def score_tokens(model: torch.nn.Module, items: Sequence[np.ndarray], ctx_len: int, batch_size: int,
                 device: torch.device | str = "cpu", autocast_dtype: torch.dtype | None = None,
                 progress: Any = None) -> np.ndarray:
    """NLL in bits of each item (tokens ending in 0) after a ``[0]`` prefix, as a float64 array.

    Items are sorted by length and batched; shorter items of a batch are padded on the right (the model is
    causal, so padding never reaches a scored position) and masked out of the sum.
    """
    out = np.zeros(len(items), dtype=np.float64)
    order = sorted(range(len(items)), key=lambda i: len(items[i]))
    for b0 in range(0, len(order), batch_size):
        ids = order[b0:b0 + batch_size]
        T = max(len(items[i]) for i in ids)
        x = torch.zeros(len(ids), T, dtype=torch.long)  # [B, T] inputs: 0 then item[:-1]
        y = torch.zeros(len(ids), T, dtype=torch.long)  # [B, T] targets: item
        mask = torch.zeros(len(ids), T, dtype=torch.bool)
        for r, i in enumerate(ids):
            t = torch.from_numpy(np.asarray(items[i], dtype=np.int64))
            x[r, 1:len(t)] = t[:-1]
            y[r, :len(t)] = t
            mask[r, :len(t)] = True
        x, y, mask = x.to(device), y.to(device), mask.to(device)
        total = torch.zeros(len(ids), dtype=torch.float64, device=device)
        state = None
        # Chunks never exceed ctx_len, and are shorter when B*T*V logits would pass MAX_LOGITS (World vocab:
        # 8 x 1024 x 65536 fp32 logits are 2 GiB and made evaluation slower per token than training).
        V = modelio.vocab_rows(model)
        step = max(16, min(ctx_len, MAX_LOGITS // (len(ids) * V)))
        for c0 in range(0, T, step):
            xc, yc, mc = x[:, c0:c0 + step], y[:, c0:c0 + step], mask[:, c0:c0 + step]
            with torch.autocast(device_type=torch.device(device).type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                logits, state = modelio.forward_with_state(model, xc, state)  # [B, Tc, V]
            nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), yc.reshape(-1),
                                                    reduction="none").view(yc.shape)  # [B*Tc] -> [B, Tc] nats
            total += (nll.double() * mc).sum(1)
            if progress is not None:
                progress.update(int(mc.sum()))
        out[ids] = (total / LN2).cpu().numpy()
    return out


# ---- documents -------------------------------------------------------------------------------------------


def doc_from_item(lang: str, item: np.ndarray, tok: Any) -> EvalDoc:
    """An :class:`EvalDoc` from a binidx item; an item without a closing 0 gets one."""
    ids = np.asarray(item, dtype=np.int64)
    if len(ids) == 0 or ids[-1] != 0:
        ids = np.append(ids, 0)
    data = tok.decode_bytes(ids[:-1].tolist())
    return EvalDoc(lang, ids, len(data), len(data.decode("utf-8", errors="replace")))


def doc_from_text(lang: str, text: str, tok: Any) -> EvalDoc:
    """An :class:`EvalDoc` from text: its tokens plus the closing 0."""
    ids = np.append(np.asarray(tok.encode(text), dtype=np.int64), 0)
    return EvalDoc(lang, ids, len(text.encode("utf-8")), len(text))


def _cap(docs: list[EvalDoc], max_docs: int) -> list[EvalDoc]:
    if max_docs <= 0:
        return docs
    seen: dict[str, int] = {}
    out = []
    for d in docs:  # the first max_docs of each language, in file order
        if seen.get(d.lang, 0) < max_docs:
            seen[d.lang] = seen.get(d.lang, 0) + 1
            out.append(d)
    return out


def doc_languages(prefix: str | Path, n_docs: int) -> list[str]:
    """Language of each document of a binidx prefix: ``P.lang.npy`` (uint16 per document, written by the
    shard job) indexes ``P.meta.json``'s ``languages``; a prefix without the array is one language, ``und``."""
    meta = read_shard_meta(prefix) or {}
    arr = Path(f"{prefix}.lang.npy")
    if not arr.is_file():
        log.warning("%s: no per-document language array; all documents count as 'und'", arr)
        return ["und"] * n_docs
    codes = np.load(arr, mmap_mode="r")
    if len(codes) != n_docs:
        raise ConfigError(f"{arr}: {len(codes)} entries for {n_docs} documents; the shard is inconsistent")
    names = meta.get("languages")
    if not isinstance(names, list):
        raise ConfigError(f"{prefix}.meta.json: no 'languages' list to name the codes of {arr}")
    table = [str(x) for x in names]
    if codes.size and int(codes.max()) >= len(table):
        raise ConfigError(f"{arr}: code {int(codes.max())} but the meta lists {len(table)} languages")
    return [table[c] for c in codes.tolist()]


def load_binidx_docs(prefix: str | Path, tok: Any, max_docs: int = 0) -> list[EvalDoc]:
    """The documents of a binidx prefix, each with its language from the shard job's per-document array."""
    from rwkv_data.pipelines.shard.binidx import BinidxReader  # noqa: PLC0415

    reader = BinidxReader(prefix)
    langs = doc_languages(prefix, len(reader))
    return _cap([doc_from_item(langs[i], reader[i], tok) for i in range(len(reader))], max_docs)


def load_text_docs(spec: CorpusSpec, tok: Any, max_docs: int = 0,
                   stats: ReadStats | None = None) -> list[EvalDoc]:
    """Raw text: a ``.txt`` file of ``spec.inputs`` is one document whose language is the file stem; jsonl and
    parquet records are documents read as the corpus spec says (text and language fields, error policy, record
    limit); skipped records are counted in ``stats``. At most ``max_docs`` per language are kept (0 = all)."""
    from rwkv_data.pipelines.corpus.spec import documents  # noqa: PLC0415

    st = stats if stats is not None else ReadStats()
    docs: list[EvalDoc] = []
    seen: dict[str, int] = {}
    for p in map(Path, spec.inputs):
        if not p.exists():
            raise ConfigError(f"{p}: no such file")
        one = dataclasses.replace(spec, inputs=(str(p),), **({"lang": p.stem} if p.suffix == ".txt" else {}))
        for d in documents(one, st):
            if max_docs > 0 and seen.get(d.lang, 0) >= max_docs:
                continue  # the first max_docs of each language, in file order
            seen[d.lang] = seen.get(d.lang, 0) + 1
            docs.append(doc_from_text(d.lang, d.text, tok))
    return docs


# ---- the job ----------------------------------------------------------------------------------------------


def evaluate_docs(model: torch.nn.Module, docs: Sequence[EvalDoc], ctx_len: int, batch_size: int, n_boot: int,
                  confidence: float = 0.95, seed: int = 0, device: torch.device | str = "cpu",
                  autocast_dtype: torch.dtype | None = None, progress: Any = None) -> list[dict[str, Any]]:
    """Score ``docs`` with ``model`` and summarise per language (see :func:`summarize`)."""
    if not docs:
        raise ConfigError("no documents to evaluate")
    was_training = model.training
    model.eval()
    nll = score_tokens(model, [d.tokens for d in docs], ctx_len, batch_size, device, autocast_dtype, progress)
    model.train(was_training)
    return summarize([d.lang for d in docs], nll, np.array([len(d.tokens) for d in docs]),
                     np.array([d.n_bytes for d in docs]), np.array([d.n_chars for d in docs]), n_boot, confidence,
                     seed)


def run(cfg: EvalConfig, progress: bool = True) -> dict[str, Any]:
    """Evaluate ``cfg.checkpoint`` on ``cfg.data`` (P_val) or ``cfg.inputs``; write eval.json and eval.csv."""
    from tqdm import tqdm  # noqa: PLC0415

    if not cfg.checkpoint:
        raise ConfigError("evaluate needs --checkpoint PATH (an official-format .pth)")
    if bool(cfg.data) == bool(cfg.inputs):
        raise ConfigError("evaluate needs exactly one of --data PREFIX (P_val shards) or text files")
    out_dir = modelio.output_dir(cfg.out_dir)
    device = modelio.resolve_device(cfg.device)
    amp = modelio.autocast_dtype(cfg.precision)
    tok = vocab_check.shard_tokenizer(cfg.data, cfg.vocab) if cfg.data else load_tokenizer(cfg.vocab or "world")
    vocab_check.check_checkpoint_vocab(cfg.checkpoint, tok, cfg.vocab or ("world" if cfg.inputs else
                                                                         f"{cfg.data}'s vocab"))
    model = modelio.load(cfg.checkpoint, device)
    rows_in_model = modelio.vocab_rows(model)
    if tok.vocab_size > rows_in_model:
        raise CheckpointError(f"vocab {vocab_check.describe(tok, cfg.vocab)} has ids up to {tok.vocab_size - 1} but "
                              f"{cfg.checkpoint} has {rows_in_model} embedding rows; pass the vocab the checkpoint "
                              "was trained with")
    if cfg.data:
        from rwkv_data.pipelines.shard.binidx import BinidxReader  # noqa: PLC0415

        vocab_check.check_ids_fit(cfg.data, BinidxReader(cfg.data).tokens, rows_in_model, cfg.checkpoint)
    read = ReadStats()
    if cfg.data:
        docs = load_binidx_docs(cfg.data, tok, cfg.max_docs)
    else:
        docs = load_text_docs(cfg.corpus_spec(), tok, cfg.max_docs, read)
    t0 = time.perf_counter()
    n_tok = sum(len(d.tokens) for d in docs)
    with tqdm(total=n_tok, unit="tok", file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:
        rows = evaluate_docs(model, docs, cfg.ctx_len, cfg.batch_size, cfg.bootstrap, cfg.confidence, cfg.seed,
                             device, amp, bar)
    seconds = time.perf_counter() - t0
    bad = [r["lang"] for r in rows if not (math.isfinite(r["bpb"]) and math.isfinite(r["bpc"]))]
    if bad:
        raise CheckpointError(f"{cfg.checkpoint}: bits per byte is not finite for {', '.join(bad)} (NaN or inf "
                              "logits): the checkpoint is damaged or diverged; nothing was written")
    result = {"config": to_dict(cfg), "convention": CONVENTION, "languages": rows, "tokens": n_tok,
              "seconds": seconds, "tokens_per_s": n_tok / max(seconds, 1e-9),
              **({} if cfg.data else read.skips())}
    atomic_write(out_dir / "eval.json", json.dumps(result, indent=2, ensure_ascii=False))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
    atomic_write(out_dir / "eval.csv", buf.getvalue())
    result["table"] = format_table(rows, cfg.confidence) + "".join(
        f"\n{line}" for line in (skip_lines(result) if result.get("skipped") else []))
    return result


CONVENTION = ("bits per byte = sum over documents of the NLL in bits of every token of the item (the document's "
              "tokens and its closing end-of-document token 0), read after a [0] prefix from a zero state, divided by "
              "the sum of the documents' UTF-8 bytes; bits per char divides by Unicode code points")
