"""``rwkv-data compare``: per-language bits per byte of tokenizer variants on one held-out set (docs/compare.md).

Modules: :mod:`.spec` (config file, variant specs), :mod:`.heldout` (the held-out documents, chosen by content),
:mod:`.stats` (paired bootstrap, verdicts, seed spread; no torch), :mod:`.job` (the stages), :mod:`.report`
(JSON, CSV, HTML with plots).
"""
