"""The packages import one way down: every module's imports, function-level ones and importlib
strings included, name only packages to the importer's left in ``sepconv._layering.ORDER``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from sepconv._layering import ORDER, OUTSIDE, allowed, package_of

SRC = Path(__file__).resolve().parents[1] / "src"
DOTTED = re.compile(r"^sepconv(\.[A-Za-z_]\w*)+(:[\w,.-]+)?$")


def module_name(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def is_module(dotted: str) -> bool:
    base = SRC.joinpath(*dotted.split("."))
    return base.is_dir() or base.with_suffix(".py").is_file()


def imports_of(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every sepconv import in ``source``, wherever it appears."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "sepconv"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "sepconv":
                continue
            for alias in node.names:  # `from sepconv import weights` imports the module sepconv.weights
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if is_module(sub) else target))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value):
            found.append((node.lineno, node.value.partition(":")[0]))  # importlib strings, COMMANDS
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    return [f"{module}:{line} imports {target} ({package_of(target) or 'the root'} is not to the left of "
            f"{package_of(module)})" for line, target in imports_of(source, module, is_package)
            if not allowed(module, target)]


def test_order_is_total_and_names_every_package():
    assert len(set(ORDER)) == len(ORDER)
    on_disk = {p.name for p in (SRC / "sepconv").iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    on_disk |= {p.stem for p in (SRC / "sepconv").glob("*.py") if p.stem != "__init__"}
    assert on_disk - set(ORDER) - OUTSIDE == set(), "every package and top-level module has a place in ORDER"
    assert set(ORDER) - on_disk == set(), "ORDER names only packages that exist"


def test_every_import_goes_one_way_down():
    problems = []
    for path in sorted((SRC / "sepconv").rglob("*.py")):
        module, is_package = module_name(path)
        problems += violations(path.read_text(), module, is_package)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("source", [
    "from ..profile import report\n",                       # module level, relative
    "def f():\n    from sepconv.cli import main\n",         # function level, absolute
    "import importlib\nimportlib.import_module('sepconv.deploy.optimize')\n",  # an importlib string
    "from .. import __version__\n",                          # the root façade imports everything
])
def test_the_check_catches_an_upward_import(source):
    assert violations(source, "sepconv.engines.example") != []


def test_the_check_allows_downward_and_sibling_imports():
    source = "from .._util.checks import positive_int\nfrom . import fold\nfrom ..layers import Conv2d\n"
    assert violations(source, "sepconv.engines.example") == []


def import_graph() -> dict[str, set[str]]:
    """Module -> the sepconv modules it imports (anywhere in its source)."""
    graph = {}
    for path in sorted((SRC / "sepconv").rglob("*.py")):
        module, is_package = module_name(path)
        graph[module] = {target for _, target in imports_of(path.read_text(), module, is_package) if target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_itself_back():
    """Within a package too, imports go one way (no ``ort`` <-> ``onnx_export``, no registry <-> families)."""
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
