"""The Graph: a networkx DiGraph of op nodes, plus the model's names, loss and outputs.

Each node carries ``op`` (a key of ``ops.OPS``), ``args`` (argument node ids, in order),
``attrs``, ``shape``, ``span`` (where in the model it came from) and ``name`` (the model
name it defines, or None). Edges run from argument to user; ``args`` keeps order and
repeats (``x * x``), which a DiGraph's edge set cannot.
"""

from __future__ import annotations

import heapq

import networkx as nx

from . import ops as O
from . import shapes as S
from .errors import GraphcError, Span

LEAVES = ("input", "param", "const")


class Graph:
    def __init__(self, source: str = "", path: str = "<model>"):
        self.nx = nx.DiGraph()
        self.names: dict[str, int] = {}  # model name -> node id
        self.loss: int | None = None
        self.outputs: list[int] = []
        self.grads: dict[str, int] = {}  # model name -> node id of its gradient (set by autodiff)
        self.dims = S.Dims()
        self.source, self.path = source, path
        self.span: Span | None = None  # span given to nodes made by derivative rules
        self._next = 0

    # ---- building -----------------------------------------------------------------------
    def add(self, op: str | None, args=(), attrs=None, span=None, name=None, shape=None) -> int:
        i = self._next
        self._next += 1
        args = tuple(args)
        # What nx.add_node + add_edges_from write, without their per-call checks (a fresh id, and
        # arguments that exist): graph building is most of parsing and differentiating.
        G = self.nx
        G._node[i] = {"op": op, "args": args, "attrs": attrs or {}, "span": span, "name": name, "shape": shape}
        G._succ[i] = {}
        G._pred[i] = pred = {}
        succ = G._succ
        for a in args:
            pred[a] = succ[a][i] = {}
        return i

    def op(self, name: str, *args, **attrs) -> V:
        """Add op `name` applied to handles or numbers, with its shape inferred: for derivative rules."""
        ids = [a.id if isinstance(a, V) else self.const(a) for a in args]
        i = self.add(name, ids, attrs, span=self.span)
        self.infer(i)
        return V(self, i)

    def const(self, value: float) -> int:
        return self.add("const", attrs={"value": float(value)}, span=self.span, shape=())

    def set_args(self, i: int, args) -> None:
        """Replace node i's arguments, keeping edges in step."""
        old = self.nx.nodes[i]["args"]
        self.nx.remove_edges_from((a, i) for a in old)
        self.nx.nodes[i]["args"] = tuple(args)
        self.nx.add_edges_from((a, i) for a in args)

    # ---- reading ------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict:
        return self.nx._node[i]  # the node's attribute dict; NodeView lookups cost 3x more

    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def order(self) -> list[int]:
        """Node ids, arguments before users; among the ready, the earliest made first, so the
        order follows the model's text and the backward pass follows the forward pass."""
        succ = self.nx._succ  # networkx's own adjacency dicts: its views cost 3x more per lookup
        indeg = {i: len(p) for i, p in self.nx._pred.items()}
        ready = [i for i, d in indeg.items() if d == 0]
        heapq.heapify(ready)
        out = []
        while ready:
            i = heapq.heappop(ready)
            out.append(i)
            for j in succ[i]:
                indeg[j] -= 1
                if not indeg[j]:
                    heapq.heappush(ready, j)
        return out

    def upstream(self, roots) -> set[int]:
        """The roots and every node they depend on, in one iterative sweep."""
        seen = set(roots)
        stack = list(seen)
        while stack:
            for a in self.nx.nodes[stack.pop()]["args"]:
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
        return seen

    def kind(self, i: int) -> str:
        op = self.nx.nodes[i]["op"]
        return op if op in LEAVES and self.nx.nodes[i]["name"] else "value"

    def label(self, i: int) -> str:
        """The model name of node i, or a short stand-in for an anonymous node."""
        n = self.nx.nodes[i]
        return n["name"] or (repr(n["attrs"]["value"]) if n["op"] == "const" else f"%{i}")

    def name_of(self, i: int) -> str | None:
        return self.nx.nodes[i]["name"]

    @property
    def params(self) -> list[str]:
        return [n for n, i in self.names.items() if self.nx.nodes[i]["op"] == "param"]

    @property
    def inputs(self) -> list[str]:
        return [n for n, i in self.names.items() if self.nx.nodes[i]["op"] == "input"]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows a graph as its picture (with its backward part, if it has one)."""
        from .render import mimebundle

        return mimebundle(self, include, exclude)

    def copy(self) -> Graph:
        g = Graph.__new__(Graph)
        g.__dict__.update(self.__dict__)
        g.nx = self.nx.copy()
        g.names, g.outputs, g.grads, g.dims = dict(self.names), list(self.outputs), dict(self.grads), self.dims.copy()
        return g

    # ---- shapes -------------------------------------------------------------------------
    def infer(self, i: int) -> None:
        """Infer node i's shape from its arguments' shapes."""
        n = self.nx.nodes[i]
        op = O.OPS[n["op"]]
        if op.arity == 0:
            if n["op"] == "const":
                n["shape"] = ()
            return
        try:
            n["shape"] = op.shape([self.nx.nodes[a]["shape"] for a in n["args"]], n["attrs"], self.dims)
        except S.ShapeError as e:
            raise GraphcError(str(e), n["span"]) from None

    def infer_all(self, order: list[int] | None = None) -> None:
        for i in order or self.order():
            self.infer(i)
        for n in self.nx.nodes.values():  # symbolic dims may have been bound along the way
            n["shape"] = self.dims.shape(n["shape"])


class V:
    """A handle to a node, with arithmetic that adds nodes: derivative rules read like maths."""

    __slots__ = ("graph", "id")

    def __init__(self, graph: Graph, i: int):
        self.graph, self.id = graph, i

    @property
    def shape(self):
        return self.graph[self.id]["shape"]

    @property
    def attrs(self) -> dict:
        return self.graph[self.id]["attrs"]

    def error(self, message: str, hint: str | None = None) -> GraphcError:
        return GraphcError(message, self.graph[self.id]["span"], hint)

    def _bin(name, swap=False):
        if swap:
            return lambda self, other: self.graph.op(name, other, self)
        return lambda self, other: self.graph.op(name, self, other)

    __add__, __radd__ = _bin("add"), _bin("add", True)
    __sub__, __rsub__ = _bin("sub"), _bin("sub", True)
    __mul__, __rmul__ = _bin("mul"), _bin("mul", True)
    __truediv__, __rtruediv__ = _bin("div"), _bin("div", True)
    __pow__, __matmul__ = _bin("pow"), _bin("matmul")
    del _bin

    def __neg__(self):
        return self.graph.op("neg", self)
