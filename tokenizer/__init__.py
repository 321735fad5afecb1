"""rwkv_data.tokenizer: the RWKV World-compatible trie tokenizer (never imports torch)."""

from __future__ import annotations


class TrieTokenizer:  # placeholder until issue 2 lands
    """Greedy longest-match byte-level trie tokenizer."""


__all__ = ["TrieTokenizer"]
