"""Emit a standalone NumPy module: forward() and loss_and_grad(), one readable line per step.

The module imports only NumPy. Values keep their model names, error signals are `<name>_bar`,
each step says which model line it comes from, and the helpers the code calls are copied in
from graphc/runtime.py, so the numbers are the interpreter's to the last bit.
"""

from __future__ import annotations

import inspect
import keyword
import textwrap

from . import ops as O
from . import passes, runtime
from .graph import LEAVES, Graph, paused_gc

WIDTH = 88  # ruff's default line length: the output passes `ruff format --check` unchanged
ATOM, POW, UNARY, MUL, ADD, CMP = 6, 5, 4, 3, 2, 1
LOWERED = frozenset(("unbroadcast", "mul", "neg", "sum", "mean", "max", "size_ratio", "mT"))  # ops lower() may rewrite
INFIX = {
    "add": ("+", ADD),
    "sub": ("-", ADD),
    "mul": ("*", MUL),
    "div": ("/", MUL),
    "matmul": ("@", MUL),
    "pow": ("**", POW),
    **{op: (O.OPS[op].infix[0], CMP) for op in ("gt", "ge", "lt", "le", "eq", "ne")},
}


def _float(v) -> str:
    """A float as Python source: repr, but inf and nan (which repr writes as bare names) as NumPy's."""
    v = float(v)
    if v != v:
        return "np.nan"
    if v in (float("inf"), float("-inf")):
        return "np.inf" if v > 0 else "-np.inf"
    return repr(v)


def _py(name: str) -> str:
    """A model name as a Python identifier: keywords get a trailing underscore."""
    return name + "_" if keyword.iskeyword(name) or name in ("np",) else name


class _Printer:
    """Turns nodes into Python expressions, inlining anonymous values used once."""

    def __init__(self, g: Graph, names: dict[int, str], dtype: str, dims: dict[str, str] | None = None):
        self.g, self.names, self.dtype = g, names, dtype
        self.helpers: set[str] = set()
        self.dims = dims or {}  # symbolic dim -> where to read it
        self.used_dims: set[str] = set()
        self.local = False  # True: may only refer to the node's own arguments (an interpreter kernel)
        self.inlined: dict[int, tuple[str, int]] = {}  # node -> its expression, once it is final

    def expr(self, i: int) -> tuple[str, int]:
        if i in self.names:
            return self.names[i], ATOM
        if i in self.inlined:
            return self.inlined[i]
        n = self.g[i]
        op = n["op"]
        if op == "const":
            v = n["attrs"]["value"]
            text = _float(v) if self.dtype == "float64" else f"np.{self.dtype}({_float(v)})"
            self.inlined[i] = e = (text, (UNARY if v < 0 else ATOM))  # final at once (nan is an atom too)
            return e
        if op in LOWERED:
            lowered = self.lower(i)
            if lowered is not None:
                return lowered
        names, inlined = self.names, self.inlined  # (arguments are mostly done: no call for those)
        args = [(names[a], ATOM) if a in names else inlined.get(a) or self.expr(a) for a in n["args"]]
        if op in INFIX:
            sym, prec = INFIX[op]
            right_assoc = op == "pow"
            a = self.wrap(args[0], prec, strict=right_assoc)
            b = self.wrap(args[1], prec, strict=not right_assoc)
            if op == "pow" and args[0][1] == ATOM and args[1][1] == ATOM:
                return f"{a}**{b}", POW  # simple operands hug `**`, as ruff formats them
            return f"{a} {sym} {b}", prec
        if op == "neg":
            return f"-{self.wrap(args[0], UNARY)}", UNARY
        if op == "identity":  # an alias line: its argument, precedence and all (2 * w, w = p - q: 2 * (p - q))
            return args[0]
        spec = O.OPS[op]
        self.helpers.update(spec.helpers)
        texts = [
            self.wrap(a, ATOM) if f"{{{k}}}." in spec.code or f"{{{k}}}[" in spec.code else a[0]
            for k, a in enumerate(args)
        ]
        return spec.render(texts, n["attrs"]), ATOM

    @staticmethod
    def wrap(arg: tuple[str, int], prec: int, strict: bool = False) -> str:
        text, p = arg
        return text if p > prec or (p == prec and not strict) else f"({text})"

    def lower(self, i: int):
        """Specialise shape-generic ops (those in LOWERED) when the shapes are known when emitting."""
        g, n = self.g, self.g[i]
        if n["op"] == "unbroadcast":
            src, ref = n["args"]
            gs, xs = g[src]["shape"], g[ref]["shape"]
            if gs is None or xs is None:
                return None
            lead = len(gs) - len(xs)
            axes = list(range(lead)) + [lead + k for k, d in enumerate(xs) if d == 1 and gs[lead + k] != 1]
            inner = self.wrap(self.expr(src), ATOM)
            if not axes:
                return self.expr(src)
            if not xs:
                return f"np.sum({self.expr(src)[0]})", ATOM
            ax = axes[0] if len(axes) == 1 else tuple(axes)
            kept = [k for k in axes if k >= lead]
            text = f"{inner}.sum(axis={ax!r})"  # gs is known and not scalar: an array
            if kept:
                text += f".reshape({self.shape_of(ref)})"
            return text, ATOM
        if n["op"] == "mul" and g[n["args"][0]]["op"] == g[n["args"][1]]["op"] == "expand_dims":
            (u,), (v,) = (g[a]["args"] for a in n["args"])
            reach = not self.local or (u in self.names and v in self.names)
            axes = [g[a]["attrs"]["axis"] for a in n["args"]]
            if (
                reach
                and axes == [-1, -2]
                and g[u]["shape"]
                and g[v]["shape"]
                and (len(g[u]["shape"]) == len(g[v]["shape"]) == 1)
            ):
                return f"np.outer({self.expr(u)[0]}, {self.expr(v)[0]})", ATOM  # ā = ḡ bᵀ, as on the slide
        if n["op"] == "neg" and g[n["args"][0]]["op"] == "mul" and n["args"][0] not in self.names:
            # -(c * x) with a scalar c as (-c) * x: negating the scalar, not the array, saves an array op
            args = g[n["args"][0]]["args"]
            shapes = [g[a]["shape"] for a in args]
            if shapes[0] == () and shapes[1]:
                c, x = self.expr(args[0]), self.expr(args[1])
                return f"-{self.wrap(c, UNARY, strict=True)} * {self.wrap(x, MUL, strict=True)}", MUL
        if n["op"] in ("sum", "mean") and n["shape"] == () and not self.local:
            s = n["args"][0]
            if g[s]["op"] == "sum" and s not in self.names and g[g[s]["args"][0]]["shape"]:
                # the total of a partial sum (inlined: used only here) is its argument's total: one pass
                total = f"{self.wrap(self.expr(g[s]['args'][0]), ATOM)}.sum()"
                if n["op"] == "sum":
                    return total, ATOM
                count = self.size_ratio(g[s]["shape"], ())
                if count is not None:
                    return f"{total} / {self.wrap(count, MUL, strict=True)}", MUL
        if n["op"] == "mean" and g[n["args"][0]]["shape"]:  # x.sum() / count: np.mean's own arithmetic, 2x faster
            count = self.size_ratio(g[n["args"][0]]["shape"], n["shape"])
            if count is not None:
                kw = O.OPS["sum"].render(["x"], n["attrs"])[len("np.sum(x") : -1].lstrip(", ")
                return (
                    f"{self.wrap(self.expr(n['args'][0]), ATOM)}.sum({kw}) / {self.wrap(count, MUL, strict=True)}",
                    MUL,
                )
        if n["op"] in ("sum", "mean", "max") and g[n["args"][0]]["shape"]:  # an array: its method is faster
            kw = O.OPS[n["op"]].render(["x"], n["attrs"])[len(f"np.{n['op']}(x") : -1].lstrip(", ")
            return f"{self.wrap(self.expr(n['args'][0]), ATOM)}.{n['op']}({kw})", ATOM
        if n["op"] == "size_ratio":
            return self.size_ratio(*(g[a]["shape"] for a in n["args"]))
        if n["op"] == "mT" and g[n["args"][0]]["shape"] is not None and len(g[n["args"][0]]["shape"]) == 2:
            return f"{self.wrap(self.expr(n['args'][0]), ATOM)}.T", ATOM
        return None

    def size_ratio(self, num, den):
        """size(y) / size(x) from the shapes, with symbolic dims read from the inputs: 1 / N."""
        if num is None or den is None:
            return None
        num, den = list(num), list(den)
        for d in list(num):
            if d in den:
                num.remove(d)
                den.remove(d)
        syms = [d for d in num + den if isinstance(d, str)]
        if any(d not in self.dims for d in syms):
            return None
        self.used_dims.update(syms)
        num = [self.dims[d] if isinstance(d, str) else d for d in num]
        den = [self.dims[d] if isinstance(d, str) else d for d in den]

        def product(ds):
            k = 1
            for d in ds:
                k *= d if isinstance(d, int) else 1
            return " * ".join(
                ([str(k)] if k != 1 or not any(isinstance(d, str) for d in ds) else [])
                + [d for d in ds if isinstance(d, str)]
            )

        top, bottom = product(num), product(den)
        if not any(isinstance(d, str) for d in num + den):
            return repr(eval(f"{top} / {bottom}")), ATOM  # noqa: S307 - integers we made
        if bottom == "1":
            return top, (ATOM if " " not in top else MUL)
        bottom = bottom if " " not in bottom else f"({bottom})"
        return f"{top} / {bottom}", MUL

    def shape_only(self, u: int) -> bool:
        """Does node u need only its arguments' shapes, known when emitting (1 / N)?"""
        n = self.g[u]
        return n["op"] == "size_ratio" and self.size_ratio(*(self.g[a]["shape"] for a in n["args"])) is not None

    def shape_of(self, i: int) -> str:
        return f"np.shape({self.expr(i)[0]})"


def node_expression(g: Graph, i: int) -> tuple[tuple[str, ...], str]:
    """Node i as an expression of parameters a0, a1, ...: the interpreter's kernel for it."""
    params = tuple(f"a{k}" for k in range(len(g[i]["args"])))
    printer = _Printer(g, dict(zip(g[i]["args"], params)), "float64")
    printer.local = True
    return params, printer.expr(i)[0]


def _defaults(g: Graph) -> dict[str, str]:
    """Python default expressions for params with a numeric initial value (None marks "derive")."""
    out = {}
    for name, i in g.names.items():
        n = g[i]
        if n["op"] == "param" and n["attrs"]["init"][0] == "number":
            out[name] = _float(n["attrs"]["init"][1])
    return out


def _dim_sources(g: Graph) -> dict[str, tuple[str, str]]:
    """For each symbolic dim, a variable name and where to read it at run time: the first input declared
    with it (N -> np.shape(X)[0])."""
    src = {}
    for name, i in g.names.items():
        n = g[i]
        if n["op"] == "input" and n["attrs"]["declared"]:
            for k, d in enumerate(n["attrs"]["declared"]):
                if isinstance(d, str) and d not in src:
                    var = _py(d) if d not in g.names else f"{d}_dim"
                    src[d] = (var, f"{_py(name)}.shape[{k}]")
    return src


@paused_gc()
def emit(
    model, wrt: list[str] | None = None, dtype: str = "float64", module_name: str = "model", order: int = 1
) -> str:
    """The source text of a standalone module for the model (with order=2, also hvp and hessian)."""
    from .api import _gradient_graph
    from .errors import GraphcError

    if dtype not in ("float64", "float32"):
        raise GraphcError(f"--dtype must be float64 or float32, not {dtype}", usage=True)
    fwd = model.graph
    if order == 2:
        wrt = wrt or [(fwd.params or fwd.inputs)[0]]
        if len(wrt) != 1:
            raise GraphcError("--order 2 takes exactly one name in --wrt", usage=True)
    gb = _gradient_graph(fwd.copy(), wrt)
    path = fwd.path
    src_lines = fwd.source.splitlines()
    free = [n for n, i in fwd.names.items() if fwd[i]["op"] in ("input", "param")]
    defaults = _defaults(fwd)
    dims = _dim_sources(fwd)
    required = [n for n in free if n not in defaults]
    optional = [n for n in free if n in defaults]
    sig = ", ".join(["*"] + [_py(n) for n in required] + [f"{_py(n)}=None" for n in optional])

    consts = _named_consts(fwd)
    const_lines = [
        f"{name} = {_float(fwd[i]['attrs']['value'])}  # line {fwd[i]['span'].line}"
        for i, name in sorted(consts.items(), key=lambda kv: fwd[kv[0]]["span"].line)
    ]

    prologue = []
    for n in optional:
        i = fwd.names[n]
        shape = fwd[i]["attrs"]["declared"]
        val = defaults[n]
        if shape:
            dimtext = ", ".join(str(d) if isinstance(d, int) else dims[d][1] if d in dims else repr(d) for d in shape)
            val = f"np.full(({dimtext},), {val})" if len(shape) == 1 else f"np.full(({dimtext}), {val})"
        elif dtype == "float64":  # NumPy's scalar, as the interpreter's: b / 0.0 is inf, not ZeroDivisionError
            val = f"np.float64({val})"
        prologue.append(f"if {_py(n)} is None:\n    {_py(n)} = {val}")
    if dtype != "float64":
        prologue += [f"{_py(n)} = np.asarray({_py(n)}, dtype=np.{dtype})" for n in free]

    gf = passes.simplify(passes.stabilise(fwd), inplace=True)  # (stabilise made a copy)
    dim_vars = {d: var for d, (var, _) in dims.items()}
    printer_f = _Body(gf, dtype, consts, dim_vars)
    fwd_body = printer_f.statements(gf.order(), set(gf._node))
    returned = _call_lines("return {", [f'"{n}": {_py(n)}' for n in fwd.names], "}")
    printer_b = _Body(gb, dtype, _named_consts(gb), dim_vars)
    forward_ids = gb.upstream([gb.loss])
    steps = gb.order()
    needed = gb.upstream([gb.loss, *gb.grads.values()])
    body_f = printer_b.statements([i for i in steps if i in forward_ids], needed)
    body_b = printer_b.statements([i for i in steps if i not in forward_ids and i in needed], needed)
    loss = printer_b.expr(gb.loss)[0]
    grads = _call_lines(f"return {loss}, {{", [f'"{w}": {printer_b.expr(i)[0]}' for w, i in gb.grads.items()], "}")
    second = _second_order(fwd, wrt[0], sig, prologue, dims, dtype) if order == 2 else None
    helpers = sorted(printer_f.helpers | printer_b.helpers | (second[1] if second else set()))
    helper_src = [inspect.getsource(getattr(runtime, h)) for h in _with_dependencies(helpers)]

    example_args = ", ".join(f"{_py(n)}=..." for n in required)
    wrt_names = ", ".join(gb.grads)
    model_text = textwrap.indent("\n".join(line.rstrip() for line in src_lines if line.strip()), "    ")
    parts = [
        f'"""Gradient code for {path}, generated by graphc. Only NumPy is needed.\n\n'
        f"The model:\n\n{model_text}\n\n"
        f"Usage:\n\n    import {module_name}\n"
        f"    values = {module_name}.forward({example_args})  # every named value\n"
        f"    loss, grads = {module_name}.loss_and_grad({example_args})  # d{gb.label(gb.loss)}/d({wrt_names})\n"
        + (
            f"    hessian = {module_name}.hessian({example_args})  # d²{gb.label(gb.loss)}/d{wrt_names}²\n"
            if second
            else ""
        )
        + '"""\n',
        "import numpy as np\n",
    ]
    if const_lines:
        parts.append("\n".join(const_lines) + "\n")
    parts += [h.rstrip() + "\n" for h in helper_src]
    doc_f = '"""Every named value of the forward pass."""'
    doc_b = (
        f'"""The loss and its gradients w.r.t. {wrt_names}.\n\n'
        f"    Error signals are named <value>_bar: y_bar = d{gb.label(gb.loss)}/dy.\n"
        '    """'
    )
    dims_f, dims_b = _dim_lines(dims, printer_f.used_dims), _dim_lines(dims, printer_b.used_dims)
    parts.append(_function("forward", sig, doc_f, prologue + dims_f + fwd_body + [returned]))
    parts.append(
        _function(
            "loss_and_grad",
            sig,
            doc_b,
            prologue + dims_b + ["# forward pass"] + body_f + ["", "# backward pass"] + body_b + [grads],
        )
    )
    if second:
        parts += second[0]
    head = parts[:3] if const_lines else parts[:2]
    rest = parts[len(head) :]
    return "\n".join(p.rstrip("\n") + "\n" for p in head) + "".join("\n\n" + p.rstrip("\n") + "\n" for p in rest)


def _named_consts(g: Graph) -> dict[int, str]:
    """The model's named constants (`const c = 2`), by node id: the module defines them once, by name."""
    return {i: _py(n["name"]) for i, n in g._node.items() if n["op"] == "const" and n["name"]}


def _dim_lines(dims: dict, used) -> list[str]:
    """`N = X.shape[0]` for each symbolic dim a function's body uses."""
    return [f"{dims[d][0]} = {dims[d][1]}  # the model's dim {d}" for d in sorted(used)]


def _second_order(fwd: Graph, w: str, sig: str, prologue: list[str], dims: dict, dtype: str):
    """hvp() -- the Hessian of the loss w.r.t. w times v, by differentiating the backward graph again
    -- and hessian(), its columns H·e_k: ([the two functions' source], helpers they use)."""
    from .api import _hvp_graph
    from .autodiff import hvp_input_name

    vname = hvp_input_name(fwd)
    gh = _hvp_graph(fwd.copy(), w, vname)
    loss, hv = gh.label(gh.loss), gh.grads[w]
    printer = _Body(gh, dtype, _named_consts(gh), {d: var for d, (var, _) in dims.items()})
    needed = gh.upstream([hv])
    body = printer.statements([i for i in gh.order() if i in needed], needed)
    dim_lines = _dim_lines(dims, printer.used_dims)
    doc = (
        f'"""The Hessian of {loss} w.r.t. {w} times {vname} (shaped like {w}): the derivative of\n'
        f"    {w}_bar · {vname} w.r.t. {w}, through the backward pass (signals of signals: x_bar_bar).\n"
        '    """'
    )
    hvp = _function(
        "hvp",
        sig.replace("*", f"*, {_py(vname)}", 1),
        doc,
        prologue + dim_lines + body + [f"return {printer.expr(hv)[0]}"],
    )
    hessian = _function(
        "hessian",
        "**values",
        f'"""The Hessian of {loss} w.r.t. {w}, shaped {w}.shape * 2: one column per H·e_k (see hvp)."""',
        [
            f'shape = np.shape(forward(**values)["{w}"])',
            "size = int(np.prod(shape))",
            f"h = np.empty((size, size), dtype=np.{dtype})",
            "e = np.zeros(size)",
            "for k in range(size):",
            "    e[k] = 1.0",
            f"    h[:, k] = np.reshape(hvp({_py(vname)}=e.reshape(shape), **values), -1)",
            "    e[k] = 0.0",
            "return h.reshape(shape * 2)",
        ],
    )
    return [hvp, hessian], printer.helpers


def _call_lines(opening: str, items: list[str], closing: str) -> str:
    """`return {a, b}` on one line when it fits, else one item a line with a trailing comma (ruff's style)."""
    one = opening + ", ".join(items) + closing
    if len(one) + 4 <= WIDTH:
        return one
    return opening + "\n" + "".join(f"    {item},\n" for item in items) + closing


def _with_dependencies(helpers: list[str]) -> list[str]:
    out = list(helpers)
    for h in helpers:
        src = inspect.getsource(getattr(runtime, h))
        out += [d for d in vars(runtime) if d.startswith("_") and d != h and f"{d}(" in src and d not in out]
    return sorted(set(out))


def _function(name: str, sig: str, doc: str, body: list[str]) -> str:
    lines = [f"def {name}({sig}):", f"    {doc}"]
    for stmt in body:
        lines += ["    " + ln if ln else "" for ln in stmt.split("\n")]
    return "\n".join(lines) + "\n"


class _Body(_Printer):
    """Statements for a list of nodes: named values, values used twice or more, and long expressions."""

    def __init__(self, g: Graph, dtype: str, consts: dict[int, str], dims: dict[str, str]):
        node = g._node
        names = {i: _py(n["name"]) for i, n in node.items() if n["name"] and n["op"] in LEAVES}
        names.update(consts)
        for i in [i for i in names if node[i].get("signal") and node[i]["op"] == "const"]:
            del names[i]  # a gradient that is a constant (b_bar = 2.0): no line defines it, so print its number
        super().__init__(g, names, dtype, dims)
        self.taken = {n["name"] for n in node.values() if n["name"]}
        self.temps = 0

    def temp(self) -> str:
        while True:
            self.temps += 1
            name = f"tmp{self.temps}"
            if name not in self.taken:
                return name

    def statements(self, nodes: list[int], needed: set[int]) -> list[str]:
        g = self.g
        node, succ = g._node, g._succ
        out = []
        for i in nodes:
            n = node[i]
            if n["op"] in LEAVES or i in self.names:
                continue
            # its arguments are done (named or inlined), so its expression is final: users reuse it
            e = self.expr(i)
            if n["name"] is None and i != g.loss and len(e[0]) <= 48:
                users = [u for u in succ[i] if u in needed and not self.shape_only(u)]
                if len(users) == 1:
                    self.inlined[i] = e
                    continue  # inlined into its one user
            name = _py(n["name"]) if n["name"] else self.temp()
            text = e[0]
            line = f"{name} = {text}"
            comment = f"  # line {n['span'].line}" if n["span"] else ""
            if len(line) + len(comment) + 4 > WIDTH and comment:
                out.append(comment.strip())
                comment = ""
            out.append(line + comment)
            self.names[i] = name
        return out
