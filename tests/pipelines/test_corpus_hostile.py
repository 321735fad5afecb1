"""Hostile corpus input: compression bombs, huge lines, damaged and truncated streams, files that are not what
their name says, non-regular files. Each ends in one clear error naming the file and line or byte offset (or a
counted skip with on_error="skip"), in bounded memory, with every record before the damage kept.

Run: pytest tests/pipelines/test_corpus_hostile.py
"""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from rwkv_data.errors import InputFormatError
from rwkv_data.pipelines.corpus.documents import ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.inputs import Unit, expand_inputs
from rwkv_data.pipelines.corpus.readers import iter_documents, iter_unit_batches
from rwkv_data.pipelines.corpus.streams import Corrupt, open_chunks

MB = 1 << 20
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
RSS_BOUND_MB = 800


@pytest.fixture(params=["fast", "standard"])
def json_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the optional orjson fast path and without it (the standard json path)."""
    import rwkv_data.pipelines.corpus.streams as streams

    if request.param == "standard":
        monkeypatch.setattr(streams, "_orjson_loads", None)
    return request.param


def _docs(path: Path, **kw) -> list[tuple[str, int]]:
    return [(d.text, d.line) for d in iter_documents(path, **kw)]


def _zst_line_bomb(path: Path, total: int, newline: bool = True) -> None:
    """A zstd file of one JSON record whose text is ``total`` bytes of 'a', written in pieces (the test never
    holds it)."""
    with path.open("wb") as f, zstandard.ZstdCompressor(level=1).stream_writer(f) as w:
        w.write(b'{"text": "')
        block = b"a" * MB
        for _ in range(total // MB):
            w.write(block)
        w.write(b'"}\n' if newline else b"")
        w.write(b'{"text": "after the bomb"}\n')


def _gz_bomb(path: Path, total: int) -> None:
    c = zlib.compressobj(1, wbits=31)
    with path.open("wb") as f:
        block = b"b" * MB
        for _ in range(total // MB):
            f.write(c.compress(block))
        f.write(c.compress(b"\n{\"text\": \"after\"}\n") + c.flush())


# A small launcher runs the CLI and reports its child's peak RSS: a process forked straight from pytest would
# inherit pytest's own resident size in its high-water mark (Linux keeps it across exec), and RUSAGE_CHILDREN
# of pytest would report the largest child of the whole session.
_LAUNCHER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
             "sys.exit(rc)")


def _peak_rss_mb(args: list[str], cwd: Path) -> tuple[int, str, int]:
    """Run the CLI in a child process: (exit code, stderr + stdout, that child's own peak RSS in MB)."""
    peak_file = cwd / "peak_rss_kb.txt"
    proc = subprocess.run([sys.executable, "-c", _LAUNCHER, str(peak_file), sys.executable, "-m", "rwkv_data",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "RWKV_DATA_CACHE": "off"})
    return proc.returncode, proc.stderr + proc.stdout, int(peak_file.read_text()) // 1024


def _shard(tmp_path: Path, inp: Path, *extra: str) -> tuple[int, str, int]:
    return _peak_rss_mb(["shard", str(inp), "-o", str(tmp_path / "out" / "p"), "--workers", "1", "--no-progress",
                         *extra], tmp_path)


# ---- bombs and huge lines, through `rwkv-data shard` in a child process (peak RSS measured) -----------------


@pytest.mark.slow
def test_zstd_bomb_of_one_long_line_is_an_error_in_bounded_memory(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.zst"
    _zst_line_bomb(bomb, 300 * MB)
    assert bomb.stat().st_size < 100_000
    code, out, rss = _shard(tmp_path, bomb)
    assert code == 1 and f"error: {bomb}:1: line longer than 67,108,864 bytes" in out and "--max-record-bytes" in out
    assert "Traceback" not in out and rss < RSS_BOUND_MB, (rss, out[-2000:])
    code, out, rss = _shard(tmp_path, bomb, "--on-error", "skip", "--json")
    assert code == 0 and rss < RSS_BOUND_MB, (rss, out[-2000:])
    meta = json.loads(out[out.index("{"):])
    assert meta["train"]["skipped"] == {"record_too_large": 1}
    assert meta["train"]["documents"] + meta["val"]["documents"] == 1  # the record after the bomb is kept


@pytest.mark.slow
def test_gzip_bomb_and_sparse_plain_file_without_newline(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jsonl.gz"
    _gz_bomb(bomb, 150 * MB)
    code, out, rss = _shard(tmp_path, bomb)
    assert code == 1 and f"{bomb}:1: line longer than" in out and rss < RSS_BOUND_MB, (rss, out[-2000:])
    sparse = tmp_path / "zeros.txt"  # 300 MB of NUL bytes, no newline: one .txt document over the limit
    with sparse.open("wb") as f:
        f.truncate(300 * MB)
    code, out, rss = _shard(tmp_path, sparse)
    assert code == 1 and f"{sparse}:1: the file is one document" in out and rss < RSS_BOUND_MB, (rss, out[-2000:])
    plain = tmp_path / "zeros.jsonl"
    os.link(sparse, plain)
    code, out, rss = _shard(tmp_path, plain, "--on-error", "skip")
    assert code != 0 or "record_too_large=1" in out
    assert "Traceback" not in out and rss < RSS_BOUND_MB, (rss, out[-2000:])


def test_zstd_bomb_of_short_lines_is_read_in_bounded_pieces(tmp_path: Path) -> None:
    """64 MB of short lines in a few KB: the reader never holds the decoded file (chunks of ~1 MiB)."""
    path = tmp_path / "short.jsonl.zst"
    rec = b'{"text": "x", "lang": "en"}\n' * 4096
    with path.open("wb") as f, zstandard.ZstdCompressor(level=19).stream_writer(f) as w:
        for _ in range(64 * MB // len(rec)):
            w.write(rec)
    assert path.stat().st_size < 200_000
    biggest = max(len(c) for c in open_chunks(str(path)))
    assert biggest <= 1 * MB


# ---- record size limit, every format, both JSON paths -------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.zst", ".jsonl.gz"])
def test_oversized_line_raise_and_skip(tmp_path: Path, suffix: str, json_path: str) -> None:
    lines = [b'{"text": "first"}', b'{"text": "' + b"y" * 5000 + b'"}', b'{"text": "third"}', b""]
    data = b"\n".join(lines)
    data = {".jsonl.zst": zstandard.ZstdCompressor().compress, ".jsonl.gz": gzip.compress}.get(suffix, bytes)(data)
    p = tmp_path / f"c{suffix}"
    p.write_bytes(data)
    with pytest.raises(InputFormatError, match=rf"^{p}:2: line longer than 1,000 bytes .*--max-record-bytes"):
        _docs(p, max_record_bytes=1000)
    stats = ReadStats()
    assert _docs(p, max_record_bytes=1000, on_error="skip", stats=stats) == [("first", 1), ("third", 3)]
    assert stats.skipped == Counter(record_too_large=1) and stats.records == 3
    # the native scanner's batches agree
    st2 = ReadStats()
    opts = ReadOptions(on_error="skip", max_record_bytes=1000)
    got = [d for b in iter_unit_batches(Unit("jsonl", str(p)), opts, st2) for d in b.datas]
    assert got == [b"first", b"third"] and st2.skipped == stats.skipped


def test_line_limit_across_chunks(tmp_path: Path, json_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunk boundaries anywhere: a line over the limit spanning chunks, or ending exactly at one."""
    import rwkv_data.pipelines.corpus.streams as streams

    recs = [{"text": "t" * n} for n in (3, 40, 5, 41, 0, 39, 2)]  # lines of 12 + n bytes; limit 51: n <= 39
    data = "".join(json.dumps(r) + "\n" for r in recs).encode()
    p = tmp_path / "c.jsonl"
    p.write_bytes(data[:-1])  # no final newline
    for chunk in (1, 7, 16, 53, 54, 55, 1000):
        monkeypatch.setattr(streams, "CHUNK", chunk)
        stats = ReadStats()
        got = _docs(p, max_record_bytes=51, on_error="skip", stats=stats)
        assert got == [("ttt", 1), ("ttttt", 3), ("t" * 39, 6), ("tt", 7)], chunk
        assert stats.skipped == Counter(record_too_large=2, empty_text=1), chunk


def test_txt_document_paragraph_and_parquet_cell_limits(tmp_path: Path) -> None:
    t = tmp_path / "a.txt"
    t.write_text("short para\n\n" + "long line " * 300 + "\nmore\n\nlast one\n")
    with pytest.raises(InputFormatError, match=rf"{t}:1: the file is one document .* longer than 1,000 bytes"):
        _docs(t, max_record_bytes=1000)
    stats = ReadStats()
    assert _docs(t, max_record_bytes=1000, split_paragraphs=True, on_error="skip", stats=stats) == [
        ("short para", 1), ("last one", 6)]
    assert stats.skipped == Counter(record_too_large=1)
    pqf = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["ok", "z" * 5000, "fine"]}), pqf)
    with pytest.raises(InputFormatError, match=rf"{pqf} row 1: text longer than 1,000 bytes"):
        _docs(pqf, max_record_bytes=1000)
    stats = ReadStats()
    assert [t for t, _ in _docs(pqf, max_record_bytes=1000, on_error="skip", stats=stats)] == ["ok", "fine"]
    assert stats.skipped == Counter(record_too_large=1)


# ---- damaged, truncated and mislabelled streams -------------------------------------------------------------


def _mono_raw() -> bytes:
    src = CORPUS / "mono" / "en.jsonl.zst"
    if not src.is_file():
        pytest.skip("the shared corpus is not here")
    raw = zstandard.ZstdDecompressor().stream_reader(src.open("rb")).read()
    while len(raw) < 4 * MB:
        raw += raw
    return raw


@pytest.mark.parametrize("kind", ["zst", "gz"])
@pytest.mark.parametrize("where", [0.3, 0.55, 0.8])
def test_damage_keeps_every_record_before_it(tmp_path: Path, kind: str, where: float) -> None:
    """One flipped byte: every record decoded before the damage is kept (with its line number), the damage is
    reported once with the byte offset, and nothing after it is taken for data silently."""
    raw = _mono_raw()
    packed = zstandard.ZstdCompressor(level=3, write_checksum=True).compress(raw) if kind == "zst" else \
        gzip.compress(raw, 6)
    good = tmp_path / f"good.jsonl.{kind}"
    good.write_bytes(packed)
    bad = tmp_path / f"bad.jsonl.{kind}"
    damaged = bytearray(packed)
    at = int(len(damaged) * where)
    damaged[at] ^= 0x55
    bad.write_bytes(bytes(damaged))
    reference = _docs(good)
    # what the decoder delivers before it reports the damage; its first wrong byte is where the damage shows
    out = bytearray()
    with pytest.raises(Corrupt) as info:
        for c in open_chunks(str(bad)):
            out += c
    assert at <= info.value.offset <= len(packed)
    first_wrong = next((i for i, (a, b) in enumerate(zip(out, raw, strict=False)) if a != b), len(out))
    intact = raw.count(b"\n", 0, first_wrong)  # complete lines before the damage
    assert intact > 0.2 * where * raw.count(b"\n")  # the damage is found near the flipped byte, not at line 0
    with pytest.raises(InputFormatError, match=rf"^{bad}"):
        _docs(bad)
    stats = ReadStats()
    kept = _docs(bad, on_error="skip", stats=stats)
    assert stats.skipped["corrupt_stream"] == 1
    msg = stats.first_skip["corrupt_stream"]
    assert f"data at byte {info.value.offset:,} of the file" in msg and "were read" in msg
    assert [d for d in kept if d[1] <= intact] == [d for d in reference if d[1] <= intact]
    if kind == "zst":  # zstd delivers whole blocks: as much as its own CLI decodes before the error
        assert first_wrong == len(out) or len(out) - first_wrong < 1 << 17


@pytest.mark.parametrize("kind", ["zst", "gz"])
def test_truncated_file_keeps_complete_lines(tmp_path: Path, kind: str) -> None:
    raw = b"".join(json.dumps({"text": f"doc {i} " + "w" * (i % 97)}).encode() + b"\n" for i in range(20000))
    packed = zstandard.ZstdCompressor().compress(raw) if kind == "zst" else gzip.compress(raw)
    p = tmp_path / f"cut.jsonl.{kind}"
    p.write_bytes(packed[: len(packed) // 2])
    stats = ReadStats()
    kept = _docs(p, on_error="skip", stats=stats)
    assert stats.skipped == Counter(truncated_stream=1)
    assert f"at byte {len(packed) // 2:,}" in stats.first_skip["truncated_stream"]
    assert len(kept) > 1000 and [t for t, _ in kept] == [f"doc {i} " + "w" * (i % 97) for i in range(len(kept))]
    if kind == "zst":  # the shard summary names the file, the byte and the lines read
        code, out, _ = _shard(tmp_path, p, "--on-error", "skip")
        assert code == 0 and "skipped: truncated_stream=1" in out, out[-2000:]
        assert f"first truncated_stream: {p}: the file ends inside a zstd frame at byte {len(packed) // 2:,}" in out
        assert f"lines 1-{len(kept)} were read" in out


def test_mislabelled_garbage_appended_and_empty(tmp_path: Path) -> None:
    recs = b'{"text": "one"}\n{"text": "two"}\n'
    cases = {
        "plain.jsonl.zst": (recs, r"not zstd data \(it looks like uncompressed data"),
        "zstd.jsonl.gz": (zstandard.ZstdCompressor().compress(recs),
                          r"not gzip data \(it is zstd data: its name should end in .zst"),
        "gzip.jsonl.zst": (gzip.compress(recs), r"not zstd data \(it is gzip data"),
        "tail.jsonl.gz": (gzip.compress(recs) + b"garbage!", r"the gzip data ends at byte \d+ and what follows is not"),
        "tail.jsonl.zst": (zstandard.ZstdCompressor().compress(recs) + b"\0" * 64, r"the zstd data ends at byte \d+"),
    }
    for name, (data, pattern) in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(InputFormatError, match=rf"^{p}: {pattern}"):
            _docs(p)
        stats = ReadStats()
        kept = _docs(p, on_error="skip", stats=stats)
        assert sum(stats.skipped.values()) == 1, name
        assert kept == ([("one", 1), ("two", 2)] if name.startswith("tail") else []), name
    for name in ("empty.jsonl", "empty.jsonl.zst", "empty.jsonl.gz", "empty.txt"):
        (tmp_path / name).write_bytes(b"")
        assert _docs(tmp_path / name) == []


def test_non_regular_files_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(InputFormatError, match=rf"{fifo}: not a regular file \(a FIFO\)"):
        _docs(fifo)
    dev = tmp_path / "zero.jsonl"
    dev.symlink_to("/dev/zero")
    with pytest.raises(InputFormatError, match=rf"{dev}: not a regular file \(a character device\)"):
        _docs(dev)
    with pytest.raises(InputFormatError, match=r"/dev/zero: not a regular file \(a character device\)"):
        _docs(Path("/dev/zero"))
    plain = tmp_path / "packed.jsonl"  # compressed data under a plain name
    plain.write_bytes(gzip.compress(b'{"text": "x"}\n'))
    with pytest.raises(InputFormatError, match=rf"{plain}: compressed data in a file named as plain text \(it is gzip"):
        _docs(plain)


def test_nul_bytes_and_invalid_utf8_are_records_not_crashes(tmp_path: Path, json_path: str) -> None:
    p = tmp_path / "n.jsonl"
    p.write_bytes(b'{"text": "a\\u0000b"}\n\x00\x00\x00\n{"text": "\xff"}\n{"text": "ok"}\n')
    stats = ReadStats()
    assert _docs(p, on_error="skip", stats=stats) == [("a\x00b", 1), ("ok", 4)]
    assert stats.skipped == Counter(invalid_json=1, invalid_utf8=1)


def test_vocab_train_and_audit_read_with_the_limit(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rwkv_data.cli import cli

    p = tmp_path / "en.jsonl"
    p.write_bytes(b'{"text": "ok", "lang": "en"}\n{"text": "' + b"x" * 500 + b'", "lang": "en"}\n')
    result = CliRunner().invoke(cli, ["vocab", "train", str(p), "-o", str(tmp_path / "v.txt"),
                                      "--max-record-bytes", "100"])
    assert isinstance(result.exception, InputFormatError)
    assert f"{p}:2: line longer than 100 bytes" in str(result.exception)
    bomb = tmp_path / "bomb.jsonl.zst"
    _zst_line_bomb(bomb, 80 * MB)
    from rwkv_data.pipelines.audit.corpus import is_parallel_file

    with pytest.raises(InputFormatError, match=rf"{bomb}:1: a line longer than 67,108,864 bytes"):
        is_parallel_file(bomb)


def test_encode_input_is_bounded(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rwkv_data.cli import cli

    result = CliRunner().invoke(cli, ["encode", "--file", "/dev/zero"])
    assert isinstance(result.exception, InputFormatError)
    assert str(result.exception).startswith("/dev/zero: over 67,108,864 bytes; encode reads one document")


# ---- language codes, folders, datasets metadata ---------------------------------------------------------------

BAD_LANGS = {"empty": '""', "number": "5", "list": '["en"]', "huge": '"' + "q" * 5000 + '"', "path": '"../../x"',
             "newline": '"e\\nn"', "nul": '"e\\u0000n"', "backslash": '"a\\\\b"', "bell": '"\\u0007"'}


@pytest.mark.parametrize("case", sorted(BAD_LANGS))
def test_a_language_field_that_is_not_a_code(tmp_path: Path, case: str, json_path: str) -> None:
    """Refused (or counted as bad_lang) the same way by the native batch scanner and the per-record path; the
    error line stays short however long the value."""
    p = tmp_path / "l.jsonl"
    p.write_text('{"text": "a", "lang": "en"}\n{"text": "b", "lang": ' + BAD_LANGS[case] + '}\n'
                 '{"text": "c", "lang": "español"}\n', encoding="utf-8")
    with pytest.raises(InputFormatError, match=rf"^{p}:2: field 'lang' is .*not a language code") as info:
        _docs(p)
    assert len(str(info.value)) < 400
    stats = ReadStats()
    got = [(d.text, d.lang) for d in iter_documents(p, on_error="skip", stats=stats)]
    assert got == [("a", "en"), ("c", "español")]
    assert stats.skipped == Counter(bad_lang=1)
    st2 = ReadStats()
    batches = list(iter_unit_batches(Unit("jsonl", str(p)), ReadOptions(on_error="skip"), st2))
    assert [lg for b in batches for lg in b.langs] == ["en", "español"] and st2.skipped == Counter(bad_lang=1)


def test_more_languages_than_a_shard_can_index(tmp_path: Path) -> None:
    p = tmp_path / "many.jsonl"
    p.write_bytes(b"".join(b'{"text": "x", "lang": "l%d"}\n' % i for i in range((1 << 16) + 5)))
    code, out, _ = _shard(tmp_path, p)
    assert code == 1 and f"error: {p}: 65,541 distinct language codes, more than the 65,536" in out, out[-2000:]
    assert "Traceback" not in out and not (tmp_path / "out" / "p.bin").exists()


def test_linked_folders_are_read_once_and_loops_end(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.jsonl").write_text('{"text": "linked"}\n')
    top = tmp_path / "top"
    top.mkdir()
    (top / "b.jsonl").write_text('{"text": "own"}\n')
    (top / "data").symlink_to(real)  # a linked folder of data: read, not silently skipped
    (top / "loop").symlink_to(top)  # a loop: not followed twice
    (top / "again").symlink_to(real)  # the same folder twice: read once
    units = expand_inputs([top], ReadOptions())
    assert [Path(u.path).name for u in units] == ["b.jsonl", "a.jsonl"]
    with pytest.raises(InputFormatError, match="an empty input name"):
        expand_inputs([""], ReadOptions())  # not the current folder


@pytest.mark.parametrize(("name", "body", "needle"), [
    ("state.json", "{not json", "state.json: not valid JSON"),
    ("state.json", "[]", "state.json: a JSON list"),
    ("state.json", '{"_data_files": "x.arrow"}', "'_data_files' is not a list"),
    ("state.json", '{"_data_files": [{"filename": "../x.arrow"}]}', "'_data_files' is not a list"),
    ("dataset_dict.json", '{"nosplits": 1}', "no list of split names"),
    ("dataset_dict.json", "[1]", "dataset_dict.json: a JSON list"),
])
def test_damaged_datasets_metadata_is_named(tmp_path: Path, name: str, body: str, needle: str) -> None:
    d = tmp_path / "ds"
    d.mkdir()
    (d / name).write_text(body)
    with pytest.raises(InputFormatError, match=re.escape(needle)):
        expand_inputs([d], ReadOptions())
