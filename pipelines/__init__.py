"""rwkv_data.pipelines: the jobs (shard, train, evaluate, audit, vocab, run)."""
