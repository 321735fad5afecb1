"""Limits the corpus readers enforce before they hold data: parquet pages and cells over the record limit (found
on the page headers and the arrow lengths, before pyarrow or Python copies them), and language codes that could
not name a language in shards, reports or file names.

Run: pytest tests/pipelines/test_corpus_limits.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rwkv_data.config import CorpusSpec, is_language_code
from rwkv_data.errors import ConfigError, InputFormatError
from rwkv_data.pipelines.corpus import tables
from rwkv_data.pipelines.corpus.documents import ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.inputs import expand_inputs
from rwkv_data.pipelines.corpus.parquet_pages import PageHeaderError, largest_page
from rwkv_data.pipelines.corpus.readers import iter_documents, iter_unit_batches

MB = 1 << 20


def _texts(path: Path, **kw) -> list[str]:
    return [d.text for d in iter_documents(path, **kw)]


@pytest.mark.parametrize("compression", ["zstd", "snappy", "none"])
@pytest.mark.parametrize("dictionary", [True, False])
@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_largest_page_is_read_from_the_headers(tmp_path: Path, compression: str, dictionary: bool,
                                               version: str) -> None:
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a" * 100, "b" * 3 * MB, "c"] * 2, "lang": ["en", "en", "fr"] * 2}), p,
                   compression=compression, use_dictionary=dictionary, data_page_version=version, row_group_size=3)
    meta = pq.ParquetFile(p).metadata
    for i in range(meta.num_row_groups):
        text, lang = (largest_page(str(p), meta.row_group(i).column(j)) for j in range(2))
        assert 3 * MB <= text < 3 * MB + 1000 and lang < 100
    raw = bytearray(p.read_bytes())
    col = meta.row_group(0).column(0)
    start = col.dictionary_page_offset if col.has_dictionary_page else col.data_page_offset
    raw[start:start + 8] = b"\xff" * 8  # a damaged page header
    p.write_bytes(bytes(raw))
    with pytest.raises(PageHeaderError):
        largest_page(str(p), col)


def test_cells_over_the_limit_are_skipped_without_reading_them_into_python(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["ok", "z" * 5000, "fine", "y" * 3000], "lang": ["en"] * 4}), p)
    column = pq.read_table(p).column("text").combine_chunks()
    assert tables._oversize_mask(column, 1000).to_pylist() == [False, True, False, True]
    assert tables._oversize_mask(column, 5000) is None
    stats = ReadStats()
    assert _texts(p, max_record_bytes=1000, on_error="skip", stats=stats) == ["ok", "fine"]
    assert stats.skipped == Counter(record_too_large=2) and stats.records == 4
    assert stats.first_skip["record_too_large"].startswith(f"{p} row 1: text longer than 1,000 bytes")


def test_a_page_over_the_bound_skips_its_row_group_by_the_headers(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["a", "b" * 2 * MB, "c", "d", "e", "f"]}), p, row_group_size=3,
                   use_dictionary=False)
    monkeypatch.setattr(tables, "PAGE_BYTES", MB)  # pages up to 1 MiB are decoded; row group 0 has one of 2 MiB
    read: list[object] = []
    real = pq.ParquetFile.iter_batches

    def spy(self: pq.ParquetFile, *a: object, **kw: object) -> object:
        read.append(kw.get("row_groups"))
        return real(self, *a, **kw)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    with pytest.raises(InputFormatError, match=rf"{p} row group 0: column 'text' has a page of 2,097,1\d\d bytes"):
        _texts(p, max_record_bytes=1000)
    assert read == []  # refused on the headers: pyarrow never decoded the page
    stats = ReadStats()
    assert _texts(p, max_record_bytes=1000, on_error="skip", stats=stats) == ["d", "e", "f"]
    assert stats.skipped == Counter(record_too_large=3) and stats.records == 6 and read == [[1]]
    assert _texts(p, max_record_bytes=3 * MB) == ["a", "b" * 2 * MB, "c", "d", "e", "f"]  # a raised limit reads it


def test_damaged_page_headers_are_an_unreadable_row_group(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["one", "two", "three", "four"]}), p, row_group_size=2, use_dictionary=False)
    col = pq.ParquetFile(p).metadata.row_group(0).column(0)
    raw = bytearray(p.read_bytes())
    raw[col.data_page_offset:col.data_page_offset + 6] = b"\xff" * 6
    p.write_bytes(bytes(raw))
    with pytest.raises(InputFormatError, match=rf"{p} row group 0: column 'text': damaged page headers"):
        _texts(p)
    stats = ReadStats()
    assert _texts(p, on_error="skip", stats=stats) == ["three", "four"]
    assert stats.skipped == Counter(unreadable_parquet=1)


@pytest.mark.slow
def test_a_300_mb_parquet_cell_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    p = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["before", "x" * (300 * MB), "after"], "lang": ["en"] * 3}), p,
                   compression="zstd", use_dictionary=False, row_group_size=2)
    assert p.stat().st_size < 2 * MB
    launcher = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
                "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
                "sys.exit(rc)")
    peak = tmp_path / "peak_kb.txt"
    proc = subprocess.run([sys.executable, "-c", launcher, str(peak), sys.executable, "-m", "rwkv_data", "shard",
                           str(p), "-o", str(tmp_path / "out" / "p"), "--workers", "1", "--no-progress",
                           "--on-error", "skip", "--json"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "RWKV_DATA_CACHE": "off"})
    rss_mb = int(peak.read_text()) // 1024
    assert proc.returncode == 0 and rss_mb < 400, (rss_mb, proc.stderr[-2000:])
    meta = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert meta["train"]["skipped"] == {"record_too_large": 2}  # row group 0: its two rows, counted
    assert meta["train"]["documents"] + meta["val"]["documents"] == 1


BAD_LANGS = ["../../etc/passwd", "a/b", "", "en us", "x" * 65, "a\nb", "..", "\x00", "en;rm"]


@pytest.mark.parametrize("lang", ["sw", "zh-Hans", "eng_Latn", "pt-BR", "und", "x" * 64, "ελ", "sr.latin"])
def test_language_codes_accepted(lang: str) -> None:
    assert is_language_code(lang)
    assert CorpusSpec(lang=lang).lang == lang


@pytest.mark.parametrize("lang", BAD_LANGS)
def test_odd_language_values_are_bad_records_on_every_path(tmp_path: Path, lang: str) -> None:
    assert not is_language_code(lang)
    if lang:
        with pytest.raises(ConfigError, match="is not a language code"):
            CorpusSpec(lang=lang)
    p = tmp_path / "c.jsonl"
    rows = [{"text": "good one", "lang": "en"}, {"text": "odd", "lang": lang}, {"text": "good two", "lang": "fr"}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(InputFormatError, match=rf"{p}:2: field 'lang' is .* not a language code"):
        _texts(p)
    stats = ReadStats()
    assert _texts(p, on_error="skip", stats=stats) == ["good one", "good two"]
    assert stats.skipped == Counter(bad_lang=1)
    opts = ReadOptions(on_error="skip")  # the native scanner's path: the block is re-read line by line
    stats = ReadStats()
    batches = [b for u in expand_inputs([p], opts) for b in iter_unit_batches(u, opts, stats)]
    assert [d for b in batches for d in b.datas] == [b"good one", b"good two"]
    assert stats.skipped == Counter(bad_lang=1) and stats.first_skip["bad_lang"].startswith(f"{p}:2:")
    q = tmp_path / "c.parquet"
    pq.write_table(pa.table({"text": [r["text"] for r in rows], "lang": [r["lang"] for r in rows]}), q)
    stats = ReadStats()
    assert _texts(q, on_error="skip", stats=stats) == ["good one", "good two"]
    assert stats.skipped == Counter(bad_lang=1) and stats.first_skip["bad_lang"].startswith(f"{q} row 1:")


@pytest.mark.parametrize("command", [["audit", "-t", "world"], ["vocab", "train", "--vocab-size", "300"]])
def test_a_language_per_record_is_refused_at_the_limit(tmp_path: Path, command: list[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong --lang-field (an id per record) gave 70,000 languages: audit 1.9 GB, vocab train over 200 s."""
    from click.testing import CliRunner

    from rwkv_data.cli import cli
    from rwkv_data.pipelines.audit import corpus as audit_corpus
    from rwkv_data.pipelines.vocab import job as vocab_job

    for mod in (audit_corpus, vocab_job):
        monkeypatch.setattr(mod, "MAX_LANGUAGES", 20)
    p = tmp_path / "ids.jsonl"
    p.write_text("".join(json.dumps({"text": f"text {i}", "lang": f"id{i}"}) + "\n" for i in range(30)),
                 encoding="utf-8")
    out = ["--out-dir", str(tmp_path / "a")] if command[0] == "audit" else ["-o", str(tmp_path / "v.txt")]
    res = CliRunner().invoke(cli, [*command[:1], *command[1:2], str(p), *command[2:], *out]
                             if command[0] == "vocab" else [command[0], str(p), *command[1:], *out])
    assert res.exit_code == 1 and isinstance(res.exception, InputFormatError)
    assert str(res.exception).startswith(f"{p}:21: language 'id20': 21 distinct language codes, more than "
                                         "the 20") and "--lang-field" in str(res.exception)


def test_a_byte_order_mark_before_a_json_line_is_not_part_of_the_record(tmp_path: Path) -> None:
    """Editors on Windows start a file with a BOM, and joined files carry one mid-file."""
    p = tmp_path / "bom.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"text": "first", "lang": "en"}\n{"text": "second", "lang": "en"}\n'
                  b'\xef\xbb\xbf{"text": "third", "lang": "fr"}\n')
    assert [(d.text, d.line) for d in iter_documents(p)] == [("first", 1), ("second", 2), ("third", 3)]
    opts = ReadOptions()
    stats = ReadStats()
    batches = [b for u in expand_inputs([p], opts) for b in iter_unit_batches(u, opts, stats)]
    assert [d for b in batches for d in b.datas] == [b"first", b"second", b"third"] and not stats.skipped


def test_top_level_keys_beside_the_commands_table_are_reported(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    from rwkv_data.config import AuditConfig, load_toml

    cfg = tmp_path / "c.toml"
    cfg.write_text('confidence = 0.5\nout_dir = "elsewhere"\n[audit]\nout_dir = "here"\n', encoding="utf-8")
    got = load_toml(AuditConfig, cfg, "audit")
    assert got.out_dir == "here" and got.confidence == AuditConfig().confidence
    assert "top-level confidence ignored by this command: it reads the [audit] table" in caplog.text
