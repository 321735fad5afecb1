"""From a :class:`~rwkv_data.config.CorpusSpec` to the readers: one way for every job to read its corpus.

>>> docs = documents(CorpusSpec(inputs=("corpus/",), text_field="content", lang_field="language"))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator

from rwkv_data.config import CorpusSpec
from rwkv_data.pipelines.corpus.documents import Document, ReadOptions, ReadStats
from rwkv_data.pipelines.corpus.inputs import expand_inputs
from rwkv_data.pipelines.corpus.readers import iter_unit


def read_options(spec: CorpusSpec) -> ReadOptions:
    """The readers' options of ``spec`` (its inputs aside)."""
    return ReadOptions(text_field=spec.text_field, lang_field=spec.lang_field, lang=spec.lang or None,
                       on_error=spec.on_error, split_paragraphs=spec.split_paragraphs,  # type: ignore[arg-type]
                       hf_split=spec.hf_split, max_record_bytes=spec.max_record_bytes)


def documents(spec: CorpusSpec, stats: ReadStats | None = None) -> Iterator[Document]:
    """Stream the documents of ``spec.inputs`` in input order (skipped records counted in ``stats``)."""
    opts = read_options(spec)
    st = stats if stats is not None else ReadStats()
    for unit in expand_inputs(list(spec.inputs), opts):
        yield from iter_unit(unit, opts, st)
