"""The interpreter: a graph compiled into one Python function of NumPy steps, run on a list of values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from ...errors import GraphcError
from ...ir import ops as O
from ...ir.graph import LEAVES, Graph
from ..printer import Printer
from . import dialect
from .kernels import NAMESPACE, kernel
from .values import F64, ndarray

PLAN_FILE = "<graphc plan>"  # the file name of a plan's generated function, in tracebacks
FUSE_LIMIT = 200  # longest fused expression, in characters: far below Python's 200 nested brackets


class Plan:
    """A graph compiled for repeated runs: one step per statement, as `graphc emit` writes them.

    A node is a statement of its own when a caller reads it (a target), when it has several uses, or
    when its expression would get too long; otherwise it is fused into its one user's expression,
    which composes the per-node expressions the printer writes. The steps read and write a list of
    values indexed by node id, as the lines of one generated function. Without targets, every node
    is its own step (and can be read).
    """

    def __init__(self, g: Graph, targets=None, env: dict | None = None, outputs: dict[str, int] | None = None):
        """`outputs` ({name: node id}, among the targets): `collect` gives them as {name: value} from
        a run's values list, as arrays the caller owns."""
        keep = g.upstream(targets) if targets is not None else set(g.nx.nodes)
        read = set(targets) if targets is not None else keep
        order = [i for i in g.order() if i in keep]
        uses = Counter(a for i in order for a in g[i]["args"])  # x * x uses x twice: not fused
        self.graph = g
        self.blank = [None] * (max(g.nx.nodes, default=-1) + 1)  # consts and preset leaves in place
        names = {}  # node id -> how a step reads it
        printer = Printer(g, names, dialect)
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
                printer.inline(i, e)  # (as in the emitted module)
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
            shared[i] = op in ("input", "param", "broadcast") or (O.OPS[op].view and shared[n["args"][0]])
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
    namespace = dict(NAMESPACE)
    exec(code, namespace)  # noqa: S102 - our code
    return np.errstate(all="ignore")(namespace["execute"])  # as a decorator: half a `with` block's cost


def run(g: Graph, env: dict, targets=None) -> dict:
    """{node id: value} for every node, each its own step (only those `targets` need, fused, if given)."""
    plan = Plan(g, targets, env)
    v = plan.run()
    return {i: v[i] for i in g.nx.nodes if v[i] is not None}
