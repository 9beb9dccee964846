"""The forward and backward passes as equations, in the lecture's ȳ notation (text or LaTeX)."""

from __future__ import annotations

from ..ir.graph import Graph
from .notation import INLINE, Style, Writer, display_width, unknown_note


def equations(g: Graph, latex: bool = False) -> str:
    """The forward pass (named values, in order) then the backward pass (error signals, in order)."""
    st = Style(latex)
    w = Writer(g, st)
    order = g.order()
    roots = [g.loss, *g.outputs] + [i for i in g.names.values() if not g[i].get("signal")]
    forward = g.upstream(roots) if g.grads else set(order)
    users: dict[int, set[int]] = {i: set() for i in order}  # who writes node i in its text
    for u in order:
        for a in w.text_args(u):
            users[a].add(u)
    # names in the backward pass; a forward value that is also an error signal (y - t) is ȳ there,
    # and in the forward pass an anonymous value like any other
    bnames = {i: st.name(g, i) for i in order if g[i]["name"]}
    shared = {i for i in bnames if g[i].get("signal") and i in forward}
    fnames = {i: v for i, v in bnames.items() if i not in shared}
    temps = 0
    for i in order:  # an anonymous value written twice or more gets a name of its own, so it is computed once
        n = g[i]
        used = users[i] & forward if i in shared else users[i]
        if (i in shared or n["name"] is None) and len(used) > 1 and n["op"] not in INLINE:
            temps += 1
            fnames[i] = f"t_{{{temps}}}" if latex else f"t{temps}"
            bnames.setdefault(i, fnames[i])

    def line(i: int, names: dict) -> str:
        saved = names.pop(i, None)
        text = w.expr(i, names)[0]
        if saved is not None:
            names[i] = saved
        return text

    fwd, bwd = [], []
    for i in order:
        n = g[i]
        if n["op"] in ("input", "param") or (n["op"] == "const" and n["name"]):
            continue
        if i in forward:
            if i in fnames:
                fwd.append((fnames[i], line(i, fnames)))
            if i in shared:
                bwd.append((bnames[i], line(i, fnames)))
        elif i in bnames:
            bwd.append((bnames[i], line(i, bnames)))
    loss = bnames.get(g.loss, g.label(g.loss))
    seed = (st.bar(g.label(g.loss)), "1")
    grads = []
    for v, i in g.grads.items():  # by name, or written out: 0, a number, an anonymous value
        const = g[i]["op"] == "const" and g[i].get("signal")  # a constant error signal has no line of its own
        text = w.expr(i, {} if const else bnames)[0]
        if text != st.bar(v):
            grads.append((st.bar(v), text))
    lines = fwd + ([seed] if g.grads else []) + bwd + grads
    note = unknown_note(g, w)
    if latex:
        body = " \\\\\n".join(f"{lhs} &= {rhs}" for lhs, rhs in lines)
        return (f"% {note}\n" if note else "") + "\\begin{align*}\n" + body + "\n\\end{align*}\n"
    width = max((display_width(lhs) for lhs, _ in lines), default=0)

    def row(lhs, rhs):
        return lhs + " " * (width - display_width(lhs)) + " = " + rhs

    out = ["# forward pass"] + [row(*ln) for ln in fwd]
    if g.grads:
        out += ["", f"# backward pass (x̄ = d{loss}/dx)"] + ([f"# {note}"] if note else [])
        out += [row(*ln) for ln in lines[len(fwd) :]]
    return "\n".join(out) + "\n"
