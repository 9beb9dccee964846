"""Turns graph nodes into Python expressions: precedence, inlining of values used once, names."""

from __future__ import annotations

from ..ir import ops as O
from ..ir.graph import Graph

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


def py_float(v, np: str = "np") -> str:
    """A float as Python source: repr, but inf and nan (which repr writes as bare names) as NumPy's."""
    v = float(v)
    if v != v:
        return f"{np}.nan"
    if v in (float("inf"), float("-inf")):
        return f"{np}.inf" if v > 0 else f"-{np}.inf"
    return repr(v)


class Printer:
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
            text = (
                py_float(v, self.np) if self.dtype == "float64" else f"{self.np}.{self.dtype}({py_float(v, self.np)})"
            )
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
