"""Each node's NumPy function, compiled from the expression the emitted module writes for it."""

from __future__ import annotations

from functools import cache

import numpy as np

from ...ir.graph import Graph
from ..printer import Printer
from . import dialect, runtime

# What kernels and plans see. They run with every floating-point error ignored (np.errstate(all="ignore")
# around them), so a helper's own errstate, sigmoid's, is redundant there: its undecorated function.
NAMESPACE = {"np": np, **{name: getattr(f, "__wrapped__", f) for name, f in vars(runtime).items()}}


@cache
def _compiled(params: tuple[str, ...], expr: str):
    return eval(f"lambda {', '.join(params)}: {expr}", dict(NAMESPACE))  # noqa: S307 - our code


def kernel(g: Graph, i: int):
    """Node i's function: the expression `graphc emit` writes for it, specialised to the shapes the graph
    knows (a 2-D transpose is `.T`, summing a gradient back to a bias is `.sum(axis=0)`)."""
    params, expr = node_expression(g, i)
    return _compiled(params, expr)


def evaluate(g: Graph, i: int, values: list) -> float:
    """Node i's op on scalar float64 values, with NumPy's float64 semantics (1/0 = inf, 0/0 = nan): the
    constant folder's evaluator (transforms.simplify), so a folded number is the one the code would make."""
    with np.errstate(all="ignore"):
        return float(kernel(g, i)(*(np.float64(v) for v in values)))


def node_expression(g: Graph, i: int) -> tuple[tuple[str, ...], str]:
    """Node i as an expression of parameters a0, a1, ...: the interpreter's kernel for it."""
    params = tuple(f"a{k}" for k in range(len(g[i]["args"])))
    printer = Printer(g, dict(zip(g[i]["args"], params)), dialect)
    printer.local = True
    return params, printer.expr(i)[0]
