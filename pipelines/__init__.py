"""rwkv_data.pipelines: the jobs, one subpackage per area, and ``run`` on top.

- ``corpus``: reading text (txt, jsonl[.zst|.gz], parquet, Hugging Face datasets) into documents.
- ``vocab``: the vocabulary jobs (``vocab train``, ``vocab extend``) over the tokenizer's trainers.
- ``shard``: the shard job (parts, executors, merge, binidx writer, shard meta), ``verify`` and ``inspect``.
- ``train``: training, evaluation and fine-tuning of RWKV-7 (model io, sampler, optimiser, DDP).
- ``audit``: tokenization efficiency per language and tokenizer (metrics, adapters, HTML report).
- ``compare``: per-language bits per byte of tokenizer variants on the same held-out documents (it
  uses run's stage runner).
- ``jobs``: the job contract (config in, stats and output paths out; ``config.json``, ``stats.json``,
  ``.done``) and the table of jobs.
- ``run``: every stage in one run folder, as a table of stages (``run_config``, ``run_stage``, ``run_report``).

See docs/architecture.md for the data flow.
"""
