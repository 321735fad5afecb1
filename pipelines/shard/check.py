"""``rwkv-data verify P`` and ``rwkv-data inspect P``: integrity checks and a readable summary of a shard.

verify names every failed check (the list is in docs/shard-format.md, section 5: the binidx structure here, the
meta.json fields in :mod:`.metacheck`); checks that depend on a broken structure are listed under
``not_checked``. A training prefix brings its validation split along (checks ``val.*``). The token stream is
read in chunks, so memory stays flat for any shard size.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from rwkv_data.errors import ShardFormatError
from rwkv_data.pipelines.shard.binidx import HEADER_BYTES, BinidxReader, Header, read_header
from rwkv_data.pipelines.shard.metacheck import (
    MAX_PROBLEMS,
    SCHEMA,
    meta_checks,
    read_meta,
    schema_problems,
    sibling_meta,
)

CHUNK_TOKENS = 1 << 24
CHUNK_ITEMS = 1 << 20


def load_meta(prefix: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``P.meta.json`` when present; :class:`ShardFormatError` when it is not a well-formed meta of this tool."""
    path = Path(f"{prefix}.meta.json")
    if not path.is_file():
        return None
    meta, why = read_meta(path)
    problems = [why] if meta is None else schema_problems(meta, SCHEMA)
    if problems:
        raise ShardFormatError(f"{path}: {problems[0]}; `rwkv-data verify {prefix}` lists every problem")
    return meta


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def verify(prefix: str | os.PathLike[str], vocab_size: int | None = None, require_meta: bool = True,
           _sibling_data: bool = True, quick: bool = False) -> dict[str, Any]:
    """Check a shard against the MMIDIDX v1 rules and every field of its meta.json; ``ok`` is False when any
    check fails (docs/shard-format.md section 5 lists the checks).

    Args:
        prefix: the shard prefix P (``P.bin``, ``P.idx``, ``P.meta.json``, optional ``P.lang.npy``). For a
            training prefix the validation split ``P_val`` named by its meta is verified too (checks ``val.*``).
        vocab_size: ids must be below it (default: the tokenizer's vocab_size in meta.json).
        require_meta: False for a binidx not written by rwkv-data: only the structure is checked.
        quick: what the model jobs check before they start: the header, sizes, pointers, doc_idx, EOS (and with
            ``require_meta`` the meta and the language array) against each other, without a pass over every token
            or byte (no hashes, no ``eos_inside``/``max_id``: the jobs scan the ids themselves) and without the
            sibling split's data; without ``require_meta`` a meta.json is not read.
    """
    failures: list[dict[str, str]] = []
    passed: list[str] = []
    skipped: list[str] = []
    prefix = Path(prefix)
    idx_path, bin_path = Path(f"{prefix}.idx"), Path(f"{prefix}.bin")

    def check(name: str, ok: bool, message: str) -> bool:
        (passed.append(name) if ok else failures.append({"check": name, "message": message}))
        return ok

    report: dict[str, Any] = {"prefix": str(prefix), "failures": failures, "passed": passed, "not_checked": skipped}
    meta_path = Path(f"{prefix}.meta.json")
    meta: dict[str, Any] | None = None
    if require_meta or (meta_path.exists() and not quick):
        meta, why = read_meta(meta_path)
        problems = [why] if meta is None else schema_problems(meta, SCHEMA)
        if check("meta", not problems, f"{meta_path}: " + "; ".join(p.removeprefix(f"{meta_path}: ")
                                                                      for p in problems[:MAX_PROBLEMS])
                 + (f" (and {len(problems) - MAX_PROBLEMS} more)" if len(problems) > MAX_PROBLEMS else "")):
            assert meta is not None
        else:
            meta = None
    if vocab_size is None and meta is not None:
        vocab_size = meta["tokenizer"]["vocab_size"]
    missing = [str(p) for p in (idx_path, bin_path) if not p.is_file()]
    if missing:
        check("files", False, f"missing {missing}")
        skipped += ["structure", "meta fields"]
        report["ok"] = False
        return report
    facts: dict[str, Any] = {"bin_bytes": bin_path.stat().st_size, "idx_bytes": idx_path.stat().st_size}
    header: Header | None
    try:
        header = read_header(idx_path)
        check("header", True, "")
        facts.update(dtype=header.dtype.name, dtype_code=header.dtype_code)
    except ShardFormatError as exc:
        check("header", False, str(exc))
        header = None
    structural = ["idx_length", "bin_length", "pointers", "doc_idx", "eos", "eos_inside", "max_id", "lang_array"]
    short = header is not None and facts["idx_bytes"] < header.idx_bytes()
    if header is not None and check("idx_length", facts["idx_bytes"] == header.idx_bytes(),
                                    f"{idx_path} is {facts['idx_bytes']} bytes, the header implies "
                                    f"{header.idx_bytes()} ({'truncated' if short else 'trailing bytes'})"):
        r = BinidxReader(prefix)
        facts.update(items=len(r), tokens=r.num_tokens)
        _structure(r, bin_path, vocab_size, check, quick)
        if meta is not None:
            _lang_array(r, meta, facts, check, quick)
    else:
        skipped += structural[0 if header is None else 1:]
    if meta is not None:
        if not quick:
            check("sha256_bin", _sha256(bin_path) == meta["sha256"]["bin"],
                  f"{bin_path} sha256 differs from meta.json")
            check("sha256_idx", _sha256(idx_path) == meta["sha256"]["idx"],
                  f"{idx_path} sha256 differs from meta.json")
        other, sib = sibling_meta(prefix, meta)
        try:
            meta_checks(meta, prefix, facts, sib, check)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # fields that contradict others
            check("meta_fields", False, f"{meta_path}: inconsistent fields ({type(exc).__name__}: {exc})")
        if other is not None and sib is None:
            check("sibling", False, f"{other}.meta.json: missing or not a valid meta of this tool (the train and "
                  "val splits are written together)")
        if meta["split"] == "train" and other is not None and _sibling_data and not quick:
            val = verify(other, vocab_size, True, _sibling_data=False)
            failures += [{"check": f"val.{f['check']}", "message": f["message"]} for f in val["failures"]]
            passed += [f"val.{p}" for p in val["passed"]]
            skipped += [f"val.{p}" for p in val["not_checked"]]
    elif require_meta:
        skipped.append("meta fields (no valid meta.json)")
    else:
        skipped += ["sha256_bin", "sha256_idx", "meta fields (--no-meta)"]
    report["ok"] = not failures
    return report


def _lang_array(r: BinidxReader, meta: dict[str, Any], facts: dict[str, Any], check: Any, quick: bool) -> None:
    """``P.lang.npy``: present when meta names it, one uint16 language index per item, its hash, and the
    per-language documents / tokens it implies (facts ``lang_counts``)."""
    name = meta["files"]["lang"]
    lang_file = Path(r.prefix.parent, name) if name else None
    if lang_file is None or os.path.basename(name) != name:
        return
    if not lang_file.is_file():
        check("lang_array", False, f"{lang_file}: missing, but meta.json names it")
        return
    facts["lang_bytes"] = lang_file.stat().st_size
    want = meta["sha256"].get("lang")
    if want is not None and not quick:
        check("sha256_lang", _sha256(lang_file) == want, f"{lang_file} sha256 differs from meta.json")
    try:
        arr = np.load(lang_file, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        check("lang_array", False, f"{lang_file}: not a readable .npy ({exc})")
        return
    n_langs = len(meta["languages"])
    ok = arr.dtype == np.dtype("<u2") and arr.shape == (len(r),)
    docs = np.zeros(n_langs, np.int64)
    toks = np.zeros(n_langs, np.float64)
    top = -1
    if ok:
        for lo in range(0, len(r), CHUNK_ITEMS):
            a = np.asarray(arr[lo:lo + CHUNK_ITEMS], dtype=np.int64)
            top = max(top, int(a.max()) if a.size else -1)
            if top >= n_langs:
                break
            docs += np.bincount(a, minlength=n_langs)
            toks += np.bincount(a, weights=np.asarray(r.sizes[lo:lo + CHUNK_ITEMS], dtype=np.float64),
                                minlength=n_langs)
    if check("lang_array", ok and top < n_langs, f"{lang_file}: {arr.dtype} {arr.shape}, max {top}; expected uint16 "
             f"({len(r)},) with values < {n_langs} (one index into meta languages per item)"):
        facts["lang_counts"] = (docs, toks.round().astype(np.int64))


def _structure(r: BinidxReader, bin_path: Path, vocab_size: int | None, check: Any, quick: bool) -> None:
    item = r.dtype.itemsize
    n_tok, n = r.num_tokens, len(r)
    total, bad_ptr, bad_eos, carry, end_zeros = 0, -1, 0, 0, 0
    for lo in range(0, n, CHUNK_ITEMS):  # item chunks: flat memory for any item count
        sizes = np.asarray(r.sizes[lo:lo + CHUNK_ITEMS], dtype=np.int64)
        want = carry + (np.cumsum(sizes) - sizes) * item
        carry += int(sizes.sum()) * item
        total += int(sizes.sum())
        wrong = np.flatnonzero(np.asarray(r.pointers[lo:lo + CHUNK_ITEMS]) != want)
        if wrong.size and bad_ptr < 0:
            bad_ptr = lo + int(wrong[0])
        ends = want // item + sizes - 1
        valid = (sizes > 0) & (ends < n_tok)
        last_nonzero = int(np.count_nonzero(np.asarray(r.tokens[ends[valid]]) != 0))
        bad_eos += int((~valid).sum()) + last_nonzero
        end_zeros += int(valid.sum()) - last_nonzero
    nbytes = bin_path.stat().st_size
    check("bin_length", nbytes == total * item, f"{bin_path} is {nbytes} bytes, sizes say {total * item}")
    check("pointers", bad_ptr < 0, f"pointers differ from the prefix sums of sizes from item {bad_ptr} on")
    d = np.asarray(r.doc_idx[:1]), np.asarray(r.doc_idx[-1:])
    steps_ok = all(bool(np.all(np.diff(np.asarray(r.doc_idx[lo:lo + CHUNK_ITEMS + 1])) >= 0))
                   for lo in range(0, max(len(r.doc_idx) - 1, 1), CHUNK_ITEMS))
    check("doc_idx", d[0].tolist() == [0] and d[1].tolist() == [n] and steps_ok,
          f"doc_idx must rise from 0 to {n}: starts {d[0].tolist()}, ends {d[1].tolist()}")
    check("eos", bad_eos == 0, f"{bad_eos} item(s) do not end in the EOS token 0")
    if quick:
        return
    zeros, top = 0, -1
    for start in range(0, n_tok, CHUNK_TOKENS):
        chunk = np.asarray(r.tokens[start:start + CHUNK_TOKENS])
        zeros += int(np.count_nonzero(chunk == 0))
        top = max(top, int(chunk.max()))
    check("eos_inside", zeros == end_zeros, f"{zeros - end_zeros} token(s) 0 inside documents (0 is only EOS)")
    if vocab_size is not None:
        check("max_id", top < vocab_size, f"max token id {top} >= vocab size {vocab_size}")


def inspect(prefix: str | os.PathLike[str], tokenizer: Any = None, sample: int = 0,
            max_chars: int = 400) -> dict[str, Any]:
    """Counts, the per-language table (from meta.json, else from the language array) and one decoded item."""
    r = BinidxReader(prefix)
    meta = load_meta(prefix)
    out: dict[str, Any] = {"prefix": str(prefix), "items": len(r), "tokens": r.num_tokens, "dtype": r.dtype.name,
                           "dtype_code": r.header.dtype_code, "idx_header_bytes": HEADER_BYTES}
    if meta is not None:
        out.update(languages=meta["per_language"], skipped=meta["skipped"], rwkv_lm=meta["rwkv_lm"],
                   tokenizer=meta["tokenizer"], validation=meta["validation"], mixing=meta["mixing"])
    if sample < 0 or (sample >= len(r) and sample):
        raise ShardFormatError(f"--sample {sample}: {prefix} has {len(r):,} items; give one of 0.."
                               f"{max(len(r) - 1, 0):,}")
    if len(r):
        i = sample
        ids = np.asarray(r[i])
        s: dict[str, Any] = {"item": i, "tokens": int(ids.size), "ids_head": ids[:16].tolist()}
        lang_file = Path(f"{prefix}.lang.npy")
        if meta is not None and lang_file.is_file():
            try:
                s["lang"] = meta["languages"][int(np.load(lang_file, mmap_mode="r")[i])]
            except (OSError, ValueError, IndexError, TypeError):
                s["lang"] = f"? ({lang_file} is damaged: rwkv-data verify {prefix})"
        if tokenizer is not None:
            text = tokenizer.decode(ids[:-1] if ids.size and ids[-1] == 0 else ids, errors="replace")
            s["text"] = text[:max_chars] + ("..." if len(text) > max_chars else "")
        out["sample"] = s
    return out


def format_inspect(info: dict[str, Any]) -> str:
    """The human-readable report of :func:`inspect`."""
    lines = [f"{info['prefix']}: {info['items']} documents, {info['tokens']} tokens, {info['dtype']} "
             f"(code {info['dtype_code']})"]
    if "languages" in info:
        lines.append(f"{'lang':<10} {'docs':>9} {'tokens':>12} {'bytes':>12} {'chars':>12} {'bytes/tok':>9} "
                     f"{'weight':>7}")
        for lg, c in info["languages"].items():
            bpt = c["bytes"] / c["tokens"] if c["tokens"] else 0.0
            lines.append(f"{lg:<10} {c['documents']:>9} {c['tokens']:>12} {c['bytes']:>12} {c['characters']:>12} "
                         f"{bpt:>9.2f} {c.get('weight', 1.0):>7.3g}")
        if info["skipped"]:
            lines.append("skipped: " + ", ".join(f"{k}={v}" for k, v in info["skipped"].items()))
        for m in info["rwkv_lm"]:
            lines.append(f"ctx_len {m['ctx_len']}: {m['train_args']}" + ("" if m["ok"] else f"  (!) {m['problem']}"))
    if "sample" in info:
        s = info["sample"]
        lines.append(f"item {s['item']} ({s.get('lang', '?')}, {s['tokens']} tokens): ids {s['ids_head']}...")
        if "text" in s:
            lines.append(s["text"])
    return "\n".join(lines)


def format_verify(report: dict[str, Any]) -> str:
    """The human-readable report of :func:`verify`."""
    lines = [f"{report['prefix']}: {'OK' if report['ok'] else 'FAILED'} ({len(report['passed'])} checks passed)"]
    lines += [f"  FAIL {f['check']}: {f['message']}" for f in report["failures"]]
    if report["not_checked"]:
        lines.append(f"  not checked: {', '.join(report['not_checked'])}")
    return "\n".join(lines)
