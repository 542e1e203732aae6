"""The package's layers form no circle, counting imports inside functions.

``docs/design.md`` draws the layers top to bottom; an import from a lower layer
to a higher one, even one tucked inside a function to dodge import-time errors,
closes a circle that blurs which layer is on top. This test reads every module's
imports with ``ast`` (module level and inside functions; ``if TYPE_CHECKING:``
blocks are skipped, as they never run) and fails on any cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import skimportance

PACKAGE_ROOT = Path(skimportance.__file__).parent


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imported_modules(tree: ast.AST, module: str, is_package: bool, known: set):
    """Package modules imported anywhere in ``tree`` (functions included)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if _is_type_checking_block(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import mod" imports the module pkg.mod when it is one
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports."""
    paths = {_module_name(path, root): path for path in root.rglob("*.py")}
    known = set(paths)
    return {
        name: _imported_modules(
            ast.parse(path.read_text()), name, path.name == "__init__.py", known
        )
        for name, path in paths.items()
    }


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of two or more modules (Tarjan)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
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
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_the_package_has_no_import_cycle():
    cycles = find_cycles(import_graph(PACKAGE_ROOT))
    assert cycles == [], f"import cycles: {cycles}"


def test_a_cycle_through_a_function_level_import_is_found(tmp_path):
    # Positive control: the detector sees an import hidden inside a function,
    # resolves relative imports from a subpackage, and ignores TYPE_CHECKING.
    package = tmp_path / "toy"
    (package / "_sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_sub" / "__init__.py").write_text("")
    (package / "_sub" / "engine.py").write_text("from ...toy import result\n")
    (package / "result.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from . import display\n"
        "def plot():\n    from .display import draw\n"
    )
    (package / "display.py").write_text("from ._sub.engine import run\n")
    graph = import_graph(package)
    assert graph["toy.result"] == {"toy.display"}
    assert find_cycles(graph) == [["toy._sub.engine", "toy.display", "toy.result"]]
    only_for_type_checkers = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from . import display\n"
    )
    (package / "result.py").write_text(only_for_type_checkers)
    assert find_cycles(import_graph(package)) == []
