"""Imports point inward: the pure packages never import the I/O layers (STYLE.md section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "aiperf_hpc"
PURE = ("core", "endpoints", "dataset", "protocol", "reporting")
IO_LAYERS = (
    "aiperf_hpc.runtime",
    "aiperf_hpc.services",
    "aiperf_hpc.launch",
    "aiperf_hpc.run_profile",
    "aiperf_hpc.cli",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("package", PURE)
def test_pure_packages_do_not_import_io_layers(package: str) -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / package).rglob("*.py"))
        for name in imported_modules(path)
        if name.startswith(IO_LAYERS)
    ]
    assert offenders == []


def test_runtime_does_not_import_services_or_launch() -> None:
    offenders = [
        f"{path.name} imports {name}"
        for path in sorted((PACKAGE / "runtime").glob("*.py"))
        for name in imported_modules(path)
        if name.startswith(("aiperf_hpc.services", "aiperf_hpc.launch"))
    ]
    assert offenders == []
