"""rwkv_data.pipelines: the jobs, one subpackage per area, and ``run`` on top.

- ``corpus``: reading text (txt, jsonl[.zst|.gz], parquet, Hugging Face datasets) into documents.
- ``vocab``: the vocabulary jobs (``vocab train``, ``vocab extend``) over the tokenizer's trainers.
- ``shard``: the shard job (parts, merge, binidx writer, Ray executor), ``verify`` and ``inspect``.
- ``train``: training, evaluation and fine-tuning of RWKV-7 (model io, sampler, optimiser, DDP).
- ``audit``: tokenization efficiency per language and tokenizer (metrics, adapters, HTML report).
- ``compare``: per-language bits per byte of tokenizer variants on the same held-out documents.
- ``run``: every stage in one run folder.

See docs/architecture.md for the data flow.
"""
