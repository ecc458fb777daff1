"""The package's import graph has no cycle, imports for type checking and inside functions
included: each module can be read (and changed) knowing only what it imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pgsse

PACKAGE = Path(pgsse.__file__).parent


def imports() -> dict[str, set[str]]:
    """Module -> the package's modules it imports, wherever the import statement is."""
    modules = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
        if "migrations" not in path.parts
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    graph[name].add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                graph[name].update(alias.name for alias in node.names)
        graph[name] = {other for other in graph[name] if other in modules} - {name, "pgsse"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_the_graph_is_read_from_the_sources() -> None:
    graph = imports()
    assert "pgsse.feed" in graph["pgsse.feed_table"]
    assert "pgsse.channel_set" in graph["pgsse.feed"]


def test_no_module_of_pgsse_imports_itself_through_others() -> None:
    assert cycles(imports()) == []
