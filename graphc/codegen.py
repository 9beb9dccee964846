"""Emit a standalone NumPy module: forward() and loss_and_grad(), one readable line per step.

The module imports only NumPy. Values keep their model names, error signals are `<name>_bar`,
each step says which model line it comes from, and the helpers the code calls are copied in
from graphc/runtime.py, so the numbers are the interpreter's to the last bit.
"""

from __future__ import annotations

import builtins
import inspect
import keyword
import re
import textwrap

from . import ops as O
from . import runtime
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


def _float(v, np: str = "np") -> str:
    """A float as Python source: repr, but inf and nan (which repr writes as bare names) as NumPy's."""
    v = float(v)
    if v != v:
        return f"{np}.nan"
    if v in (float("inf"), float("-inf")):
        return f"{np}.inf" if v > 0 else f"-{np}.inf"
    return repr(v)


class _Printer:
    """Turns nodes into Python expressions, inlining anonymous values used once."""

    def __init__(self, g: Graph, names: dict[int, str], dtype: str, dims: dict[str, str] | None = None, ns=None):
        self.g, self.names, self.dtype = g, names, dtype
        self.ns = ns  # the emitted module's names (None: the interpreter's, runtime.py's own)
        self.np = ns.np if ns else "np"
        self.rename = ns.rename if ns and ns.renamed else None
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
        n = self.g._node[i]
        op = n["op"]
        if op == "const":
            v = n["attrs"]["value"]
            text = _float(v, self.np) if self.dtype == "float64" else f"{self.np}.{self.dtype}({_float(v, self.np)})"
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
        if op == "transpose":  # .T of a scalar or a vector is itself; of an unknown shape, maybe a float's
            shape = self.g[n["args"][0]]["shape"]
            if shape is None:
                return f"{self.np}.transpose({args[0][0]})", ATOM
            if len(shape) < 2:
                return args[0]
        spec = O.OPS[op]
        self.helpers.update(spec.helpers)
        texts = [
            self.wrap(a, ATOM) if f"{{{k}}}." in spec.code or f"{{{k}}}[" in spec.code else a[0]
            for k, a in enumerate(args)
        ]
        return spec.render(texts, n["attrs"], self.rename), ATOM

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
                return f"{self.np}.sum({self.expr(src)[0]})", ATOM
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
                return f"{self.np}.outer({self.expr(u)[0]}, {self.expr(v)[0]})", ATOM  # ā = ḡ bᵀ, as on the slide
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
            ratio = self.size_ratio(*(g[a]["shape"] for a in n["args"]))
            if self.dtype == "float64":
                return ratio
            if ratio is None:  # the shapes are known only at run time
                ratio = (O.OPS["size_ratio"].render([self.expr(a)[0] for a in n["args"]], {}, self.rename), ATOM)
            return f"{self.np}.{self.dtype}({ratio[0]})", ATOM  # a Python float spread by _broadcast is float64
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
        return f"{self.np}.shape({self.expr(i)[0]})"


def node_expression(g: Graph, i: int) -> tuple[tuple[str, ...], str]:
    """Node i as an expression of parameters a0, a1, ...: the interpreter's kernel for it."""
    params = tuple(f"a{k}" for k in range(len(g[i]["args"])))
    printer = _Printer(g, dict(zip(g[i]["args"], params)), "float64")
    printer.local = True
    return params, printer.expr(i)[0]


class _Names:
    """The emitted module's Python names. The model's keep their spelling (a Python keyword gets a trailing
    `_`); graphc's own -- NumPy's alias, the helpers, dims, temporaries, hvp's direction -- are picked around
    every name the model has, so that no model name can hit one (SPEC §3: `np` is an ordinary name)."""

    def __init__(self, graphs: list[Graph], dims):
        model = list(dict.fromkeys(name for g in graphs for name in g.names))
        consts = {n for g in graphs for n, i in g.names.items() if g[i]["op"] == "const"}
        self.taken = set(model) | set(dims)
        self.py = {}  # model name -> Python name
        for name in model:  # a const is a module-level name: it must not hide a function or a builtin
            clash = keyword.iskeyword(name) or (name in consts and name in _MODULE_LEVEL)
            self.py[name] = self.fresh(name + "_") if clash else name
        self.dim = {d: d if d not in self.py and not keyword.iskeyword(d) else self.fresh(f"{d}_dim") for d in dims}
        self.np = "np" if "np" not in self.taken else "numpy" if "numpy" not in self.taken else self.fresh("np_")
        self.taken.add(self.np)
        self.module = {"np": self.np}  # graphc's module-level names, as runtime.py spells them -> here
        for h in (h for h in vars(runtime) if h.startswith("_") and callable(getattr(runtime, h))):
            self.module[h] = h if h not in self.taken else self.fresh(h + "_")
            self.taken.add(self.module[h])
        self.renamed = any(k != v for k, v in self.module.items())  # (the usual case: none)

    def fresh(self, name: str) -> str:
        while name in self.taken or keyword.iskeyword(name):
            name += "_"
        self.taken.add(name)
        return name

    def rename(self, code: str) -> str:
        """Code written with runtime.py's names (np.exp, _sigmoid(...)) with this module's."""
        if not self.renamed:
            return code
        return _MODULE_REF.sub(lambda m: self.module.get(m.group(1), m.group(1)), code)


_MODULE_LEVEL = frozenset({"forward", "loss_and_grad", "hvp", "hessian", *dir(builtins)})
_MODULE_REF = re.compile(r"(?<![\w.])([A-Za-z_]\w*)(?=[.(])")  # a name used as a module or called


def _dims_of(g: Graph) -> list[str]:
    """The symbolic dims of g's declared leaves, in order."""
    out = []
    for i in g.names.values():
        n = g[i]
        if n["op"] in ("input", "param"):
            dims = (g.dims.resolve(d) for d in n["attrs"]["declared"] or ())  # (a const's dim is its number)
            out += [d for d in dims if isinstance(d, str) and d not in out]
    return out


class _Prologue:
    """The first lines of every function: arguments as arrays of the dtype (lists, numbers and bools as
    NumPy users pass them), params not passed made from their declared number, and symbolic dims read
    from any argument that carries them -- inputs and params alike."""

    def __init__(self, g: Graph, ns: _Names, dtype: str):
        self.ns, self.dtype = ns, dtype
        free = [n for n, i in g.names.items() if g[i]["op"] in ("input", "param")]
        number = {n: g[g.names[n]]["attrs"]["init"] for n in free if g[g.names[n]]["op"] == "param"}
        self.optional = [n for n in free if n in number and number[n][0] == "number"]
        self.required = [n for n in free if n not in self.optional]
        args = [ns.py[n] for n in self.required] + [f"{ns.py[n]}=None" for n in self.optional]
        self.sig = ", ".join(["*", *args]) if args else ""  # (def f(*) is a SyntaxError)
        self.declared = {n: g.dims.shape(g[g.names[n]]["attrs"]["declared"] or ()) for n in free}
        self.carriers = {}  # dim -> [(name, axis)], required arguments first
        for n in self.required + self.optional:
            for k, d in enumerate(self.declared[n]):
                if isinstance(d, str):
                    self.carriers.setdefault(d, []).append((n, k))
        f = f"{ns.np}.{dtype}"
        lines = [f"{ns.py[n]} = {ns.np}.asarray({ns.py[n]}, dtype={f})" for n in self.required]
        for pos, n in enumerate(self.optional):
            value = _float(number[n][1], ns.np)
            shape = self.declared[n]
            if shape:
                dims = [str(d) if isinstance(d, int) else self._dim(d, n, self.optional[:pos]) for d in shape]
                made = f"{ns.np}.full(({', '.join(dims)}{',' * (len(dims) == 1)}), {value}"
                made += ")" if dtype == "float64" else f", dtype={f})"
            else:  # NumPy's scalar, as the interpreter's: b / 0.0 is inf, not ZeroDivisionError
                made = f"{f}({value})"
            checks = [c for d in shape if isinstance(d, str) for c in self._guards(d, n, self.optional[:pos])]
            py, given = ns.py[n], f"{ns.np}.asarray({ns.py[n]}, dtype={f})"
            line = f"{py} = {made} if {py} is None else {given}"
            if any(c.startswith("raise") for c in checks):  # nothing else carries a dim of it: pass it
                line = f"if {py} is None:\n    {next(c for c in checks if c.startswith('raise'))}\n{py} = {given}"
            elif checks or len(line) + 4 > WIDTH:
                guards = "".join(f"    {c}\n" for c in dict.fromkeys(checks))
                line = f"if {py} is None:\n{guards}    {py} = {made}\nelse:\n    {py} = {given}"
            lines.append(line)
        self.lines = lines

    def _dim(self, d: str, of: str, filled: list[str]) -> str:
        """Dim d's size for making param `of`, from a required argument, a param made before it, or else
        (a conditional expression) the first given of the params after it."""
        ns = self.ns
        sources = [(n, k) for n, k in self.carriers[d] if n != of]
        for n, k in sources:
            if n in self.required or n in filled:
                return f"{ns.py[n]}.shape[{k}]"
        if not sources:
            return "None"  # (never run: the guard raises first)
        # the guard has raised unless one of them is given: the last needs no test
        later = [f"{ns.np}.shape({ns.py[n]})[{k}] if {ns.py[n]} is not None else " for n, k in sources[:-1]]
        n, k = sources[-1]
        return "".join(later) + f"{ns.np}.shape({ns.py[n]})[{k}]"  # (not converted yet: maybe a list)

    def _guards(self, d: str, of: str, filled: list[str]) -> list[str]:
        """A line that raises when nothing passed fixes dim d, which param `of` needs to be made."""
        sources = [n for n, _ in self.carriers[d] if n != of]
        if any(n in self.required or n in filled for n in sources):
            return []
        py = self.ns.py
        given = " and ".join(f"{py[n]} is None" for n in sources)
        others = "".join(f" or `{py[n]}`" for n in sources)
        message = f"pass `{py[of]}`{others}: nothing else given fixes the model's dim {d}, which `{py[of]}` has"
        if not sources:
            return [f"raise TypeError({message!r})"]
        return [f"if {given}:\n        raise TypeError({message!r})"]

    def dim_lines(self, used) -> list[str]:
        """`N = X.shape[0]` for each symbolic dim a function's body uses (every argument is an array now)."""
        out = []
        for d in sorted(used):
            n, k = self.carriers[d][0]
            out.append(f"{self.ns.dim[d]} = {self.ns.py[n]}.shape[{k}]  # the model's dim {d}")
        return out


@paused_gc()
def emit(
    model, wrt: list[str] | None = None, dtype: str = "float64", module_name: str = "model", order: int = 1
) -> str:
    """The source text of a standalone module for the model (with order=2, also hvp and hessian).

    With order=2, hvp and hessian are w.r.t. the one name in wrt (default: the first param, else input),
    and loss_and_grad keeps every gradient it has at order 1."""
    from .api import _gradient_graph, _hvp_graph
    from .autodiff import hvp_input_name
    from .errors import GraphcError

    if dtype not in ("float64", "float32"):
        raise GraphcError(f"--dtype must be float64 or float32, not {dtype}", usage=True)
    fwd = model.graph
    graphs = [fwd, _gradient_graph(fwd.copy(), wrt)]
    if order == 2:
        hvp_wrt = wrt or (fwd.params or fwd.inputs)[:1]
        if not hvp_wrt:
            raise GraphcError("--order 2 needs a param or an input to take the Hessian for: the model has none")
        if len(hvp_wrt) != 1:
            raise GraphcError("--order 2 takes exactly one name in --wrt", usage=True)
        vname = hvp_input_name(fwd)
        graphs.append(_hvp_graph(fwd.copy(), hvp_wrt[0], vname))
    gb = graphs[1]
    dims = _dims_of(fwd)
    ns = _Names(graphs, dims)
    pro = _Prologue(fwd, ns, dtype)
    np_ = ns.np

    consts = _named_consts(fwd, ns)
    number = (lambda v: _float(v, np_)) if dtype == "float64" else (lambda v: f"{np_}.{dtype}({_float(v, np_)})")
    const_lines = [
        f"{name} = {number(fwd[i]['attrs']['value'])}  # line {fwd[i]['span'].line}"
        for i, name in sorted(consts.items(), key=lambda kv: fwd[kv[0]]["span"].line)
    ]

    # One printing of the gradient graph (simplified once): loss_and_grad's forward pass -- the values the
    # loss or the backward pass read -- is forward()'s too, which then adds the values neither reads
    steps = gb.order()
    values = gb.upstream([i for i in gb.names.values() if not gb[i].get("signal")])
    needed = gb.upstream([gb.loss, *gb.grads.values()])
    loss_ids = gb.upstream([gb.loss])
    forward_ids = loss_ids | (values & needed)
    printer = _Body(gb, dtype, ns, _named_consts(gb, ns))
    body_f = printer.statements([i for i in steps if i in forward_ids], needed | values)
    body_b = printer.statements([i for i in steps if i not in forward_ids and i in needed], needed)
    fwd_body = body_f + printer.statements([i for i in steps if i in values and i not in forward_ids], values)
    returned = _call_lines("return {", [f'"{n}": {ns.py[n]}' for n in fwd.names], "}")
    loss = printer.expr(gb.loss)[0]
    grads = _call_lines(f"return {loss}, {{", [f'"{w}": {printer.expr(i)[0]}' for w, i in gb.grads.items()], "}")
    second = _second_order(graphs[2], hvp_wrt[0], vname, pro, ns, dtype) if order == 2 else None
    helpers = sorted(printer.helpers | (second[1] if second else set()))
    helper_src = [ns.rename(inspect.getsource(getattr(runtime, h))) for h in _with_dependencies(helpers)]

    example_args = ", ".join(f"{ns.py[n]}=..." for n in pro.required)
    wrt_names = ", ".join(gb.grads)
    model_text = textwrap.indent("\n".join(line.rstrip() for line in fwd.source.splitlines() if line.strip()), "    ")
    L = gb.label(gb.loss)
    usage = [
        f"values = {module_name}.forward({example_args})  # every named value",
        f"loss, grads = {module_name}.loss_and_grad({example_args})  # d{L}/d({wrt_names})",
    ]
    if second:
        w = hvp_wrt[0]
        usage += [
            f"hv = {module_name}.hvp(direction, {example_args})  # d²{L}/d{w}² times direction, shaped like {w}",
            f"hessian = {module_name}.hessian({example_args})  # d²{L}/d{w}²",
        ]
    parts = [
        f'"""Gradient code for {fwd.path}, generated by graphc. Only NumPy is needed.\n\n'
        f"The model:\n\n{model_text}\n\nUsage:\n\n    import {module_name}\n"
        + "".join(f"    {u}\n" for u in usage)
        + '"""\n',
        "import numpy\n" if np_ == "numpy" else f"import numpy as {np_}\n",
    ]
    if const_lines:
        parts.append("\n".join(const_lines) + "\n")
    parts += [h.rstrip() + "\n" for h in helper_src]
    doc_f = '"""Every named value of the forward pass."""'
    doc_b = (
        f'"""The loss and its gradients w.r.t. {wrt_names}.\n\n'
        f"    Error signals are named <value>_bar: y_bar = d{L}/dy.\n"
        '    """'
    )
    dims = pro.dim_lines(printer.used_dims)
    parts.append(_function("forward", pro.sig, doc_f, pro.lines + dims + fwd_body + [returned]))
    parts.append(
        _function(
            "loss_and_grad",
            pro.sig,
            doc_b,
            pro.lines + dims + ["# forward pass"] + body_f + ["", "# backward pass"] + body_b + [grads],
        )
    )
    if second:
        parts += second[0]
    head = parts[:3] if const_lines else parts[:2]
    rest = parts[len(head) :]
    return "\n".join(p.rstrip("\n") + "\n" for p in head) + "".join("\n\n" + p.rstrip("\n") + "\n" for p in rest)


def _named_consts(g: Graph, ns: _Names) -> dict[int, str]:
    """The model's named constants (`const c = 2`), by node id: the module defines them once, by name."""
    return {i: ns.py[n["name"]] for i, n in g._node.items() if n["op"] == "const" and n["name"]}


def _second_order(gh: Graph, w: str, vname: str, pro: _Prologue, ns: _Names, dtype: str):
    """hvp() -- the Hessian of the loss w.r.t. w times a direction, by differentiating the backward graph
    again -- and hessian(), its columns H·e_k: ([the two functions' source], helpers they use). The
    direction is hvp's one positional(-only) argument: its name can never meet a model name's keyword."""
    loss, hv = gh.label(gh.loss), gh.grads[w]
    printer = _Body(gh, dtype, ns, _named_consts(gh, ns))
    needed = gh.upstream([hv])
    body = printer.statements([i for i in gh.order() if i in needed], needed)
    v, np_ = ns.py[vname], ns.np
    doc = (
        f'"""The Hessian of {loss} w.r.t. {w} times {v} (shaped like {w}): the derivative of\n'
        f"    {w}_bar · {v} w.r.t. {w}, through the backward pass (signals of signals: x_bar_bar).\n"
        '    """'
    )
    convert = f"{v} = {np_}.asarray({v}, dtype={np_}.{dtype})"
    hvp = _function(
        "hvp",
        f"{v}, /, {pro.sig}".rstrip(", "),
        doc,
        [convert] + pro.lines + pro.dim_lines(printer.used_dims) + body + [f"return {printer.expr(hv)[0]}"],
    )
    hessian = _function(
        "hessian",
        "**values",
        f'"""The Hessian of {loss} w.r.t. {w}, shaped {w}.shape * 2: one column per H·e_k (see hvp)."""',
        [
            f'shape = {np_}.shape(forward(**values)["{w}"])',
            f"size = int({np_}.prod(shape))",
            f"h = {np_}.empty((size, size), dtype={np_}.{dtype})",
            f"e = {np_}.zeros(size)",
            "for k in range(size):",
            "    e[k] = 1.0",
            f"    h[:, k] = {np_}.reshape(hvp(e.reshape(shape), **values), -1)",
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

    def __init__(self, g: Graph, dtype: str, ns: _Names, consts: dict[int, str]):
        node = g._node
        names = {i: ns.py[n["name"]] for i, n in node.items() if n["name"] and n["op"] in LEAVES}
        names.update(consts)
        for i in [i for i in names if node[i].get("signal") and node[i]["op"] == "const"]:
            del names[i]  # a gradient that is a constant (b_bar = 2.0): no line defines it, so print its number
        super().__init__(g, names, dtype, ns.dim, ns)
        self.taken = ns.taken
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
            named = n["name"] is not None
            if not named and i != g.loss and len(e[0]) <= 48:
                users = 0
                for u in succ[i]:
                    if u in needed and (node[u]["op"] != "size_ratio" or not self.shape_only(u)):
                        users += 1
                if users == 1:
                    self.inlined[i] = e
                    continue  # inlined into its one user
            name = self.ns.py[n["name"]] if named else self.temp()
            text = e[0]
            line = f"{name} = {text}"
            comment = f"  # line {n['span'].line}" if n["span"] else ""
            if len(line) + len(comment) + 4 > WIDTH and comment:
                out.append(comment.strip())
                comment = ""
            out.append(line + comment)
            self.names[i] = name
        return out
