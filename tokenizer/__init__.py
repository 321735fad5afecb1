"""rwkv_data.tokenizer: the RWKV World-compatible trie tokenizer (never imports torch).

Greedy longest match over UTF-8 bytes, id for id identical to ``rwkv``'s ``TRIE_TOKENIZER``, with a native
C core (double-array trie, GIL released, numpy output) and a pure-Python reference (:mod:`.reference`, the
spec). Vocab files are read without ``eval`` (:mod:`.vocab`).

Worked example (World vocab; ids 1-256 are the single bytes, id = byte + 1):

>>> from rwkv_data.tokenizer import TrieTokenizer
>>> tok = TrieTokenizer.world()
>>> tok.encode("Hello, world")
[33155, 45, 40213]
>>> [(i, b) for i, b in tok.pieces("Hello, world")]
[(33155, b'Hello'), (45, b','), (40213, b' world')]
>>> tok.encode_bytes(b"\\xff")          # byte 0xff -> id 0xff + 1
[256]
>>> tok.encode_array("Hello, world").dtype
dtype('uint16')
>>> tok.decode([33155, 45, 40213])
'Hello, world'
>>> tok.encode("😀")                     # one emoji, three tokens: b'\\xf0\\x9f' + b'\\x98' + b'\\x80'
[3319, 153, 129]
>>> tok.decode([3319], errors="replace")   # half an emoji: only the bad bytes become U+FFFD
'\\ufffd'
>>> tok.decode_bytes([3319])
b'\\xf0\\x9f'
>>> [a.tolist() for a in tok.encode_batch(["Hello", "world"], num_threads=2, as_array=True)]
[[33155], [36017]]

``TrieTokenizer.from_file(path)`` loads any World-format ``.txt`` or ``.json`` vocab (ids above 65535 give
uint32 arrays); ``impl="python"`` selects the reference. :mod:`.resolve` turns a tokenizer spec (``world``,
a vocab path, ``hf:``/``tiktoken:``/``sp:`` paths, ``bytes``, with an optional ``label=``) into a tokenizer
(:func:`load_trie`). The vocabulary trainer (:mod:`.vocab_train` with
:mod:`.vocab_sample`, :mod:`.vocab_candidates`, :mod:`.vocab_select`; :mod:`.vocab_extend`)
takes its settings as :class:`.vocab_settings.VocabSettings`; nothing here imports ``rwkv_data.config``.
"""

from __future__ import annotations

from rwkv_data.tokenizer.resolve import TokenizerSpec, load_trie, parse_spec
from rwkv_data.tokenizer.tokenizer import TokenDecodeError, TrieTokenizer
from rwkv_data.tokenizer.vocab import Vocab, read_vocab, world_vocab_path, write_vocab

__all__ = ["TokenDecodeError", "TokenizerSpec", "TrieTokenizer", "Vocab", "load_trie", "parse_spec", "read_vocab",
           "world_vocab_path", "write_vocab"]
