"""rwkv_data.pipelines.audit: tokenization efficiency per language and per tokenizer.

``job`` is ``rwkv-data audit``; ``corpus`` loads parallel or monolingual text; ``adapters`` wraps trie,
Hugging Face, tiktoken and SentencePiece tokenizers; ``metrics`` computes parity, fertility, fallback,
Rényi efficiency and the greedy gap; ``report`` renders the HTML report.
"""
