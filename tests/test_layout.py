"""The three houses hold: runtime never imports tooling, no import circle, the wheel ships only the library.

Imports are read from the source with :mod:`ast` (every ``import`` statement,
including the lazy ones inside functions), so a circle or a runtime -> tooling
edge cannot hide behind a deferred import. Only ``if TYPE_CHECKING:`` imports
(annotations, never executed) are left out.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "netauto_statsd"
TOOLING = "netauto_statsd.tooling"
#: a module may grow past this only if it is a data table split by family
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, name: str) -> set[str]:
    """Every netauto_statsd module ``path`` imports (absolute and relative, top level or not)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    # imports for type annotations only (``if TYPE_CHECKING:``) never run: not a dependency
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            known = modules()
            for alias in node.names:  # `from pkg import submodule` depends on the submodule
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    known = modules()
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    return {name: imports_of(path, name) for name, path in modules().items()}


def test_runtime_never_imports_tooling() -> None:
    edges = [
        f"{src} -> {dst}"
        for src, dsts in graph().items()
        if not src.startswith(TOOLING)
        for dst in dsts
        if dst.startswith(TOOLING)
    ]
    assert not edges, "runtime modules import tooling:\n" + "\n".join(edges)


def find_circle(deps: dict[str, set[str]]) -> list[str]:
    """One import circle of any length (``[a, b, ..., a]``), or ``[]``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in sorted(deps):
        if start not in state and (found := visit(start)):
            return found
    return []


def test_no_import_circle() -> None:
    """No chain of imports (however long, lazy imports included) leads a module back to itself."""
    circle = find_circle(graph())
    assert not circle, "import circle: " + " -> ".join(circle)


def test_the_circle_finder_finds_long_circles() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_module_is_a_god_module() -> None:
    big = {name: n for name, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"modules over {MAX_LINES} lines (split them by idea): {big}"


@pytest.mark.slow
def test_wheel_ships_the_library_and_tooling_but_not_the_example_app(tmp_path: Path) -> None:
    # a copy without build leftovers: setuptools reuses a stale build/ and would ship what it holds
    src = tmp_path / "src"
    skip = shutil.ignore_patterns(".git", ".venv", ".tools", "build", "dist", "*.egg-info", "__pycache__", ".*cache")
    shutil.copytree(ROOT, src, ignore=skip)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("netauto_statsd-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {n for n in top if not n.endswith(".dist-info")} == {"netauto_statsd"}, top
    shipped = {n for n in names if n.endswith(".py")}
    expected = {str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")}
    assert shipped == expected, f"missing: {sorted(expected - shipped)}; extra: {sorted(shipped - expected)}"
    assert "netauto_statsd/py.typed" in names
    assert not [n for n in names if "demo" in n or n.startswith(("examples/", "tests/", "bench/"))]
