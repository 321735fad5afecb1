"""rwkv_data.pipelines.shard: corpora to RWKV-LM binidx shards, and the checks of a shard.

``job`` runs ``rwkv-data shard`` (parts built by local processes or ``ray_executor``, then ``merge``);
``parts`` tokenizes one input unit; ``binidx`` reads and writes the MMIDIDX format; ``check`` holds
``verify`` and ``inspect``. Torch is never imported here.
"""
