"""The Python API: everything the command line does, as functions and a Model object."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import GraphcError, suggest
from .frontend import check_loss_shape, parse, read_source
from .ir import shapes as S
from .ir.graph import Graph

# NumPy and the numeric modules are imported where they are first used: `graphc check` needs
# neither, and importing them is a third of its start-up time.
if TYPE_CHECKING:
    import numpy as np


class Model:
    """A compiled model: its forward graph, and the means to evaluate and differentiate it."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._cache: dict = {}
        self._last: dict = {}  # (kind, seed) -> (graph, plan, slots) of _run's last call

    # ---- loading --------------------------------------------------------------------------
    @classmethod
    def from_source(cls, source: str, path: str = "<model>") -> Model:
        return cls(parse(source, path))

    @classmethod
    def load(cls, path: str | Path) -> Model:
        return cls.from_source(read_source(str(path)), str(path))

    @property
    def names(self) -> list[str]:
        return list(self.graph.names)

    @property
    def params(self) -> list[str]:
        return self.graph.params

    @property
    def inputs(self) -> list[str]:
        return self.graph.inputs

    @property
    def loss_name(self) -> str:
        return self.graph.label(self.graph.loss)

    @property
    def output_names(self) -> list[str]:
        return [self.graph.label(i) for i in self.graph.outputs]

    def summary(self) -> list[tuple[str, str, str, int]]:
        """(name, kind, shape, line) for every named value, in definition order."""
        g = self.graph
        rows = [
            (name, g.kind(i), S.fmt(g[i]["shape"]), g[i]["span"].model_line if g[i]["span"] else 0)
            for name, i in g.names.items()
        ]
        return sorted(rows, key=lambda r: r[3])

    # ---- symbolic -------------------------------------------------------------------------
    def backward(self, wrt: list[str] | None = None) -> Graph:
        """The backward graph (forward nodes plus error signals), stabilised and simplified."""
        return _gradient_graph(self.graph.copy(), wrt)

    def default_wrt(self) -> list[str]:
        """What gradients are taken w.r.t. when no names are given: the params, else the inputs."""
        from .transforms.autodiff import default_wrt

        return default_wrt(self.graph)

    def equations(
        self, values: dict | None = None, wrt: list[str] | None = None, latex: bool = False, seed: int = 0
    ) -> str:
        """The forward and backward passes in the lecture's notation; with values, for their shapes."""
        from .views.equations import equations

        if values:
            g, _ = self._bound(values, seed)
            return equations(_gradient_graph(g, wrt), latex)
        return equations(self.backward(wrt), latex)

    def cost(self, values: dict | None = None, wrt: list[str] | None = None, seed: int = 0, dtype: str = "float64"):
        """FLOPs and bytes moved per node of the gradient graph, and the forward and backward totals (a
        graphc.views.cost.Cost: .text(), .json()); without values, formulas in the symbolic dims. When the
        gradients leave out inputs (the data), the report also costs the gradients of every input."""
        from .transforms.autodiff import every_wrt
        from .views.cost import itemsize_of, report

        itemsize_of(dtype)  # (a KeyError for a dtype it does not know, before any work)
        g = self._bound(values, seed)[0] if values else self.graph
        names = list(wrt) if wrt is not None else self.default_wrt()
        every = names + [n for n in every_wrt(g) if n not in names]
        full = _gradient_graph(g.copy(), every) if every != names else None
        return report(_gradient_graph(g.copy(), names), names, dtype, full, every)

    def emit(
        self,
        wrt: list[str] | None = None,
        dtype: str = "float64",
        module_name: str = "model",
        order: int = 1,
        target: str = "numpy",
    ) -> str:
        """The source of a standalone module with forward() and loss_and_grad(); with order=2 also hvp() and
        hessian(), w.r.t. the one name in wrt (default: the first param, else input), while loss_and_grad
        keeps every gradient of order 1. target: the array library it is written for (graphc.backends.targets())."""
        from .backends import emitter

        return emitter(target)(self.graph, wrt, dtype, module_name, order)

    def compiled(self, wrt: list[str] | None = None, dtype: str = "float64", order: int = 1, target: str = "numpy"):
        """The emitted module, loaded as its target loads one (in memory, no file written, unless the target
        keeps a file: numba's cache): .forward(**v), .loss_and_grad(**v) (and with order=2 .hvp(direction, **v),
        the direction by position, and .hessian(**v))."""
        from .backends import loader

        key = ("compiled", tuple(wrt or ()), dtype, order, target)
        if key not in self._cache:
            source = self.emit(wrt, dtype, module_name="model", order=order, target=target)
            module = loader(target)(source, f"<graphc emit {self.graph.path}>")
            module.__source__ = source
            self._cache[key] = module
        return self._cache[key]

    # ---- numeric --------------------------------------------------------------------------
    def _bound(self, values: dict, seed: int):
        from .backends.numpy.values import bind

        g, env = bind(self.graph, values or {}, seed)
        check_loss_shape(g, g[g.loss]["shape"])
        return g, env

    def _run(self, kind: tuple, values: dict, seed: int, extra: dict | None = None):
        """Run the plan of `kind` ("forward", "grad" or "hvp": see _prepare) for these values' shapes. It
        is built once per set of shapes (and seed, for the params' initial values) and then reused, so a
        training loop pays only for the plan's steps. `extra` gives values to nodes the kind's graph
        adds (by name). Returns the graph, the plan and its values list (indexed by node id)."""
        # The common case first: the same names and shapes as this kind's last call (a loop), checked
        # as the values go into place. Otherwise: convert, find or build the plan, and remember it.
        last = self._last.get((kind, seed))
        v = last[1].load(values, last[2]) if last and not extra else None
        if v is None:
            from .backends.numpy.values import as_array

            values = {k: as_array(k, a) for k, a in values.items()}  # (a float64 array stays as it is)
            g, plan = self._prepare(kind, values, seed)
            given = {**values, **extra} if extra else values
            slots = tuple((name, g.names[name], a.shape) for name, a in given.items())
            self._last[kind, seed] = last = (g, plan, slots)
            v = plan.load(given, slots)
        g, plan = last[0], last[1]
        return g, plan, plan.execute(v)

    def _prepare(self, kind: tuple, arrays: dict, seed: int):
        """(graph, plan) for these values' shapes (values in another order share them): for ("forward",)
        the forward graph as it runs, for ("grad", wrt) the gradient graph, for ("hvp", wrt, vname)
        the graph of the Hessian of the loss w.r.t. wrt times the input vname."""
        from .backends.numpy.plan import Plan
        from .transforms import pipeline

        canonical = (kind, seed, tuple(sorted((k, a.shape) for k, a in arrays.items())))
        if canonical not in self._cache:
            g, env = self._bound(arrays, seed)
            if kind[0] == "forward":
                g = pipeline.forward_graph(g)
                targets = list(g.names.values())
            elif kind[0] == "grad":
                g = _gradient_graph(g, list(kind[1]) or None)
                targets = [g.loss, *g.grads.values()]
            else:
                g = _hvp_graph(g, kind[1], kind[2])
                targets = [g.grads[kind[1]]]
            # env: the params' initial values; outputs: what loss_and_grad gives by name
            self._cache[canonical] = (g, Plan(g, targets, env, outputs=g.grads if kind[0] == "grad" else None))
        return self._cache[canonical]

    def evaluate(self, values: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
        """Every named value of the forward pass."""
        import numpy as np

        values = values or {}
        g, plan, vals = self._run(("forward",), values, seed)
        # params not given take initial values the plan keeps for the next call: what may share memory
        # with them is handed out as a copy, so changing it cannot change the next call's values
        copy = plan.shared if any(p not in values for p in self.graph.params) else ()
        return {name: np.array(vals[i], float) if i in copy else np.asarray(vals[i]) for name, i in g.names.items()}

    def loss_and_grad(self, values: dict | None = None, wrt: list[str] | None = None, seed: int = 0):
        """(loss, {name: dL/dname}) for the requested names (default: params, else inputs)."""
        g, plan, vals = self._run(("grad", tuple(wrt or ())), values or {}, seed)
        # each run makes new arrays: a gradient is handed out as it is (as the emitted module does)
        # unless the caller would not own it (plan.copy: it may share memory with a leaf, ...)
        return float(vals[g.loss]), plan.collect(vals)

    def trace(
        self, values: dict | None = None, wrt: list[str] | None = None, seed: int = 0, backward: bool = True
    ) -> tuple[Graph, dict[int, np.ndarray]]:
        """The graph graphc runs -- the gradient graph, or with backward=False the forward graph as
        `evaluate` runs it -- and, given values (None: none), the value of every node in it,
        anonymous and backward ones included: (Graph, {node id: array})."""
        import numpy as np

        from .backends.numpy.plan import run
        from .transforms import pipeline

        if values is None:
            g = self.graph.copy()
            return (_gradient_graph(g, wrt) if backward else pipeline.forward_graph(g)), {}
        g, env = self._bound(values, seed)
        g = _gradient_graph(g, wrt) if backward else pipeline.forward_graph(g)
        return g, {i: np.asarray(v) for i, v in run(g, env).items()}

    # ---- pictures (graphc/views/render.py) -------------------------------------------------
    def to_digraph(
        self,
        backward: bool = False,
        values: dict | None = None,
        wrt: list[str] | None = None,
        seed: int = 0,
        **options,
    ):
        """The picture of the model as a graphviz.Digraph, which Jupyter displays inline; with values
        ({name: value}, as for evaluate), every node shows its value (and with backward its error signal).
        wrt: the gradients the backward graph computes (default: the params, else the inputs). Options:
        graphc.views.render.to_digraph's (rankdir, group_by_line, group_by_call, collapse, legend, title)."""
        from .views.render import to_digraph

        for w in wrt or ():  # checked even for a forward picture: a misspelt name should not pass silently
            if w not in self.graph.names:
                raise GraphcError(
                    f"cannot differentiate w.r.t. `{w}`: the model has no such value",
                    hint=suggest(w, self.names),
                    usage=True,
                )
        g, vals = self.trace(values, wrt, seed, backward=bool(backward))
        return to_digraph(g, vals, bool(backward), **options)

    def render(self, path, backward: bool = False, values: dict | None = None, protect=(), **options) -> str:
        """Draw the model into path: svg, png, pdf or dot, from its extension; written atomically (never
        over a path in protect). Options: to_digraph's."""
        from .views.render import format_of, save

        format_of(str(path))  # a wrong extension is reported before any work
        return save(self.to_digraph(backward, values, **options), str(path), protect)

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """Jupyter shows a model as the picture of its forward graph."""
        from .views.render import mimebundle

        return mimebundle(self.to_digraph, repr(self), include, exclude)

    def hessian(self, values: dict | None = None, wrt: str | None = None, seed: int = 0) -> np.ndarray:
        """The dense Hessian of the loss w.r.t. one value, column by column from H·v products."""
        import numpy as np

        wrt = wrt or next(iter(self.default_wrt()), None)
        if wrt is None:
            raise GraphcError("no value to take the Hessian for: the model has no params or inputs")
        if wrt not in self.graph.names:
            raise GraphcError(f"no value `{wrt}` to take the Hessian for", hint=suggest(wrt, self.names), usage=True)
        g, _ = self._bound(values, seed)
        shape = g[g.names[wrt]]["shape"]
        size = int(np.prod(shape))
        if size > 4096:
            raise GraphcError(
                f"`{wrt}` has {size} elements: a dense Hessian would be {size}x{size}",
                hint="use Model.hvp for Hessian-vector products",
            )
        if size == 0:  # (an empty param: an empty Hessian)
            return np.zeros(shape + shape)
        cols = []
        for k in range(size):
            e = np.zeros(size)
            e[k] = 1.0
            cols.append(self.hvp(values, e.reshape(shape), wrt, seed).reshape(size))
        return np.stack(cols, axis=1).reshape(shape + shape)

    def hvp(self, values: dict | None, v, wrt: str, seed: int = 0) -> np.ndarray:
        """The Hessian of the loss w.r.t. `wrt` times v, by differentiating the backward graph again."""
        import numpy as np

        from .backends.numpy.values import as_array
        from .transforms import autodiff

        vname = autodiff.hvp_input_name(self.graph)
        g, _, vals = self._run(("hvp", wrt, vname), values or {}, seed, extra={vname: as_array(vname, v)})
        return np.asarray(vals[g.grads[wrt]], dtype=np.float64)

    # ---- training -------------------------------------------------------------------------
    def train(self, data: dict, **options):
        """Fit the params to `data` (inputs keyed by name, examples along axis 0) by gradient descent
        or mini-batch SGD; see graphc.training.train for the options. Returns a TrainResult, whose
        .params the other methods take as values."""
        from .training import train

        return train(self, data, **options)


def _gradient_graph(g: Graph, wrt) -> Graph:
    """The pipeline's gradient graph, constants folded as NumPy computes them (on a graph the caller owns)."""
    from .backends.numpy.kernels import evaluate
    from .transforms import pipeline

    return pipeline.gradient_graph(g, wrt, evaluate)


def _hvp_graph(g: Graph, wrt: str, vname: str) -> Graph:
    from .backends.numpy.kernels import evaluate
    from .transforms import pipeline

    return pipeline.hvp_graph(g, wrt, vname, evaluate)


def compile(source: str, path: str = "<model>") -> Model:
    """Compile model text."""
    return Model.from_source(source, path)


def load(path: str | Path) -> Model:
    """Load and compile a model file ('-' for stdin)."""
    return Model.load(path)
