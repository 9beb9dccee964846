"""Graphs -> code that runs: the shared expression printer, and one folder per target.

A target is a folder here (backends/numpy/, ...) whose module.py has `emit(graph, wrt, dtype, module_name,
order) -> str`; `graphc emit --target T` finds it by its folder's name (`array-api` is backends/array_api/),
so adding a target adds a folder and edits nothing else (docs/architecture.md says what goes in one)."""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import GraphcError


def targets() -> list[str]:
    """The targets graphc can emit, as `--target` spells them."""
    folders = (p.parent for where in __path__ for p in Path(where).glob("*/module.py"))
    return sorted({f.name.replace("_", "-") for f in folders})


def emitter(target: str):
    """backends/<target>/module.py's emit function."""
    if target not in targets():
        raise GraphcError(f"unknown target {target!r}", hint=f"the targets: {', '.join(targets())}", usage=True)
    return importlib.import_module(f"{__name__}.{target.replace('-', '_')}.module").emit
