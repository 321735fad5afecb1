"""The JSON Lines fast path (``_native.scan_jsonl`` behind ``iter_unit_batches``) against the general parser.

Every input must give the same documents (UTF-8 bytes, length in characters, language), the same counts and the
same errors whichever path reads it: the scanner accepts only lines it can read exactly and hands the rest to
the general parser.

Run: pytest tests/pipelines/test_jsonl_scanner.py
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rwkv_data.pipelines.corpus.streams as streams
from rwkv_data.errors import InputFormatError
from rwkv_data.pipelines._native import scan_jsonl as scan
from rwkv_data.pipelines.corpus.documents import ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.inputs import expand_inputs
from rwkv_data.pipelines.corpus.readers import iter_unit, iter_unit_batches

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
PY_SPACES = [c for c in range(0x110000) if chr(c).isspace()]

EDGE_LINES = [
    b'{"text": "plain", "lang": "en"}',
    '{"text": "Grüß Gott – 漢字 😀", "lang": "de"}'.encode(),
    rb'{"text": "esc \" \\ \/ \b \f \n \r \t end"}',
    rb'{"text": "\u00e9\u4e2d\ud83d\ude00\u0000!", "lang": "fr"}',
    rb'{"text": "lone \ud800 high"}',
    rb'{"text": "lone \udc00 low"}',
    rb'{"text": "high then letter \ud800\u0041"}',
    rb'{"text": "bad escape \x"}',
    rb'{"text": "short \u12"}',
    b'{"text": ""}',
    b'{"text": "   "}',
    rb'{"text": "\u3000\u00a0\n\u001c\u0085\u2028"}',
    rb'{"text": "\u3000x"}',
    b'{"text": "a", "lang": null}',
    b'{"text": "a", "lang": ""}',
    b'{"text": "a", "lang": 5}',
    rb'{"text": "a", "lang": "f\u0072"}',
    b'{"text": 42}',
    b'{"text": null}',
    b'{"text": ["a"]}',
    b'{"text": {"a": 1}}',
    b'{"body": "no text field"}',
    b'{}',
    b'{"text": "first", "text": "second"}',
    b'{"text": "first", "text": 5}',
    b'{"text": 5, "text": "after"}',
    b'{"lang": "xx", "text": "a", "lang": null}',
    b'{"meta": {"a": [1, 2.5, -3e-7, {"b": null}], "c": []}, "ok": true, "no": false, "text": "nested"}',
    b'{"n": -0, "m": 1E5, "k": 1.5e+3, "text": "numbers"}',
    b'{"n": 01, "text": "leading zero"}',
    b'{"n": 1., "text": "bare dot"}',
    b'{"n": .5, "text": "no integer part"}',
    b'{"n": NaN, "text": "nan"}',
    b'{"n": -Infinity, "text": "inf"}',
    b'{"n": 123456789012345678901234567890, "text": "big int"}',
    b'{"n": tru, "text": "bad literal"}',
    b'{"text": "trailing comma",}',
    b'{"text": "garbage after"} x',
    b'{"text": "two"}{"text": "objects"}',
    b'  {"text" : "spaced" , "lang" : "en" }  \r',
    rb'{"te\u0078t": "escaped key"}',
    b'{"text": "raw\ttab"}',
    b'{"text": "raw del \x7f"}',
    b'{"text": "caf\xe9 latin-1"}',
    b'{"text": "overlong \xc0\xaf"}',
    b'{"text": "raw surrogate \xed\xa0\x80"}',
    b'{"text": "too high \xf4\x90\x80\x80"}',
    b'{"text": "cut \xe4\xb8"}',
    b'{"text": "ok"}\xc2\xa0',
    b'\xef\xbb\xbf{"text": "bom"}',
    b'',
    b'   ',
    b'\r',
    b'["text", "array"]',
    b'"just a string"',
    b'7',
    b'{"text": "unterminated',
    b'{"text" "no colon"}',
    b'{text: "unquoted key"}',
    b'{"deep": ' + b'[' * 300 + b']' * 300 + b', "text": "deep nesting"}',
    b'{"deep": ' + b'[' * 20 + b']' * 20 + b', "text": "shallow nesting"}',
]
# plain runs of every length with a special character at every position (the scanner reads 8 bytes at a time)
for n in range(0, 19):
    for k, special in enumerate(["\\n", '\\"', "é", "中", "😀", "\\u00e9", " "]):
        EDGE_LINES.append(('{"text": "' + "x" * n + special + "y" * ((n + k) % 9) + '"}').encode())


def _docs_general(path: Path, opts: ReadOptions) -> tuple[list[tuple[bytes, int, str]], ReadStats]:
    stats = ReadStats()
    out = []
    for unit in expand_inputs([path], opts):
        for d in iter_unit(unit, opts, stats):
            out.append((d.data if d.data is not None else d.text.encode(), len(d.text), d.lang))
    return out, stats


def _docs_batches(path: Path, opts: ReadOptions) -> tuple[list[tuple[bytes, int, str]], ReadStats]:
    stats = ReadStats()
    out = []
    for unit in expand_inputs([path], opts):
        for b in iter_unit_batches(unit, opts, stats):
            assert len(b.datas) == len(b.nchars) == len(b.langs)
            out += zip(b.datas, b.nchars, b.langs, strict=True)
    return out, stats


def _same(path: Path, **kw: object) -> list[tuple[bytes, int, str]]:
    """Both paths give the same documents and counts (skip mode) and the same first error (raise mode)."""
    skip = ReadOptions(**{**kw, "on_error": "skip"})  # type: ignore[arg-type]
    general, gs = _docs_general(path, skip)
    fast, fs = _docs_batches(path, skip)
    assert fast == general
    assert (fs.records, fs.documents, fs.skipped, fs.first_skip) == (gs.records, gs.documents, gs.skipped,
                                                                      gs.first_skip)
    strict = ReadOptions(**{**kw, "on_error": "raise"})  # type: ignore[arg-type]
    errors = []
    for reader in (_docs_general, _docs_batches):
        try:
            reader(path, strict)
            errors.append(None)
        except InputFormatError as exc:
            errors.append(str(exc))
    assert errors[0] == errors[1]
    return general


def test_edge_lines_match_the_general_parser(tmp_path: Path) -> None:
    p = tmp_path / "edge.jsonl"
    p.write_bytes(b"\n".join(EDGE_LINES) + b"\n")
    docs = _same(p)
    assert len(docs) > 100  # most lines are documents
    by_text = {d[0]: d for d in docs}
    assert b"second" in by_text and b"first" not in by_text  # the last duplicate key wins
    assert by_text["\u00e9\u4e2d\U0001F600\x00!".encode()][1:] == (5, "fr")
    assert by_text[b"escaped key"][2] == "und" and by_text[b"a"][2] == "und"


def test_each_line_alone_in_raise_mode(tmp_path: Path) -> None:
    """One line per file: the error (or its absence) names the same line and reason on both paths."""
    for i, line in enumerate(EDGE_LINES[:62]):
        p = tmp_path / f"l{i}.jsonl"
        p.write_bytes(b'{"text": "before"}\n' + line + b'\n{"text": "after"}')
        _same(p)


def test_the_scanner_refuses_what_it_cannot_read_exactly() -> None:
    lines = [b'{"text": ""}', b'{"text": "\\ud800"}', b'{"text": 1}', b'{"text": "a", "lang": ""}', b"",
             b'{"text": "a"} x', b'{"x": NaN, "text": "a"}', b'{"text": "\\u3000"}']
    texts, nchars, langs, n_lines, fallback = scan(b"\n".join(lines) + b'\n{"text": "ok"}', b"text", b"lang")
    assert (texts, nchars, langs, n_lines) == ([b"ok"], [2], [None], len(lines) + 1)
    assert [f[0] for f in fallback] == list(range(len(lines))) and all(f[1] == 0 for f in fallback)


def test_whitespace_table_is_pythons_isspace() -> None:
    """A text made only of characters for which str.isspace() holds is refused (an empty document), any other
    character makes it a document: checked for every whitespace character and a sample of the others."""
    for c in PY_SPACES:
        for lit in (json.dumps(chr(c)), json.dumps(chr(c), ensure_ascii=False)):
            texts, *_ = scan(b'{"text": ' + lit.encode("utf-8", "surrogatepass") + b"}", b"text", b"lang")
            assert texts == [], hex(c)
    others = [c for c in range(0, 0x110000, 97) if not chr(c).isspace() and not 0xD800 <= c < 0xE000]
    for c in others + [0x1B, 0x1D - 2, 0x84, 0x86, 0x9F, 0x167F, 0x200B, 0x202E, 0x3001, 0xFEFF]:
        texts, nchars, *_ = scan(b'{"text": ' + json.dumps(chr(c)).encode() + b"}", b"text", b"lang")
        assert texts == [chr(c).encode()] and nchars == [1], hex(c)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.fixed_dictionaries(
    {"text": st.one_of(st.text(max_size=40), st.text(alphabet=string.whitespace + "\u3000\u00a0", max_size=3),
                       _json_values)},
    optional={"lang": st.one_of(st.none(), st.sampled_from(["", "en", "zh-Hans", "ü"]), st.integers()),
              "other": _json_values}), max_size=8),
    ascii_only=st.booleans())
def test_random_records_match_the_general_parser(tmp_path: Path, records: list[dict], ascii_only: bool) -> None:
    p = tmp_path / "r.jsonl"
    p.write_bytes("".join(json.dumps(r, ensure_ascii=ascii_only) + "\n" for r in records).encode("utf-8",
                                                                                                  "surrogatepass"))
    _same(p)
    _same(p, lang="xx")


def test_lines_across_chunks_and_line_numbers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny read chunks: lines straddle chunks, some chunks hold no newline; errors name the right line."""
    monkeypatch.setattr(streams, "CHUNK", 7)
    lines = [json.dumps({"text": f"document {i} " + "é" * (i % 13), "lang": "fr"}).encode() for i in range(200)]
    lines[150] = b'{"text": broken}'
    data = b"\n".join(lines)  # no newline at the end
    for name, payload in (("a.jsonl", data), ("a.jsonl.zst", zstandard.ZstdCompressor().compress(data))):
        p = tmp_path / name
        p.write_bytes(payload)
        assert len(_same(p)) == 199
        with pytest.raises(InputFormatError, match=rf"{name}:151: invalid JSON"):
            _docs_batches(p, ReadOptions())


def test_truncated_stream_keeps_the_complete_lines(tmp_path: Path) -> None:
    data = zstandard.ZstdCompressor().compress(b"".join(
        json.dumps({"text": f"line {i} " + "x" * (i % 50)}).encode() + b"\n" for i in range(50000)))
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(data[: len(data) // 2])
    docs = _same(p)
    assert 0 < len(docs) < 50000


def test_other_field_names(tmp_path: Path) -> None:
    p = tmp_path / "f.jsonl"
    p.write_bytes(b'{"body": "x", "text": "not this", "language": "sw"}\n{"body": "y"}\n{"text": "z"}\n')
    assert [d[0] for d in _same(p, text_field="body", lang_field="language")] == [b"x", b"y"]
    assert [d[2] for d in _same(p, text_field="body", lang_field="body")] == ["x", "y"]  # one field as both


@pytest.mark.skipif(not (CORPUS / "mono").is_dir(), reason="../shared/corpus not present")
def test_mono_corpus_same_documents_on_both_paths() -> None:
    opts = ReadOptions()
    for path in sorted((CORPUS / "mono").glob("*.jsonl.zst")):
        general, gs = _docs_general(path, opts)
        fast, fs = _docs_batches(path, opts)
        assert fast == general, path.name
        assert (fs.records, fs.documents, fs.skipped) == (gs.records, gs.documents, gs.skipped)
