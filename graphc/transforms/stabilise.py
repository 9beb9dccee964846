"""Rewrite numerically fragile forms before differentiation."""

from __future__ import annotations

from ..ir.graph import Graph
from .rewrite import is_const, new, rewrite


def _log(g: Graph, i: int) -> None:
    """log(softmax) -> log_softmax, log(sigmoid(z)) -> -softplus(-z), log(1 - sigmoid(z)) -> -softplus(z),
    log(sum(exp(z))) -> logsumexp(z)."""
    (x,) = g[i]["args"]
    xn = g[x]
    if xn["op"] == "softmax":
        rewrite(g, i, "log_softmax", xn["args"], xn["attrs"])
    elif xn["op"] == "sigmoid":
        z = xn["args"][0]
        rewrite(g, i, "neg", [new(g, i, "softplus", [new(g, i, "neg", [z])])])
    elif xn["op"] == "sub" and is_const(g, xn["args"][0], 1.0) and g[xn["args"][1]]["op"] == "sigmoid":
        z = g[xn["args"][1]]["args"][0]
        rewrite(g, i, "neg", [new(g, i, "softplus", [z])])
    elif xn["op"] == "sum" and g[xn["args"][0]]["op"] == "exp":
        rewrite(g, i, "logsumexp", g[xn["args"][0]]["args"], xn["attrs"])


def _div(g: Graph, i: int) -> None:
    """1/(1 + exp(-z)) -> sigmoid(z)."""
    n = g[i]
    if not is_const(g, n["args"][0], 1.0):
        return
    d = g[n["args"][1]]
    if d["op"] == "add" and is_const(g, d["args"][0], 1.0) and g[d["args"][1]]["op"] == "exp":
        e = g[g[d["args"][1]]["args"][0]]
        if e["op"] == "neg":
            rewrite(g, i, "sigmoid", e["args"])


RULES = {"log": _log, "div": _div}  # the op at the root of each fragile form -> its rewrites


def stabilise(g: Graph, inplace: bool = False) -> Graph:
    """Each node whose op roots a fragile form, in order, rewritten in place by RULES (its users stay)."""
    g = g if inplace else g.copy()
    if not any(n["op"] in RULES for n in g._node.values()):
        return g  # nothing to rewrite: no need to order the graph
    for i in g.order():
        rule = RULES.get(g[i]["op"])
        if rule is not None:
            rule(g, i)
    return g
