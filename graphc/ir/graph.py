"""The Graph: a networkx DiGraph of op nodes, plus the model's names, loss and outputs.

Each node carries ``op`` (a key of ``ops.OPS``), ``args`` (argument node ids, in order),
``attrs``, ``shape``, ``span`` (where in the model it came from) and ``name`` (the model
name it defines, or None). Edges run from argument to user; ``args`` keeps order and
repeats (``x * x``), which a DiGraph's edge set cannot.
"""

from __future__ import annotations

import gc
import heapq
import math
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import GraphcError, Span
from . import ops as O
from . import shapes as S

if TYPE_CHECKING:
    import networkx as nx

LEAVES = ("input", "param", "const")


@contextmanager
def paused_gc():
    """Pause the cyclic garbage collector (a context manager or decorator). Building and rewriting a graph
    makes hundreds of thousands of small dicts and tuples but no cycles (reference counting frees them);
    each burst of allocations sets off a collection that walks the whole growing graph, a fifth of
    compile time on a big model."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class Graph:
    def __init__(self, source: str = "", path: str = "<model>"):
        # Nodes and edges in networkx's own layout (id -> attributes; id -> {neighbour: edge attributes},
        # out and in); `.nx` is a networkx DiGraph over these very dicts, made on first use: parsing and
        # checking never import networkx (a fifth of `graphc check`'s start-up).
        self._node: dict[int, dict] = {}
        self._succ: dict[int, dict] = {}
        self._pred: dict[int, dict] = {}
        self._nx: nx.DiGraph | None = None
        self.names: dict[str, int] = {}  # model name -> node id
        self.loss: int | None = None
        self.outputs: list[int] = []
        self.grads: dict[str, int] = {}  # model name -> node id of its gradient (set by autodiff)
        self.dims = S.Dims()
        self.source, self.path = source, path
        self.span: Span | None = None  # span given to nodes made by derivative rules
        self._next = 0
        self.shared_consts: dict[float, int] | None = None  # number -> const node, when set (see const)

    @property
    def nx(self) -> nx.DiGraph:
        """The graph as a networkx DiGraph (sharing its dicts: what one changes, the other sees)."""
        if self._nx is None:
            import networkx

            G = networkx.DiGraph()
            G._node, G._adj, G._succ, G._pred = self._node, self._succ, self._succ, self._pred
            self._nx = G
        return self._nx

    # ---- building -----------------------------------------------------------------------
    def add(self, op: str | None, args=(), attrs=None, span=None, name=None, shape=None) -> int:
        i = self._next
        self._next += 1
        args = tuple(args)
        # What nx.add_node + add_edges_from write, without their per-call checks (a fresh id, and
        # arguments that exist): graph building is most of parsing and differentiating.
        self._node[i] = {"op": op, "args": args, "attrs": attrs or {}, "span": span, "name": name, "shape": shape}
        self._succ[i] = {}
        self._pred[i] = pred = {}
        succ = self._succ
        for a in args:
            pred[a] = succ[a][i] = {}
        return i

    def op(self, name: str, *args, **attrs) -> V:
        """Add op `name` applied to handles or numbers, with its shape inferred: for derivative rules."""
        ids = []
        for a in args:  # (a loop, not a comprehension: this runs for every node a derivative rule makes)
            ids.append(a.id if type(a) is V else self.const(a))
        i = self.add(name, ids, attrs, span=self.span)
        self.infer(i)
        return V(self, i)

    def const(self, value: float, span: Span | None = None) -> int:
        """A constant node (at `span`, else the graph's current span); while `shared_consts` is set (parsing,
        differentiating), one node per number, the first one's, as merge_common would leave them."""
        value, shared = float(value), self.shared_consts
        i = shared.get(value) if shared is not None else None  # (nan never matches: its own node each time)
        if i is None:
            i = self.add("const", attrs={"value": value}, span=span or self.span, shape=())
            if shared is not None:
                shared[value] = i
        return i

    def set_args(self, i: int, args) -> None:
        """Replace node i's arguments, keeping edges in step (what remove_edges_from + add_edges_from
        write, without their per-call checks: passes rewire thousands of nodes)."""
        succ, pred = self._succ, self._pred[i]
        n = self._node[i]
        for a in n["args"]:
            if pred.pop(a, None) is not None:
                del succ[a][i]
        n["args"] = args = tuple(args)
        for a in args:
            if a not in pred:
                pred[a] = succ[a][i] = {}

    def remove(self, i: int) -> None:
        """Remove node i and its edges (what nx's remove_node does)."""
        for a in self._pred.pop(i):
            del self._succ[a][i]
        for u in self._succ.pop(i):
            del self._pred[u][i]
        del self._node[i]

    # ---- reading ------------------------------------------------------------------------
    def __getitem__(self, i: int) -> dict:
        return self._node[i]  # the node's attribute dict; NodeView lookups cost 3x more

    def __len__(self) -> int:
        return len(self._node)

    def __iter__(self):
        return iter(self._node)

    def users(self, i: int):
        """The nodes that take node i as an argument."""
        return self._succ[i].keys()

    def order(self) -> list[int]:
        """Node ids, arguments before users; among the ready, the earliest made first, so the
        order follows the model's text and the backward pass follows the forward pass."""
        pred = self._pred
        # A graph as parsed or differentiated has every argument made before its users (simplify's rewrites
        # break this): then the order is the ids', and checking so costs a third of the sweep below
        for i, p in pred.items():
            if p and max(p) >= i:  # (>=: a node reading itself is a cycle)
                break
        else:
            return sorted(pred)
        succ = self._succ  # networkx's own adjacency dicts: its views cost 3x more per lookup
        indeg = {i: len(p) for i, p in pred.items()}
        # Kahn's algorithm with the smallest ready id first, as a sweep over the ids in increasing order:
        # arguments are nearly always made before their users, so a node is nearly always ready when the
        # sweep reaches it. Only one that becomes ready after the sweep passed it waits in a heap.
        ids = sorted(indeg)  # (ids grow as nodes are made: already sorted, a linear pass)
        n = len(ids)
        ids.append(math.inf)
        out, late = [], []
        k = 0
        while late or k < n:
            if late:  # each is below the sweep's next id: it comes first
                i = heapq.heappop(late)
            else:
                i = ids[k]
                k += 1
                if indeg[i]:
                    continue  # not ready: it goes into `late` when it is
            out.append(i)
            swept = ids[k]
            for j in succ[i]:
                indeg[j] -= 1
                if not indeg[j] and j < swept:
                    heapq.heappush(late, j)
        return out

    def upstream(self, roots) -> set[int]:
        """The roots and every node they depend on."""
        return _reach(roots, self._pred)  # (a node's pred keys are its arguments)

    def downstream(self, roots) -> set[int]:
        """The roots and every node that depends on them."""
        return _reach(roots, self._succ)

    def kind(self, i: int) -> str:
        op = self._node[i]["op"]
        return op if op in LEAVES and self._node[i]["name"] else "value"

    def label(self, i: int) -> str:
        """The model name of node i, or a short stand-in for an anonymous node."""
        n = self._node[i]
        return n["name"] or (repr(n["attrs"]["value"]) if n["op"] == "const" else f"%{i}")

    def name_of(self, i: int) -> str | None:
        return self._node[i]["name"]

    @property
    def params(self) -> list[str]:
        return [n for n, i in self.names.items() if self._node[i]["op"] == "param"]

    @property
    def inputs(self) -> list[str]:
        return [n for n, i in self.names.items() if self._node[i]["op"] == "input"]

    def copy(self) -> Graph:
        g = Graph.__new__(Graph)
        g.__dict__.update(self.__dict__)
        # What nx's copy() makes (node dicts copied, fresh edge dicts shared by _succ and _pred, in the
        # same order), written directly: its add_nodes_from + add_edges_from cost 10x more.
        g._node = {i: n.copy() for i, n in self._node.items()}
        g._succ, g._pred, g._nx = {}, {}, None
        succ, pred = g._succ, g._pred
        for i in self._node:
            succ[i], pred[i] = {}, {}
        for i, users in self._succ.items():
            s = succ[i]
            for u in users:
                s[u] = pred[u][i] = {}
        g.names, g.outputs, g.grads, g.dims = dict(self.names), list(self.outputs), dict(self.grads), self.dims.copy()
        return g

    # ---- shapes -------------------------------------------------------------------------
    def infer(self, i: int) -> None:
        """Infer node i's shape from its arguments' shapes."""
        node = self._node
        n = node[i]
        op = O.OPS[n["op"]]
        if op.arity == 0:
            if n["op"] == "const":
                n["shape"] = ()
            return
        try:
            n["shape"] = op.shape([node[a]["shape"] for a in n["args"]], n["attrs"], self.dims)
        except S.ShapeError as e:
            raise GraphcError(str(e), n["span"]) from None

    def infer_all(self, order: list[int] | None = None) -> None:
        for i in order or self.order():
            self.infer(i)
        for n in self._node.values():  # symbolic dims may have been bound along the way
            n["shape"] = self.dims.shape(n["shape"])


def _reach(roots, adjacency: dict) -> set[int]:
    """The roots and every node reachable from them along adjacency, in one iterative sweep."""
    seen = set(roots)
    stack = list(seen)
    while stack:
        for j in adjacency[stack.pop()]:
            if j not in seen:
                seen.add(j)
                stack.append(j)
    return seen


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
