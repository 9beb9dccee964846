"""The package's layers, as a contract (README: the layout): graphc's modules import one another in one
direction only, never in a cycle, and never another module's private names.

Every module under graphc/ is parsed with `ast` (nothing is imported) and every import is read: absolute
and relative, at the top or inside a function. From them:

- (a) no import cycle between modules, function-local imports included (a cycle that only works because
  one import waits inside a function is still a cycle);
- (b) no import of a private name (a leading underscore) from another graphc module, nor a private
  attribute of a graphc module imported whole (`loop._gradient_step`);
- (c) no import upwards across the layers, from the base up:
  errors, data < ir < frontend < transforms < backends < views < training < api, gradcheck < app
  < the package's __init__ and __main__. A module may import its own layer and the layers below.

The checks are plain functions of {file path: source}, so the tests at the bottom feed them a small
made-up package too: each check is seen to fail on the violation it is there for.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "graphc"

# lowest first; a module's layer is its first name under graphc (graphc.backends.numpy.plan: backends)
LAYERS = [
    ("errors", "data"),
    ("ir",),
    ("frontend",),
    ("transforms",),
    ("backends",),
    ("views",),
    ("training",),
    ("api", "gradcheck"),
    ("app",),
    ("__init__", "__main__"),
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ORDER = " < ".join(", ".join(names) for names in LAYERS)


@dataclass(frozen=True)
class Import:
    importer: str  # the module whose code imports (graphc.ir.graph)
    line: int
    target: str  # the graphc module it loads (graphc.ir.ops)
    names: tuple[str, ...]  # the names it takes from target (none for `import graphc.x` or a submodule)
    text: str  # the statement as written, for messages


def module_name(path: str) -> tuple[str, bool]:
    """The module a file is, and whether it is a package: graphc/ir/__init__.py -> ("graphc.ir", True)."""
    parts = list(Path(path).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def read_package(root: Path = PACKAGE) -> dict[str, str]:
    """{path relative to the package's parent ("graphc/ir/graph.py"): source} for every module."""
    return {p.relative_to(root.parent).as_posix(): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py"))}


def source_module(here: str, node: ast.ImportFrom) -> str:
    """The module `from X import ...` reads, X made absolute (`here`: the package the file is in)."""
    if not node.level:
        return node.module or ""
    parts = here.split(".")
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(files: dict[str, str]) -> list[Import]:
    """Every import of one graphc module by another, anywhere in the code (function bodies included)."""
    modules = {module_name(path)[0] for path in files}
    out = []
    for path, source in files.items():
        importer, is_package = module_name(path)
        here = importer if is_package else importer.rpartition(".")[0]  # what `.` means in this file
        for node in ast.walk(ast.parse(source, path)):
            text = ast.get_source_segment(source, node) if isinstance(node, (ast.Import, ast.ImportFrom)) else ""
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "graphc":
                        out.append(Import(importer, node.lineno, alias.name, (), text))
            elif isinstance(node, ast.ImportFrom):
                target = source_module(here, node)
                if target.split(".")[0] != "graphc":
                    continue
                names = []
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:  # `from . import ops`: the submodule itself
                        out.append(Import(importer, node.lineno, sub, (), text))
                    else:
                        names.append(alias.name)
                if names or not any(f"{target}.{a.name}" in modules for a in node.names):
                    out.append(Import(importer, node.lineno, target, tuple(names), text))
    return out


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(files: dict[str, str]) -> list[str]:
    """(b): private names one graphc module takes from another, imported by name or read as an attribute
    of a graphc module imported whole."""
    problems = []
    for imp in imports(files):
        for name in imp.names:
            if private(name) and imp.target != imp.importer:
                problems.append(f"{imp.importer} (line {imp.line}) imports the private `{name}` of {imp.target}")
    modules = {module_name(path)[0] for path in files}
    for path, source in files.items():
        importer = module_name(path)[0]
        tree = ast.parse(source, path)
        bound = {}  # local name -> the graphc module it is, for `from . import ops`, `import graphc.x as y`
        here = importer if module_name(path)[1] else importer.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    sub = f"{source_module(here, node)}.{alias.name}"
                    if sub in modules and sub != importer:
                        bound[alias.asname or alias.name] = sub
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name in modules and alias.name != importer:
                        bound[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in bound
                and private(node.attr)
            ):
                problems.append(
                    f"{importer} (line {node.lineno}) reads the private `{node.attr}` of {bound[node.value.id]}"
                )
    return problems


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def upward_imports(files: dict[str, str]) -> list[str]:
    """(c): imports of a module in a higher layer than the importer's."""
    problems = []
    for imp in imports(files):
        low, high = layer(imp.importer), layer(imp.target)
        if low not in RANK or high not in RANK:
            problems.append(f"{imp.importer} or {imp.target}: in no layer; add it to LAYERS in {Path(__file__).name}")
        elif RANK[high] > RANK[low]:
            problems.append(
                f"{imp.importer} (line {imp.line}: `{imp.text}`) imports {imp.target}: {low} may not import "
                f"from {high}, a layer above it ({ORDER})"
            )
    return problems


def cycles(files: dict[str, str]) -> list[str]:
    """(a): each group of modules that import one another in a circle, as one of its circles."""
    edges: dict[str, dict[str, Import]] = {module_name(p)[0]: {} for p in files}
    for imp in imports(files):
        if imp.target != imp.importer and imp.target in edges:
            edges[imp.importer].setdefault(imp.target, imp)
    problems = []
    for group in strongly_connected(edges):
        start = min(group)
        path = circle(edges, start, set(group))
        steps = ", ".join(f"{a} line {edges[a][b].line}: `{edges[a][b].text}`" for a, b in zip(path, path[1:]))
        problems.append(f"import cycle: {' -> '.join(path)} ({steps})")
    return problems


def strongly_connected(edges: dict[str, dict]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the groups of more than one module that reach one another."""
    index, low, stack, on, groups, counter = {}, {}, [], set(), [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                group = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    group.append(w)
                    if w == v:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def circle(edges: dict[str, dict], start: str, group: set[str]) -> list[str]:
    """A shortest way from start back to itself inside its group (breadth first): [start, ..., start]."""
    came = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v]):
                if w == start:
                    path = [v]
                    while came[path[-1]] is not None:
                        path.append(came[path[-1]])
                    return [*reversed(path), start]
                if w in group and w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"{start} is in a cycle but none was found")


# ---- the package ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, str]:
    return read_package()


def test_the_package_is_read(package):
    found = imports(package)
    assert len(package) > 20 and len(found) > 50  # (a check of nothing passes every tree)
    assert any(i.importer == "graphc.api" and i.target == "graphc.training" for i in found)  # function-local
    assert {layer(module_name(p)[0]) for p in package} <= set(RANK)


def test_no_import_cycle(package):
    problems = cycles(package)
    assert not problems, "\n".join(problems)


def test_no_private_name_from_another_module(package):
    problems = private_uses(package)
    assert not problems, "\n".join(problems)


def test_no_import_upwards_across_layers(package):
    problems = upward_imports(package)
    assert not problems, "\n".join(problems)


# ---- the checks themselves, on a made-up package --------------------------------------------------

FAKE = {
    "graphc/__init__.py": "from .api import compile\n",
    "graphc/errors.py": "",
    "graphc/ir/__init__.py": "from .graph import Graph\n",
    "graphc/ir/graph.py": "from ..errors import GraphcError\nfrom . import ops\n",
    "graphc/ir/ops.py": "import numpy as np\n",
    "graphc/transforms/__init__.py": "",
    "graphc/transforms/simplify.py": "from ..ir.graph import Graph\n",
    "graphc/api.py": "from .ir import Graph\n\ndef f():\n    from .transforms import simplify\n",
}


def test_a_clean_made_up_package_passes():
    assert cycles(FAKE) == private_uses(FAKE) == upward_imports(FAKE) == []


def test_a_cycle_is_found_with_its_imports():
    files = {**FAKE, "graphc/ir/ops.py": "def late():\n    from .graph import Graph\n"}  # function-local
    (problem,) = cycles(files)
    assert "graphc.ir.graph -> graphc.ir.ops -> graphc.ir.graph" in problem
    assert "graphc.ir.ops line 2: `from .graph import Graph`" in problem


def test_a_longer_cycle_through_absolute_imports_is_found():
    files = {
        **FAKE,
        "graphc/ir/ops.py": "import graphc.transforms.simplify\n",
        "graphc/transforms/simplify.py": "from graphc.ir.graph import Graph\n",
    }
    (problem,) = cycles(files)
    assert "graphc.ir.graph -> graphc.ir.ops -> graphc.transforms.simplify -> graphc.ir.graph" in problem


def test_a_private_name_is_found_imported_or_read():
    files = {
        **FAKE,
        "graphc/api.py": "from .transforms.simplify import _settled\nfrom .ir import graph\n"
        "x = graph._node\ny = graph.__name__\n",
    }
    problems = private_uses(files)
    assert problems == [
        "graphc.api (line 1) imports the private `_settled` of graphc.transforms.simplify",
        "graphc.api (line 3) reads the private `_node` of graphc.ir.graph",
    ]


def test_an_upward_import_is_found_with_the_layers():
    files = {**FAKE, "graphc/ir/ops.py": "def f():\n    from ..transforms import simplify\n"}
    (problem,) = upward_imports(files)
    assert problem.startswith(
        "graphc.ir.ops (line 2: `from ..transforms import simplify`) imports "
        "graphc.transforms.simplify: ir may not import from transforms"
    )
    assert ORDER in problem


def test_a_module_in_no_layer_is_reported():
    files = {**FAKE, "graphc/extra.py": "from .ir import Graph\n"}
    (problem,) = upward_imports(files)
    assert "in no layer" in problem
