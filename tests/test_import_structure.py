"""The tiers import downward only, and no module of xgen_jupyter imports itself back.

- ``xgen_jupyter/core`` imports nothing from jupyter_server, tornado, IPython or ipywidgets: checked
  statically (every import statement of every core module, lazy ones included) and dynamically
  (every core module imported in a fresh interpreter, then ``sys.modules`` looked at).
- ``core/planning`` imports nothing from ``core/adapters`` (statically, lazy imports included).
- No import cycle among xgen_jupyter's modules. The graph is built from the AST, relative imports
  resolved. An import under ``if TYPE_CHECKING:`` is no edge (it never runs). A function-level
  (lazy) import IS an edge: laziness only hides a cycle from the interpreter, the modules still
  depend on each other both ways (the old notebook ``backend`` ↔ ``remote``/``local`` pair was
  such a cycle). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else
  to ``pkg`` itself; the implicit import of a parent package is not an edge.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "xgen_jupyter"
FORBIDDEN_IN_CORE = ("jupyter_server", "tornado", "IPython", "ipywidgets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {
    _module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "labextension" not in p.parts
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: lazy ones included, ``if TYPE_CHECKING:`` bodies left out."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute names of what ``node`` imports (a submodule where ``from pkg import sub`` names one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[module] = {t for node in _imports(tree) for t in _targets(module, path, node)}
    return graph


GRAPH = _graph()


def test_the_graph_sees_relative_lazy_and_type_checking_imports() -> None:
    """The checks below are only as good as the graph: pin a few known edges and non-edges."""
    assert "xgen_jupyter.core.config" in GRAPH["xgen_jupyter.server.app"]  # from ..core.config import ...
    assert "xgen_jupyter.notebook.render" in GRAPH["xgen_jupyter.notebook.magics"]  # from . import render
    assert "xgen_jupyter.notebook.local_client" in GRAPH["xgen_jupyter.notebook.current"]  # lazy, in a function
    assert "IPython.display" in GRAPH["xgen_jupyter.notebook.magics"]  # lazy, in cmd_panel
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\nelse:\n    import b\n")
    assert [t for n in _imports(tree) for t in _targets("x.y", PACKAGE / "y.py", n)] == ["typing", "b"]


def test_core_imports_no_jupyter_tier_statically() -> None:
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith("xgen_jupyter.core")
        for target in targets
        if target.split(".")[0] in FORBIDDEN_IN_CORE
    )
    assert bad == []


def test_core_imports_no_jupyter_tier_at_run_time() -> None:
    core = sorted(m for m in MODULES if m.startswith("xgen_jupyter.core") and not m.endswith("__main__"))
    code = (
        "import importlib, json, sys\n"
        f"for m in {core!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in {FORBIDDEN_IN_CORE!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_planning_imports_nothing_from_adapters() -> None:
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if module.startswith("xgen_jupyter.core.planning")
        for target in targets
        if target.startswith("xgen_jupyter.core.adapters")
    )
    assert bad == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (or a module importing itself): Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue  # outside xgen_jupyter
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _cycle_edges(component: list[str]) -> list[str]:
    members = set(component)
    return [f"{a} -> {b}" for a in component for b in sorted(GRAPH[a] & members)]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    cycles = _cycles(GRAPH)
    assert cycles == [], "import cycles (edges inside each):\n" + "\n".join(
        "; ".join(_cycle_edges(c)) for c in cycles
    )
