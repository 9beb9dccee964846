"""The interpreter: bind values to a graph's leaves, then run every node's NumPy kernel."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable
from functools import cache

import numpy as np

from . import ops as O
from . import runtime
from . import shapes as S
from .data import check_numeric
from .errors import GraphcError
from .graph import LEAVES, Graph

# What kernels and plans see. They run with every floating-point error ignored (np.errstate(all="ignore")
# around them), so a helper's own errstate, sigmoid's, is redundant there: its undecorated function.
_NAMESPACE = {"np": np, **{name: getattr(f, "__wrapped__", f) for name, f in vars(runtime).items()}}


@cache
def _compiled(params: tuple[str, ...], expr: str):
    return eval(f"lambda {', '.join(params)}: {expr}", dict(_NAMESPACE))  # noqa: S307 - our code


def kernel(g: Graph, i: int):
    """Node i's function: the expression `graphc emit` writes for it, specialised to the shapes the graph
    knows (a 2-D transpose is `.T`, summing a gradient back to a bias is `.sum(axis=0)`)."""
    from .codegen import node_expression

    params, expr = node_expression(g, i)
    return _compiled(params, expr)


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
        return a.astype(np.float64, copy=False)
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
        from .errors import suggest

        raise GraphcError(
            f"a value is given for `{name}`, which the model does not use",
            hint=suggest(name, graph.names) or f"the model's inputs: {', '.join(graph.inputs) or 'none'}",
        )
    for name in values:
        n = graph[graph.names[name]]
        if n["op"] not in ("input", "param"):
            const = n["op"] == "const"
            what = "a const" if const else f"computed by the model (line {n['span'].line})"
            raise GraphcError(
                f"a value is given for `{name}`, which is {what}",
                n["span"],
                "only inputs and params take values"
                + ("; change the const in the model, or declare it `input` or `param`" if const else "")
                + f" (inputs: {', '.join(graph.inputs) or 'none'}; params: {', '.join(graph.params) or 'none'})",
            )
    g = graph.copy()
    env = {}
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


# Ops whose value may share memory with their first argument (a view, or the argument itself).
VIEW_OPS = frozenset({"identity", "transpose", "mT", "expand_dims", "broadcast", "unbroadcast"})
PLAN_FILE = "<graphc plan>"  # the file name of a plan's generated function, in tracebacks
FUSE_LIMIT = 200  # longest fused expression, in characters: far below Python's 200 nested brackets


class Plan:
    """A graph compiled for repeated runs: one step per statement, as `graphc emit` writes them.

    A node is a statement of its own when a caller reads it (a target), when it has several uses, or
    when its expression would get too long; otherwise it is fused into its one user's expression,
    which composes the per-node expressions codegen writes. The steps read and write a list of
    values indexed by node id, as the lines of one generated function. Without targets, every node
    is its own step (and can be read).
    """

    def __init__(self, g: Graph, targets=None, env: dict | None = None, outputs: dict[str, int] | None = None):
        """`outputs` ({name: node id}, among the targets): `collect` gives them as {name: value} from
        a run's values list, as arrays the caller owns."""
        from .codegen import _Printer

        keep = g.upstream(targets) if targets is not None else set(g.nx.nodes)
        read = set(targets) if targets is not None else keep
        order = [i for i in g.order() if i in keep]
        uses = Counter(a for i in order for a in g[i]["args"])  # x * x uses x twice: not fused
        self.graph = g
        self.blank = [None] * (max(g.nx.nodes, default=-1) + 1)  # consts and preset leaves in place
        names = {}  # node id -> how a step reads it
        printer = _Printer(g, names, "float64")
        self.steps, self.members = [], {}  # (node id, expression); node id -> the nodes its step computes
        for i in order:
            n = g[i]
            if n["op"] in LEAVES:
                names[i] = f"v[{i}]"
                if n["op"] == "const":
                    self.blank[i] = np.float64(n["attrs"]["value"])
                continue
            e = printer.expr(i)
            if i in read or uses[i] != 1 or len(e[0]) > FUSE_LIMIT:
                names[i] = f"v[{i}]"
                self.steps.append((i, e[0]))
                self.members[i] = self._fused(i, names)
            else:
                printer.inlined[i] = e  # final (its arguments are done): its user reuses it, as in _Body
        self._run_steps = _compile(self.steps)
        for i, a in (env or {}).items():
            if i in keep:  # (bind's env may hold consts that passes have since removed)
                self.blank[i] = a
        # A value read from the plan may share memory with a leaf (an input, or a param's initial value
        # kept in `blank`), or be a read-only broadcast: `shared`. A caller handing out the targets as
        # arrays the receiver owns copies those, targets listed twice (one node, two names: two
        # arrays), and scalars (to 0-d arrays): `copy`. Every other target is a new array each run.
        shared: dict[int, bool] = {}
        for i in order:
            n = g[i]
            op = n["op"]
            shared[i] = op in ("input", "param", "broadcast") or (op in VIEW_OPS and shared[n["args"][0]])
        self.shared = {i for i in read if shared[i]}
        twice = {i for i, k in Counter(targets or ()).items() if k > 1}
        self.copy = self.shared | twice | {i for i in read if not g[i]["shape"]}
        items = (
            f"{name!r}: " + (f"np.array(v[{i}], float)" if i in self.copy else f"v[{i}]")
            for name, i in (outputs or {}).items()
        )
        # one generated dict display: a comprehension over outputs would cost an API call 3 µs more
        self.collect = eval(f"lambda v: {{{', '.join(items)}}}", {"np": np})  # noqa: S307 - our code

    def _fused(self, root: int, names: dict) -> list[int]:
        """The nodes step `root` computes, arguments first: root and the nodes fused into it."""
        out, stack = [], [root]
        while stack:
            i = stack.pop()
            out.append(i)
            stack += [a for a in self.graph[i]["args"] if a not in names]
        return out[::-1]  # each fused node has one user, found before it: reversed, arguments come first

    def run(self, env: dict | None = None) -> list:
        """The values list, indexed by node id (None for nodes fused into another step), given leaves'
        values by node id; consts and the leaves given when planning are known."""
        v = self.blank.copy()
        for i, a in (env or {}).items():
            v[i] = a
        return self.execute(v)

    def load(self, values: dict, slots: tuple) -> list | None:
        """A values list with `values` in their slots ((name, node id, shape) each), or None unless
        `values` are float64 arrays with exactly the slots' names and shapes."""
        if len(values) != len(slots):
            return None
        v = self.blank.copy()
        for name, i, shape in slots:
            a = values.get(name)
            if type(a) is not ndarray or a.dtype is not F64 or a.shape != shape:
                return None
            v[i] = a
        return v

    def execute(self, v: list) -> list:
        """Run the steps on a values list whose leaves are in place; the list, every statement done."""
        try:
            self._run_steps(v)
        except (ValueError, IndexError, MemoryError) as e:  # e.g. max of an empty array
            tb = e.__traceback__  # the failed step is the generated function's line that raised
            while tb.tb_frame.f_code.co_filename != PLAN_FILE:
                tb = tb.tb_next
            i, e = self._culprit(self.steps[tb.tb_lineno - 2][0], e, v)  # (line 1 is the def)
            n = self.graph[i]
            raise GraphcError(f"cannot evaluate `{O.OPS[n['op']].label}` here: {e}", n["span"]) from None
        return v

    def _culprit(self, root: int, error: Exception, v: list) -> tuple[int, Exception]:
        """Which node of a failed fused step failed: rerun its nodes one kernel at a time."""
        local = {}
        with np.errstate(all="ignore"):
            for i in self.members[root]:
                args = [local[a] if a in local else v[a] for a in self.graph[i]["args"]]
                try:
                    local[i] = kernel(self.graph, i)(*args)
                except (ValueError, IndexError, MemoryError) as e:
                    return i, e
        return root, error


def _compile(steps: list) -> Callable[[list], None]:
    """One function that runs the steps in order on the values list: a step is a line of it, not a call."""
    body = "".join(f"    v[{i}] = {expr}\n" for i, expr in steps) or "    pass\n"
    code = compile(f"def execute(v):\n{body}", PLAN_FILE, "exec")
    namespace = dict(_NAMESPACE)
    exec(code, namespace)  # noqa: S102 - our code
    return np.errstate(all="ignore")(namespace["execute"])  # as a decorator: half a `with` block's cost


def run(g: Graph, env: dict, targets=None) -> dict:
    """{node id: value} for every node, each its own step (only those `targets` need, fused, if given)."""
    plan = Plan(g, targets, env)
    v = plan.run()
    return {i: v[i] for i in g.nx.nodes if v[i] is not None}
