"""NumPy only: the fastest where NumPy's own calls dominate; its numbers are the interpreter's.

A module that imports only NumPy, whose helpers are runtime.py's, so its numbers are the interpreter's to
the last bit (the layout is backends/layout.py's)."""

from __future__ import annotations

from functools import partial

from .. import layout
from ..printer import number_text
from . import dialect, runtime


class NumPy(layout.Target):
    name = "numpy"
    dialect, runtime = dialect, runtime
    aliases = ("np", "numpy")
    needs = "Only NumPy is needed."

    def imports(self, ns) -> str:
        return "import numpy\n" if ns.np == "numpy" else f"import numpy as {ns.np}\n"

    def convert(self, ns, name, dtype):
        return f"{ns.np}.asarray({name}{f', dtype={ns.np}.{dtype}' if dtype else ''})"

    def full(self, ns, shape, value, dtype):
        return f"{ns.np}.full({shape}, {value}{'' if dtype == 'float64' else f', dtype={ns.np}.{dtype}'})"

    def scalar(self, ns, value, dtype):  # NumPy's scalar, as the interpreter's: b / 0.0 is inf
        return f"{ns.np}.{dtype}({value})"

    def shape(self, ns, name):
        return f"{ns.np}.shape({name})"

    def number(self, ns, value, dtype):
        text = number_text(value, ns.np)
        return text if dtype == "float64" else f"{ns.np}.{dtype}({text})"

    def hessian(self, ns, w, dtype):
        np = ns.np
        return [
            f'shape = {np}.shape(forward(**values)["{w}"])',
            f"size = int({np}.prod(shape))",
            f"h = {np}.empty((size, size), dtype={np}.{dtype})",
            f"e = {np}.zeros(size)",
            "for k in range(size):",
            "    e[k] = 1.0",
            f"    h[:, k] = {np}.reshape(hvp(e.reshape(shape), **values), -1)",
            "    e[k] = 0.0",
            "return h.reshape(shape * 2)",
        ]


emit = partial(layout.emit, NumPy())
