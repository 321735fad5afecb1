"""Build the tokenizer's native core (plain C, CPython API, no third-party headers).

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
        )
    ]
)
