"""Ids identical to rwkv's TRIE_TOKENIZER on the shared corpus, for the native core and the Python reference.

The native core is compared on every document of ../shared/corpus/udhr.jsonl.zst and mono/*.jsonl.zst
(about 137 MB); the Python reference on all of UDHR plus every 12th mono document (over 10 MB). The
rwkv reference ids are computed once per session (about 30 s). Skipped only when ../shared/corpus is absent.

Run: pytest tests/tokenizer/test_tokenizer_corpus_parity.py
"""

from __future__ import annotations

import numpy as np
import pytest
from tokenizer_testlib import corpus_documents, corpus_reference_ids, world

pytestmark = pytest.mark.slow


def _first_diff(a: bytes, b: bytes) -> str:
    x, y = np.frombuffer(a, np.uint16), np.frombuffer(b, np.uint16)
    n = min(len(x), len(y))
    k = int(np.argmax(x[:n] != y[:n])) if n and (x[:n] != y[:n]).any() else n
    return f"first difference at id #{k}: ours {x[k:k + 5].tolist()} vs rwkv {y[k:k + 5].tolist()}"


def _python_subset(labels: list[str]) -> list[int]:
    return [k for k, label in enumerate(labels) if label.startswith("udhr") or k % 12 == 0]


def test_native_matches_rwkv_on_every_document() -> None:
    tok = world("native")
    assert tok.impl == "native"
    docs, ref = corpus_documents(), corpus_reference_ids()
    bad = []
    for (label, text), want in zip(docs, ref, strict=True):
        got = tok.encode_array(text).tobytes()
        if got != want:
            bad.append(f"{label}: {_first_diff(got, want)}")
    assert not bad, f"{len(bad)} of {len(docs)} documents differ:\n" + "\n".join(bad[:10])
    # the list and batch paths on a slice (the same C matcher, other output builders)
    some = range(0, len(docs), 7)
    assert all(np.asarray(tok.encode(docs[k][1]), np.uint16).tobytes() == ref[k] for k in some)
    batch = tok.encode_batch([docs[k][1] for k in some], num_threads=2, as_array=True)
    assert all(b.tobytes() == ref[k] for b, k in zip(batch, some, strict=True))


def test_python_reference_matches_rwkv_on_udhr_and_a_10mb_subset() -> None:
    tok = world("python")
    assert tok.impl == "python"
    docs, ref = corpus_documents(), corpus_reference_ids()
    chosen = _python_subset([label for label, _ in docs])
    mono_bytes = sum(len(docs[k][1].encode()) for k in chosen if not docs[k][0].startswith("udhr"))
    assert mono_bytes > 10_000_000
    bad = []
    for k in chosen:
        got = np.asarray(tok.encode(docs[k][1]), np.uint16).tobytes()
        if got != ref[k]:
            bad.append(f"{docs[k][0]}: {_first_diff(got, ref[k])}")
    assert not bad, f"{len(bad)} of {len(chosen)} documents differ:\n" + "\n".join(bad[:10])


def test_decode_round_trips_every_document() -> None:
    tok = world("native")
    docs, ref = corpus_documents(), corpus_reference_ids()
    for (label, text), ids in zip(docs, ref, strict=True):
        assert tok.decode(np.frombuffer(ids, np.uint16)) == text, label
