"""Numba-compiled loops: fastest at small sizes, where NumPy's per-call overhead dominates; needs numba.

The numba target: each function of the NumPy module's layout is a Python wrapper, which converts
the arguments and fills in omitted params as the NumPy module does, around one `@numba.njit` kernel
holding its steps, straight-line, compiled once per argument types and cached on disk (cache=True).

A kernel returns a tuple, which the wrapper names and hands out as the NumPy module does. Numba's
cache lives beside the module's file, so `load` imports emitted modules from graphc's cache folder
(named by a hash of their source): a second process loads the compiled kernels instead of compiling.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import sys
from pathlib import Path

from ... import data
from ...errors import GraphcError
from .. import layout
from ..numpy.module import NumPy
from . import dialect, runtime

_JIT = '@numba.njit(cache=True, error_model="numpy")'  # NumPy's arithmetic: 1/0 is inf, not an exception


class Numba(NumPy):
    name = "numba"
    dialect, runtime = dialect, runtime
    modules = ("numba",)
    needs = "It needs NumPy and Numba: each function's steps are compiled once, and cached."

    def __init__(self, dtype: str):
        self.dtype, self.ns = dtype, None
        self.helpers = frozenset({"_float32"} if dtype == "float32" else ())

    def imports(self, ns) -> str:
        numba = ns.module["numba"]
        return ("import numba\n" if numba == "numba" else f"import numba as {numba}\n") + super().imports(ns)

    def begin(self, ns, args):
        self.ns = ns  # (the names of the kernels and of their results are picked around the model's)
        return []

    def convert(self, ns, name, dtype):
        if dtype is None:  # indices and labels: int64, checked once here
            self.helpers |= {"_integers"}
            return f'{ns.module["_integers"]}({name}, "{name}")'
        return f'{ns.np}.asarray({name}, dtype={ns.np}.{dtype}, order="C")'

    def function(self, f: layout.Function) -> str:
        """The kernel, compiled, holding the steps; then the wrapper, which calls it on the converted
        arguments and hands out what it returns (and the arguments the function returns as they are)."""
        ns = self.ns
        results = [e for e in dict.fromkeys(f.returned) if e not in f.args]
        if not results:
            return super().function(f._replace(body=[]))
        kernel = ns.fresh(f"_{f.name}")
        named = {e: e if e.isidentifier() else ns.fresh("out") for e in results}  # (a number: out)
        used = {n.id for n in ast.walk(ast.parse("\n".join(f.body))) if isinstance(n, ast.Name)}
        args = [a for a in f.args if a in used]
        inside = ", ".join(args) if len(kernel) + len(", ".join(args)) + 7 <= WIDTH else _lines(args, 0)
        doc = f'"""The steps of {f.name}(), compiled."""'
        compiled = layout.Function(kernel, inside, args, doc, [], f.body, list(named), _return)
        call = (kernel, args)
        if self.dtype == "float32":  # Numba hands back float32 scalars as Python floats
            call = ("map", [ns.module["_float32"], f"{kernel}({', '.join(args)})"])
        unpack = _assign(list(named.values()), *call)
        wrapper = f._replace(body=[unpack], returned=[named.get(e, e) for e in f.returned])
        return f"{ns.rename(_JIT)}\n{super().function(compiled)}\n\n{super().function(wrapper)}"


WIDTH = layout.WIDTH


def _lines(items: list[str], indent: int) -> str:
    """Items inside brackets as ruff writes them when they do not fit on one line: on one line of
    their own if they fit there, else one a line with a trailing comma."""
    one = ", ".join(items)
    if indent + 4 + len(one) <= WIDTH:
        return f"\n    {one}\n"
    return "\n" + "".join(f"    {item},\n" for item in items)


def _return(exprs: list[str]) -> str:
    """A kernel's return statement: its results as a tuple."""
    one = "return " + ", ".join(exprs) + "," * (len(exprs) == 1)
    if 4 + len(one) <= WIDTH:
        return f"return ({exprs[0]},)" if len(exprs) == 1 else one
    return "return (\n" + "".join(f"    {e},\n" for e in exprs) + ")"


def _assign(targets: list[str], func: str, args: list[str]) -> str:
    """`a, b = func(args)` as ruff formats it in a function's body: on one line; else the call's arguments
    on lines of their own; else the call; else the names too."""
    lhs = ", ".join(targets) if len(targets) > 1 else f"({targets[0]},)"
    call = f"{func}({', '.join(args)})"
    if 4 + len(lhs) + 3 + len(call) <= WIDTH:
        return f"{lhs} = {call}"
    if 4 + len(lhs) + 3 + len(func) + 1 <= WIDTH:
        return f"{lhs} = {func}({_lines(args, 4)})"
    if 8 + len(call) <= WIDTH:
        return f"{lhs} = (\n    {call}\n)"
    lhs = "(\n" + "".join(f"    {t},\n" for t in targets) + ")"
    return f"{lhs} = {call}" if 4 + 4 + len(call) <= WIDTH else f"{lhs} = {func}({_lines(args, 4)})"


def emit(graph, wrt=None, dtype="float64", module_name="model", order=1) -> str:
    return layout.emit(Numba(dtype), graph, wrt, dtype, module_name, order)


def cache_folder() -> Path:
    """graphc's folder of emitted numba modules: $XDG_CACHE_HOME/graphc/numba (~/.cache by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "graphc" / "numba"


def load(source: str, name: str):
    """The emitted module, imported from a file in cache_folder() named by its source's hash; Numba
    keeps the kernels it compiles beside it (in __pycache__), for the next process to load. `name` (the
    model's, as a traceback would show it) is kept as the module's __graphc_name__."""
    if importlib.util.find_spec("numba") is None:
        raise GraphcError("the numba target's module needs Numba, which is not installed", hint="pip install numba")
    digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:24]
    if digest in _loaded:  # (its kernels compiled or loaded already in this process)
        return _loaded[digest]
    folder = cache_folder()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model_{digest}.py"
    if not path.exists():  # (never rewritten: Numba's cache is keyed on the file's time stamp)
        data.write_text(str(path), source)
    spec = importlib.util.spec_from_file_location(f"graphc_numba_{digest}", path)
    module = importlib.util.module_from_spec(spec)
    module.__graphc_name__ = name
    sys.modules[spec.name] = module  # (Numba's cache finds a kernel's module by name)
    spec.loader.exec_module(module)
    _loaded[digest] = module
    return module


_loaded: dict = {}  # load's modules by their source's digest
