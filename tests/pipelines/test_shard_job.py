"""The shard job end to end: every input format into binidx read back by a spec reader (per item and as
RWKV-LM's sampler reads the flat stream), uint16 and int32, meta counts against recomputed counts, the
validation split, weighting, shuffle determinism, worker-count and bucket-size invariance, bad input.

Run: pytest tests/pipelines/test_shard_job.py
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from shard_testlib import output_bytes, rwkv_windows, spec_read, write_corpus, write_vocab

from rwkv_data.config import ShardConfig
from rwkv_data.errors import ConfigError, InputFormatError
from rwkv_data.pipelines.shard.job import run, validation_split_of
from rwkv_data.pipelines.shard.parts import doc_key
from rwkv_data.tokenizer import TrieTokenizer


def _cfg(inputs: list[Path], out: Path, vocab: Path, **kw: object) -> ShardConfig:
    base = {"val_fraction": 0.1, "val_min_docs": 3, "ctx_lens": (16, 64), "progress": False}
    return ShardConfig(inputs=tuple(map(str, inputs)), output=str(out), vocab=str(vocab), **{**base, **kw})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[dict[str, str]], Path]:
    root = tmp_path_factory.mktemp("corpus")
    inputs, docs = write_corpus(root, hf=True)
    return inputs, docs, write_vocab(root / "vocab.txt")


@pytest.fixture(scope="module")
def baseline(corpus, tmp_path_factory) -> tuple[Path, dict]:
    inputs, _, vocab = corpus
    out = tmp_path_factory.mktemp("base") / "P"
    return out, run(_cfg(inputs, out, vocab, workers=1))


def _decode_all(prefix: Path, tok: TrieTokenizer) -> list[str]:
    return [tok.decode(item[:-1].tolist()) for item in spec_read(prefix)["items"]]


def test_items_are_the_documents_followed_by_eos(corpus, baseline) -> None:
    inputs, docs, vocab = corpus
    prefix, metas = baseline
    tok = TrieTokenizer.from_file(vocab)
    train, val = spec_read(prefix), spec_read(f"{prefix}_val")
    assert train["code"] == val["code"] == 8
    expected = Counter(tuple(tok.encode(d["text"])) + (0,) for d in docs)
    got = Counter(tuple(item.tolist()) for s in (train, val) for item in s["items"])
    assert got == expected, "P + P_val hold every document exactly once, each followed by 0"
    for s in (train, val):
        assert s["doc_idx"].tolist() == list(range(len(s["items"]) + 1))
        stream = np.concatenate(s["items"])
        assert np.array_equal(stream, s["flat"]), "items tile the .bin with no gap"
        for i, w in enumerate(rwkv_windows(s["flat"], 16)):  # RWKV-LM get(idx=0, offset=i*ctx, length=ctx+1)
            assert w.tolist() == stream[i * 16:i * 16 + 17].tolist()
    assert metas["train"]["rwkv_lm"][0]["my_exit_tokens"] == train["flat"].size


def test_int32_when_the_vocab_has_ids_above_65535(corpus, tmp_path: Path) -> None:
    inputs, docs, _ = corpus
    vocab = write_vocab(tmp_path / "big.txt", big=True)
    metas = run(_cfg(inputs[:2], tmp_path / "P", vocab))
    s = spec_read(tmp_path / "P")
    assert s["code"] == 4 and metas["train"]["dtype"] == "int32" and metas["train"]["dtype_code"] == 4
    assert int(s["flat"].max()) >= 70_000, "the corpus uses the big ids"
    tok = TrieTokenizer.from_file(vocab)
    texts = Counter(_decode_all(tmp_path / "P", tok) + _decode_all(tmp_path / "P_val", tok))
    assert texts == Counter(d["text"] for d in docs[:len(docs) // 5 * 2])


def test_meta_counts_equal_recomputed_counts(corpus, baseline) -> None:
    _, docs, vocab = corpus
    prefix, metas = baseline
    tok = TrieTokenizer.from_file(vocab)
    for split, p in (("train", prefix), ("val", Path(f"{prefix}_val"))):
        meta = json.loads(Path(f"{p}.meta.json").read_text())
        assert meta == json.loads(json.dumps(metas[split]))
        s = spec_read(p)
        langs = np.load(f"{p}.lang.npy")
        assert langs.shape == (len(s["items"]),)
        table: dict[str, Counter] = {}
        for item, li in zip(s["items"], langs, strict=True):
            text = tok.decode(item[:-1].tolist())
            c = table.setdefault(meta["languages"][li], Counter())
            c.update(documents=1, tokens=item.size, bytes=len(text.encode()), characters=len(text))
        for lg, c in meta["per_language"].items():
            assert {k: c[k] for k in ("documents", "tokens", "bytes", "characters")} == \
                   {k: table.get(lg, Counter())[k] for k in ("documents", "tokens", "bytes", "characters")}
        assert meta["tokens"] == s["flat"].size and meta["items"] == meta["documents"] == len(s["items"])
        assert meta["sha256"]["bin"] and meta["skipped"] == {}
    src = metas["train"]["input"]
    assert src["documents"] == len(docs) == metas["train"]["documents"] + metas["val"]["documents"]
    assert src["tokens"] == metas["train"]["tokens"] + metas["val"]["tokens"]


def test_validation_split_per_language(corpus, baseline) -> None:
    _, docs, vocab = corpus
    prefix, metas = baseline
    val = metas["val"]["per_language"]
    for lg in ("de", "en", "ja", "sw"):
        assert val[lg]["documents"] >= 3, "min docs per language"
    assert val["und"]["documents"] == 0 and metas["train"]["per_language"]["und"]["documents"] == 1
    tok = TrieTokenizer.from_file(vocab)
    val_texts = set(_decode_all(Path(f"{prefix}_val"), tok))
    assert (docs[3]["text"] in val_texts) == (docs[7]["text"] in val_texts)


def test_validation_split_of_names_the_jobs_validation_documents(corpus, baseline) -> None:
    """``validation_split_of`` (what ``rwkv-data run`` keeps out of the vocabulary) applies the job's rule:
    it flags exactly the documents found in P_val, per language as the meta counts them, with both the hash
    fraction and the per-language minimum at work."""
    inputs, docs, vocab = corpus
    prefix, metas = baseline
    split = validation_split_of(_cfg(inputs, prefix, vocab))
    val_texts = Counter(_decode_all(Path(f"{prefix}_val"), TrieTokenizer.from_file(vocab)))
    flagged = [d for d in docs if split.is_validation(d["text"], d.get("lang") or "und")]
    assert Counter(d["text"] for d in flagged) == val_texts
    per_lang = Counter(d.get("lang") or "und" for d in flagged)
    assert {lg: c["documents"] for lg, c in metas["val"]["per_language"].items() if c["documents"]} == per_lang
    assert any(split.is_validation(d["text"].encode(), d.get("lang") or "und") and doc_key(d["text"].encode())
               < split.threshold for d in docs), "some documents go to validation by the hash fraction"
    assert split.has_cutoff.any(), "and some by the per-language minimum"


def test_worker_count_seed_and_bucket_size(corpus, baseline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rwkv_data.pipelines.shard.merge as merge
    import rwkv_data.pipelines.shard.window_copy as window_copy

    inputs, _, vocab = corpus
    prefix, metas = baseline
    # 64 bytes: a mapped window per document or two, filled by 2 threads at once, and document records read 3
    # at a time (chunks spanning parts, parts spanning chunks); 4096 bytes with at most 2 part files open:
    # windows spanning many parts, read in groups of 2 on one thread
    for copy_bytes, open_parts, chunk in ((64, window_copy.OPEN_PARTS, 3), (4096, 2, merge.CHUNK_DOCS)):
        monkeypatch.setattr(window_copy, "COPY_BYTES", copy_bytes)
        monkeypatch.setattr(window_copy, "OPEN_PARTS", open_parts)
        monkeypatch.setattr(merge, "CHUNK_DOCS", chunk)
        m2 = run(_cfg(inputs, tmp_path / f"w{copy_bytes}" / "P", vocab, workers=2, bucket_docs=5))
        assert output_bytes(tmp_path / f"w{copy_bytes}" / "P").keys() == output_bytes(prefix).keys()
        for k, v in output_bytes(prefix).items():
            if not k.endswith(".meta.json"):
                assert output_bytes(tmp_path / f"w{copy_bytes}" / "P")[k] == v, f"{k} differs ({copy_bytes})"
        assert m2["train"]["sha256"] == metas["train"]["sha256"]
    m3 = run(_cfg(inputs, tmp_path / "s1" / "P", vocab, seed=1))
    assert m3["train"]["sha256"] != metas["train"]["sha256"], "another seed, another order"
    assert m3["val"]["per_language"] == metas["val"]["per_language"], "the split does not depend on the seed"


def test_record_chunks_do_not_change_mixing(corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights, copies and the per-language validation minimum, computed over chunks of document records that
    span parts, give the bytes of one chunk holding every record."""
    import rwkv_data.pipelines.shard.merge as merge

    inputs, _, vocab = corpus
    opts = {"temperature": 0.5, "val_min_docs": 3, "seed": 5}
    one = run(_cfg(inputs, tmp_path / "one" / "P", vocab, **opts))
    monkeypatch.setattr(merge, "CHUNK_DOCS", 2)
    small = run(_cfg(inputs, tmp_path / "small" / "P", vocab, **opts))
    assert one["train"]["input"]["documents"] > 5 * merge.CHUNK_DOCS, "the records span many chunks"
    for split in ("train", "val"):
        assert small[split]["sha256"] == one[split]["sha256"]
        assert small[split]["per_language"] == one[split]["per_language"]
    files = {k: v for k, v in output_bytes(tmp_path / "one" / "P").items() if not k.endswith(".meta.json")}
    assert files and all(output_bytes(tmp_path / "small" / "P")[k] == v for k, v in files.items())


def test_language_budgets_and_temperature(corpus, tmp_path: Path) -> None:
    inputs, _, vocab = corpus
    base = run(_cfg(inputs, tmp_path / "a" / "P", vocab))["train"]["per_language"]
    m = run(_cfg(inputs, tmp_path / "b" / "P", vocab, lang_budgets={"en": base["en"]["tokens"] * 3,
                                                                    "ja": base["ja"]["tokens"] // 2}))["train"]
    pl = m["per_language"]
    assert m["mixing"]["method"] == "budgets" and pl["en"]["weight"] == pytest.approx(3.0, rel=1e-6)
    assert pl["en"]["documents"] == 3 * base["en"]["documents"], "integer weight: exact repeats"
    assert 0.2 < pl["ja"]["tokens"] / base["ja"]["tokens"] < 0.8 and pl["de"] == {**base["de"], "weight": 1.0}
    t = run(_cfg(inputs, tmp_path / "c" / "P", vocab, temperature=100.0))["train"]["per_language"]
    assert t["und"]["weight"] > 5 > t["en"]["weight"], "a high temperature flattens toward uniform"
    with pytest.raises(ConfigError, match="not both"):
        run(_cfg(inputs, tmp_path / "d" / "P", vocab, temperature=2.0, lang_budgets={"en": 10}))
    with pytest.raises(ConfigError, match="not in the corpus"):
        run(_cfg(inputs, tmp_path / "d" / "P", vocab, lang_budgets={"xx": 10}))


def test_bad_input_stops_or_is_counted(tmp_path: Path) -> None:
    vocab = write_vocab(tmp_path / "v.txt")
    p = tmp_path / "bad.jsonl"
    p.write_bytes(b'{"text": "good one", "lang": "en"}\n{"text": 5}\nnot json\n{"text": ""}\n'
                  b'{"body": "x"}\n{"text": "caf\xe9"}\n{"text": "good two"}\n')
    with pytest.raises(InputFormatError, match=r"bad\.jsonl:2: field 'text' is int"):
        run(_cfg([p], tmp_path / "r" / "P", vocab))
    m = run(_cfg([p], tmp_path / "s" / "P", vocab, on_error="skip"))["train"]
    assert m["skipped"] == {"empty_text": 1, "invalid_json": 1, "invalid_utf8": 1, "missing_field": 1,
                            "non_string_text": 1}
    assert m["input"]["documents"] == 2 and "bad.jsonl:3" in m["skipped_examples"]["invalid_json"]
    with pytest.raises(ConfigError, match="no inputs"):
        run(ShardConfig(output=str(tmp_path / "x")))


def test_custom_work_dir_keeps_foreign_files_and_output_parent_is_made(corpus, tmp_path: Path) -> None:
    inputs, _, vocab = corpus
    work = tmp_path / "work"
    work.mkdir()
    (work / "mine.txt").write_text("not the job's")
    run(_cfg(inputs[:1], tmp_path / "new" / "dir" / "P", vocab, work_dir=str(work)))
    assert [p.name for p in work.iterdir()] == ["mine.txt"]
    assert Path(f"{tmp_path}/new/dir/P.meta.json").is_file()


def test_default_workers_one_per_cpu_same_bytes(corpus, baseline, tmp_path: Path) -> None:
    inputs, _, vocab = corpus
    prefix, metas = baseline
    assert ShardConfig().workers == 0
    m = run(_cfg(inputs, tmp_path / "d" / "P", vocab))  # workers 0: one process per CPU
    assert m["train"]["sha256"] == metas["train"]["sha256"] and m["val"]["sha256"] == metas["val"]["sha256"]
    assert "workers" not in m["train"]["config"]
    with pytest.raises(ConfigError, match=r"workers \(--workers\) must be an integer in \[0, 4096\]"):
        run(_cfg(inputs, tmp_path / "n" / "P", vocab, workers=-1))


def test_a_damaged_part_fails_the_merge_naming_it(corpus, tmp_path: Path) -> None:
    """A part file cut short after its marker was written: the merge stops with an error naming the file and
    leaves no half-written output."""
    inputs, _, vocab = corpus
    cfg = _cfg(inputs, tmp_path / "P", vocab, workers=1, keep_work=True)
    run(cfg)
    part = max((tmp_path / "P.work" / "parts").glob("part-*.bin"), key=lambda p: p.stat().st_size)
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
    with pytest.raises(OSError, match=rf"{part.stem}\.bin: short read .* delete .*{part.stem}\.done"):
        run(cfg)
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "P.meta.json").exists()
    (part.parent / f"{part.stem}.done").unlink()  # as the message says: that part is rebuilt, the job completes
    assert run(cfg)["train"]["documents"] > 0
