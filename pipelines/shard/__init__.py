"""rwkv_data.pipelines.shard: corpora to RWKV-LM binidx shards, and the checks of a shard.

``job`` runs ``rwkv-data shard``: ``parts`` tokenizes one input unit, built by one of the ``executors`` (local
processes, or Ray tasks in ``ray_executor``), then ``merge`` writes the shards (``validation`` decides the
validation split, ``mixing`` the language weights and the shuffle order, ``window_copy`` copies the documents
into the output); ``binidx`` reads and writes the MMIDIDX format; ``meta`` reads ``P.meta.json`` and the
tokenizer a shard was written with; ``check`` holds ``verify`` and ``inspect``. Torch is never imported here.
"""
