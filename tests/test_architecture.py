"""qa's imports go one way: no cycle, and no import from a lower layer to a higher one.

Every import statement of every module under qa/ is read from its syntax tree: module-level,
inside functions (lazy imports) and inside ``if TYPE_CHECKING:`` blocks alike. The layer order
is the one written in qa/__init__.py's docstring, so the docstring and the code cannot drift.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

QA = Path(__file__).resolve().parents[1] / "qa"


def module_name(path: Path) -> str:
    parts = path.relative_to(QA.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = QA.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The qa modules ``path`` imports, anywhere in its code."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "qa")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "qa":
                continue
            for alias in node.names:  # `from . import x` names a module; `from .m import f` a name in m
                found.add(f"{target}.{alias.name}" if is_module(f"{target}.{alias.name}") else target)
    found.discard(module)
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(QA.rglob("*.py"))}


def layers() -> list[list[str]]:
    """The layer lines of qa/__init__.py's docstring, lowest first: each a list of units (a
    subpackage or a top-level module) that may import lower layers but not one another."""
    doc = ast.get_docstring(ast.parse((QA / "__init__.py").read_text(encoding="utf-8")))
    block = re.split(r"Layers,\s+lowest\s+first", doc, maxsplit=1)[1]
    found = [re.split(r"\s*\|\s*", m.group(1).strip()) for m in re.finditer(r"^\s*\d+\.\s+(.+)$", block, re.M)]
    assert found, "qa/__init__.py must list its layers"
    return found


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "qa"


def test_the_layer_list_names_every_part_of_qa_once():
    listed = [unit for line in layers() for unit in line]
    assert len(listed) == len(set(listed))
    present = {unit_of(m) for m in graph()} - {"qa"}
    assert present == set(listed), f"unlisted: {present - set(listed)}, listed but absent: {set(listed) - present}"


def test_no_import_cycle():
    edges = graph()
    # Tarjan's strongly connected components: any component of two or more modules is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert cycles == []


def test_imports_go_down_the_layers_only():
    level = {unit: i for i, line in enumerate(layers()) for unit in line}
    wrong = []
    for module, targets in graph().items():
        if module == "qa":  # the package's own lazy re-exports of the public API
            continue
        source = unit_of(module)
        for target in sorted(targets):
            destination = unit_of(target)
            if destination == "qa" or destination == source:
                continue
            if level[destination] >= level[source]:
                wrong.append(f"{module} -> {target} (layer {level[source] + 1} -> {level[destination] + 1})")
    assert wrong == []


def test_subpackages_say_what_they_own_and_may_import():
    for init in sorted(QA.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "may import" in doc.lower(), f"{init} needs a docstring saying what it owns and may import"


@pytest.mark.parametrize("source, expected", [
    ("from . import ranking\nfrom ..store.folder import X\nif TYPE_CHECKING:\n    from ..api import Index\n",
     {"qa.search.ranking", "qa.store.folder", "qa.api"}),
    ("def f():\n    from ...machine import usable_cores\n    import qa.types\n", {"qa.machine", "qa.types"}),
])
def test_the_reader_sees_lazy_and_type_checking_imports(tmp_path, monkeypatch, source, expected):
    # a module placed where the reader resolves relative imports: qa/search/x.py
    target = QA / "search" / "_probe_for_test.py" if "ranking" in source else QA / "store" / "vectors" / "_probe_for_test.py"
    target.write_text(source, encoding="utf-8")
    try:
        assert imports_of(target) == expected
    finally:
        target.unlink()
