"""The interpreter: bind values to a graph's leaves, then run every node's NumPy kernel."""

from __future__ import annotations

import zlib
from functools import cache

import numpy as np

from . import ops as O
from . import runtime
from . import shapes as S
from .errors import GraphcError
from .graph import LEAVES, Graph


@cache
def _compiled(params: tuple[str, ...], expr: str):
    return eval(f"lambda {', '.join(params)}: {expr}", {"np": np, **vars(runtime)})  # noqa: S307 - our code


def kernel(g: Graph, i: int):
    """Node i's function: the expression `graphc emit` writes for it, specialised to the shapes the graph
    knows (a 2-D transpose is `.T`, summing a gradient back to a bias is `.sum(axis=0)`)."""
    from .codegen import node_expression

    params, expr = node_expression(g, i)
    return _compiled(params, expr)


def init_param(name: str, init: tuple, shape: tuple, seed: int) -> np.ndarray:
    """A param's initial value; each param draws from its own stream, so adding one changes no other."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    kind = init[0]
    if kind == "number":
        return np.full(shape, init[1], dtype=np.float64)
    if kind == "normal":
        return rng.normal(init[1], init[2], shape)
    if kind == "uniform":
        return rng.uniform(init[1], init[2], shape)
    fan_in, fan_out = shape[-2], shape[-1]  # rows feed columns, as in X @ W
    if kind == "glorot":
        r = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-r, r, shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)  # he


def as_array(name: str, value) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GraphcError(f"the value given for `{name}` is not numeric") from None
    return a


def bind(graph: Graph, values: dict, seed: int = 0, need: set | None = None) -> tuple[Graph, dict]:
    """Specialise graph to the shapes of `values` and give every leaf a value.

    Returns the specialised copy (all shapes concrete) and {node id: array} for its leaves.
    Inputs must be given; params take their initialiser when not given. Symbolic dims are
    unified across all values, so a mismatch names the value and both shapes.
    """
    unknown = set(values) - set(graph.names)
    if unknown:
        name = min(unknown)
        from .errors import suggest

        raise GraphcError(
            f"a value is given for `{name}`, which the model does not use",
            hint=suggest(name, graph.names) or f"the model's inputs: {', '.join(graph.inputs) or 'none'}",
        )
    g = graph.copy()
    env = {}
    order = sorted(graph.names.items(), key=lambda kv: graph[kv[1]]["op"] != "input")  # inputs first: they bind dims
    for name, i in order:
        n = g[i]
        if n["op"] == "const":
            env[i] = np.float64(n["attrs"]["value"])
            continue
        if n["op"] not in ("input", "param"):
            continue
        if need is not None and i not in need:
            continue
        declared = n["attrs"]["declared"]
        if name in values:
            a = as_array(name, values[name])
            _match(g, name, declared, a.shape)
        elif n["op"] == "input":
            raise GraphcError(
                f"no value for input `{name}`" + (f" (shape {S.fmt(declared)})" if declared else ""),
                n["span"],
                f"pass it with --inputs FILE.npz or --set {name}=VALUE",
            )
        else:
            shape = g.dims.shape(declared)
            free = [d for d in shape if not isinstance(d, int)]
            if free:
                raise GraphcError(
                    f"param `{name}` has shape {S.fmt(declared)} but `{free[0]}` is not known yet",
                    n["span"],
                    f"give `{name}` a value, or an input that fixes `{free[0]}`",
                )
            try:
                a = init_param(name, n["attrs"]["init"], shape, seed)
            except (ValueError, MemoryError) as e:
                raise GraphcError(f"cannot make param `{name}` of shape {S.fmt(shape)}: {e}", n["span"]) from None
        n["shape"] = a.shape
        env[i] = a
    for i in g.nx.nodes:  # anonymous constants
        if g[i]["op"] == "const":
            env[i] = np.float64(g[i]["attrs"]["value"])
    g.infer_all()
    return g, env


def _match(g: Graph, name: str, declared, actual) -> None:
    if declared is None:
        return
    ok = len(declared) == len(actual)
    if ok:
        try:
            for d, a in zip(declared, actual):
                g.dims.unify(d, a)
        except S.ShapeError:
            ok = False
    if not ok:
        bound = S.fmt(g.dims.shape(declared))
        extra = f" (= {bound} here)" if bound != S.fmt(declared) else ""
        raise GraphcError(
            f"`{name}` is declared with shape {S.fmt(declared)}{extra} but its value has shape {S.fmt(actual)}",
            g[g.names[name]]["span"],
        )


class Plan:
    """A graph compiled for repeated runs: its kernels, in order, with their argument ids."""

    def __init__(self, g: Graph, targets=None):
        keep = g.upstream(targets) if targets is not None else None
        self.graph = g
        self.consts = {i: np.float64(g[i]["attrs"]["value"]) for i in g.nx.nodes if g[i]["op"] == "const"}
        self.steps = [(i, kernel(g, i), g[i]["args"]) for i in g.order()
                      if g[i]["op"] not in LEAVES and (keep is None or i in keep)]

    def run(self, env: dict) -> dict:
        """{node id: value} for every step, given the leaves' values (consts are known)."""
        vals = {**self.consts, **env}
        with np.errstate(all="ignore"):
            try:
                for i, fn, args in self.steps:
                    vals[i] = fn(*[vals[a] for a in args])
            except (ValueError, IndexError, MemoryError) as e:  # e.g. max of an empty array
                n = self.graph[i]
                raise GraphcError(f"cannot evaluate `{O.OPS[n['op']].label}` here: {e}", n["span"]) from None
        return vals


def run(g: Graph, env: dict, targets=None) -> dict:
    """Evaluate nodes in topological order (only those `targets` need, if given)."""
    return Plan(g, targets).run(env)
