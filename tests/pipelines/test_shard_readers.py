"""Corpus readers: every input format, the language fallback, and each bad-input case (error or counted skip).

Run: pytest tests/pipelines/test_shard_readers.py
"""

from __future__ import annotations

import csv
import gzip
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from rwkv_data.errors import InputFormatError
from rwkv_data.pipelines.corpus.documents import ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.inputs import expand_inputs
from rwkv_data.pipelines.corpus.readers import iter_documents

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RECORDS = [{"text": "Hello world", "lang": "en"}, {"text": "Grüß Gott", "lang": "de"}, {"text": "漢字", "lang": "zh"}]


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()


def _texts(path, **kw) -> list[tuple[str, str]]:
    return [(d.text, d.lang) for d in iter_documents(path, **kw)]


def test_lone_surrogate_escape_and_bom(tmp_path: Path, json_path: str) -> None:
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"text": "ok \\u00e9"}\n{"text": "x\\ud800y"}\n\xef\xbb\xbf{"text": "bom"}\n')
    stats = ReadStats()
    assert _texts(p, on_error="skip", stats=stats) == [("ok \u00e9", "und"), ("bom", "und")]  # BOM: not the record
    assert stats.skipped == Counter({"invalid_utf8": 1})


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".jsonl.gz"])
def test_jsonl_variants(tmp_path: Path, suffix: str, json_path: str) -> None:
    data = _jsonl(RECORDS)
    data = {".jsonl.zst": zstandard.ZstdCompressor().compress, ".jsonl.gz": gzip.compress}.get(suffix, bytes)(data)
    p = tmp_path / f"c{suffix}"
    p.write_bytes(data)
    docs = list(iter_documents(p))
    assert [(d.text, d.lang) for d in docs] == [(r["text"], r["lang"]) for r in RECORDS]
    assert [d.line for d in docs] == [1, 2, 3] and docs[1].location == f"{p}:2"


def test_zstd_concatenated_frames(tmp_path: Path) -> None:
    c = zstandard.ZstdCompressor()
    p = tmp_path / "multi.jsonl.zst"
    p.write_bytes(c.compress(_jsonl(RECORDS[:1])) + c.compress(_jsonl(RECORDS[1:])))
    assert len(list(iter_documents(p))) == 3


def test_txt_whole_file_and_paragraphs(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    p.write_text("first para\nline two\n\n\nsecond para\n", encoding="utf-8")
    assert _texts(p) == [("first para\nline two\n\n\nsecond para\n", "und")]
    docs = list(iter_documents(p, split_paragraphs=True, lang="fr"))
    assert [(d.text, d.lang, d.line) for d in docs] == [("first para\nline two", "fr", 1), ("second para", "fr", 5)]


def test_parquet_row_groups_and_columns(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    table = pa.table({"body": [f"doc {i}" for i in range(10)], "language": ["en", "de"] * 5})
    pq.write_table(table, p, row_group_size=4)
    units = expand_inputs(p, ReadOptions())
    assert [(u.kind, u.index, u.rows) for u in units] == [("parquet", 0, 4), ("parquet", 1, 4), ("parquet", 2, 2)]
    docs = list(iter_documents(p, text_field="body", lang_field="language"))
    assert [d.text for d in docs] == [f"doc {i}" for i in range(10)]
    assert [d.line for d in docs] == list(range(10)) and docs[5].lang == "de"
    assert docs[5].location == f"{p} row 5"


def test_hf_save_to_disk_folder(tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"text": [r["text"] for r in RECORDS], "lang": [r["lang"] for r in RECORDS]})
    ds.save_to_disk(str(tmp_path / "hf"))
    assert _texts(tmp_path / "hf") == [(r["text"], r["lang"]) for r in RECORDS]
    datasets.DatasetDict({"train": ds, "validation": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    assert len(_texts(tmp_path / "dd", hf_split="validation")) == 1
    with pytest.raises(InputFormatError, match="no split 'test'"):
        _texts(tmp_path / "dd", hf_split="test")


def test_folders_globs_and_language_fallback(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "b.jsonl").write_bytes(_jsonl([{"text": "no lang"}]))
    (tmp_path / "d" / "sub" / "a.txt").write_text("plain", encoding="utf-8")
    (tmp_path / "d" / "ignored.csv").write_text("x")
    assert _texts(tmp_path / "d", lang="sw") == [("no lang", "sw"), ("plain", "sw")]
    assert _texts(str(tmp_path / "d" / "**" / "*.txt")) == [("plain", "und")]
    with pytest.raises(InputFormatError, match="unsupported input type"):
        _texts(tmp_path / "d" / "ignored.csv")
    with pytest.raises(InputFormatError, match="no such file"):
        _texts(tmp_path / "missing.jsonl")


def _truncated_zst(tmp_path: Path) -> Path:
    data = zstandard.ZstdCompressor().compress(_jsonl(RECORDS * 10000))
    p = tmp_path / "cut.jsonl.zst"
    p.write_bytes(data[: len(data) // 2])
    return p


def _truncated_gz(tmp_path: Path) -> Path:
    data = gzip.compress(_jsonl(RECORDS * 10000))
    p = tmp_path / "cut.jsonl.gz"
    p.write_bytes(data[: len(data) // 2])
    return p


def _line_case(content: bytes):
    def make(tmp_path: Path) -> Path:
        p = tmp_path / "bad.jsonl"
        p.write_bytes(_jsonl(RECORDS[:1]) + content + b"\n" + _jsonl(RECORDS[1:2]))
        return p
    return make


def _bad_parquet(tmp_path: Path) -> Path:
    p = tmp_path / "bad.parquet"
    p.write_bytes(b"PAR1 this is not a parquet file")
    return p


BAD = {
    "invalid_json": (_line_case(b'{"text": "unterminated'), r"bad\.jsonl:2: invalid JSON"),
    "missing_field": (_line_case(b'{"body": "x"}'), r"bad\.jsonl:2: no field 'text'"),
    "non_string_text": (_line_case(b'{"text": 42}'), r"bad\.jsonl:2: field 'text' is int"),
    "invalid_utf8": (_line_case(b'{"text": "caf\xe9"}'), r"bad\.jsonl:2: invalid UTF-8"),
    "truncated_zstd": (_truncated_zst, r"cut\.jsonl\.zst: the file ends inside a zstd frame at byte"),
    "truncated_gzip": (_truncated_gz, r"cut\.jsonl\.gz: the file ends inside a gzip member at byte"),
    "unreadable_parquet": (_bad_parquet, r"bad\.parquet: not a readable parquet file"),
}
REASON = {"truncated_zstd": "truncated_stream", "truncated_gzip": "truncated_stream"}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_naming_file_and_line(tmp_path: Path, case: str, json_path: str) -> None:
    make, pattern = BAD[case]
    with pytest.raises(InputFormatError, match=pattern):
        list(iter_documents(make(tmp_path)))


@pytest.fixture(params=["fast", "standard"])
def json_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the optional orjson fast path and without it (the standard json path)."""
    import rwkv_data.pipelines.corpus.streams as streams

    if request.param == "standard":
        monkeypatch.setattr(streams, "_orjson_loads", None)
    return request.param


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_counted_when_skipping(tmp_path: Path, case: str, json_path: str) -> None:
    make, _ = BAD[case]
    stats = ReadStats()
    docs = list(iter_documents(make(tmp_path), on_error="skip", stats=stats))
    assert stats.skipped == Counter({REASON.get(case, case): 1})
    assert stats.documents == len(docs)
    if case.startswith("truncated"):  # the complete lines before the cut survive, the partial one does not
        assert 0 < len(docs) < 30000 and all(d.text in {r["text"] for r in RECORDS} for d in docs)
    elif case != "unreadable_parquet":
        assert [d.text for d in docs] == [RECORDS[0]["text"], RECORDS[1]["text"]]


def test_empty_documents_and_blank_lines_are_counted_not_errors(tmp_path: Path) -> None:
    p = tmp_path / "e.jsonl"
    p.write_bytes(_jsonl([{"text": ""}, {"text": " \n"}, RECORDS[0]]) + b"\n")
    stats = ReadStats()
    assert _texts(p, stats=stats) == [("Hello world", "en")]
    assert stats.skipped == Counter({"empty_text": 2, "blank_line": 1}) and stats.records == 3


def test_txt_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    p = tmp_path / "x.txt"
    p.write_bytes(b"ok\nfine\nbad \xff here\n")
    with pytest.raises(InputFormatError, match=r"x\.txt:3: invalid UTF-8"):
        _texts(p)


def test_parquet_non_string_and_missing_column(tmp_path: Path) -> None:
    p = tmp_path / "n.parquet"
    pq.write_table(pa.table({"text": pa.array([1, 2], pa.int64())}), p)
    with pytest.raises(InputFormatError, match=r"n\.parquet row 0: field 'text' is int"):
        _texts(p)
    stats = ReadStats()
    assert _texts(p, text_field="body", on_error="skip", stats=stats) == []
    assert stats.skipped == Counter({"missing_field": 2})


@pytest.mark.skipif(not (CORPUS / "mono").is_dir(), reason="../shared/corpus not present")
def test_mono_corpus_counts_match_its_stats_table() -> None:
    with open(CORPUS / "mono_stats.tsv", encoding="utf-8") as f:
        want = {row["lang"]: int(row["docs"]) for row in csv.DictReader(f, delimiter="\t")}
    got = Counter(d.lang for d in iter_documents(sorted((CORPUS / "mono").glob("[a-c]*.jsonl.zst"))))
    assert got == {k: v for k, v in want.items() if k[0] in "abc"}
