"""What every rewriting pass shares: reading constants, replacing a node, making new ones."""

from __future__ import annotations

from ..ir.graph import Graph


def const_value(g: Graph, i: int):
    n = g._node[i]  # (the raw dict: passes ask this of every argument of every node)
    return n["attrs"]["value"] if n["op"] == "const" and n["name"] is None else None


def is_const(g: Graph, i: int, value: float) -> bool:
    v = const_value(g, i)
    return v is not None and v == value


def replace(g: Graph, old: int, new: int) -> None:
    """Point every user of `old` (and the graph's loss, outputs, grads) at `new`."""
    changing(g, (old, new, *g._succ[old]))  # (the users' args change; old's and new's names may)
    for u in list(g._succ[old]):
        g.set_args(u, [new if a == old else a for a in g[u]["args"]])
    if old in g.grads.values():  # (checked first: a model may have many params, and passes replace often)
        g.grads = {k: (new if v == old else v) for k, v in g.grads.items()}
    if old in g.outputs:
        g.outputs = [new if v == old else v for v in g.outputs]
    if g.loss == old:
        g.loss = new
    name = g[old]["name"]
    if name and g.names.get(name) == old:  # an error-signal name moves to the node that now holds the value
        if g[new]["name"] is None:
            g[new].update(name=name, signal=g[old].get("signal"))
            g.names[name] = new
        else:
            del g.names[name]
        g[old]["name"] = None


def replaceable(g: Graph, i: int) -> bool:
    """Model values stay as they are; anonymous nodes and error signals may be rewritten."""
    n = g._node[i]
    return n["op"] not in ("input", "param") and (n["name"] is None or n.get("signal", False))


def new(g: Graph, at: int, op: str, args, attrs=None) -> int:
    changing(g)
    i = g.add(op, args, attrs or {}, span=g[at]["span"])
    g.infer(i)
    return i


def const(g: Graph, value: float, span=None) -> int:
    changing(g)
    return g.add("const", attrs={"value": value}, span=span, shape=())


class WouldChange(Exception):
    """What a pass raises instead of changing a graph it was run on only to learn whether it would."""


class Journal(dict):
    """What a round of simplification changed (see _settled), kept while it is g._journal: {id: (op, args,
    name, attrs)} as each node was when the journal began, for each node a pass changed since; the nodes
    made since are the ids from `start` on (ids grow), and are not in it."""

    def __init__(self, g: Graph):
        super().__init__()
        self.start = g._next

    def record(self, g: Graph, ids) -> None:
        start, node = self.start, g._node
        for i in ids:
            if i < start and i not in self:
                n = node[i]
                self[i] = (n["op"], n["args"], n["name"], n["attrs"])


def changing(g: Graph, ids=()) -> None:
    """Called before each change a simplification pass makes, with the existing nodes it changes (see _settled):
    a dry run refuses it, a journal records them."""
    state = g.__dict__
    if state.get("_dry_run", False):
        raise WouldChange
    journal = state.get("_journal")
    if journal is not None:
        journal.record(g, ids)


def rewrite(g: Graph, i: int, op: str, args, attrs=None) -> None:
    """Change node i in place (its name, span and users stay) to op(args)."""
    g[i]["op"], g[i]["attrs"] = op, dict(attrs or {})
    g.set_args(i, args)
    g.infer(i)
