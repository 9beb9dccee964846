"""The forward and backward passes as equations, in the lecture's ȳ notation (text or LaTeX)."""

from __future__ import annotations

import re

from . import ops as O
from .graph import Graph

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
TEX_FUNCS = {
    "exp": r"\exp",
    "log": r"\log",
    "sin": r"\sin",
    "cos": r"\cos",
    "tanh": r"\tanh",
    "sigmoid": r"\sigma",
    "max": r"\max",
}


class _Style:
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
        if self.latex:
            return rf"\overline{{{self.plain(of)}}}"
        return of + "\u0304" if len(of) == 1 else "".join(c if c == "_" else c + "\u0305" for c in of)


# precedence of what an expression's text binds like: higher binds tighter
ATOM, POW, UNARY, MUL, ADD = 5, 4, 3, 2, 1


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) < 1e15 else f"{v:g}"


def _expr(g: Graph, i: int, names: dict, st: _Style) -> tuple[str, int]:
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
            todo = [a for a in g[j]["args"] if a not in memo]
            if todo:
                stack.extend(todo)
            else:
                memo[j] = _text(g, j, memo, st)
                stack.pop()
    return memo[i]


def _text(g: Graph, i: int, memo: dict, st: _Style) -> tuple[str, int]:
    """Text of node i from the texts of its arguments (in memo) and how tightly it binds."""
    n = g[i]
    op = n["op"]
    if op == "const":
        v = n["attrs"]["value"]
        if st.latex and (v != v or v in (float("inf"), float("-inf"))):
            return (r"\mathrm{NaN}" if v != v else r"\infty" if v > 0 else r"-\infty"), ATOM if not v < 0 else UNARY
        return _number(v), UNARY if v < 0 else ATOM
    args = [memo[a] for a in n["args"]]

    def wrap(k, prec, right=False):
        text, p = args[k]
        tight = p > prec or (p == prec and not right)
        if st.latex:
            return text if tight else rf"\left({text}\right)"
        return text if tight else f"({text})"

    L = st.latex
    if op in ("add", "sub"):
        return f"{wrap(0, ADD)} {'+' if op == 'add' else '-'} {wrap(1, ADD, right=True)}", ADD
    if op == "mul":
        a, b = n["args"]
        inner = [g[x]["args"][0] for x in (a, b) if g[x]["op"] == "expand_dims"]
        if len(inner) == 2 and all(x in memo for x in inner):  # an outer product, as on the slide
            u, v = (memo[x][0] for x in inner)
            return (f"{u} {v}^\\top" if L else f"{u} {v}ᵀ"), MUL
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
    if op in ("broadcast", "identity"):  # broadcasting is implicit in the maths
        return args[0]
    if op == "zeros_like":  # a gradient that is zero everywhere (e.g. through step): 0, of any shape
        return "0", ATOM
    kw = {k: v for k, v in n["attrs"].items() if O.OPS[op].kwargs.get(k, None) != v and k in O.OPS[op].kwargs}
    inner = ", ".join([a for a, _ in args] + [f"{k}={v}" for k, v in kw.items()])
    if op == "unbroadcast":
        fname, shape = (r"\operatorname{sum\_to}", r"\operatorname{shape}") if L else ("sum_to", "shape")
        return f"{fname}({args[0][0]}, {shape}({args[1][0]}))", ATOM
    fname = (TEX_FUNCS.get(op) or rf"\operatorname{{{op.replace('_', chr(92) + '_')}}}") if L else op
    return (rf"{fname}\left({inner}\right)" if L else f"{fname}({inner})"), ATOM


def equations(g: Graph, latex: bool = False) -> str:
    """The forward pass (named values, in order) then the backward pass (error signals, in order)."""
    st = _Style(latex)
    order = g.order()
    uses = {i: len(set(g.nx.successors(i))) for i in order}
    names = {i: st.name(g, i) for i in order if g[i]["name"]}
    roots = [g.loss, *g.outputs] + [i for i in g.names.values() if not g[i].get("signal")]
    forward = g.upstream(roots) if g.grads else set(order)
    fwd, bwd, temps, alias = [], [], 0, {}
    for i in order:  # an anonymous value used twice or more gets a name of its own, so it is computed once
        n = g[i]
        shared = n.get("signal") and i in forward  # a forward value that is also an error signal (y - t)
        if shared or (n["name"] is None and uses[i] > 1 and n["op"] not in ("const", "broadcast", "expand_dims")):
            temps += 1
            if shared:
                alias[i] = names[i]
            names[i] = f"t_{{{temps}}}" if latex else f"t{temps}"
    for i in order:
        n = g[i]
        if i not in names or n["op"] in ("input", "param") or (n["op"] == "const" and n["name"]):
            continue
        saved = names.pop(i)
        text = _expr(g, i, names, st)[0]
        names[i] = saved
        (fwd if i in forward else bwd).append((saved, text))
        if i in alias:
            bwd.append((alias[i], saved))
    loss = names.get(g.loss, g.label(g.loss))
    seed = (st.bar(g.label(g.loss)), "1")
    grads = []
    for w, i in g.grads.items():  # by name, or written out: 0, a number, an anonymous value
        const = g[i]["op"] == "const" and g[i].get("signal")  # a constant error signal has no line of its own
        text = _expr(g, i, {} if const else names, st)[0]
        if text != st.bar(w):
            grads.append((st.bar(w), text))
    lines = fwd + ([seed] if g.grads else []) + bwd + grads
    if latex:
        body = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in lines)
        return "\\begin{align*}\n" + body + "\n\\end{align*}\n"
    width = max((len(lhs) for lhs, _ in lines), default=0)
    out = ["# forward pass"] + [f"{lhs:<{width}} = {rhs}" for lhs, rhs in fwd]
    if g.grads:
        out += ["", f"# backward pass (x̄ = d{loss}/dx)"] + [f"{lhs:<{width}} = {rhs}" for lhs, rhs in lines[len(fwd) :]]
    return "\n".join(out) + "\n"
