"""Graphs -> code that runs: the shared expression printer, and one folder per target.

A target is a folder here (backends/numpy/, ...) whose module.py has `emit(graph, wrt, dtype, module_name,
order) -> str`, and may have `load(source, name) -> module` (how Model.compiled imports what it emits;
by default, run in memory); `graphc emit --target T` finds it by its folder's name (`array-api` is
backends/array_api/), so adding a target adds a folder and edits nothing else (docs/architecture.md says
what goes in one)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from ..errors import GraphcError


def targets() -> list[str]:
    """The targets graphc can emit, as `--target` spells them."""
    folders = (p.parent for where in __path__ for p in Path(where).glob("*/module.py"))
    return sorted({f.name.replace("_", "-") for f in folders})


def summaries() -> dict[str, str]:
    """Each target's one line: the first line of its module.py's docstring (read, not imported: a target's
    library may be missing, and `graphc --help` stays fast)."""
    out = {}
    for where in __path__:
        for path in sorted(Path(where).glob("*/module.py")):
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            out[path.parent.name.replace("_", "-")] = doc.split("\n")[0].rstrip(".")
    return out


def emitter(target: str):
    """backends/<target>/module.py's emit function."""
    return _module(target).emit


def loader(target: str):
    """backends/<target>/module.py's load function, else in_memory: source, name -> the module."""
    return getattr(_module(target), "load", in_memory)


def in_memory(source: str, name: str):
    """An emitted module run in memory (no file written); name is the file its tracebacks show."""
    import builtins
    import types

    module = types.ModuleType("graphc_model", "graphc: emitted module")
    exec(builtins.compile(source, name, "exec"), module.__dict__)  # noqa: S102
    return module


def _module(target: str):
    if target not in targets():
        raise GraphcError(f"unknown target {target!r}", hint=f"the targets: {', '.join(targets())}", usage=True)
    try:
        return importlib.import_module(f"{__name__}.{target.replace('-', '_')}.module")
    except ModuleNotFoundError as e:  # the target's own library (numba, array_api_compat) is not installed
        extra = target.replace("-", "")
        raise GraphcError(
            f"the {target} target needs the package {e.name}, which is not installed",
            hint=f"pip install 'graphc[{extra}]'",
        ) from None
