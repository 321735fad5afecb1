"""Module boundaries: imports flow tokenizer, kernels -> model -> pipelines -> cli, and light entry points.

Inside pipelines: corpus reads text for everyone; shard, vocab and audit use corpus but not train or run;
none of corpus, shard, vocab, audit (nor the tokenizer) imports torch. docs/architecture.md draws it.

Run: pytest tests/test_boundaries.py
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# folder -> (its package name, packages it must not import)
P = "rwkv_data.pipelines"
RUN = {f"{P}.run", f"{P}.run_config", f"{P}.run_stage", f"{P}.run_report", f"{P}.jobs"}
RULES = {
    "tokenizer": ("rwkv_data.tokenizer", {"torch", "rwkv_data.model", "rwkv_data.kernels", "rwkv_data.pipelines",
                                           "rwkv_data.cli", "rwkv_data.config", "rwkv_data.config_load"}),
    "kernels": ("rwkv_data.kernels", {"rwkv_data.tokenizer", "rwkv_data.model", "rwkv_data.pipelines",
                                      "rwkv_data.cli"}),
    "model": ("rwkv_data.model", {"rwkv_data.tokenizer", "rwkv_data.pipelines", "rwkv_data.cli"}),
    "pipelines": ("rwkv_data.pipelines", {"rwkv_data.cli"}),
    "pipelines/corpus": (f"{P}.corpus", {"torch", "rwkv_data.model", f"{P}.shard", f"{P}.train", f"{P}.audit",
                                         f"{P}.vocab", *RUN}),
    "pipelines/shard": (f"{P}.shard", {"torch", "rwkv_data.model", f"{P}.train", f"{P}.audit", f"{P}.vocab", *RUN}),
    "pipelines/vocab": (f"{P}.vocab", {"torch", "rwkv_data.model", f"{P}.train", f"{P}.audit", *RUN}),
    "pipelines/audit": (f"{P}.audit", {"torch", "rwkv_data.model", f"{P}.train", f"{P}.vocab", *RUN}),
}


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _forbidden(name: str, banned: set[str]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


@pytest.mark.parametrize("folder", sorted(RULES))
def test_imports_follow_the_layering(folder: str) -> None:
    _, banned = RULES[folder]
    bare = {"tokenizer", "model", "kernels", "pipelines"}
    bad = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for lineno, name in _imports(path):
            if _forbidden(name, banned):
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {name}")
            if name.split(".")[0] in bare:
                bad.append(f"{path.relative_to(ROOT)}:{lineno} imports bare {name}: use rwkv_data.{name}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_cli_modules_import_no_pipeline_at_top_level() -> None:
    files = sorted((ROOT / "rwkv_data" / "cli").glob("*.py")) or [ROOT / "rwkv_data" / "cli.py"]
    assert files, "the CLI package is missing"
    for path in files:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
        names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
        bad = [n for n in names if n.startswith(("rwkv_data.pipelines", "rwkv_data.model", "rwkv_data.kernels",
                                                 "torch"))]
        assert not bad, f"{path.name} imports {bad} at top level"


def _torch_loaded_after(code: str) -> bool:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('torch' in sys.modules)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_tokenizer_import_does_not_load_torch() -> None:
    assert not _torch_loaded_after("import rwkv_data.tokenizer, rwkv_data")


def test_cli_help_does_not_load_torch() -> None:
    code = ("import sys\nfrom rwkv_data.cli import main\nsys.argv=['rwkv-data','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    assert not _torch_loaded_after(code)


def test_console_script_help_runs() -> None:
    out = subprocess.run([sys.executable, "-m", "rwkv_data", "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "rwkv-data" in out.stdout or "Usage" in out.stdout
