"""rwkv_data.pipelines.corpus: corpora in, documents out.

``readers`` yields documents (text, language, origin) from txt, jsonl[.zst|.gz], parquet and Hugging Face
datasets, counting every skipped record: ``inputs`` resolves files, folders and globs into units of work,
``documents`` holds the documents, read options, stats and the error sink, ``text_readers`` reads jsonl and txt
lines, ``tables`` reads parquet and datasets; ``streams`` decompresses and splits lines; ``spec`` reads a corpus
as a job's corpus spec (``rwkv_data.config.CorpusSpec``) says, the one way every job reads text. Torch is never
imported here.
"""
