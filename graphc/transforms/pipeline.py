"""The three graphs graphc runs, emits and draws, each made in one place: the forward graph as it runs,
the gradient graph (forward plus backward), and the graph of Hessian-vector products.

Each takes a graph the caller owns and changes it in place. `evaluate` is the backend's scalar evaluator,
for constant folding (see simplify)."""

from __future__ import annotations

from ..ir.graph import Graph
from . import autodiff
from .simplify import Evaluate, simplify
from .stabilise import stabilise


def forward_graph(g: Graph) -> Graph:
    """The forward graph as it runs: numerically fragile forms rewritten (log(softmax) -> log_softmax, ...)."""
    return stabilise(g, inplace=True)


def gradient_graph(g: Graph, wrt: list[str] | None, evaluate: Evaluate) -> Graph:
    """Stabilise, differentiate (w.r.t. wrt, default: the params, else the inputs), simplify."""
    return simplify(autodiff.differentiate(forward_graph(g), wrt, inplace=True), evaluate, inplace=True)


def hvp_graph(g: Graph, wrt: str, vname: str, evaluate: Evaluate) -> Graph:
    """The gradient graph differentiated again: grads[wrt] is H·v, v being the new input `vname`."""
    return simplify(autodiff.hvp_graph(forward_graph(g), wrt, vname), evaluate, inplace=True)
