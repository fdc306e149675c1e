"""The module graph (issue #12): imports point one way, old paths warn.

The graph is read from the syntax tree of every module of ``certify`` and
``symbolic`` (generated code left out), counting imports anywhere in a module,
function-level ones included.  ``KNOWN_CIRCLES`` lists the circles that remain;
the test fails when a new one appears and when a listed one is gone (then
delete it from the list).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("certify", "symbolic")

#: circles still to break (issue #12); each as the sorted tuple of its modules
KNOWN_CIRCLES = {
    # symbolic.constants is a façade that calls certify's certification at call time
    ("certify.activation_constants", "symbolic"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            if path.name.startswith("_generated"):
                continue
            mods[_module_name(path)] = path
    graph = {m: set() for m in mods}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base[:len(base) - node.level + 1]
                    mod = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                # `from pkg import sub` imports the submodule; `from mod import name`, mod
                sub = [f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods]
                targets = sub if len(sub) == len(node.names) else [mod] + sub
            for t in targets:
                if t in mods and t != name:
                    graph[name].add(t)
    return graph


def _circles(graph) -> set[tuple[str, ...]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), set()

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.add(tuple(sorted(comp)))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_new_import_circles():
    found = _circles(_graph())
    assert found - KNOWN_CIRCLES == set(), f"new import circles: {found - KNOWN_CIRCLES}"
    assert KNOWN_CIRCLES - found == set(), (
        f"circles gone (remove them from KNOWN_CIRCLES): {KNOWN_CIRCLES - found}")


def test_engines_do_not_import_each_other():
    g = _graph()
    assert "certify.engine_flint" not in g["certify.engine"]
    assert "certify.engines" not in g["certify.engine"]
    assert "certify.engines" not in g["certify.engine_flint"]


@pytest.mark.parametrize("name", ["get_engine", "canonical_engine", "engine_unavailable",
                                  "EngineUnavailable", "ENGINE_NAMES", "DEFAULT_ENGINE"])
def test_old_engine_registry_paths_warn_and_work(name):
    import certify.engine as old
    import certify.engines as new

    with pytest.warns(DeprecationWarning, match=f"certify.engines.{name}"):
        value = getattr(old, name)
    assert value is getattr(new, name)
