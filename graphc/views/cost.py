"""What a model's forward and backward passes cost: FLOPs and bytes moved per node, totals, and their ratio.

The graph counted is the gradient graph graphc runs and emits (forward nodes plus the backward nodes
autodiff adds, stabilised and simplified). A node is in the forward pass when the loss, an output or a
named model value depends on it (what `graphc eval` computes); every other node is the backward pass.

Counting rules (SPEC §2 fixes the first two; the others are graphc's, chosen the way cost models such as
XLA's HLO cost analysis and fvcore's count, and said here so that a reader can redo the sums by hand):

- A matmul of [m, k] by [k, n] counts 2mkn FLOPs (k multiplies and k adds per output element), batched
  products times their batch, matrix-vector 2mk, a dot product 2k. `outer` (ā = ḡ bᵀ) 1 per output element.
- An elementwise op counts 1 FLOP per output element, whatever it is: add, multiply and compare, but also
  exp, log, sigmoid, tanh, pow, where. This is a count of array operations, not of machine cycles (an exp is
  tens of cycles, an add one).
- A reduction of n elements counts n FLOPs (n adds into 0, as 2mkn counts k adds, not k - 1), whatever the
  number of outputs; `mean` adds 1 per output (the division); max, min, prod n. Composites count their
  steps: logsumexp 4n + 2m (max, subtract, exp, sum; log and add back per output), softmax 5n (max,
  subtract, exp, sum, divide), log_softmax 5n + m (a log per row, m rows), var 4n + 2m, std 4n + 3m,
  norm 2n + m, max_mask (where a max is attained, ties shared) 3n, prod_others 3n.
- unbroadcast (the sum of a gradient back to a broadcast argument's shape) is a reduction of its input;
  where the shapes already agree it is the argument itself (0).
- Views cost nothing, 0 FLOPs and 0 bytes: transpose, mT, reshape, expand_dims, broadcast, basic indexing,
  identity, unconcat (a slice). So do the leaves (inputs, params, constants) and size_ratio (shape arithmetic,
  folded away when the shapes are known).
- Data movement without arithmetic counts 0 FLOPs and its bytes: take (reads the rows it picks and the
  indices), one_hot, concat, stack, zeros_like, unindex (a gradient placed into zeros). untake (take's
  gradient, np.add.at) counts an add per signal element.
- conv2d of x [N, C, H, W] by w [F, C, kh, kw] into [N, F, H', W'] counts 2·N·F·H'·W'·C·kh·kw FLOPs; its
  two adjoints (the gradients w.r.t. x and w) count the same formula over the same signal. Max pooling
  with a k x k window counts k² comparisons per window; average pooling k² + 1 (sum, divide); their
  gradients the same per window.
- Bytes moved = the bytes each argument is read at plus the bytes the result is written at, at the model's
  dtype (8 bytes an element for float64, 4 for float32; a comparison's mask 1 byte, as NumPy's bools; integer
  indices 8, int64). An argument is read at the size of the memory behind it: a broadcast scalar is 8
  bytes, not N·8; a view of an array reads the array (a slice, its part). Arguments read only for their
  shape (zeros_like's, the adjoints' shape arguments) are not read.

Without values, sizes are polynomials in the model's symbolic dims (N, D, ...), printed collected:
`4096*N + 20`. With values (or when every dim is a number), they are integers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from ..ir import ops as O
from ..ir import shapes as S
from ..ir.graph import LEAVES, Graph

# ---- polynomials in the symbolic dims -------------------------------------------------------------


class Poly:
    """A polynomial with integer coefficients in symbolic dims: {monomial: coefficient}, a monomial being a
    sorted tuple of (dim, power). Enough for sizes and FLOP counts: sums and products, no division."""

    __slots__ = ("terms",)

    def __init__(self, terms: dict | None = None):
        self.terms = {m: c for m, c in (terms or {}).items() if c}

    @classmethod
    def const(cls, c: int) -> Poly:
        return cls({(): int(c)})

    @classmethod
    def symbol(cls, s: str) -> Poly:
        return cls({((s, 1),): 1})

    def __add__(self, other) -> Poly:
        other = _poly(other)
        out = dict(self.terms)
        for m, c in other.terms.items():
            out[m] = out.get(m, 0) + c
        return Poly(out)

    __radd__ = __add__

    def __sub__(self, other) -> Poly:
        return self + _poly(other) * -1

    def __mul__(self, other) -> Poly:
        other = _poly(other)
        out: dict = {}
        for m1, c1 in self.terms.items():
            for m2, c2 in other.terms.items():
                powers = dict(m1)
                for s, p in m2:
                    powers[s] = powers.get(s, 0) + p
                m = tuple(sorted(powers.items()))
                out[m] = out.get(m, 0) + c1 * c2
        return Poly(out)

    __rmul__ = __mul__

    def __eq__(self, other) -> bool:
        return isinstance(other, (Poly, int)) and self.terms == _poly(other).terms

    def __hash__(self):
        return hash(tuple(sorted(self.terms.items())))

    @property
    def number(self) -> int | None:
        """The polynomial's value when it has no symbol, else None."""
        if not self.terms:
            return 0
        if len(self.terms) == 1 and () in self.terms:
            return self.terms[()]
        return None

    def degree(self, m) -> int:
        return sum(p for _, p in m)

    def leading(self) -> dict:
        """The terms of the highest total degree."""
        if not self.terms:
            return {}
        top = max(self.degree(m) for m in self.terms)
        return {m: c for m, c in self.terms.items() if self.degree(m) == top}

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        order = sorted(self.terms, key=lambda m: (-self.degree(m), m))
        out = ""
        for k, m in enumerate(order):
            c = self.terms[m]
            factors = [s if p == 1 else f"{s}^{p}" for s, p in m]
            body = "*".join(([str(abs(c))] if abs(c) != 1 or not factors else []) + factors)
            out += ("-" if c < 0 else "") + body if k == 0 else (" - " if c < 0 else " + ") + body
        return out

    __repr__ = __str__

    def json(self):
        """An int when it has no symbol, else its text."""
        n = self.number
        return n if n is not None else str(self)


def _poly(x) -> Poly:
    return x if isinstance(x, Poly) else Poly.const(x)


_TERM = re.compile(r"\s*([+-])?\s*([A-Za-z_]\w*|\d+)\s*")


@lru_cache(maxsize=4096)
def dim_poly(d) -> Poly:
    """A dim as a polynomial: an int, a symbol `N`, or a derived dim of sums and differences (`N-1`, `N+M+3`,
    as slicing and concat name them); any other name (`len(N[::2])`) is a symbol of its own."""
    if isinstance(d, int):
        return Poly.const(d)
    pos, out = 0, Poly()
    while pos < len(d):
        m = _TERM.match(d, pos)
        if m is None or (pos and not m.group(1)) or m.end() == pos:
            return Poly.symbol(d)
        t = m.group(2)
        term = Poly.const(int(t)) if t.isdigit() else Poly.symbol(t)
        out = out + (term * -1 if m.group(1) == "-" else term)
        pos = m.end()
    return out


def size(shape, dims) -> Poly | None:
    """A shape's element count (None: the shape is not known)."""
    if shape is None:
        return None
    return _size_of(tuple(dims.resolve(d) for d in shape))


@lru_cache(maxsize=4096)
def _size_of(shape: tuple) -> Poly:
    """(Polys are never changed in place once made: a cached one can be handed out to every caller.)"""
    out = Poly.const(1)
    for d in shape:
        out = out * dim_poly(d)
    return out


# ---- the counting rules ---------------------------------------------------------------------------

VIEWS = frozenset(("transpose", "mT", "reshape", "reshape_like", "expand_dims", "broadcast", "index", "identity"))
FREE = VIEWS | {"unconcat", "size_ratio"} | set(LEAVES)  # 0 FLOPs, 0 bytes
MASKS = frozenset(("gt", "ge", "lt", "le", "eq", "ne"))  # their results are NumPy bools: 1 byte an element
PRODUCTS = frozenset(("matmul", "outer", "conv2d", "conv2d_input_grad", "conv2d_weight_grad"))
MOVES = frozenset(("take", "one_hot", "concat", "stack", "zeros_like", "unindex"))  # 0 FLOPs, their bytes
# reductions: FLOPs = a * n + b * m, n the input's elements, m the output's
REDUCTIONS = {
    "sum": (1, 0),
    "max": (1, 0),
    "min": (1, 0),
    "prod": (1, 0),
    "mean": (1, 1),
    "logsumexp": (4, 2),
    "var": (4, 2),
    "std": (4, 3),
    "norm": (2, 1),
}
PER_INPUT = {"softmax": 5, "max_mask": 3, "prod_others": 3}  # FLOPs per element of the (first) argument
POOLS = frozenset(("max_pool2d", "max_pool2d_select", "avg_pool2d", "max_pool2d_grad", "avg_pool2d_grad"))


def covered(op: str) -> bool:
    """Has op a counting rule? (every op in ir/ops must: tests/views/test_cost.py checks)"""
    return (
        op in FREE
        or op in PRODUCTS
        or op in MOVES
        or op in REDUCTIONS
        or op in PER_INPUT
        or op in POOLS
        or op in ("log_softmax", "unbroadcast", "untake")
        or O.OPS[op].elementwise
    )


def _flops(g: Graph, i: int) -> Poly | None:
    """Node i's FLOPs by the rules above (None: a shape it needs is not known)."""
    n = g[i]
    op, args, dims = n["op"], n["args"], g.dims

    def shape(j):
        return g[j]["shape"]

    def sz(j):
        return size(shape(j), dims)

    out = size(n["shape"], dims)
    if op in FREE or op in MOVES:
        return Poly()
    if op == "matmul":
        a = shape(args[0])
        if out is None or a is None:
            return None
        return out * dim_poly(dims.resolve(a[-1])) * 2
    if op == "outer" or (O.OPS[op].elementwise and op not in REDUCTIONS):
        return out
    if op in REDUCTIONS:
        x = sz(args[0])
        a, b = REDUCTIONS[op]
        return None if x is None or out is None else x * a + out * b
    if op in PER_INPUT:
        x = sz(args[0])
        return None if x is None else x * PER_INPUT[op]
    if op == "log_softmax":
        s = shape(args[0])
        if s is None:
            return None
        axis = n["attrs"].get("axis", -1) % len(s)
        return size(s, dims) * 5 + size(s[:axis] + s[axis + 1 :], dims)
    if op == "unbroadcast":
        x = shape(args[0])
        if x is None or n["shape"] is None:
            return None
        return Poly() if tuple(dims.shape(x)) == tuple(dims.shape(n["shape"])) else size(x, dims)
    if op == "untake":
        return sz(args[0])
    if op in ("conv2d", "conv2d_input_grad", "conv2d_weight_grad"):
        # the signal (conv2d's output) and the kernels: conv2d(x, w), input_grad(g, w, x), weight_grad(x, g, w)
        sig, w = (i, args[1]) if op == "conv2d" else (args[0], args[1]) if op == "conv2d_input_grad" else args[1:]
        s, ws = sz(sig), shape(w)
        if s is None or ws is None:
            return None
        return s * size(ws[1:], dims) * 2
    if op in POOLS:
        k = n["attrs"]["k"]
        # windows: the pooled shape (the output of pooling and select; the signal, argument 0, of a gradient)
        win = out if op in ("max_pool2d", "avg_pool2d", "max_pool2d_select") else sz(args[0])
        if win is None:
            return None
        return win * (k * k + (op.startswith("avg")))
    raise KeyError(f"no counting rule for op {op!r}")  # (covered() is tested for every op)


@dataclass
class NodeCost:
    id: int
    name: str
    op: str
    computes: str  # what it computes, in words: `X @ W1`, `sigmoid(%7)`
    line: int
    shape: tuple | None
    flops: Poly | None
    bytes: Poly | None
    pass_: str  # "forward" or "backward"

    def json(self) -> dict:
        return {
            "name": self.name,
            "op": self.op,
            "computes": self.computes,
            "line": self.line,
            "shape": None if self.shape is None else list(self.shape),
            "flops": None if self.flops is None else self.flops.json(),
            "bytes": None if self.bytes is None else self.bytes.json(),
            "pass": self.pass_,
        }


@dataclass
class Totals:
    flops: Poly = field(default_factory=Poly)
    bytes: Poly = field(default_factory=Poly)
    products: Poly = field(default_factory=Poly)  # the FLOPs of matrix products and convolutions
    unknown: int = 0  # nodes of unknown shape, left out of the sums

    def add(self, c: NodeCost) -> None:
        if c.flops is None or c.bytes is None:
            self.unknown += 1
            return
        _accumulate(self.flops, c.flops)  # (in place: a Totals' polynomials are its own)
        _accumulate(self.bytes, c.bytes)
        if c.op in PRODUCTS:
            _accumulate(self.products, c.flops)


def _accumulate(total: Poly, p: Poly) -> None:
    """total += p, in place (counts are never negative: no term cancels)."""
    terms = total.terms
    for m, c in p.terms.items():
        terms[m] = terms.get(m, 0) + c


def itemsize_of(dtype: str) -> int:
    return {"float64": 8, "float32": 4}[dtype]


def count(g: Graph, dtype: str = "float64") -> tuple[list[NodeCost], Totals, Totals]:
    """Every non-leaf node's cost in gradient graph g, and the forward and backward totals."""
    item = itemsize_of(dtype)
    dims = g.dims
    order = g.order()
    roots = [g.loss, *g.outputs] + [i for i in g.names.values() if not g[i].get("signal")]
    forward = g.upstream([r for r in roots if r is not None])
    integers = {g.names[n] for n in O.integer_inputs(g)}
    memory: dict[int, Poly | None] = {}  # node -> the bytes a reader of its value reads
    nodes, fw, bw = [], Totals(), Totals()
    for i in order:
        n = g[i]
        op = n["op"]
        elems = size(n["shape"], dims)
        width = 1 if op in MASKS else 8 if i in integers else item
        written = None if elems is None else elems * width
        flops = None if op in LEAVES else _flops(g, i)
        free = op in FREE or (op == "unbroadcast" and flops == Poly())
        if free and op not in LEAVES:
            # a view reads what is behind its argument (a broadcast scalar: one number), a slice its part
            memory[i] = written if op in ("index", "unconcat") else memory.get(n["args"][0])
        else:
            memory[i] = written
        if op in LEAVES:
            continue
        moved = Poly() if free else written
        if not free:
            skip = O.OPS[op].shape_only
            for k, a in enumerate(n["args"]):
                if k in skip:
                    continue
                # take reads the rows it picks (as many as it writes), not the whole table
                r = written if op == "take" and k == 0 else memory.get(a)
                moved = None if moved is None or r is None else moved + r
        c = NodeCost(
            i,
            g.label(i),
            op,
            computes(g, i),
            n["span"].model_line if n["span"] else 0,
            None if n["shape"] is None else tuple(dims.shape(n["shape"])),
            flops,
            moved,
            "forward" if i in forward else "backward",
        )
        nodes.append(c)
        (fw if i in forward else bw).add(c)
    nodes.sort(key=lambda c: c.pass_ != "forward")  # (stable: each pass in the graph's order)
    return nodes, fw, bw


def computes(g: Graph, i: int) -> str:
    """Node i's op on its arguments' labels: `X @ W1`, `sigmoid(%7)`, `sum(%13, axis=1)`."""
    n = g[i]
    op = O.OPS[n["op"]]
    args = [g.label(a) for a in n["args"]]
    if op.infix and len(args) == 2:
        return f"{args[0]} {op.infix[0]} {args[1]}"
    if op.infix and len(args) == 1:
        return f"{op.infix[0]}{args[0]}"
    attrs = [f"{k}={S.fmt(v) if isinstance(v, tuple) else v}" for k, v in n["attrs"].items() if k != "key"]
    if "key" in n["attrs"]:
        return f"{args[0]}[{S.key_text(n['attrs']['key'])}]"
    return f"{n['op']}({', '.join(args + attrs)})"


# ---- the report -------------------------------------------------------------------------------------


def ratio(b: Poly, f: Poly) -> tuple[float | None, bool]:
    """backward / forward as a number: (exact, True) when both are numbers; (the limit as the dims grow,
    False) when their highest-degree terms are proportional (4736*N + 20 over 2368*N + 10: 2.0); else None."""
    nb, nf = b.number, f.number
    if nb is not None and nf is not None:
        return (nb / nf if nf else None), True
    if nb == 0:
        return 0.0, True
    lb, lf = b.leading(), f.leading()
    if not lb or not lf or set(lb) != set(lf):
        return None, False
    rs = {lb[m] / lf[m] for m in lb}
    return (rs.pop() if len(rs) == 1 else None), False


@dataclass
class Cost:
    """The cost report of one gradient graph: nodes, the forward and backward totals, and, when the
    gradients leave out some inputs (the data), what their gradients would add (`missing`)."""

    path: str
    dtype: str
    wrt: list[str]
    nodes: list[NodeCost]
    forward: Totals
    backward: Totals
    symbols: list[str]
    all_wrt: list[str] | None = None  # every param and input that can have a gradient, when wrt leaves some out
    all_backward: Totals | None = None  # the backward pass with all_wrt
    params: list[str] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    # name -> (the FLOPs only its gradient needs, the model lines of the products among them)
    missing: dict[str, tuple[Poly | None, list[int]]] = field(default_factory=dict)

    def ratios(self) -> dict:
        return {k: ratio(getattr(self.backward, k), getattr(self.forward, k)) for k in ("flops", "bytes")}

    def json(self) -> dict:
        def totals(t: Totals) -> dict:
            return {"flops": t.flops.json(), "bytes": t.bytes.json()}  # (SPEC §2's form, nothing more)

        r = self.ratios()
        out = {
            "forward": totals(self.forward),
            "backward": totals(self.backward),
            "nodes": [c.json() for c in self.nodes],
            "ratio": {k: v for k, (v, _) in r.items()},
            "ratio_exact": all(exact for _, exact in r.values()),
            "products": {"forward": self.forward.products.json(), "backward": self.backward.products.json()},
            "wrt": self.wrt,
            "dtype": self.dtype,
            "dims": self.symbols,
        }
        a = self.all_backward
        if a is not None:
            out["all_inputs"] = {
                "wrt": self.all_wrt,
                "backward": totals(a),
                "ratio": {k: ratio(getattr(a, k), getattr(self.forward, k))[0] for k in ("flops", "bytes")},
                "missing": {k: None if f is None else f.json() for k, (f, _) in self.missing.items()},
            }
        return out

    def json_text(self) -> str:
        """json() as text: the totals indented, a line per node."""
        import json

        d = self.json()
        nodes = d.pop("nodes")
        body = json.dumps(d, indent=1, ensure_ascii=False)[:-2]  # (without the closing brace)
        rows = ",\n  ".join(json.dumps(c, ensure_ascii=False) for c in nodes)
        return body + ',\n "nodes": [\n  ' + rows + "\n ]\n}\n"

    def text(self) -> str:
        rows = [("name", "pass", "line", "computes", "op", "shape", "flops", "bytes")]
        for c in self.nodes:
            rows.append(
                (
                    c.name,
                    c.pass_,
                    str(c.line),
                    _clip(c.computes, 36),
                    c.op,
                    "?" if c.shape is None else "[" + ", ".join(map(str, c.shape)) + "]",
                    "?" if c.flops is None else str(c.flops),
                    "?" if c.bytes is None else str(c.bytes),
                )
            )
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        right = {2, 6, 7}
        lines = [
            "  ".join(v.rjust(w) if k in right else v.ljust(w) for k, (v, w) in enumerate(zip(r, widths))).rstrip()
            for r in rows
        ]
        f, b = self.forward, self.backward
        lines.append("")
        what = f"gradients w.r.t. {', '.join(self.wrt) or 'nothing'}; {self.dtype}"
        if self.symbols:
            what += f"; formulas in the dims {', '.join(self.symbols)} (give values with --inputs or --set for numbers)"
        lines.append(f"# {what}")
        width = max(len(_big(f.flops)), len(_big(b.flops)))
        for label, t in (("forward: ", f), ("backward:", b)):
            lines.append(f"{label} {_big(t.flops).ljust(width)} FLOPs, {_big(t.bytes)} bytes" + _unknown(t))
        lines.append(self._ratio_line())
        lines += self._explain()
        return "\n".join(lines) + "\n"

    @staticmethod
    def _grow(*ps: Poly) -> str:
        """`for large N, D`: the dims of the highest-degree terms, those the ratio is the limit in."""
        dims = sorted({s for p in ps for m in p.leading() for s, _ in m})
        return f"for large {', '.join(dims)}"

    def _ratio_text(self, b: Poly, f: Poly) -> str:
        if self.forward.unknown or self.backward.unknown:
            return "unknown"
        v, exact = ratio(b, f)
        if v is None and f == Poly():
            return "none (no forward work)"
        if v is None:
            return f"({b}) / ({f})"
        return f"{v:.3g}" + ("" if exact else f" ({self._grow(b, f)})")

    def _ratio_line(self) -> str:
        f, b = self.forward, self.backward
        if f.unknown or b.unknown:
            return "backward/forward: unknown, some shapes are (give values with --inputs or --set)"
        return (
            f"backward/forward: {self._ratio_text(b.flops, f.flops)} in FLOPs, "
            f"{self._ratio_text(b.bytes, f.bytes)} in bytes"
        )

    def _explain(self) -> list[str]:
        """The lecture's claim, and where and why this model differs."""
        f, b = self.forward, self.backward
        out = []
        if f.products.terms:
            out.append(
                f"products (@, outer, conv2d): forward {_big(f.products)}, backward {_big(b.products)} FLOPs: "
                f"{self._ratio_text(b.products, f.products)}"
            )
        out.append(
            "the lecture: a backward pass costs about two forward passes: each product a @ b of the forward pass "
            "has two in the backward pass, one for each factor's gradient (ā = ḡ bᵀ, b̄ = aᵀ ḡ)"
        )
        if not self.wrt:
            return out + ["here: nothing to differentiate (no params, no inputs), so no backward pass"]
        if not f.products.terms:
            out.append("here: no products (@, conv2d); the elementwise steps and reductions decide the ratio")
        if any(c.op == "outer" and c.pass_ == "backward" for c in self.nodes):
            out.append(
                "here: a weight's gradient of one example is an outer product (W̄ = ȳ hᵀ), a multiply per weight "
                "and no add: the lecture's add-multiply per weight is a batch's, which sums over the examples"
            )
        if self.all_backward is None:
            ints = [n for n in self.inputs if n not in self.wrt]
            but = f" (not {', '.join(ints)}: integers, indices or labels)" if ints else ""
            out.append(f"here: every param and input has its gradient{but}, the case the lecture counts")
            return out
        miss = [n for n in self.all_wrt or [] if n not in self.wrt]
        inputs = all(n not in self.params for n in miss)
        whom = ("the input " if len(miss) == 1 else "the inputs ") if inputs else ""
        out.append(
            f"here: no gradient for {whom}{', '.join(miss)}{' (the data)' if inputs else ''}: only what the gradients "
            f"w.r.t. {', '.join(self.wrt)} need is computed"
        )
        adds = []
        for n in miss:
            flops, lines = self.missing.get(n, (None, []))
            if flops is None or flops == Poly():
                continue
            k = len(lines)
            where = f" ({k} product{'s' * (k != 1)}, line {', '.join(map(str, lines))})" if k else ""
            adds.append(f"{n}̄ would add {_big(flops)} FLOP{'s' * (flops != Poly.const(1))}{where}")
        if adds:
            out.append("  " + "; ".join(adds))
        out.append(
            f"  with every input's gradient (--wrt {','.join(self.all_wrt or [])}): backward "
            f"{_big(self.all_backward.flops)} FLOPs, {self._ratio_text(self.all_backward.flops, f.flops)} "
            "times the forward pass"
        )
        return out


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _big(p: Poly) -> str:
    """A count: an integer with its size in words (3403776 (3.4 M)), or a formula."""
    n = p.number
    if n is None:
        return str(p)
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(n) >= scale:
            return f"{n} ({n / scale:.3g} {unit})"
    return str(n)


def _unknown(t: Totals) -> str:
    return f"  (+ {t.unknown} nodes of unknown shape: give values with --inputs)" if t.unknown else ""


def symbols_of(nodes: list[NodeCost]) -> list[str]:
    seen: dict[str, None] = {}
    for c in nodes:
        for p in (c.flops, c.bytes):
            for m in p.terms if p is not None else ():
                for s, _ in m:
                    seen[s] = None
    return sorted(seen)


def only_for(g: Graph, nodes: list[NodeCost], name: str, others: list[str]) -> tuple[Poly | None, list[int]]:
    """The FLOPs (and the lines of the products) of the nodes of gradient graph g (costed: nodes) that only the
    gradient of `name` needs: not the forward pass, not the gradients of `others`."""
    roots = [g.loss, *g.outputs] + [i for i in g.names.values() if not g[i].get("signal")]
    shared = g.upstream([r for r in roots if r is not None] + [g.grads[o] for o in others])
    mine = g.upstream([g.grads[name]]) - shared
    total, products = Poly(), []
    for c in nodes:
        if c.id in mine:
            if c.flops is None:
                return None, products
            total = total + c.flops
            if c.op in PRODUCTS and c.flops != Poly():
                products.append(c.line)
    return total, products


def report(g: Graph, wrt: list[str], dtype: str = "float64", full: Graph | None = None, full_wrt=None) -> Cost:
    """The cost of gradient graph g (gradients w.r.t. wrt); full: the gradient graph w.r.t. full_wrt, every
    param and input that can have one, when wrt leaves some out."""
    nodes, fw, bw = count(g, dtype)
    c = Cost(g.path, dtype, list(wrt), nodes, fw, bw, symbols_of(nodes), params=g.params, inputs=g.inputs)
    if full is not None:
        full_nodes, _, c.all_backward = count(full, dtype)
        c.all_wrt = list(full_wrt)
        c.missing = {n: only_for(full, full_nodes, n, list(wrt)) for n in full_wrt if n not in wrt}
    return c
