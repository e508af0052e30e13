"""The layering written in pyproject.toml ([tool.importlinter]) holds, core's packages import each other in
no cycle, and only the launcher knows the main window."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(command + ["--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def _package_edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """core.<package> -> the other core packages its modules import directly (lazy imports included)."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        if not module.startswith("core."):
            continue
        source = ".".join(module.split(".")[:2])
        for imported in graph.find_modules_directly_imported_by(module):
            target = ".".join(imported.split(".")[:2])
            if imported.startswith("core.") and target != source:
                edges.setdefault(source, set()).add(target)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo += edges.get(node, ())
        return False

    return sorted((a, b) for a, targets in edges.items() for b in targets if reaches(b, a))


def test_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}}) == [
        ("core.a", "core.b"), ("core.b", "core.c"), ("core.c", "core.a")]
    assert _cycles({"core.a": {"core.b"}, "core.b": {"core.c"}}) == []


def test_core_packages_import_each_other_in_no_cycle() -> None:
    graph = grimp.build_graph("core", "app")
    assert _cycles(_package_edges(graph)) == []


def test_only_the_launcher_imports_the_main_window() -> None:
    graph = grimp.build_graph("app")
    assert graph.find_modules_that_directly_import("app.main_window") <= {"app.launcher"}
