"""Build the native parts (plain C, CPython API, no third-party headers): the tokenizer's trie core and the
JSON Lines reader's fast path.

Everything else about the package lives in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "rwkv_data.tokenizer._trie_native",
            sources=["tokenizer/_native/trie_native.c", "tokenizer/_native/trie_core.c"],
            depends=["tokenizer/_native/trie_core.h"],
            extra_compile_args=["-O3", "-std=c11", "-pthread"],
            extra_link_args=["-pthread"],
            optional=False,
        ),
        Extension(
            "rwkv_data.pipelines._jsonl_native",
            sources=["pipelines/_native/jsonl_native.c"],
            extra_compile_args=["-O3", "-std=c11"],
            optional=False,
        ),
    ]
)
