"""Turns graph nodes into Python expressions: precedence, inlining of values used once, names, symbolic
sizes. It knows no array library: a target's dialect (e.g. backends/numpy/dialect.py) says how each op is
written, and may specialise ops whose shapes are known when printing."""

from __future__ import annotations

from ..errors import GraphcError
from ..ir import ops as O
from ..ir import shapes as S
from ..ir.graph import Graph
from ..ir.ops import ATOM, MUL, POW, UNARY

# Python's spelling of the operators whose maths symbol differs (x^2 is written x**2)
PYTHON_OPERATORS = {"pow": "**"}


class Printer:
    """Turns nodes into Python expressions, inlining anonymous values used once."""

    def __init__(self, g: Graph, names: dict[int, str], dialect, dtype: str = "float64", dims=None, ns=None):
        self.g, self.names, self.dialect, self.dtype = g, names, dialect, dtype
        self.ns = ns  # the emitted module's names (None: the interpreter's, the dialect's own)
        self.lib = ns.np if ns else dialect.ALIAS  # what the printed code calls the array library
        self.rename = ns.rename if ns and ns.renamed else None
        self.helpers: set[str] = set()
        self.dims = dims or {}  # symbolic dim -> where to read it
        self.used_dims: set[str] = set()
        self.local = False  # True: may only refer to the node's own arguments (an interpreter kernel)
        self.inlined: dict[int, tuple[str, int]] = {}  # node -> its expression, once it is final
        self.arguments = getattr(dialect, "arguments", None)  # how the dialect's ops take their arguments

    def expr(self, i: int) -> tuple[str, int]:
        if i in self.names:
            return self.names[i], ATOM
        if i in self.inlined:
            return self.inlined[i]
        n = self.g._node[i]
        op = n["op"]
        dialect = self.dialect
        if op == "const":
            v = n["attrs"]["value"]
            self.inlined[i] = e = (dialect.number(self, v), (UNARY if v < 0 else ATOM))  # final (nan is an atom)
            return e
        if op in dialect.LOWERED:
            lowered = dialect.lower(self, i)
            if lowered is not None:
                return lowered
        args = self.args(i)
        infix = O.OPS[op].infix
        if infix and len(args) == 2:
            sym, prec = PYTHON_OPERATORS.get(op, infix[0]), infix[1]
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
        self.helpers.update(dialect.helpers(op))
        return dialect.call(self, op, args, n["attrs"]), ATOM

    def args(self, i: int) -> list[tuple[str, int]]:
        """The expressions of node i's arguments, as the dialect has the op take them."""
        names, inlined = self.names, self.inlined  # (arguments are mostly done: no call for those)
        args = [(names[a], ATOM) if a in names else inlined.get(a) or self.expr(a) for a in self.g._node[i]["args"]]
        return self.arguments(self, i, args) if self.arguments else args

    def inline(self, i: int, e: tuple[str, int]) -> None:
        """Node i's expression is final (its arguments are done): its one user writes it in place."""
        self.inlined[i] = e

    @staticmethod
    def wrap(arg: tuple[str, int], prec: int, strict: bool = False) -> str:
        text, p = arg
        return text if p > prec or (p == prec and not strict) else f"({text})"

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

    def reshape(self, i: int) -> tuple[str, int]:
        """reshape(x, shape) with the shape in the module's terms: a dim known when printing as its number, a
        symbolic one by the name the module reads it into (N = X.shape[0]), and one that neither fixes as -1."""
        n = self.g[i]
        shape = n["shape"] if n["shape"] is not None else tuple(self.g.dims.resolve(d) for d in n["attrs"]["shape"])
        unknown = [d for d in shape if isinstance(d, str) and d not in self.dims]
        if len(unknown) + (-1 in shape) > 1:
            raise GraphcError(
                f"reshape to {S.fmt(shape)}: nothing fixes the dims {' and '.join(map(str, unknown))}",
                n["span"],
                "name dims the model's inputs have, or write -1 for the one to infer",
            )
        self.used_dims.update(d for d in shape if isinstance(d, str) and d in self.dims)
        dims = [str(d) if isinstance(d, int) else self.dims.get(d, "-1") for d in shape]
        return f"{self.lib}.reshape({self.args(i)[0][0]}, ({', '.join(dims)}{',' * (len(dims) == 1)}))", ATOM

    def shape_only(self, u: int) -> bool:
        """Does node u need only its arguments' shapes, known when emitting (1 / N)?"""
        n = self.g[u]
        return n["op"] == "size_ratio" and self.size_ratio(*(self.g[a]["shape"] for a in n["args"])) is not None


def number_text(v, np: str = "np") -> str:
    """A float as Python source: repr, but inf and nan (which repr writes as bare names) as NumPy's."""
    v = float(v)
    if v != v:
        return f"{np}.nan"
    if v in (float("inf"), float("-inf")):
        return f"{np}.inf" if v > 0 else f"-{np}.inf"
    return repr(v)


def fill(p, code: str, op: str, args: list[tuple[str, int]], attrs: dict) -> str:
    """A CODE template filled with the arguments' texts (parenthesised where the template calls a method
    of one or indexes it), `{kw}` (the keywords that differ from their defaults) and the attrs."""
    texts = [p.wrap(a, ATOM) if f"{{{k}}}." in code or f"{{{k}}}[" in code else a[0] for k, a in enumerate(args)]
    defaults = O.OPS[op].kwargs
    kw = "".join(f", {k}={attrs[k]!r}" for k in defaults if attrs.get(k, defaults[k]) != defaults[k])
    return (p.rename(code) if p.rename else code).format(*texts, kw=kw, **attrs)
