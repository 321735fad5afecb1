"""rwkv_data.pipelines.corpus: corpora in, documents out.

``readers`` expands inputs and yields documents (text, language, origin) from txt, jsonl[.zst|.gz], parquet
and Hugging Face datasets, counting every skipped record; ``streams`` decompresses and splits lines;
``tables`` reads parquet and datasets. Torch is never imported here.
"""
