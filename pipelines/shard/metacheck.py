"""``rwkv-data verify``'s checks of ``P.meta.json``: its JSON types (a schema) and every field against the data.

:func:`read_meta` parses strictly (no NaN / Infinity); :func:`schema_problems` lists each field of the wrong type or
out of range; :func:`meta_checks` compares the fields with what the files hold (the ``facts`` check.py measures:
items, tokens, dtype, sizes, hashes, per-language counts from ``P.lang.npy``) and with the sibling split's meta.
The checks and their names are listed in docs/shard-format.md, section 5.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rwkv_data.jsonfile import read_json
from rwkv_data.pipelines.shard.binidx import CODE_OF_DTYPE, dtype_for_max_id, magic_prime, rwkv_train_args
from rwkv_data.pipelines.shard.outputs import FORMAT, TOOL
from rwkv_data.pipelines.shard.validation import val_threshold

Check = Callable[[str, bool, str], bool]
COUNT, U64, INT, NUM, STR, HEX, BOOL, OBJ, LIST = "count", "u64", "int", "num", "str", "hex", "bool", "obj", "list"
COUNTS = ("documents", "tokens", "bytes", "characters")
MAX_PROBLEMS = 5


class Opt:
    """An optional key's spec."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec


_C = dict.fromkeys(COUNTS, COUNT)
SCHEMA: dict[str, Any] = {
    "format": STR, "format_version": COUNT, "tool": STR, "tool_version": STR,
    "tokenizer": {"name": STR, "sha256": STR, "vocab_size": COUNT, "eos_id": COUNT, "vocab": STR},
    "dtype": STR, "dtype_code": COUNT, "split": STR, "prefix": STR, "val_prefix": STR,
    "files": {"bin": STR, "idx": STR, "lang": (STR, None)},
    **_C, "items": COUNT,
    "languages": [STR],
    "per_language": {"*": {**_C, "weight": Opt(NUM)}},
    "rwkv_lm": [{"ctx_len": COUNT, "my_exit_tokens": COUNT, "magic_prime": (COUNT, None), "slots": COUNT,
                 "ok": BOOL, "train_args": STR, "problem": Opt(STR)}],
    "sha256": {"bin": HEX, "idx": HEX, "lang": Opt((HEX, None))},
    "file_sizes": Opt({"bin": COUNT, "idx": COUNT, "lang": (COUNT, None)}),
    "input": {"records": COUNT, **_C, "per_language": {"*": _C}},
    "skipped": {"*": COUNT}, "skipped_examples": {"*": STR},
    "validation": {"fraction": NUM, "min_docs_per_language": COUNT, "rule": STR, "threshold": U64},
    "shuffle": {"seed": INT, "algorithm": STR},
    "mixing": {"method": STR, "temperature": NUM, "budgets": {"*": COUNT}, "weights": {"*": NUM}},
    "inputs": [{"records": COUNT, "documents": COUNT, "skipped": {"*": COUNT}, "...": True}],  # + unit fingerprint
    "config": OBJ,
}
COMMON = ("format", "format_version", "tool", "tool_version", "tokenizer", "dtype", "dtype_code", "languages",
          "val_prefix", "input", "skipped", "validation", "shuffle", "mixing", "inputs", "config")


def read_meta(path: Path) -> tuple[dict[str, Any] | None, str]:
    """The parsed meta (a JSON object), or None and why not."""
    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        meta = read_json(path, parse_constant=no_constant)
    except FileNotFoundError:
        return None, (f"{path}: missing; `rwkv-data shard` writes it last, so the job did not finish (rerun it); "
                      "a binidx not written by rwkv-data: verify --no-meta")
    except OSError as exc:
        return None, f"{path}: unreadable ({exc})"
    except ValueError as exc:
        return None, f"{path}: {exc}"
    if not isinstance(meta, dict):
        return None, f"{path}: a JSON {type(meta).__name__}, not an object"
    return meta, ""


def _kind(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def schema_problems(value: Any, spec: Any, where: str = "") -> list[str]:
    """Each place where ``value`` does not match ``spec`` (see :data:`SCHEMA`)."""
    if isinstance(spec, tuple):
        tries = [schema_problems(value, s, where) if s is not None else ([] if value is None else ["x"])
                 for s in spec]
        return [] if any(not t for t in tries) else [f"{where}: {_kind(value)} {value!r:.40}, expected "
                                                     f"{' or '.join('null' if s is None else str(s) for s in spec)}"]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{where}: {_kind(value)}, expected a list"]
        return [p for i, v in enumerate(value) for p in schema_problems(v, spec[0], f"{where}[{i}]")]
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{where}: {_kind(value)}, expected an object"]
        if "*" in spec:
            return [p for k, v in value.items() for p in schema_problems(v, spec["*"], f"{where}.{k}")]
        out = [f"{where}.{k}: not a field of this format".lstrip(".") for k in value
               if k not in spec and "..." not in spec]
        for k, s in spec.items():
            if k == "...":
                continue
            if k not in value:
                if not isinstance(s, Opt):
                    out.append(f"{where}.{k}: missing".lstrip("."))
                continue
            out += schema_problems(value[k], s.spec if isinstance(s, Opt) else s, f"{where}.{k}".lstrip("."))
        return out
    ok = {
        COUNT: lambda v: type(v) is int and 0 <= v < 2**63,
        U64: lambda v: type(v) is int and 0 <= v < 2**64,
        INT: lambda v: type(v) is int and -2**63 <= v < 2**64,
        NUM: lambda v: type(v) in (int, float) and math.isfinite(v) and 0 <= v < 2**63,
        STR: lambda v: type(v) is str,
        HEX: lambda v: type(v) is str and len(v) == 64 and all(c in "0123456789abcdef" for c in v),
        BOOL: lambda v: type(v) is bool,
        OBJ: lambda v: type(v) is dict,
        LIST: lambda v: type(v) is list,
    }[spec](value)
    what = {COUNT: "an integer in [0, 2**63)", U64: "an integer in [0, 2**64)", INT: "an integer",
            NUM: "a finite number >= 0", STR: "a string", HEX: "64 lowercase hex digits", BOOL: "true or false",
            OBJ: "an object", LIST: "a list"}[spec]
    return [] if ok else [f"{where}: {_kind(value)} {value!r:.40}, expected {what}"]


def meta_checks(meta: dict[str, Any], prefix: Path, facts: dict[str, Any], sibling: dict[str, Any] | None,
                check: Check) -> None:
    """Every field of a schema-valid ``meta`` against ``facts`` (measured from the files) and the sibling meta."""
    name = prefix.name
    base_ok = (meta["format"] == FORMAT and meta["format_version"] == 1 and meta["tool"] == TOOL)
    check("meta_format", base_ok, f"format/format_version/tool are {meta['format']!r}/{meta['format_version']}/"
          f"{meta['tool']!r}, expected {FORMAT!r}/1/{TOOL!r}")
    split = meta["split"]
    want_val = name if split == "val" else f"{name}_val"
    check("meta_prefix", meta["prefix"] == name and split in ("train", "val") and meta["val_prefix"] == want_val,
          f"meta.json describes {meta['prefix']!r} (split {split!r}, val_prefix {meta['val_prefix']!r}), not "
          f"{name!r}: it belongs to another shard")
    lang_name = meta["files"]["lang"]
    has_lang = [lang_name is not None, meta["sha256"].get("lang", lang_name) is not None,
                (meta.get("file_sizes") or {}).get("lang", lang_name) is not None,
                meta["config"].get("lang_array", lang_name is not None) is True]
    check("meta_files", meta["files"]["bin"] == f"{name}.bin" and meta["files"]["idx"] == f"{name}.idx"
          and lang_name in (None, f"{name}.lang.npy") and len(set(has_lang)) == 1,
          f"files names {meta['files']}, not this prefix's files, or the language array is named, hashed, sized "
          f"and configured inconsistently ({has_lang})")
    dtype, code = facts.get("dtype"), facts.get("dtype_code")
    if dtype is not None:
        try:
            vocab_dtype = dtype_for_max_id(max(meta["tokenizer"]["vocab_size"] - 1, 0)).name
        except ValueError:
            vocab_dtype = "none"
        check("dtype", meta["dtype"] == dtype and meta["dtype_code"] == code == CODE_OF_DTYPE.get(
            _np_dtype(dtype), -1) and vocab_dtype == dtype,
            f"meta.json says {meta['dtype']} (code {meta['dtype_code']}), the index holds {dtype} (code {code}); "
            f"a vocab of {meta['tokenizer']['vocab_size']} needs {vocab_dtype}")
    check("tokenizer", meta["tokenizer"]["eos_id"] == 0 and meta["tokenizer"]["vocab_size"] > 0,
          f"tokenizer {meta['tokenizer']}: eos_id must be 0, vocab_size > 0")
    sizes = meta.get("file_sizes")
    if sizes is not None:
        got = {"bin": facts["bin_bytes"], "idx": facts["idx_bytes"], "lang": facts.get("lang_bytes")}
        bad = {k: (sizes[k], got[k]) for k in ("bin", "idx", "lang") if sizes[k] != got[k]}
        check("file_sizes", not bad, f"file_sizes differ from the files (meta, actual): {bad}")
    if "items" in facts:
        n, tokens = facts["items"], facts["tokens"]
        check("meta_counts", meta["items"] == n and meta["documents"] == n and meta["tokens"] == tokens,
              f"meta.json says {meta['items']} items / {meta['documents']} documents / {meta['tokens']} tokens, "
              f"the files hold {n} items (one per document) / {tokens} tokens")
        _check_rwkv_lm(meta, tokens, check)
    _check_languages(meta, facts, check)
    _check_input(meta, check)
    if sibling is not None:
        _check_sibling(meta, sibling, check)


def _np_dtype(name: str) -> Any:
    import numpy as np

    return np.dtype(name)


def _check_rwkv_lm(meta: dict[str, Any], tokens: int, check: Check) -> None:
    bad = []
    ctx = [m["ctx_len"] for m in meta["rwkv_lm"]]
    for m in meta["rwkv_lm"]:
        if m["ctx_len"] <= 0:
            bad.append(f"ctx_len {m['ctx_len']}")
            continue
        want = magic_prime(tokens, m["ctx_len"])
        want["train_args"] = rwkv_train_args(want)
        if {k: m.get(k) for k in want} != want or set(m) - set(want):
            diff = {k: (m.get(k), want.get(k)) for k in set(want) | set(m) if m.get(k) != want.get(k)}
            bad.append(f"ctx_len {m['ctx_len']}: (meta, recomputed) {diff}")
    cfg_ctx = meta["config"].get("ctx_lens")
    if cfg_ctx is not None and list(cfg_ctx) != ctx:
        bad.append(f"ctx_lens {ctx} differ from config.ctx_lens {cfg_ctx}")
    check("rwkv_lm", not bad, "magic_prime / my_exit_tokens disagree with the data: " + "; ".join(bad[:3]))


def _check_languages(meta: dict[str, Any], facts: dict[str, Any], check: Check) -> None:
    langs, per = meta["languages"], meta["per_language"]
    problems = []
    if langs != sorted(set(langs)) or not all(langs):
        problems.append(f"languages {langs} are not sorted, unique, non-empty codes")
    for what, keys in (("per_language", per), ("input.per_language", meta["input"]["per_language"])):
        if list(keys) != langs:
            problems.append(f"{what} has {sorted(keys)}, languages {langs}")
    weights = meta["mixing"]["weights"]
    if meta["split"] == "train":
        if sorted(weights) != langs:
            problems.append(f"mixing.weights has {sorted(weights)}, languages {langs}")
        elif any(per[lg].get("weight") != weights[lg] for lg in per):
            problems.append("per_language weights differ from mixing.weights")
    check("languages", not problems, "; ".join(problems))
    sums = {k: sum(c[k] for c in per.values()) for k in COUNTS}
    check("per_language", all(sums[k] == meta[k] for k in COUNTS),
          f"per_language sums {sums} differ from the totals {({k: meta[k] for k in COUNTS})}")
    counted = facts.get("lang_counts")  # (documents, tokens) per language index, from P.lang.npy and the sizes
    if counted is not None and not problems:
        docs, toks = counted
        wrong = [lg for i, lg in enumerate(langs)
                 if (per[lg]["documents"], per[lg]["tokens"]) != (int(docs[i]), int(toks[i]))]
        check("lang_counts", not wrong and len(docs) <= len(langs),
              "per-language documents / tokens in meta.json differ from P.lang.npy and the sizes for "
              + ", ".join(f"{lg} (meta {per[lg]['documents']}/{per[lg]['tokens']}, data "
                          f"{int(docs[langs.index(lg)])}/{int(toks[langs.index(lg)])})" for lg in wrong[:3]))


def _check_input(meta: dict[str, Any], check: Check) -> None:
    inp, problems = meta["input"], []
    sums = {k: sum(c[k] for c in inp["per_language"].values()) for k in COUNTS}
    if any(sums[k] != inp[k] for k in COUNTS):
        problems.append(f"input.per_language sums {sums} differ from input totals")
    if sum(u["documents"] for u in meta["inputs"]) != inp["documents"] or \
            sum(u["records"] for u in meta["inputs"]) != inp["records"]:
        problems.append("inputs[] documents / records do not add up to input.documents / input.records")
    v, cfg = meta["validation"], meta["config"]
    if not 0 <= v["fraction"] < 1 or v["threshold"] != val_threshold(v["fraction"]):
        problems.append(f"validation threshold {v['threshold']} is not fraction {v['fraction']} * 2**64")
    if cfg.get("val_fraction", v["fraction"]) != v["fraction"] or \
            cfg.get("val_min_docs", v["min_docs_per_language"]) != v["min_docs_per_language"] or \
            cfg.get("seed", meta["shuffle"]["seed"]) != meta["shuffle"]["seed"]:
        problems.append("validation / shuffle differ from config")
    if meta["mixing"]["method"] not in ("none", "budgets", "temperature"):
        problems.append(f"mixing.method {meta['mixing']['method']!r}")
    if meta["split"] == "val" or meta["mixing"]["method"] == "none":
        over = [lg for lg, c in meta["per_language"].items()
                if lg in inp["per_language"] and any(c[k] > inp["per_language"][lg][k] for k in COUNTS)]
        if over:
            problems.append(f"more in this split than was read, for {over[:3]}")
    check("input", not problems, "; ".join(problems))


def _check_sibling(meta: dict[str, Any], sib: dict[str, Any], check: Check) -> None:
    differ = [k for k in COMMON if meta.get(k) != sib.get(k)]
    if sib.get("split") == meta["split"]:
        differ.insert(0, "split")
    problems = [f"{', '.join(differ[:5])} differ between this meta.json and its sibling's"] if differ else []
    if not differ and meta["mixing"]["method"] == "none" and {meta["split"], sib["split"]} == {"train", "val"} \
            and list(sib["per_language"]) == meta["languages"] == list(meta["per_language"]):
        # no weighting: train + val = what was read
        pair = {meta["split"]: meta, sib["split"]: sib}
        lost = [lg for lg in meta["languages"] if any(
            pair["train"]["per_language"][lg][k] + pair["val"]["per_language"][lg][k]
            != meta["input"]["per_language"][lg][k] for k in COUNTS)]
        if lost:
            problems.append(f"train + val per-language counts differ from input for {lost[:3]}")
    check("sibling", not problems, "; ".join(problems))


def sibling_meta(prefix: Path, meta: dict[str, Any]) -> tuple[Path | None, dict[str, Any] | None]:
    """The other split's prefix and its meta (None when unreadable): P_val for P, P for P_val."""
    if meta["split"] == "train":
        other = prefix.with_name(meta["val_prefix"]) if os.path.basename(meta["val_prefix"]) == meta[
            "val_prefix"] else None
    elif prefix.name.endswith("_val"):
        other = prefix.with_name(prefix.name[:-4])
    else:
        other = None
    if other is None:
        return None, None
    sib, _ = read_meta(Path(f"{other}.meta.json"))
    if sib is not None and schema_problems(sib, SCHEMA):
        sib = None
    return other, sib
