"""rwkv_data.pipelines.corpus: corpora in, documents out.

``readers`` expands inputs and yields documents (text, language, origin) from txt, jsonl[.zst|.gz], parquet
and Hugging Face datasets, counting every skipped record; ``streams`` decompresses and splits lines;
``tables`` reads parquet and datasets; ``spec`` reads a corpus as a job's corpus spec
(``rwkv_data.config.CorpusSpec``) says, the one way every job reads text. Torch is never imported here.
"""
