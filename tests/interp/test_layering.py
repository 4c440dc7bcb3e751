"""Import rules: interp stays below the methods; no method imports another method."""

from __future__ import annotations

import ast
from pathlib import Path

import lmdiff

SRC = Path(lmdiff.__file__).parent
FORBIDDEN_IN_INTERP = ("methods", "behavior", "evals", "organisms", "llm", "cli")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_interp_imports_no_higher_layer():
    for path in (SRC / "interp").glob("*.py"):
        bad = {m for m in _imports(path) if m.startswith("lmdiff.") and m.split(".")[1] in FORBIDDEN_IN_INTERP}
        assert not bad, f"{path.name} imports {bad}"


def test_models_layer_does_not_import_interp_except_quantize():
    for path in (SRC / "models").glob("*.py"):
        if path.name != "quantize.py":
            assert not {m for m in _imports(path) if m.startswith("lmdiff.interp")}, path.name


def test_no_method_imports_another_method():
    methods = SRC / "methods"
    shared = {"base", "registry", "pair_sampling"}  # the package's shared modules, not methods
    for path in methods.rglob("*.py"):
        rel = path.relative_to(methods)
        own = rel.parts[0].removesuffix(".py")
        for m in _imports(path):
            parts = m.split(".")
            if m.startswith("lmdiff.methods.") and len(parts) > 2 and parts[2] not in shared:
                assert parts[2] == own, f"methods/{rel} imports {m}"
