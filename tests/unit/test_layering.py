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


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, function-local imports included (relative
    imports resolved; `from package import name` counts the submodule when `name` is one)."""
    paths = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*anchor, *([base] if base else [])])
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
        graph[module] = {target for target in targets if target in paths and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as the list of its nodes (first repeated last), or [] when there is none."""
    done: set[str] = set()
    for start in sorted(graph):
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for target in sorted(graph.get(node, ())):
                if target in path:
                    return [*path[path.index(target) :], target]
                if target not in done:
                    stack.append((target, [*path, target]))
        done.add(start)
    return []


def test_no_import_cycle_between_modules() -> None:
    assert find_cycle(import_graph()) == []


def test_no_import_cycle_between_packages() -> None:
    """`aiperf_hpc.X` as one node per subpackage (or top-level module): its imports point one way."""
    packages: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        top = ".".join(module.split(".")[:2])
        packages.setdefault(top, set()).update(".".join(t.split(".")[:2]) for t in targets)
    assert find_cycle({top: targets - {top} for top, targets in packages.items()}) == []


def test_nothing_imports_the_cli() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        if not module.startswith("aiperf_hpc.cli") and module != "aiperf_hpc.__main__"
        for target in targets
        if target.startswith("aiperf_hpc.cli")
    )
    assert offenders == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) == []
