"""The import rules of the layout: models <- processing, storage <- tasks <- flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "processing", "storage", "tasks", "flows")
# What each package may import from the project.
ALLOWED = {
    "models": {"models"},
    "processing": {"models", "processing"},
    "storage": {"models", "storage"},
    "tasks": {"models", "processing", "storage", "tasks"},
    "flows": {"models", "processing", "storage", "tasks", "flows"},
}
# Third-party modules a package must not touch.
FORBIDDEN = {
    "models": {"prefect", "fsspec", "adlfs", "httpx", "urllib3"},
    "processing": {"prefect", "fsspec", "adlfs", "sqlmodel", "sqlalchemy", "httpx", "urllib3"},
    "storage": {"prefect"},
    "tasks": set(),
    "flows": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package: str) -> None:
    bad: list[str] = []
    for path in _files(package):
        for name in _imports(path):
            if name in PACKAGES and name not in ALLOWED[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
            if name in FORBIDDEN[package]:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_print_outside_the_cli(package: str) -> None:
    offenders = []
    for path in _files(package):
        if path.name == "cli.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "print"
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not offenders, offenders
