"""Any array API library (NumPy, PyTorch, JAX, CuPy, Dask), taken from the arguments; needs array_api_compat.

A module written against the Python array API standard that imports only array_api_compat and takes the
array library (and device) from its arguments, so one file runs on NumPy, PyTorch (CPU or CUDA), JAX, CuPy
and Dask arrays, and returns that library's arrays on that device (the layout is backends/layout.py's)."""

from __future__ import annotations

from functools import partial

from .. import layout
from ..printer import number_text
from . import dialect, runtime


class ArrayAPI(layout.Target):
    name = "array-api"
    dialect, runtime = dialect, runtime
    aliases = ("xp",)
    modules = ("array_api_compat", "importlib")
    locals = ("device",)
    local_alias = True
    local_consts = True  # arrays of the library: sqrt(d) of `const d = 8`, d / 0 is inf
    needs = (
        "Only array_api_compat is needed:\nthe same code runs on the arrays of any library of the "
        "Python array API standard\n(NumPy, PyTorch, JAX, CuPy, Dask) and returns that library's arrays, "
        "on their device."
    )
    helpers = frozenset({"_namespace"})

    def imports(self, ns) -> str:  # the standard library's first, as isort has it
        line = {m: f"import {m}\n" if ns.module[m] == m else f"import {m} as {ns.module[m]}\n" for m in self.modules}
        return line["importlib"] + "\n" + line["array_api_compat"]

    def begin(self, ns, args):
        # one library for the function: the arguments' (NumPy data beside torch params: torch's)
        device = ns.module["device"]
        return [f"{ns.np}, {device} = {ns.module['_namespace']}({', '.join(args)})"]

    def convert(self, ns, name, dtype):
        dtype = f"dtype={ns.np}.{dtype}, " if dtype else ""
        return f"{ns.np}.asarray({name}, {dtype}device={ns.module['device']})"

    def full(self, ns, shape, value, dtype):
        return f"{ns.np}.full({shape}, {value}, dtype={ns.np}.{dtype}, device={ns.module['device']})"

    def scalar(self, ns, value, dtype):  # a 0-d array: b / 0.0 is inf, not ZeroDivisionError
        return f"{ns.np}.asarray({value}, dtype={ns.np}.{dtype}, device={ns.module['device']})"

    def shape(self, ns, name):
        return f"{ns.np}.asarray({name}).shape"

    def number(self, ns, value, dtype):
        return self.scalar(ns, number_text(value, ns.np), dtype)

    def hessian(self, ns, w, dtype):
        np = ns.np  # the columns stacked, not written into: JAX's arrays are immutable
        return [
            f'at = forward(**values)["{w}"]',
            f"{np}, device = {ns.module['_namespace']}(at)",
            "shape = tuple(at.shape)",
            f"size = {ns.module['array_api_compat']}.size(at)",
            f"eye = {np}.eye(size, dtype={np}.{dtype}, device=device)",
            "columns = []",
            "for k in range(size):",
            f"    column = hvp({np}.reshape(eye[k, :], shape), **values)",
            f"    columns.append({np}.reshape(column, (-1,)))",
            f"return {np}.reshape({np}.stack(columns, axis=1), shape * 2)",
        ]


emit = partial(layout.emit, ArrayAPI())
