"""Imports flow one way: yunhu ← common ← ingest, processors ← callstream; the tests and
the benchmarks share helpers through devkit, and never import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "yunhu": {"yunhu"},
    "common": {"yunhu", "common"},
    "ingest": {"yunhu", "common", "ingest"},
    "processors": {"yunhu", "common", "processors"},
    "callstream": {"yunhu", "common", "ingest", "processors", "callstream"},
    "devkit": {"yunhu", "common", "ingest", "processors", "callstream", "devkit"},
    "tests": {"yunhu", "common", "ingest", "processors", "callstream", "devkit", "tests"},
    "bench": {"yunhu", "common", "ingest", "processors", "callstream", "devkit", "bench"},
}
OURS = set(ALLOWED)


def _imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_what_is_below_it(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    wrong = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) - ALLOWED[package])
        for path in files
    }
    assert {k: v for k, v in wrong.items() if v} == {}
