"""Build the native parts (plain C, CPython API, no third-party headers): the tokenizer's trie core and the
pipelines' helpers (JSON Lines scanner, range gather).

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
            "rwkv_data.pipelines._native",
            sources=["pipelines/_native/module.c", "pipelines/_native/jsonl_scan.c", "pipelines/_native/gather.c"],
            depends=["pipelines/_native/pipelines_native.h"],
            extra_compile_args=["-O3", "-std=gnu11"],
            optional=False,
        ),
    ]
)
