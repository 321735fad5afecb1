"""``rwkv-data verify`` against tampering: every meta field changed alone, every file deleted, truncated or with a
byte flipped, meta files of the wrong JSON type, with NaN, negative, huge or string numbers, extra or missing
languages, a wrong dtype, files swapped with another shard's, a meta from another shard. Each must fail with
exit 1 and a named check, never a traceback; the untouched shard passes.

Run: pytest tests/pipelines/test_shard_verify_tamper.py
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from shard_testlib import write_corpus, write_vocab

from rwkv_data.cli import main
from rwkv_data.config import ShardConfig
from rwkv_data.pipelines.shard.check import verify
from rwkv_data.pipelines.shard.job import run

FILES = ("P.bin", "P.idx", "P.lang.npy", "P.meta.json", "P_val.bin", "P_val.idx", "P_val.lang.npy", "P_val.meta.json")


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tamper")
    inputs, _ = write_corpus(root / "in", n=80)
    vocab = write_vocab(root / "vocab.txt")
    out = {}
    for name, seed in (("P", 0), ("Q", 1), ("other/P", 2)):
        cfg = ShardConfig(inputs=tuple(map(str, inputs)), output=str(root / name), vocab=str(vocab),
                          val_fraction=0.1, val_min_docs=3, ctx_lens=(8, 16), seed=seed, workers=1, progress=False)
        run(cfg)
        out[name] = root / name
    return out


def _copy(src: Path, dst: Path) -> Path:
    for f in FILES:
        shutil.copy(src.parent / f.replace("P", src.name, 1), dst / f)
    return dst / "P"


def _leaves(v: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    if isinstance(v, dict):
        for k, x in v.items():
            yield from _leaves(x, (*path, k))
    elif isinstance(v, list) and v:  # every item of a list of values, the first of a list of objects (same keys)
        for i, x in enumerate(v[:1] if isinstance(v[0], dict) else v):
            yield from _leaves(x, (*path, i))
    else:
        yield path, v


def _set(meta: Any, path: tuple, value: Any) -> None:
    for k in path[:-1]:
        meta = meta[k]
    meta[path[-1]] = value




def _flip(path: Path, at: float) -> None:
    data = bytearray(path.read_bytes())
    data[min(int(len(data) * at), len(data) - 1)] ^= 0x01
    path.write_bytes(bytes(data))


FILE_CASES = [(f"{f}:{how}", f, how) for f in FILES for how in ("deleted", "truncated", "flip-middle", "flip-last",
                                                                 "empty")]


@pytest.mark.parametrize(("case", "name", "how"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_file_tampering_is_caught(shards, tmp_path: Path, case: str, name: str, how: str) -> None:
    p = _copy(shards["P"], tmp_path)
    f = tmp_path / name
    if how == "deleted":
        f.unlink()
    elif how == "truncated":
        f.write_bytes(f.read_bytes()[:-3])
    elif how == "empty":
        f.write_bytes(b"")
    else:
        _flip(f, 0.5 if how == "flip-middle" else 1.0)
    for prefix in ({p, tmp_path / "P_val"} if name.startswith("P_val") else {p}):
        report = verify(prefix)
        assert not report["ok"], (case, prefix)


def _mutations(value: Any) -> list[tuple[str, Any]]:
    """Another value of the same type, and one of another type (NaN, negative and huge numbers: below)."""
    if isinstance(value, bool):
        return [("flip", not value), ("string", str(value).lower())]
    if isinstance(value, int):
        return [("plus1", value + 1), ("string", str(value))]
    if isinstance(value, float):
        return [("changed", value + 0.25), ("string", str(value))]
    if isinstance(value, str):
        return [("changed", value + "x"), ("number", 7)]
    if value is None:
        return [("number", 1)]
    return [("changed", [1] if value == [] else {"x": 1}), ("null", None)]


def test_every_meta_field_changed_alone_is_caught(shards, tmp_path: Path) -> None:
    """Each leaf of P.meta.json (caught by verify P) and of P_val.meta.json (caught by verify P_val)."""
    missed = []
    for meta_name in ("P.meta.json", "P_val.meta.json"):
        original = json.loads((shards["P"].parent / meta_name).read_text())
        p = _copy(shards["P"], tmp_path)
        for path, value in _leaves(original):
            for how, new in _mutations(value):
                meta = json.loads(json.dumps(original))
                _set(meta, path, new)
                (tmp_path / meta_name).write_text(json.dumps(meta))
                for prefix in (tmp_path / "P_val",) if meta_name.startswith("P_val") else (p,):
                    if verify(prefix)["ok"]:
                        missed.append(f"{meta_name}:{'.'.join(map(str, path))}={how} via {prefix.name}")
        (tmp_path / meta_name).write_text(json.dumps(original))
    assert not missed, missed


BAD_JSON = {"list": "[]", "empty-object": "{}", "non-json": "not json {", "truncated": None, "nan": None,
            "infinity": None, "null": "null", "string": '"P"', "number": "42"}


@pytest.mark.parametrize("kind", sorted(BAD_JSON))
@pytest.mark.parametrize("meta_name", ["P.meta.json", "P_val.meta.json"])
def test_malformed_meta_fails_without_traceback(shards, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                kind: str, meta_name: str) -> None:
    p = _copy(shards["P"], tmp_path)
    f = tmp_path / meta_name
    text = f.read_text()
    body = {"truncated": text[: len(text) // 2], "nan": text.replace('"tokens": ', '"tokens": NaN, "x": ', 1),
            "infinity": text.replace('"items": ', '"items": Infinity, "x": ', 1)}.get(kind, BAD_JSON[kind])
    f.write_text(body)
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(p)])
    out = capsys.readouterr()
    assert exc.value.code == 1 and "Traceback" not in out.err
    assert "FAIL " in out.out and ("meta" in out.out or "sibling" in out.out)


def _edit(p: Path, name: str, change: Callable[[dict], None]) -> None:
    f = p.parent / name
    meta = json.loads(f.read_text())
    change(meta)
    f.write_text(json.dumps(meta))


def _add_lang(m: dict) -> None:
    m["languages"] = sorted([*m["languages"], "xx"])


def _drop_lang(m: dict) -> None:
    lg = m["languages"][0]
    m["languages"].remove(lg)
    m["per_language"].pop(lg)


def _extra_lang_everywhere(m: dict) -> None:
    zero = {"documents": 0, "tokens": 0, "bytes": 0, "characters": 0}
    m["languages"] = sorted([*m["languages"], "xx"])
    m["per_language"] = {lg: m["per_language"].get(lg, {**zero, "weight": 1.0}) for lg in m["languages"]}
    m["input"]["per_language"] = {lg: m["input"]["per_language"].get(lg, zero) for lg in m["languages"]}
    m["mixing"]["weights"]["xx"] = 1.0


def _move_doc(m: dict) -> None:  # one document from one language to another: the totals still add up
    a, b = m["languages"][:2]
    m["per_language"][a]["documents"] += 1
    m["per_language"][b]["documents"] -= 1


def _numbers(how: str) -> Callable[[dict], None]:
    value = {"negative": -5, "huge": 10**30, "float": 12.5, "string": "12", "bool": True, "null": None}[how]

    def change(m: dict) -> None:
        m["tokens"] = value
        m["per_language"][m["languages"][0]]["documents"] = value
    return change


def _int32(m: dict) -> None:
    m["dtype"], m["dtype_code"] = "int32", 4


def _no_magic(m: dict) -> None:
    m["rwkv_lm"] = m["rwkv_lm"][:1]


SEMANTIC = {"extra-language": _add_lang, "missing-language": _drop_lang, "extra-language-consistent":
            _extra_lang_everywhere, "document-moved-between-languages": _move_doc, "dtype-int32": _int32,
            "a-ctx-len-dropped": _no_magic,
            "documents-1": lambda m: m.update(documents=1),
            "magic-prime-changed": lambda m: m["rwkv_lm"][0].update(magic_prime=(m["rwkv_lm"][0]["magic_prime"] or 5)
                                                                    - 3),
            "missing-key": lambda m: m.pop("per_language"),
            "unknown-key": lambda m: m.update(extra=1),
            "unknown-key-in-a-language": lambda m: m["per_language"][m["languages"][0]].update(extra=1),
            "lang-array-unnamed": lambda m: m["files"].update(lang=None),
            **{f"number-{h}": _numbers(h) for h in ("negative", "huge", "float", "string", "bool", "null")},
            "another-file-name": lambda m: m["files"].update(bin="Q.bin")}


@pytest.mark.parametrize("case", sorted(SEMANTIC))
@pytest.mark.parametrize("meta_name", ["P.meta.json", "P_val.meta.json"])
def test_meta_that_disagrees_with_the_data(shards, tmp_path: Path, case: str, meta_name: str) -> None:
    p = _copy(shards["P"], tmp_path)
    _edit(p, meta_name, SEMANTIC[case])
    assert not verify(p)["ok"]  # a training prefix brings its validation split along
    if meta_name.startswith("P_val"):
        assert not verify(tmp_path / "P_val")["ok"]


@pytest.mark.parametrize("swap", ["bin", "idx", "lang.npy", "meta.json", "bin+idx", "all-but-meta"])
@pytest.mark.parametrize("other", ["Q", "other/P"])
def test_files_from_another_shard(shards, tmp_path: Path, swap: str, other: str) -> None:
    p = _copy(shards["P"], tmp_path)
    src = shards[other]
    exts = {"bin+idx": ["bin", "idx"], "all-but-meta": ["bin", "idx", "lang.npy"]}.get(swap, [swap])
    for ext in exts:
        shutil.copy(f"{src}.{ext}", f"{p}.{ext}")
    report = verify(p)
    assert not report["ok"], report


def test_untouched_shards_pass_and_no_meta_mode(shards, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for s in shards.values():
        for prefix in (s, Path(f"{s}_val")):
            r = verify(prefix)
            assert r["ok"] and not r["not_checked"], r["failures"]
    p = _copy(shards["P"], tmp_path)
    (tmp_path / "P.meta.json").unlink()
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(p)])
    out = capsys.readouterr().out
    assert exc.value.code == 1 and "FAIL meta" in out and "missing" in out
    main(["verify", str(p), "--no-meta"])  # a binidx not written by rwkv-data: structure only
    assert "OK" in capsys.readouterr().out


def _special_meta(p: Path, kind: str) -> None:
    meta = p.parent / "P.meta.json"
    meta.unlink()
    if kind == "fifo":
        os.mkfifo(meta)  # never opened: reading it would block forever
    elif kind == "dev-zero":
        meta.symlink_to("/dev/zero")  # never read: it has no end
    elif kind == "link-loop":
        meta.symlink_to(meta)
    elif kind == "sparse-huge":
        with meta.open("wb") as f:
            f.truncate(3 << 30)  # refused on its size, not read
    elif kind == "deep-nesting":
        meta.write_text("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "link-loop", "sparse-huge", "deep-nesting"])
def test_a_meta_that_is_not_a_small_file_fails_at_once(shards, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       kind: str) -> None:
    p = _copy(shards["P"], tmp_path)
    _special_meta(p, kind)
    with pytest.raises(SystemExit) as exc:
        main(["verify", str(p)])
    out = capsys.readouterr()
    assert exc.value.code == 1 and "Traceback" not in out.err and "FAIL meta" in out.out, out
    assert out.err.startswith(f"error: {p}: failed meta")


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def _idx_edit(path: Path, offset: int, fmt: str, value: int) -> None:
    raw = bytearray(path.read_bytes())
    struct.pack_into(fmt, raw, offset, value)
    path.write_bytes(bytes(raw))


STRUCTURE = {  # tampering that the structure alone shows: caught with --no-meta too
    "bin-one-token-more": lambda p: _append(Path(f"{p}.bin"), b"\x05\x00"),
    "bin-one-byte-more": lambda p: _append(Path(f"{p}.bin"), b"\x05"),
    "bin-one-token-less": lambda p: Path(f"{p}.bin").write_bytes(Path(f"{p}.bin").read_bytes()[:-2]),
    "idx-bytes-appended": lambda p: _append(Path(f"{p}.idx"), b"\0" * 8),
    "idx-first-size-plus-one": lambda p: _idx_edit(Path(f"{p}.idx"), 34, "<i", 10**6),
    "idx-first-size-negative": lambda p: _idx_edit(Path(f"{p}.idx"), 34, "<i", -7),
    "idx-items-huge": lambda p: _idx_edit(Path(f"{p}.idx"), 18, "<Q", 1 << 60),
    "idx-doc-idx-huge": lambda p: _idx_edit(Path(f"{p}.idx"), 26, "<Q", (1 << 63) - 1),
    "idx-version-2": lambda p: _idx_edit(Path(f"{p}.idx"), 9, "<Q", 2),
}


@pytest.mark.parametrize("case", sorted(STRUCTURE))
def test_structure_tampering_is_caught_without_meta(shards, tmp_path: Path, case: str) -> None:
    p = _copy(shards["P"], tmp_path)
    STRUCTURE[case](p)
    assert not verify(p)["ok"]
    assert not verify(p, require_meta=False)["ok"]


def test_inspect_sample_out_of_range_is_refused(shards, capsys: pytest.CaptureFixture[str]) -> None:
    for sample, code in (("99999999999999", 1), ("-1", 2)):
        with pytest.raises(SystemExit) as exc:
            main(["inspect", str(shards["P"]), "--sample", sample])
        err = capsys.readouterr().err
        assert exc.value.code == code and "--sample" in err and "Traceback" not in err, err
