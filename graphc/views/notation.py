"""The lecture's notation, shared by equations and pictures: names with bars (ȳ), Greek, σ'(z), Iverson
brackets, operator precedence, and the Writer that turns a node into a written expression (iteratively)."""

from __future__ import annotations

import math
import re
import unicodedata
from fractions import Fraction

from ..ir import ops as O
from ..ir import shapes as S
from ..ir.graph import Graph
from ..ir.ops import ADD, ATOM, CMP, MUL, POW, UNARY

GREEK = {
    "α": "alpha",
    "β": "beta",
    "γ": "gamma",
    "δ": "delta",
    "ε": "epsilon",
    "η": "eta",
    "θ": "theta",
    "λ": "lambda",
    "μ": "mu",
    "σ": "sigma",
    "τ": "tau",
    "φ": "phi",
    "ψ": "psi",
    "ω": "omega",
}


class Style:
    """How names and ops look: plain text with combining overlines, or LaTeX."""

    def __init__(self, latex: bool):
        self.latex = latex

    def name(self, g: Graph, i: int) -> str:
        n = g[i]
        of = n.get("signal")
        return self.bar(of) if of else self.plain(n["name"])

    def plain(self, name: str) -> str:
        if not self.latex:
            return name
        if "." in name:  # a value of a call: H1.z
            return ".".join(self.plain(part) for part in name.split("."))
        if "#" in name:  # an unnamed call, numbered: dense#1
            base, _, k = name.partition("#")
            return rf"{self.plain(base)}\#{k}"
        m = re.fullmatch(r"(.*?)_?(\d+)", name)
        base, sub = (m.group(1), m.group(2)) if m and m.group(1) else (name, "")
        base = "".join(f"\\{GREEK[c]} " if c in GREEK else c for c in base).strip()
        if "_" in base:
            base, _, rest = base.partition("_")
            sub = rest + sub
        if len(base) > 1 and not base.startswith("\\"):
            base = rf"\mathrm{{{base}}}"
        return f"{base}_{{{sub}}}" if sub else base

    def bar(self, of: str) -> str:
        call, dot, of = of.rpartition(".")  # a value of a call, H1.z: its bar is H1.z̄
        if call:
            return self.plain(call) + dot + self.bar(of) if not self.latex else rf"{self.plain(call)}.{self.bar(of)}"
        if self.latex:
            return rf"\overline{{{self.plain(of)}}}"
        return of + "\u0304" if len(of) == 1 else "".join(c if c == "_" else c + "\u0305" for c in of)


# precedence of what an expression's text binds like (the ops' one scale); a product of conditions, a ∧ b,
# binds looser than the comparisons it joins
AND = CMP - 1

# comparisons (graphc's internal ops of kinks' gradients): which of <, =, > (u: unordered, a NaN) make them
# true, to see that two selections of the same operands never hold together
COMPARISONS = {
    "gt": {">"},
    "ge": {">", "="},
    "lt": {"<"},
    "le": {"<", "="},
    "eq": {"="},
    "ne": {"<", ">", "u"},
}
_FLIP = {">": "<", "<": ">"}
AND_SYM = ("∧", r"\land")
_NUMBER = re.compile(r"-?\d+(\.\d*)?(e[-+]?\d+)?")
# the local derivatives written as on the slides: sigmoid's y (1 - y) is σ'(z), tanh's 1 - y^2 is tanh'(z)
PRIMES = {"sigmoid": ("σ'", r"\sigma'"), "tanh": ("tanh'", r"\tanh'")}


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


_UNKNOWN = "?"


def shape_keys(g: Graph) -> dict[int, frozenset]:
    """What the equations know of each node's shape: a known shape, or for an unknown one, the unknown
    inputs it is a broadcast of (x + 1 has x's shape, whatever that is). Equal keys: equal shapes."""
    keys: dict[int, frozenset] = {}
    for i in g.order():
        n = g[i]
        op, shape, args = n["op"], n["shape"], n["args"]
        if shape is not None:
            keys[i] = frozenset() if shape == () else frozenset([tuple(shape)])
        elif op in ("unbroadcast", "broadcast", "unindex", "untake"):  # shaped like their last argument
            keys[i] = keys[args[-1]]
        elif O.OPS[op].elementwise:
            keys[i] = frozenset().union(*(keys[a] for a in args))
        else:
            keys[i] = frozenset([(_UNKNOWN, n["name"] or i)])
    return keys


def display_width(text: str) -> int:
    """Columns on screen: a combining character (the overline of W̅1̅) takes none, a wide one two."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


class Writer:
    """The text of expressions of one graph: graphc's own ops written as on a slide.

    A sum back to a shape (the adjoint of broadcasting) is nothing when the shapes agree, sum(e) or
    sum(e, axis=...) when they are known, and Σ→v(e) only where a shape is unknown; a mean's size ratio
    is a fraction of dims (1/N). ``unknown`` collects what the text needs explained."""

    def __init__(self, g: Graph, st: Style):
        self.g, self.st = g, st
        self.keys = shape_keys(g)
        self.unknown: set[str] = set()  # notations used that the note explains: "sum", "count"

    # ---- graphc's internal ops ------------------------------------------------------------------
    def _sum_back(self, i: int):
        """How unbroadcast i reads: None (no sum), () (sum of all), a tuple of axes (+ keepdims), or "?"."""
        e, ref = self.g[i]["args"]
        ke, kr = self.keys[e], self.keys[ref]
        if ke == kr or not ke:  # same shape, or a scalar spread over ref's shape (broadcasting is implicit)
            return None
        es, rs = self.g[e]["shape"], self.g[ref]["shape"]
        if rs == ():
            return ()
        if es is None or rs is None:
            return _UNKNOWN
        lead = len(es) - len(rs)
        kept = tuple(lead + k for k, d in enumerate(rs) if d == 1 and es[lead + k] != 1)
        if kept and lead:  # c̄ of a bias c: [F, 1, 1] for [N, F, H, W]: the sum over N, H and W (its 1s are shape)
            return tuple(range(lead)) + kept, False
        return (tuple(range(lead)) or kept), bool(kept)

    def _countable(self, i: int) -> bool:
        """Whether node i's element count can be written without its own text (dims, or |x| of an input x)."""
        (k, *more) = self.keys[i] or {None}
        return self.g[i]["shape"] is not None or (not more and k[0] == _UNKNOWN and isinstance(k[1], str))

    def _count(self, i: int, memo: dict) -> tuple[int, list[str]]:
        """The element count of node i: an integer factor and symbolic ones (dims, or |v| where unknown)."""
        shape = self.g[i]["shape"]
        if shape is not None:
            ints = [d for d in shape if isinstance(d, int)]
            return math.prod(ints), [self.st.plain(d) for d in shape if not isinstance(d, int)]
        self.unknown.add("count")
        (k,) = self.keys[i] if self._countable(i) else [None]
        text = self.st.plain(k[1]) if k else memo[i][0]
        return 1, [rf"\lvert {text} \rvert" if self.st.latex else f"|{text}|"]

    def _is_const(self, i: int, value: float) -> bool:
        n = self.g[i]
        return n["op"] == "const" and n["attrs"]["value"] == value

    def prime(self, i: int) -> tuple[str, int] | None:
        """(f, z) if node i is the local derivative f'(z) of y = f(z): y * (1 - y) for a sigmoid y,
        1 - y*y (or 1 - y^2) for a tanh y; else None."""
        g = self.g
        n = g[i]
        if n["op"] == "mul":
            a, b = n["args"]
            for y, s in ((a, b), (b, a)):
                if g[y]["op"] == "sigmoid" and g[s]["op"] == "sub" and g[s]["args"][1] == y:
                    if self._is_const(g[s]["args"][0], 1.0):
                        return "sigmoid", g[y]["args"][0]
        elif n["op"] == "sub" and self._is_const(n["args"][0], 1.0):
            m = g[n["args"][1]]
            y = m["args"][0] if m["args"] else None
            square = m["op"] == "mul" and m["args"][1] == y or m["op"] == "pow" and self._is_const(m["args"][1], 2.0)
            if square and g[y]["op"] == "tanh":
                return "tanh", g[y]["args"][0]
        return None

    def bracket(self, i: int) -> bool:
        """Whether node i is where(c, x, 0): x times the Iverson bracket [c] (1 where c holds, else 0)."""
        n = self.g[i]
        return n["op"] == "where" and self._is_const(n["args"][2], 0.0)

    def _disjoint(self, c: int, d: int) -> bool:
        """Whether the comparisons c and d can never both hold (a > b and a == b)."""
        g = self.g
        if g[c]["op"] not in COMPARISONS or g[d]["op"] not in COMPARISONS:
            return False
        rc, rd = COMPARISONS[g[c]["op"]], COMPARISONS[g[d]["op"]]
        if g[c]["args"] == g[d]["args"][::-1]:
            rd = {_FLIP.get(r, r) for r in rd}
        elif g[c]["args"] != g[d]["args"]:
            return False
        return not rc & rd

    def text_args(self, i: int) -> list[int]:
        """The arguments of node i its text refers to (not those read only for their shape)."""
        n = self.g[i]
        op, args = n["op"], n["args"]
        local = self.prime(i)
        if local:
            return [local[1]]
        if op == "unbroadcast":
            return list(args) if self._sum_back(i) == _UNKNOWN else [args[0]]
        if op == "broadcast":
            return [args[0]]
        if op == "size_ratio":
            return [a for a in args if not self._countable(a)]
        if op == "zeros_like":
            return []
        if op in ("unindex", "untake"):  # (not x, read for its shape)
            return list(args[:-1])
        if op == "unconcat":  # (nor the parts)
            return [args[0]]
        return list(args)

    def _fraction(self, factor: Fraction, top: int, bottom: int, memo: dict) -> tuple[str, int]:
        """factor * (elements of top) / (elements of bottom), as a fraction of dims: 1/N, K/N, 1/(N K)."""
        (n, up), (d, down) = self._count(top, memo), self._count(bottom, memo)
        if d == 0:
            return "nan", ATOM  # (the mean of no elements, as NumPy's)
        for sym in list(up):
            if sym in down:
                up.remove(sym)
                down.remove(sym)
        frac = factor * Fraction(n, d)
        num = " ".join(([str(frac.numerator)] if frac.numerator not in (1, -1) or not up else []) + up)
        num = "-" + num if frac.numerator == -1 and up else num
        den = " ".join(([str(frac.denominator)] if frac.denominator != 1 else []) + down)
        if not den:
            return num, (UNARY if num.startswith("-") else ATOM) if " " not in num else MUL
        if self.st.latex:
            sign, num = ("-", num[1:]) if num.startswith("-") else ("", num)
            return rf"{sign}\frac{{{num}}}{{{den}}}", UNARY if sign else ATOM
        return f"{num}/{den if ' ' not in den else f'({den})'}", MUL

    # ---- expressions ----------------------------------------------------------------------------
    def expr(self, i: int, names: dict) -> tuple[str, int]:
        """Text of node i and how tightly it binds; named nodes and inlined arguments by name.

        Built bottom-up with an explicit stack (no recursion: an expression may be thousands deep)."""
        memo: dict[int, tuple[str, int]] = {}
        stack = [i]
        while stack:
            j = stack[-1]
            if j in memo:
                stack.pop()
            elif j in names:
                memo[j] = (names[j], ATOM)
                stack.pop()
            else:
                todo = [a for a in self.text_args(j) if a not in memo]
                if todo:
                    stack.extend(todo)
                else:
                    memo[j] = self._text(j, memo)
                    stack.pop()
        return memo[i]

    def _text(self, i: int, memo: dict) -> tuple[str, int]:
        """Text of node i from the texts of its arguments (in memo) and how tightly it binds."""
        g, st = self.g, self.st
        n = g[i]
        op = n["op"]
        if op == "const":
            v = n["attrs"]["value"]
            if st.latex and (v != v or v in (float("inf"), float("-inf"))):
                return (r"\mathrm{NaN}" if v != v else r"\infty" if v > 0 else r"-\infty"), ATOM if not v < 0 else UNARY
            return _number(v), UNARY if v < 0 else ATOM
        args = [memo.get(a, ("", ATOM)) for a in n["args"]]

        def wrap(k, prec, right=False):
            text, p = args[k]
            tight = p > prec or (p == prec and not right)
            if st.latex:
                return text if tight else rf"\left({text}\right)"
            return text if tight else f"({text})"

        L = st.latex

        def times(k: int, factor: str, of: int) -> tuple[str, int]:
            """Argument k times a factor in function notation (σ'(z), [z > 0]), as on the slides:
            side by side for scalars, ∘ for an elementwise product of arrays."""
            x, text = n["args"][k], args[k][0]
            if text == "1":
                return factor, ATOM
            elementwise = g[x]["shape"] and g[of]["shape"] and not _NUMBER.fullmatch(text)  # (0.5 [c])
            sym = (r" \circ " if L else " ∘ ") if elementwise else (r" \, " if L else " ")
            return wrap(k, MUL) + sym + factor, MUL

        local = self.prime(i)
        if local:
            f, z = local
            return f"{PRIMES[f][L]}({memo[z][0]})", ATOM
        if op in COMPARISONS:
            sym = O.OPS[op].tex if L else O.OPS[op].infix[0]
            return f"{wrap(0, CMP, True)} {sym} {wrap(1, CMP, True)}", CMP
        if op == "where":
            c, x, e = n["args"]
            factor = (r"\mathbf{1}" if L else "") + f"[{args[0][0]}]"
            if self.bracket(i):  # where(c, x, 0): x [c]
                return times(1, factor, c)
            if self.bracket(e) and self._disjoint(c, g[e]["args"][0]):  # x [c] + y [d], c and d exclusive
                return f"{times(1, factor, c)[0]} + {args[2][0]}", ADD
        if op in ("add", "sub"):
            return f"{wrap(0, ADD)} {'+' if op == 'add' else '-'} {wrap(1, ADD, right=True)}", ADD
        if op == "outer":  # ā = ḡ bᵀ, as on the slide
            return (f"{wrap(0, MUL)} {wrap(1, ATOM)}^\\top" if L else f"{wrap(0, MUL)} {wrap(1, ATOM)}ᵀ"), MUL
        if op == "mul":
            a, b = n["args"]
            if a == b:  # x * x (the passes' form of x^2) as the model wrote it
                return (f"{{{wrap(0, POW, True)}}}^{{2}}" if L else f"{wrap(0, POW, True)}^2"), POW
            if args[0][1] <= CMP and args[1][1] <= CMP:  # a product of conditions: both hold
                return f"{wrap(0, AND)} {AND_SYM[L]} {wrap(1, AND, True)}", AND
            for k, f in ((1, b), (0, a)):  # a signal times a local derivative: ȳ σ'(z), h̄ ∘ σ'(z)
                if self.prime(f):
                    return times(1 - k, args[k][0], f)
            sym = r"\circ" if L and g[a]["shape"] and g[b]["shape"] else (r"\cdot" if L else "*")
            return f"{wrap(0, MUL)} {sym} {wrap(1, MUL, right=True)}", MUL
        if op == "div":
            if L:
                return rf"\frac{{{args[0][0]}}}{{{args[1][0]}}}", ATOM
            return f"{wrap(0, MUL)} / {wrap(1, MUL, right=True)}", MUL
        if op == "matmul":
            return (f"{wrap(0, MUL)} \\, {wrap(1, MUL, True)}" if L else f"{wrap(0, MUL)} @ {wrap(1, MUL, True)}"), MUL
        if op == "neg":
            return f"-{wrap(0, UNARY)}", UNARY
        if op == "pow":
            return (f"{{{wrap(0, POW, True)}}}^{{{args[1][0]}}}" if L else f"{wrap(0, POW, True)}^{wrap(1, POW)}"), POW
        if op in ("transpose", "mT"):
            return (f"{wrap(0, ATOM)}^\\top" if L else f"{wrap(0, ATOM)}ᵀ"), ATOM
        if op in ("index", "unindex", "untake"):
            # x[1:, ::2]; the gradients ȳ→[1:, ::2] and h̄→[tokens] (take's): ȳ put there, zeros elsewhere
            if op == "untake":
                axis = n["attrs"].get("axis", 0)
                at = [":"] * axis + [args[1][0]] if axis >= 0 else ["...", args[1][0]] + [":"] * (-axis - 1)
                key = ", ".join(at)
            else:
                key = S.key_text(n["attrs"]["key"])
            if L:
                key = key.replace(":", "{:}").replace("...", r"\ldots")
            if op == "index":
                return f"{wrap(0, ATOM)}[{key}]", ATOM
            return (rf"{wrap(0, ATOM)} \to [{key}]" if L else f"{wrap(0, ATOM)}→[{key}]"), POW
        if op == "unconcat":  # concat's gradient: ȳ's part, split(ȳ, axis=1)[2], where the sizes are symbolic
            axis = n["attrs"].get("axis", 0)
            inner = args[0][0] + (f", axis={axis}" if axis else "")
            fname = r"\operatorname{split}" if L else "split"
            return (
                rf"{fname}\left({inner}\right)_{{{n['attrs']['part']}}}"
                if L
                else f"split({inner})[{n['attrs']['part']}]"
            ), ATOM
        if op in ("broadcast", "identity"):  # broadcasting is implicit in the maths
            return args[0]
        if op == "zeros_like":  # a gradient that is zero everywhere (e.g. through step): 0, of any shape
            return "0", ATOM
        spec = O.OPS[op]
        kw = {k: v for k, v in n["attrs"].items() if spec.kwargs.get(k, None) != v and k in spec.kwargs}
        # keywords as the model writes them: a list of dims as [N, 1, 8, 8], a required one by position
        # (reshape(X, [N, 1, 8, 8]), max_pool2d(H, 2)), the others by name
        shown = {k: "[" + ", ".join(map(str, v)) + "]" if type(v) is tuple else v for k, v in kw.items()}
        inner = ", ".join(
            [a for a, _ in args]
            + [str(shown.pop(k)) for k in spec.positional if k in shown and spec.kwargs[k] is O.REQUIRED]
            + [f"{k}={v}" for k, v in shown.items()]
        )
        if op == "unbroadcast":
            how = self._sum_back(i)
            if how is None:
                return args[0]
            if how == _UNKNOWN:
                self.unknown.add("sum")
                if L:
                    return rf"\Sigma_{{\to {args[1][0]}}}\left({args[0][0]}\right)", ATOM
                return f"Σ→{args[1][0]}({args[0][0]})", ATOM
            src = n["args"][0]
            while g[src]["op"] == "broadcast" or (g[src]["op"] == "unbroadcast" and self._sum_back(src) is None):
                src = g[src]["args"][0]
            if g[src]["op"] == "const" and math.isfinite(g[src]["attrs"]["value"]):  # a sum of a constant: c N
                return self._fraction(Fraction(_number(g[src]["attrs"]["value"])), n["args"][0], n["args"][1], memo)
            axes, keep = how if how else ((), False)
            fname = r"\operatorname{sum}" if L else "sum"
            inner = args[0][0]
            if axes:
                inner += f", axis={axes[0] if len(axes) == 1 else axes}" + (", keepdims=True" if keep else "")
            return (rf"{fname}\left({inner}\right)" if L else f"{fname}({inner})"), ATOM
        if op == "size_ratio":
            return self._fraction(Fraction(1), *n["args"], memo)
        fname = (O.OPS[op].tex or rf"\operatorname{{{op.replace('_', chr(92) + '_')}}}") if L else op
        return (rf"{fname}\left({inner}\right)" if L else f"{fname}({inner})"), ATOM


INLINE = ("const", "broadcast", "expand_dims", "size_ratio")  # written where they are used, never named


def unknown_note(g: Graph, w: Writer) -> str:
    """One line saying, in words, what the text could not know (shapes unknown before values arrive)."""
    if not w.unknown:
        return ""
    inputs = sorted(g[i]["name"] for i in g.order() if g[i]["op"] in ("input", "param") and g[i]["shape"] is None)
    what = ", ".join(inputs) or "some values"
    parts = []
    if "sum" in w.unknown:
        parts.append("Σ→v(e) sums e back to the shape of v")
    if "count" in w.unknown:
        parts.append("|v| is the number of elements of v")
    what = f"the shapes of {what} are" if len(inputs) > 1 else f"the shape of {what} is"
    return f"{what} unknown until values are given: " + "; ".join(parts)
