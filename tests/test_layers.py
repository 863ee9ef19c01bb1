"""The import rule of docs/architecture.md, read from the code with `ast`: a module imports
only from its own layer or the ones below (top -> faces -> domains -> base), and no modules
import each other in a circle (imports inside functions and under TYPE_CHECKING count too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.database_neutral  # what it checks is the same on any database

ROOT = Path(__file__).resolve().parent.parent / "privindex"

# Highest first; a package or module is placed by the longest prefix listed.
LAYERS = {
    "top": ["privindex.app", "privindex.server", "privindex.cli", "privindex.__main__"],
    "faces": ["privindex.api", "privindex.web"],
    "domains": [
        "privindex.packages",
        "privindex.accounts",
        "privindex.upstream",
        "privindex.oidc",
        "privindex.ops",
        "privindex.notify",
    ],
    "base": ["privindex.db", "privindex.auth", "privindex.config", "privindex.i18n", "privindex"],
}
RANK = {prefix: rank for rank, prefixes in enumerate(reversed(LAYERS.values())) for prefix in prefixes}
LAYER_NAME = {rank: name for rank, name in enumerate(reversed(LAYERS))}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def rank(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in RANK:
            return RANK[".".join(parts[:n])]
    raise AssertionError(f"{module} is on no layer: add it to LAYERS")


def imports(module: str) -> set[str]:
    """The privindex modules `module` imports (a name imported from a package counts as its
    submodule when there is one)."""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_from_a_higher_layer(module):
    upward = sorted(target for target in GRAPH[module] if rank(target) > rank(module))
    assert not upward, f"{module} ({LAYER_NAME[rank(module)]}) imports from a higher layer: " + ", ".join(
        f"{t} ({LAYER_NAME[rank(t)]})" for t in upward
    )


def test_no_import_circles():
    circles = []
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in GRAPH[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not circles, "modules that import each other in a circle: " + "; ".join(map(", ".join, circles))


def test_every_package_says_what_lives_there():
    for init in sorted(ROOT.rglob("__init__.py")):
        assert ast.get_docstring(ast.parse(init.read_text())), (
            f"{init.relative_to(ROOT.parent)} has no docstring"
        )
