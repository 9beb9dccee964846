"""Reverse-mode differentiation: the forward graph plus backward nodes for ȳ = dL/dy.

The lecture's algorithm, mechanically: visit values in reverse topological order; each
value's error signal is the sum, over its children, of the child's signal times the local
derivative (the op's ``grad`` rule). Only values on a path from a requested input to the
loss get a signal, so nothing that cannot reach a requested gradient is computed.
"""

from __future__ import annotations

from collections import defaultdict

from ..errors import GraphcError, suggest
from ..ir import ops as O
from ..ir.graph import Graph, V, paused_gc


def default_wrt(g: Graph) -> list[str]:
    """SPEC: gradients w.r.t. every param; with no params, every input (but indices and labels: integers)."""
    if g.params:
        return g.params
    integers = O.integer_inputs(g)
    return [n for n in g.inputs if n not in integers]


def every_wrt(g: Graph) -> list[str]:
    """Every param and input that can have a gradient (not indices and labels): what `--wrt` names for the
    lecture's count, where every input's gradient is needed."""
    integers = O.integer_inputs(g)
    return g.params + [n for n in g.inputs if n not in integers]


@paused_gc()
def differentiate(graph: Graph, wrt: list[str] | None = None, loss: int | None = None, inplace: bool = False) -> Graph:
    """A new graph (or `graph` itself, with inplace): graph's nodes plus the backward nodes;
    ``.grads`` maps each wrt name to its gradient."""
    g = graph if inplace else graph.copy()
    loss = g.loss if loss is None else loss
    if g[loss]["shape"] not in ((), None):
        raise GraphcError(
            f"can only differentiate a scalar, `{g.label(loss)}` has shape {g[loss]['shape']}",
            g[loss]["span"],
            "reduce it with sum(...) or mean(...)",
        )
    wrt = default_wrt(g) if wrt is None else list(wrt)
    for w in wrt:
        if w not in g.names:
            raise GraphcError(
                f"cannot differentiate w.r.t. `{w}`: the model has no such value", hint=suggest(w, g.names), usage=True
            )
    targets = [g.names[w] for w in wrt]
    needed = g.downstream(targets) & g.upstream([loss])  # on a path from a target to the loss

    g.shared_consts = {}  # one node per number the rules use (merge_common would leave them so)
    try:
        bar = _signals(g, loss, needed)
    finally:
        g.span = g.shared_consts = None
    for w, t in zip(wrt, targets):
        g.grads[w] = bar[t] if t in bar else g.op("zeros_like", V(g, t)).id
    return g


def _signals(g: Graph, loss: int, needed: set[int]) -> dict[int, int]:
    """Add the backward nodes: {node id: its error signal's node id}, for the nodes in `needed`."""
    pending: dict[int, list[int]] = defaultdict(list)  # node id -> its children's contributions
    g.span = g[loss]["span"]
    pending[loss].append(g.const(1.0))
    bar: dict[int, int] = {}
    node, OPS = g._node, O.OPS  # (raw dicts: this loop visits every forward node)
    for i in reversed([i for i in g.order() if i in needed]):
        contribs = pending.pop(i, None)
        if not contribs:
            continue  # every path to the loss has a zero derivative (e.g. through step)
        n = node[i]
        g.span = n["span"]
        t = contribs[0]
        for c in contribs[1:]:  # fan-out: the multivariate chain rule sums the children's signals
            t = g.add("add", (t, c), span=g.span)  # (what t + c makes, without handles)
            g.infer(t)
        bar[i] = t
        if n["name"] and node[t]["name"] is None and node[t]["op"] != "const":
            _name(g, t, n["name"])
        op, args = OPS[n["op"]], n["args"]
        if op.arity == 0 or op.grad is None or needed.isdisjoint(args):
            continue
        outs = op.grad(V(g, i), V(g, t), *[V(g, a) for a in args])
        for a, c in zip(args, outs):
            if c is None or a not in needed:
                continue
            c = c.id if isinstance(c, V) else g.const(c)
            shape = node[c]["shape"]
            if shape is None or shape != node[a]["shape"]:
                c = O.unbroadcast(V(g, c), V(g, a)).id  # the adjoint of broadcasting, in one place
            pending[a].append(c)
    return bar


def _name(g: Graph, i: int, of: str) -> None:
    """Name node i as the error signal of `of` (z -> z_bar): passes may move or merge such names."""
    name = of + "_bar"
    while name in g.names:  # a model may already use `y_bar` for something else
        name += "_"
    g[i].update(name=name, signal=of)
    g.names[name] = i


def hvp_input_name(graph: Graph) -> str:
    """A name for the vector v of H·v that the model does not use."""
    name = "v"
    while name in graph.names:
        name += "_"
    return name


def hvp_graph(graph: Graph, wrt: str, vname: str) -> Graph:
    """A graph whose ``grads[wrt]`` is H·v: the Hessian of the loss w.r.t. `wrt` times a new input
    `vname` shaped like `wrt`, by differentiating the backward graph again."""
    g1 = differentiate(graph, [wrt])
    w = g1.names[wrt]
    v = g1.add("input", attrs={"declared": g1[w]["shape"]}, name=vname, shape=g1[w]["shape"], span=g1[w]["span"])
    g1.names[vname] = v
    s = O.rsum(V(g1, g1.grads[wrt]) * V(g1, v))
    g2 = differentiate(g1, [wrt], loss=s.id, inplace=True)
    g2.loss = graph.loss
    return g2
