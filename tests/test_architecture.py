"""The import contract of the house, read from the source (nothing is imported).

* No import cycles between the modules of ``relay_proto`` and ``relay_anyio``.
* ``relay_proto`` (every module, the simulator included) imports the standard library only.
* No module imports another module's private name (``from .x import _y``), and no module
  imports a private module of a package that is not its own or an ancestor of its own:
  ``relay_anyio`` uses ``relay_proto``'s public API only, and the client core never reaches
  into ``relay_proto.simulator``'s private modules.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("relay_proto", "relay_anyio")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


MODULES = _modules()


def _package_of(module: str) -> str:
    """The package a module belongs to (a package's ``__init__`` belongs to itself)."""
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> Iterator[tuple[str, str | None, int]]:
    """``(imported module, imported name or None, line)`` for every import in ``module``."""
    path = MODULES[module]
    package = _package_of(module)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in MODULES:  # ``from . import _wire`` imports a module
                    yield submodule, None, node.lineno
                else:
                    yield target, alias.name, node.lineno


def _internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module in MODULES:
        for target, _, _ in _imports(module):
            if target in MODULES and target != module:
                graph[module].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _may_use_private_module(importer: str, target: str) -> bool:
    """A private module may be imported from its own package or a package inside it."""
    owner = target.rpartition(".")[0]
    package = _package_of(importer)
    return package == owner or package.startswith(owner + ".")


def _violations(module: str) -> Iterator[str]:
    for target, name, line in _imports(module):
        where = f"{MODULES[module].relative_to(ROOT)}:{line}"
        top = target.split(".")[0]
        outside = top not in ("relay_proto", "__future__") and top not in sys.stdlib_module_names
        if module.startswith("relay_proto") and outside:
            yield f"{where}: relay_proto imports {target}, outside the standard library"
        if name is not None and _is_private(name):
            yield f"{where}: imports the private name {name} from {target}"
        if top in PACKAGES:
            private_parts = [part for part in target.split(".") if _is_private(part)]
            if private_parts and not _may_use_private_module(module, target):
                yield f"{where}: imports the private module {target} from outside its package"


def test_the_source_is_found() -> None:
    assert "relay_proto" in MODULES
    assert "relay_anyio" in MODULES
    assert len(MODULES) > 20


def test_no_import_cycles() -> None:
    assert _cycles(_internal_graph()) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_import_contract(module: str) -> None:
    assert list(_violations(module)) == []


def test_the_checks_catch_what_they_must(tmp_path: Path) -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _is_private("_wire")
    assert not _is_private("__future__")
    assert not _is_private("wire")
