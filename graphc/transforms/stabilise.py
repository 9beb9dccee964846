"""Rewrite numerically fragile forms before differentiation."""

from __future__ import annotations

from ..ir.graph import Graph
from .rewrite import is_const, new, rewrite


def _log(g: Graph, i: int) -> None:
    """log(softmax) -> log_softmax, log(sigmoid(z)) -> -softplus(-z), log(1 - sigmoid(z)) -> -softplus(z),
    log(sum(exp(z))) -> logsumexp(z), log(1 + x) and log(x + 1) -> log1p(x)."""
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
    elif xn["op"] == "add" and any(is_const(g, a, 1.0) for a in xn["args"]):
        a, b = xn["args"]
        rewrite(g, i, "log1p", [b if is_const(g, a, 1.0) else a])
        _log1p(g, i)  # log(1 + exp(z)): on to softplus


def _log1p(g: Graph, i: int) -> None:
    """log1p(exp(z)) -> softplus(z)."""
    x = g[g[i]["args"][0]]
    if x["op"] == "exp":
        rewrite(g, i, "softplus", x["args"])


def _sub(g: Graph, i: int) -> None:
    """exp(z) - 1 -> expm1(z)."""
    a, b = g[i]["args"]
    if g[a]["op"] == "exp" and is_const(g, b, 1.0):
        rewrite(g, i, "expm1", g[a]["args"])


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


# the op at the root of each fragile form -> its rewrites
RULES = {"log": _log, "div": _div, "log1p": _log1p, "sub": _sub}


def stabilise(g: Graph, inplace: bool = False) -> Graph:
    """Each node whose op roots a fragile form, in order, rewritten in place by RULES (its users stay)."""
    g = g if inplace else g.copy()
    node = g._node
    if not any(n["op"] in RULES and (n["op"] != "sub" or node[n["args"][0]]["op"] == "exp") for n in node.values()):
        return g  # nothing to rewrite (a difference only of exp(z) - 1): no need to order the graph
    # (a rule changes only the node it is given, adding any others: the roots are found up front)
    for i in [i for i in g.order() if node[i]["op"] in RULES]:
        RULES[node[i]["op"]](g, i)
    return g
