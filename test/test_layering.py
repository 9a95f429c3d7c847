"""The layers hold mechanically: every import in src/alpamayo_ros (module level or inside functions) is walked.

core/ imports neither rclpy nor torch; model/ imports no rclpy, runtime or tools; sim/ and training/ stay below
tools/; and no two subpackages import each other (directly or through a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "alpamayo_ros"
SUBPACKAGES = ("core", "model", "runtime", "sim", "training", "tools", "nodes")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


def _graph() -> dict[str, set[str]]:
    """subpackage -> the other subpackages (and external top-level packages) its modules import."""
    graph: dict[str, set[str]] = {}
    for sub in SUBPACKAGES:
        targets: set[str] = set()
        for path in (PACKAGE / sub).rglob("*.py"):
            for name in _imports(path):
                parts = name.split(".")
                if parts[0] == "alpamayo_ros" and len(parts) > 1:
                    if parts[1] != sub:
                        targets.add(parts[1])
                else:
                    targets.add(f"ext:{parts[0]}")
        graph[sub] = targets
    return graph


GRAPH = _graph()


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("core", {"ext:rclpy", "ext:torch", "model", "runtime", "sim", "training", "tools", "nodes"}),
        ("model", {"ext:rclpy", "runtime", "tools", "nodes", "sim", "training"}),
        ("runtime", {"ext:rclpy", "tools", "nodes", "sim", "training"}),
        ("sim", {"ext:rclpy", "ext:torch", "model", "runtime", "tools", "nodes", "training"}),
        ("training", {"ext:rclpy", "tools", "nodes", "runtime"}),
    ],
)
def test_layer_imports_nothing_above_it(layer: str, forbidden: set[str]) -> None:
    assert GRAPH[layer] & forbidden == set(), f"{layer}/ imports {sorted(GRAPH[layer] & forbidden)}"


def test_no_two_subpackages_import_each_other() -> None:
    internal = {sub: {t for t in targets if t in SUBPACKAGES} for sub, targets in GRAPH.items()}

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(t == goal or (t not in seen and reaches(t, goal, seen | {t})) for t in internal[start])

    cycles = sorted(sub for sub in SUBPACKAGES if reaches(sub, sub))
    assert cycles == [], f"import cycles through {cycles}: {internal}"


def test_the_walk_sees_real_imports() -> None:
    """Guards the test itself: known edges are found, so an empty graph cannot pass the checks above."""
    assert "core" in GRAPH["nodes"] and "ext:rclpy" in GRAPH["nodes"]
    assert {"core", "model", "ext:torch"} <= GRAPH["runtime"]
