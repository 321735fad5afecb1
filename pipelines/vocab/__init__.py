"""rwkv_data.pipelines.vocab: the ``vocab train`` and ``vocab extend`` jobs (corpus in, vocab file out).

The trainers themselves live in :mod:`rwkv_data.tokenizer` (vocab_train, vocab_select, vocab_extend).
"""
