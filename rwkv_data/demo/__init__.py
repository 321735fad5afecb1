"""The demo corpus that ships with rwkv-data: short original texts written by this project.

``corpus.jsonl`` holds one JSON object per line: ``{"text", "lang", "script", "id"}``, where ``lang`` is a
BCP-47 tag, ``script`` an ISO 15924 code and ``id`` is ``"<lang>-<n>"``. See ``README.md`` next to it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

__all__ = ["LANGUAGE_NAMES", "demo_corpus_path", "language_table", "load_demo"]

# English names of the languages in the demo corpus, by BCP-47 tag.
LANGUAGE_NAMES: dict[str, str] = {
    "am": "Amharic", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "de": "German", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "gu": "Gujarati", "ha": "Hausa", "he": "Hebrew", "hi": "Hindi", "hy": "Armenian", "id": "Indonesian",
    "ja": "Japanese", "ka": "Georgian", "km": "Khmer", "ko": "Korean", "mr": "Marathi", "ne": "Nepali",
    "pl": "Polish", "pt": "Portuguese", "ru": "Russian", "sw": "Swahili", "ta": "Tamil", "te": "Telugu",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "yo": "Yoruba",
    "zh-Hans": "Chinese (Simplified)", "zu": "Zulu",
}


def demo_corpus_path() -> Path:
    """Path of the shipped ``corpus.jsonl`` (package data, next to this module)."""
    return Path(__file__).resolve().parent / "corpus.jsonl"


def load_demo() -> list[dict]:
    """All demo records, in file order (sorted by ``lang``, then ``id``)."""
    with demo_corpus_path().open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def language_table(records: list[dict] | None = None) -> str:
    """The Markdown table of README.md: code, name, script, documents and UTF-8 bytes of text per language."""
    docs: dict[str, int] = defaultdict(int)
    size: dict[str, int] = defaultdict(int)
    script: dict[str, str] = {}
    for r in load_demo() if records is None else records:
        docs[r["lang"]] += 1
        size[r["lang"]] += len(r["text"].encode("utf-8"))
        script[r["lang"]] = r["script"]
    lines = ["| Code | Language | Script | Documents | Bytes |", "|---|---|---|---:|---:|"]
    for lang in sorted(docs):
        lines.append(f"| {lang} | {LANGUAGE_NAMES.get(lang, lang)} | {script[lang]} | {docs[lang]} | {size[lang]} |")
    lines.append(f"| **all** | {len(docs)} languages | {len(set(script.values()))} scripts "
                 f"| {sum(docs.values())} | {sum(size.values())} |")
    return "\n".join(lines)
