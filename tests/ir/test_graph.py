"""The Graph's own bookkeeping: order, copy, set_args, upstream/downstream, paused_gc.

Graph writes networkx's adjacency dicts directly for speed; these tests hold it to what the
networkx API would have made, and hold order() to its definition (Kahn's algorithm, the smallest
ready id first) on graphs whose edges also run from newer nodes to older ones.
"""

from __future__ import annotations

import gc
import heapq
import random

import networkx as nx
import pytest

from graphc.ir.graph import Graph, paused_gc


def reference_order(g: Graph) -> list[int]:
    indeg = {i: g.nx.in_degree(i) for i in g.nx.nodes}
    ready = [i for i, d in indeg.items() if d == 0]
    heapq.heapify(ready)
    out = []
    while ready:
        i = heapq.heappop(ready)
        out.append(i)
        for j in g.nx.successors(i):
            indeg[j] -= 1
            if not indeg[j]:
                heapq.heappush(ready, j)
    return out


def random_graph(seed: int, n: int = 60) -> Graph:
    """A random DAG built like the passes build them: nodes made in order, then some rewired to newer
    arguments (so edges run both ways in id order), some removed."""
    rnd = random.Random(seed)
    g = Graph()
    for i in range(n):
        k = rnd.choice([0, 0, 1, 2, 2, 3]) if i else 0
        g.add("x", [rnd.randrange(i) for _ in range(k)] if i else [])
    for _ in range(n // 3):  # a node takes a newer argument (made from one of its own)
        u = rnd.randrange(1, n)
        if not g[u]["args"]:
            continue
        new = g.add("y", [rnd.choice(g[u]["args"])])
        g.set_args(u, [new if rnd.random() < 0.5 else a for a in g[u]["args"]] + [new])
    dead = rnd.sample(sorted(g.nx.nodes), 5)
    g.nx.remove_nodes_from(dead)
    for i in list(g.nx.nodes):
        g[i]["args"] = tuple(a for a in g[i]["args"] if a in g.nx)
    return g


@pytest.mark.parametrize("seed", range(40))
def test_order_is_kahn_with_the_smallest_ready_id_first(seed):
    g = random_graph(seed)
    order = g.order()
    assert order == reference_order(g)
    assert sorted(order) == sorted(g.nx.nodes)
    pos = {i: k for k, i in enumerate(order)}
    assert all(pos[a] < pos[i] for i in g.nx.nodes for a in g[i]["args"])


def test_order_of_an_empty_graph():
    assert Graph().order() == []


@pytest.mark.parametrize("seed", range(10))
def test_copy_is_what_networkx_copy_makes_and_independent(seed):
    g = random_graph(seed)
    c = g.copy()
    ref = g.nx.copy()
    assert list(c.nx.nodes(data=True)) == list(ref.nodes(data=True))
    assert list(c.nx.edges) == list(ref.edges)
    assert {i: list(p) for i, p in c.nx.pred.items()} == {i: list(p) for i, p in ref.pred.items()}
    assert c.order() == g.order()
    for u, v in c.nx.edges:  # one data dict per edge, shared by succ and pred, not the original's
        assert c.nx.succ[u][v] is c.nx.pred[v][u] and c.nx.succ[u][v] is not g.nx.succ[u][v]
    i = next(iter(c.nx.nodes))
    c[i]["name"] = "changed"
    c.add("z", [i])
    assert g[i]["name"] != "changed" and len(g) == len(ref)


def test_set_args_keeps_edges_in_step_with_repeated_arguments():
    g = Graph()
    x, y = g.add("input"), g.add("input")
    m = g.add("mul", [x, x])
    assert set(g.nx.predecessors(m)) == {x}
    g.set_args(m, [x, y])
    assert g[m]["args"] == (x, y) and set(g.nx.predecessors(m)) == {x, y}
    g.set_args(m, [y, y])
    assert g[m]["args"] == (y, y) and set(g.nx.predecessors(m)) == {y}
    assert not g.nx.has_edge(x, m) and list(g.nx.successors(x)) == []
    assert nx.is_directed_acyclic_graph(g.nx)


def test_upstream_and_downstream():
    g = Graph()
    x, y = g.add("input"), g.add("input")
    a = g.add("add", [x, y])
    b = g.add("neg", [a])
    c = g.add("neg", [y])
    assert g.upstream([b]) == {x, y, a, b}
    assert g.downstream([x]) == {x, a, b}
    assert g.downstream([y]) == {y, a, b, c}


def test_paused_gc_restores_the_collector_state():
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(KeyError), paused_gc():
        {}["missing"]
    assert gc.isenabled()
