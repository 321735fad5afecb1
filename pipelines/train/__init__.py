"""rwkv_data.pipelines.train: RWKV-7 training, evaluation and fine-tuning on binidx shards.

``job`` is ``rwkv-data train`` (the loop, checkpoints, exact resume); ``evaluate`` gives bits per byte per
language; ``finetune`` continues an official checkpoint (vocab growth, freezing, LoRA, replay);
``modelio``, ``sampler``, ``optim`` and ``distributed`` are their shared parts.
"""
