"""Values for a graph's leaves: inputs given, params given or initialised, dims bound to sizes."""

from __future__ import annotations

import zlib

import numpy as np

from ...data import check_numeric
from ...errors import GraphcError, suggest
from ...ir import ops as O
from ...ir import shapes as S
from ...ir.graph import Graph

F64, ndarray = np.dtype(np.float64), np.ndarray


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
    if len(shape) == 4:  # a conv2d kernel [F, C, kh, kw]: each output reads C kh kw inputs (PyTorch's fans)
        fan_in, fan_out = shape[1] * shape[2] * shape[3], shape[0] * shape[2] * shape[3]
    else:
        fan_in, fan_out = shape[-2], shape[-1]  # rows feed columns, as in X @ W
    if kind == "glorot":
        r = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-r, r, shape)
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)  # he


def as_array(name: str, value, what: str = "the value given for") -> np.ndarray:
    if type(value) is ndarray and value.dtype is F64:
        return value
    try:
        a = np.asarray(value)
        check_numeric(name, a, "the values")  # (complex, text, objects: no silent cast)
        return np.asarray(a, dtype=np.float64)  # (NumPy's own float64: a dtype("<f8") equal to it is not it)
    except (TypeError, ValueError):
        raise GraphcError(f"{what} `{name}` is not numeric") from None


def bind(graph: Graph, values: dict, seed: int = 0, need: set | None = None) -> tuple[Graph, dict]:
    """Specialise graph to the shapes of `values` and give every leaf a value.

    Returns the specialised copy (all shapes concrete) and {node id: array} for its leaves.
    Inputs must be given; params take their initialiser when not given. Symbolic dims are
    unified across all values, so a mismatch names the value and both shapes.
    """
    unknown = set(values) - set(graph.names)
    if unknown:
        name = min(unknown)
        raise GraphcError(
            f"a value is given for `{name}`, which the model does not use",
            hint=suggest(name, graph.names) or f"the model's inputs: {', '.join(graph.inputs) or 'none'}",
        )
    for name in values:
        n = graph[graph.names[name]]
        if n["op"] not in ("input", "param"):
            const = n["op"] == "const"
            what = "a const" if const else f"computed by the model (line {n['span'].model_line})"
            raise GraphcError(
                f"a value is given for `{name}`, which is {what}",
                n["span"],
                "only inputs and params take values"
                + ("; change the const in the model, or declare it `input` or `param`" if const else "")
                + f" (inputs: {', '.join(graph.inputs) or 'none'}; params: {', '.join(graph.params) or 'none'})",
            )
    g = graph.copy()
    env = {}
    integers = O.integer_inputs(graph)
    # the values given first (inputs, then params): they bind the dims that params not given are made in
    order = sorted(graph.names.items(), key=lambda kv: (kv[0] not in values, graph[kv[1]]["op"] != "input"))
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
            if name in integers:
                a = _integers(g, name, a, integers[name])
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
        consts = [d for d in declared if isinstance(d, str) and d in g.names and g[g.names[d]]["op"] == "const"]
        because = "".join(f"; `{d}` is the const on line {g[g.names[d]]['span'].line}" for d in consts)
        extra = f" (= {bound} here{because})" if bound != S.fmt(declared) else ""
        raise GraphcError(
            f"`{name}` is declared with shape {S.fmt(declared)}{extra} but its value has shape {S.fmt(actual)}",
            g[g.names[name]]["span"],
        )


def _integers(g: Graph, name: str, a: np.ndarray, use: int) -> np.ndarray:
    """The value of an input of indices or labels as integers; a float that is not a whole number is an error
    at the input, naming the op that reads it."""
    whole = np.isfinite(a) & (a == np.round(a))
    if not whole.all():
        op = g[use]
        raise GraphcError(
            f"`{name}` holds the {O.integer_role(op['op'])} of {op['op']} (line "
            f"{op['span'].line}), but its value has {a[~whole].flat[0]:g}, which is not an integer",
            g[g.names[name]]["span"],
            "indices and labels are whole numbers (an integer array, or floats such as 3.0)",
        )
    return a.astype(np.int64)
