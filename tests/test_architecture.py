"""The package's rules, checked: imports run one way (the import-linter contracts in
pyproject.toml), and only ``config/`` reads cachewatch's settings from the environment."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from cachewatch.config import settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "exporter" / "cachewatch"
ENVIRONMENT_READERS = {
    "tracing/settings.py": "the standard OTEL_* variables",
    "cli/lifecycle.py": "glibc's MALLOC_ARENA_MAX",
    "cli/report.py": "the terminal's standard COLUMNS",
}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        found.append((relative, ast.parse(path.read_text(encoding="utf-8"))))
    return found


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_only_config_names_setting_variables() -> None:
    variables = {meta.env for _name, meta, _default in settings()}
    assert "CACHEWATCH_CACHE_MAX_NAMES" in variables and "CACHE_ALERT_FOR" in variables
    offenders = []
    for relative, tree in _modules():
        if relative.startswith("config/"):
            continue
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
                continue
            named = node.value in variables or node.value.startswith("CACHEWATCH_")
            if named and id(node) not in docs:
                offenders.append(f"{relative}:{node.lineno}: {node.value}")
    assert offenders == []


def test_only_config_and_the_standard_variables_read_the_environment() -> None:
    readers = set()
    for relative, tree in _modules():
        for node in ast.walk(tree):
            reads = isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
            if reads and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.add(relative)
    outside = {r for r in readers if not r.startswith("config/")}
    assert outside == set(ENVIRONMENT_READERS), outside
