"""Make tests/kernels/wkv7_cases.py importable as ``wkv7_cases`` (shared with benchmarks/wkv7_*.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
