"""Import allow-lists of the kernels and model packages (stricter than tests/test_boundaries.py's deny-lists).

kernels: stdlib, torch, rwkv_data.errors and itself. model: stdlib, torch, rwkv_data.errors, itself and
rwkv_data.kernels through its __init__ only (never rwkv_data.kernels.<module>).
Run: pytest tests/model/test_model_layering.py -q
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "kernels": lambda name: name in ("torch", "rwkv_data.errors") or name.startswith(("torch.", "rwkv_data.kernels")),
    "model": lambda name: (name in ("torch", "rwkv_data.errors", "rwkv_data.atomic", "rwkv_data.fsmode",
                                    "rwkv_data.kernels")
                           or name.startswith(("torch.", "rwkv_data.model"))),
}


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, "." * node.level + (node.module or "")))
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_are_on_the_allow_list(folder: str) -> None:
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for lineno, name in imports(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if not ALLOWED[folder](name):
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
    assert not bad, "\n".join(bad)
