"""Pictures of computation graphs with Graphviz: `graphc render`, `Model.render`, Jupyter display.

The forward graph is drawn as micrograd's ``draw_dot`` draws one: every value a box (name,
shape and, given values, its value), every operation a small ellipse of its own, edges
following the data. Inputs, params, consts, values, outputs and the loss differ in shape and
colour, with a legend of the kinds drawn. With the backward graph, the error signals
ȳ = dL/dy and the operations that compute them sit in a cluster of their own beside the
forward graph; dashed edges bring in the forward values each backward step reuses, and a value
with several children gets its error signal from a Σ node that sums one contribution per child.

For large graphs, ``group_by_line`` clusters the nodes by the model line they come from and
``collapse`` draws one box per named value (its expression written inside) instead of one node
per operation.
"""

from __future__ import annotations

import html
import re
import shutil
import sys
from pathlib import Path

import graphviz
import numpy as np

from ..data import write_atomic
from ..errors import GraphcError
from ..ir import ops as O
from ..ir import shapes as S
from ..ir.graph import Graph
from .notation import Style, Writer, unknown_note

FORMATS = ("svg", "png", "pdf", "dot")
RANKDIRS = ("LR", "TB", "RL", "BT")
FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"
LARGE = 400  # nodes beyond which the CLI suggests --group-by-line or --collapse

_OP = {"style": "filled", "fontsize": "11", "margin": "0.05,0.02", "height": "0.3", "width": "0.3"}
# kind -> (legend text, Graphviz node attributes); the order is the legend's
NODE_STYLES: dict[str, tuple[str, dict]] = {
    "input": ("input", {"shape": "parallelogram", "style": "filled", "fillcolor": "#dbe9f7", "color": "#3a6ea5"}),
    "param": ("param", {"shape": "cylinder", "style": "filled", "fillcolor": "#fde3c0", "color": "#b86e12"}),
    "const": ("const", {"shape": "note", "style": "filled", "fillcolor": "#eeeeee", "color": "#808080"}),
    "value": ("value", {"shape": "box", "style": "rounded,filled", "fillcolor": "#e2f1df", "color": "#4c8c4a"}),
    "output": (
        "output",
        {"shape": "box", "style": "rounded,filled", "fillcolor": "#e2f1df", "color": "#2e6b2c", "penwidth": "2.5"},
    ),
    "loss": ("loss", {"shape": "doubleoctagon", "style": "filled", "fillcolor": "#f8d3cf", "color": "#b03a2e"}),
    "op": ("operation", {**_OP, "shape": "ellipse", "fillcolor": "#f0f0f0", "color": "#7a7a7a"}),
    "signal": (
        "error signal",
        {"shape": "box", "style": "rounded,filled", "fillcolor": "#ebdff5", "color": "#6c3d91"},
    ),
    "bop": ("backward operation", {**_OP, "shape": "ellipse", "fillcolor": "#f6f0fa", "color": "#9b7bb5"}),
    "fanout": (
        "Σ: sums a fan-out's contributions",
        {**_OP, "shape": "ellipse", "style": "filled,bold", "fillcolor": "#d8c1ea", "color": "#6c3d91"},
    ),
}
# kind -> (legend text, legend glyph, Graphviz edge attributes)
EDGE_STYLES: dict[str, tuple[str, str, dict]] = {
    "data": ("data", "──▶", {"color": "#555555"}),
    "signal": ("error signal", "──▶", {"color": "#6c3d91"}),
    "contribution": ("one child's contribution", "━━▶", {"color": "#6c3d91", "penwidth": "2"}),
    "reuse": ("forward value reused", "╌╌▶", {"color": "#8c8c8c", "style": "dashed", "constraint": "false"}),
    "shape": ("only its shape is used", "┈┈▶", {"color": "#b0b0b0", "style": "dotted", "constraint": "false"}),
}
# binary ops whose operands' order matters: drawn as `a − b` (comparisons too: `h > a`, not `>`)
_ORDERED = {"sub", "div", "pow", "matmul", "gt", "ge", "lt", "le", "eq", "ne"}
_SYMBOL = {"sub": "−"}
INLINE = ("const", "broadcast", "expand_dims", "size_ratio")  # never boxed of their own in collapsed pictures


# ---- values ----------------------------------------------------------------------------------


def _num(v: float) -> str:
    return f"{v + 0.0:.4g}"  # (+ 0.0: a -0.0, as relu's masked signals give, shows as 0)


def fmt_value(a, entries: int = 3) -> list[str]:
    """A value in a line or two: a scalar to 4 significant digits; an array as its first entries
    and, when some are left out, its min and max (the shape is shown beside the name)."""
    a = np.asarray(a)
    if a.dtype.kind not in "biuf":
        return [str(a)[:40]]
    a = a.astype(np.float64)
    if a.ndim == 0:
        return [_num(float(a))]
    flat = a.ravel()
    if flat.size == 0:
        return ["[] (empty)"]
    if flat.size <= entries + 1:
        return ["[" + ", ".join(_num(v) for v in flat) + "]"]
    with np.errstate(all="ignore"):
        lo, hi = float(np.min(flat)), float(np.max(flat))
    return ["[" + ", ".join(_num(v) for v in flat[:entries]) + ", …]", f"min {_num(lo)}  max {_num(hi)}"]


def _shape_text(shape) -> str:
    return "scalar" if shape == () else S.fmt(shape)


# ---- text helpers ----------------------------------------------------------------------------


def _esc(text) -> str:
    return html.escape(str(text), quote=False)


def _bar(name: str) -> str:
    """ȳ for y, in the slide's notation (combining overlines: Graphviz's <O> is misplaced by cairo)."""
    return _esc(Style(False).bar(name))


def _small(text: str, color: str = "#555555", size: int = 10) -> str:
    return f'<FONT POINT-SIZE="{size}" COLOR="{color}">{text}</FONT>'


def _html(text: str) -> str:
    return f"<{text}>"


# ---- the drawing -----------------------------------------------------------------------------


class _Drawing:
    """One Graph (and the values of its nodes) as a Digraph."""

    def __init__(
        self, g: Graph, vals: dict, backward: bool, group_by_line: bool, collapse: bool, group_by_call: bool = False
    ):
        self.g, self.vals = g, vals
        self.group_by_line, self.collapse, self.group_by_call = group_by_line, collapse, group_by_call
        roots = [g.loss, *g.outputs, *(i for i in g.names.values() if not g[i].get("signal"))]
        self.fwd = g.upstream([r for r in roots if r is not None]) if g.grads else set(g.nx.nodes)
        self.backward = backward and bool(g.grads)
        order = g.order()
        self.nodes = order if self.backward else [i for i in order if i in self.fwd]
        self.keep = set(self.nodes)
        self.users = {i: [u for u in g.nx.succ[i] if u in self.keep] for i in self.nodes}
        self.loss_name = g.label(g.loss) if g.loss is not None else "L"

        # error signals: node -> the forward names whose signal it is; forward node -> its signal node
        self.bars: dict[int, list[str]] = {}
        self.signal_of: dict[int, int] = {}
        if self.backward:
            for i in self.nodes:
                of = g[i].get("signal")
                if of:
                    self.bars.setdefault(i, []).append(of)
            for w, i in g.grads.items():
                if w not in self.bars.setdefault(i, []):
                    self.bars[i].append(w)
            for i, names in self.bars.items():
                for name in names:
                    if name in g.names and g.names[name] in self.fwd:
                        self.signal_of.setdefault(g.names[name], i)
            for w, i in g.grads.items():  # a param's gradient wins over a shared signal's name
                self.signal_of[g.names[w]] = i
        # the forward value each signal node is drawn level with: the one it is the signal of
        self.align = {i: g.names[names[0]] for i, names in self.bars.items() if names[0] in g.names}

        self.boxed = {i for i in self.nodes if self._is_boxed(i)}
        self.temps: dict[int, str] = {}
        self.writer = Writer(g, Style(False)) if collapse else None  # the expressions written in boxes
        self._names: dict | None = None  # (the boxes' names in those expressions, made on first use)
        if collapse:  # an anonymous value written twice or more gets a box (and a name) of its own
            written: dict[int, set[int]] = {i: set() for i in self.nodes}
            for u in self.nodes:
                for a in self.writer.text_args(u):
                    if a in written:
                        written[a].add(u)
            for i in self.nodes:
                if i not in self.boxed and g[i]["op"] not in INLINE and len(written[i]) > 1:
                    self.boxed.add(i)
                    k = len(self.temps) + 1
                    while f"t{k}" in g.names:
                        k += 1
                    self.temps[i] = f"t{k}"

        # fan-out sums: the backward `add` that sums a value's contributions, one per child
        self.fanout: dict[int, list[int]] = {}
        self.absorbed: set[int] = set()
        if self.backward and not collapse:
            for i in self.nodes:
                if i not in self.fwd and g[i]["op"] == "add" and self._fans_out(i):
                    self.fanout[i] = self._collect(i)
                    self.boxed.update(c for c in self.fanout[i] if g[c]["op"] == "const")  # a constant contribution
        self.stmts = self._statements()
        self.used_nodes: set[str] = set()
        self.used_edges: set[str] = set()

    # ---- classification -----------------------------------------------------------------------
    def _is_boxed(self, i: int) -> bool:
        g, n = self.g, self.g[i]
        if n["op"] in ("input", "param") or n["name"] or self.bars.get(i):
            return True
        if i == g.loss or i in g.outputs:
            return True
        return n["op"] == "const" and not self.users[i]  # a lone constant; the others are folded into ops

    def folded(self, i: int) -> bool:
        """An anonymous constant, written inside the operations that use it."""
        return self.g[i]["op"] == "const" and i not in self.boxed

    def _fans_out(self, i: int) -> bool:
        for name in self.bars.get(i, []):
            v = self.g.names.get(name)
            if v is not None and v in self.fwd:
                uses = sum(self.g[u]["args"].count(v) for u in set(self.users[v]) if u in self.fwd)
                if uses > 1:
                    return True
        return False

    def _collect(self, i: int) -> list[int]:
        """The contributions summed by the fan-out sum i, through the anonymous adds inside it (left to right)."""
        out: list[int] = []
        stack = list(reversed(self.g[i]["args"]))
        while stack:
            a = stack.pop()
            n = self.g[a]
            if n["op"] == "add" and a not in self.boxed and a not in self.fwd and len(self.users[a]) == 1:
                self.absorbed.add(a)
                stack.extend(reversed(n["args"]))
            else:
                out.append(a)
        return out

    def kind(self, i: int) -> str:
        g, n = self.g, self.g[i]
        if i not in self.boxed:
            return "fanout" if i in self.fanout else ("op" if i in self.fwd else "bop")
        if n["op"] in ("input", "param"):
            return n["op"]
        if self.bars.get(i) and (i not in self.fwd or not n["name"] or n.get("signal")):
            return "signal"
        if i == g.loss:
            return "loss"
        if i in g.outputs:
            return "output"
        if n["op"] == "const":
            return "const"
        return "value" if i in self.fwd else "signal"

    def _statements(self) -> list:
        """(line, col, end_col, name) of the model's statements, to say which child a contribution is from."""
        out = []
        for i in self.fwd:
            n = self.g[i]
            if n["name"] and not n.get("signal") and n["op"] not in ("input", "param", "const") and n["span"]:
                s = n["span"]
                out.append((s.line, s.col, s.end_col or s.col, n["name"]))
        return out

    def statement_of(self, i: int) -> str | None:
        s = self.g[i]["span"]
        if s is None:
            return None
        best = None
        for line, col, end, name in self.stmts:
            if line == s.line and col <= s.col and (s.end_col or s.col) <= end:
                if best is None or end - col < best[0]:
                    best = (end - col, name)
        return best[1] if best else None

    # ---- text -----------------------------------------------------------------------------------
    def short(self, i: int) -> str:
        """How node i is referred to inside another node's label (HTML)."""
        n = self.g[i]
        if n["op"] in ("transpose", "mT") and n["args"][0] in self.boxed and self._named_short(i) is None:
            return (self._named_short(n["args"][0]) or "·") + "ᵀ"  # a box's transpose: its name with ᵀ
        return self._named_short(i) or "·"

    def _named_short(self, i: int) -> str | None:
        n = self.g[i]
        if self.folded(i):
            return _esc(_num(n["attrs"]["value"]))
        if i in self.temps:
            return _esc(self.temps[i])
        if n["name"] and not n.get("signal"):
            return _esc(n["name"])
        if self.bars.get(i):
            return _bar(self.bars[i][0])
        return None

    def title(self, i: int) -> str:
        """The name line of a box: its model name and/or the error signals it holds."""
        n = self.g[i]
        parts = []
        if n["name"] and not n.get("signal"):
            parts.append(f"<B>{_esc(n['name'])}</B>")
        elif i in self.temps:
            parts.append(_esc(self.temps[i]))
        parts += [_bar(w) for w in self.bars.get(i, [])]
        if not parts:
            parts.append(_esc(_num(n["attrs"]["value"]) if n["op"] == "const" else self.g.label(i)))
        return " = ".join(parts)

    def op_text(self, i: int) -> str:
        n = self.g[i]
        op, args = n["op"], n["args"]
        if i in self.fanout:
            return "Σ"
        sym = _esc(_SYMBOL.get(op, O.OPS[op].label or op))
        if op == "expand_dims":
            sym = {-1: "as column", -2: "as row"}.get(n["attrs"].get("axis"), f"expand axis={n['attrs'].get('axis')}")
        elif op in ("index", "unindex"):  # the key itself: [1:, ::2] (and ȳ put back there, →[1:, ::2])
            sym = _esc(("[" if op == "index" else "→[") + S.key_text(n["attrs"]["key"]) + "]")
        kw = O.OPS[op].kwargs
        extra = " ".join(f"{k}={n['attrs'][k]}" for k in kw if k in n["attrs"] and n["attrs"][k] != kw[k])
        folded = [self.folded(a) for a in args]
        if len(args) == 2 and op in _ORDERED and not any(folded):
            text = f"{self.short(args[0])} {sym} {self.short(args[1])}"
        elif len(args) == 2 and folded[0] != folded[1]:
            c = self.short(args[0] if folded[0] else args[1])
            text = f"{c} {sym}" if folded[0] else f"{sym} {c}"
        elif any(folded):
            text = f"{sym}(" + ", ".join(self.short(a) if f else "·" for a, f in zip(args, folded)) + ")"
        else:
            text = sym
        return f"{text} {_esc(extra)}" if extra else text

    def value_lines(self, i: int, size: int = 10) -> list[str]:
        if i not in self.vals:
            return []
        return [_small(_esc(line), "#222222", size) for line in fmt_value(self.vals[i])]

    def box_label(self, i: int, expression: str | None) -> str:
        g, n = self.g, self.g[i]
        rows = [f"{self.title(i)}  {_small(_esc(_shape_text(n['shape'])))}"]
        if expression:
            rows.append(_small("= " + _esc(expression), "#333333"))
        if n["op"] == "const" and n["name"] and i not in self.vals:
            rows.append(_small(_esc(_num(n["attrs"]["value"])), "#222222"))
        if n["op"] == "param" and i not in self.vals and n["attrs"].get("init"):
            rows.append(_small("init " + _esc(_init_text(n["attrs"]["init"])), "#7a5a2a"))
        if n["op"] != "const" or n["name"]:  # an anonymous constant's value is its title
            rows += self.value_lines(i)
        s = self.signal_of.get(i)
        if s is not None and s != i and s in self.vals and n["op"] != "const":
            name = n["name"] if n["name"] else g.label(i)
            lines = fmt_value(self.vals[s])
            rows.append(_small(f"{_bar(name)} = {_esc(lines[0])}", "#6c3d91"))
            rows += [_small(_esc(line), "#6c3d91") for line in lines[1:]]
        return _html("<BR/>".join(rows))

    def op_label(self, i: int) -> str:
        values = [] if i in self.boxed else self.value_lines(i, 9)  # a boxed value shows it in its box
        return _html("<BR/>".join([self.op_text(i), *values]))

    # ---- building -------------------------------------------------------------------------------
    def node_id(self, i: int) -> str:
        return f"n{i}" if i in self.boxed else f"o{i}"

    def edge_kind(self, a: int, i: int, position: int | None) -> str:
        if position is not None and position in O.OPS[self.g[i]["op"]].shape_only:
            return "shape"
        if i in self.fwd:
            return "data"
        return "reuse" if a in self.fwd and not self.bars.get(a) else "signal"

    def group(self, i: int):
        """Where node i is drawn: (forward|backward, None), or with group_by_line, for the forward
        graph's operations and values, (line, N): a cluster per model line. The backward nodes are not
        grouped: they are drawn level with the forward values they are the error signals of."""
        n = self.g[i]
        part = "forward" if i in self.fwd else "backward"
        if self.group_by_call and n["args"] and n["span"] is not None and n["span"].via is not None:
            calls, via = [], n["span"].via  # the calls it came through, the outermost first
            while via is not None:
                calls.append(via)
                via = via.via
            return "call", (part, tuple(reversed(calls)))
        if self.group_by_line and i in self.fwd and n["args"] and n["span"] is not None:
            return "line", n["span"].model_line
        return part, None

    def build(self, dg: graphviz.Digraph, legend: bool) -> None:
        nodes: dict[tuple, list] = {}  # (part, line) -> [(id, attrs)]
        edges: list[tuple[str, str, str, dict]] = []

        def add_node(key, nid, kind, label, **extra):
            self.used_nodes.add(kind)
            nodes.setdefault(key, []).append((nid, {"label": label, **NODE_STYLES[kind][1], "class": kind, **extra}))

        def add_edge(a, b, kind, **extra):
            self.used_edges.add(kind)
            edges.append((a, b, kind, extra))

        for i in self.nodes:
            if self.folded(i) or i in self.absorbed:
                continue
            n = self.g[i]
            key = self.group(i)
            leaf = not n["args"]
            if self.collapse:
                if i not in self.boxed:
                    continue
                expr = None if leaf else self.expression(i)
                add_node(key, f"n{i}", self.kind(i), self.box_label(i, expr), tooltip=self.tooltip(i))
                for a in sorted(self.deps(i)):
                    add_edge(f"n{a}", f"n{i}", self.edge_kind(a, i, None))
                continue
            if i in self.boxed:
                add_node(key, f"n{i}", self.kind(i), self.box_label(i, None), tooltip=self.tooltip(i))
            if leaf:
                continue
            opkind = "fanout" if i in self.fanout else ("op" if i in self.fwd else "bop")
            add_node(key, f"o{i}", opkind, self.op_label(i), tooltip=self.tooltip(i))
            if i in self.boxed:
                add_edge(f"o{i}", f"n{i}", "data" if i in self.fwd else "signal")
            if i in self.fanout:
                for c in self.fanout[i]:
                    src = self.statement_of(c)
                    extra = {"label": _html(_small("from " + _esc(src), "#6c3d91", 9))} if src else {}
                    add_edge(self.node_id(c), f"o{i}", "contribution", **extra)
                continue
            for k, a in enumerate(n["args"]):
                if not self.folded(a):
                    add_edge(self.node_id(a), f"o{i}", self.edge_kind(a, i, k))

        self._emit(dg, nodes, edges)
        if legend:
            self._legend(dg)

    def deps(self, i: int) -> set[int]:
        """The boxes node i's expression reads, through the anonymous nodes written inside it."""
        out: set[int] = set()
        stack = self.writer.text_args(i)
        seen: set[int] = set()
        while stack:
            a = stack.pop()
            if a in seen or self.folded(a):
                continue
            seen.add(a)
            if a in self.boxed:
                out.add(a)
            else:
                stack.extend(self.writer.text_args(a))
        return out

    def expression(self, i: int) -> str:
        """The text of box i's value, the other boxes by name (in the slide's notation, as the equations)."""
        if self._names is None:
            st = self.writer.st
            self._names = {}
            for j in self.boxed:
                n = self.g[j]
                if j in self.temps:
                    self._names[j] = self.temps[j]
                elif n["name"] and not n.get("signal"):
                    self._names[j] = n["name"]
                elif self.bars.get(j):
                    self._names[j] = st.bar(self.bars[j][0])
                else:
                    self._names[j] = self.g.label(j)
        name = self._names.pop(i, None)
        text = self.writer.expr(i, self._names)[0]
        if name is not None:
            self._names[i] = name
        return text

    def tooltip(self, i: int) -> str:
        n = self.g[i]
        where = f" (line {n['span'].lines()})" if n["span"] else ""
        return f"{n['op']} {_shape_text(n['shape'])}{where}"

    def _emit(self, dg: graphviz.Digraph, nodes: dict, edges: list) -> None:
        calls = sorted({key for p, key in nodes if p == "call"}, key=lambda k: [c[:2] for c in k[1]])

        def put_calls(sub, part, outer):  # a box per call, the calls made in its body boxed inside it
            for key in calls:
                if key[0] == part and len(key[1]) == len(outer) + 1 and key[1][:-1] == outer:
                    with sub.subgraph(name=f"cluster_call{calls.index(key)}") as c:
                        c.attr(label=_html(_small(_esc(self.call_title(key[1][-1])), "#555555", 10)), **_CALL_CLUSTER)
                        for nid, attrs in nodes[("call", key)]:
                            c.node(nid, **attrs)
                        put_calls(c, part, key[1])

        def put(sub, part):
            for nid, attrs in nodes.get((part, None), []):
                sub.node(nid, **attrs)
            put_calls(sub, part, ())
            if part != "forward":
                return
            for line in sorted(line for p, line in nodes if p == "line"):
                with sub.subgraph(name=f"cluster_line{line}") as c:
                    c.attr(label=_html(_small(_esc(self.line_title(line)), "#555555", 10)), **_LINE_CLUSTER)
                    for nid, attrs in nodes[("line", line)]:
                        c.node(nid, **attrs)

        if self.backward:
            with dg.subgraph(name="cluster_forward") as c:
                c.attr(label=_html("<B>forward pass</B>"), **_PART_CLUSTER, fillcolor="#f7f9fc")
                put(c, "forward")
            with dg.subgraph(name="cluster_backward") as c:
                L = _esc(self.loss_name)
                c.attr(
                    label=_html(f"<B>backward pass</B>: error signals {_bar('x')} = ∂{L}/∂x"),
                    **_PART_CLUSTER,
                    fillcolor="#fbf8fd",
                )
                put(c, "backward")
        else:
            put(dg, "forward")
        for a, b, kind, extra in edges:
            attrs = {"class": kind, **EDGE_STYLES[kind][2], **extra}
            if kind in ("signal", "contribution"):
                # the backward pass flows the other way: laid out from the loss back to the inputs
                dg.edge(b, a, dir="back", **attrs)
            else:
                dg.edge(a, b, **attrs)
        drawn = {nid for items in nodes.values() for nid, _ in items}
        for v, s in sorted(self.signal_of.items()):  # each error signal level with its value
            if s not in self.fwd and f"n{v}" in drawn and f"n{s}" in drawn and self.align.get(s) == v:
                with dg.subgraph() as r:
                    r.attr(rank="same")
                    r.node(f"n{v}")
                    r.node(f"n{s}")

    def call_title(self, call) -> str:
        """A call's box's title: the call as written, and where (`layer(X, W1, b1)`, line 13)."""
        text = call.source.text if call.source else self.g.source
        lines = text.splitlines()
        written = lines[call.line - 1][call.col - 1 : call.end_col - 1] if 0 < call.line <= len(lines) else ""
        if call.end_line != call.line or len(written) > 60:
            written = written[:57] + "…"
        where = f"{call.source.path.rsplit('/', 1)[-1]}:{call.line}" if call.source else f"line {call.line}"
        return f"{written} ({where})" if written else where

    def line_title(self, line: int) -> str:
        lines = self.g.source.splitlines()
        text = lines[line - 1].split("#")[0].strip() if 0 < line <= len(lines) else ""
        if len(text) > 60:
            text = text[:57] + "…"
        return f"line {line}: {text}" if text else f"line {line}"

    def _legend(self, dg: graphviz.Digraph) -> None:
        with dg.subgraph(name="cluster_legend") as c:
            c.attr(label=_html("<B>legend</B>"), style="rounded", color="#cccccc", fontsize="11")
            prev = None
            for kind, (text, attrs) in NODE_STYLES.items():
                if kind not in self.used_nodes:
                    continue
                if kind == "signal":
                    text = f"error signal {_bar('y')} = ∂{_esc(self.loss_name)}/∂y"
                nid = f"legend_{kind}"
                c.node(nid, label=_html(_small(text, "#222222", 9)), **{**attrs, **_LEGEND_NODE})
                if prev:
                    c.edge(prev, nid, style="invis")
                prev = nid
            rows = [
                f'<TR><TD ALIGN="LEFT">{_small(glyph, attrs.get("color", "#555555"), 11)}</TD>'
                f'<TD ALIGN="LEFT">{_small(text, "#222222", 10)}</TD></TR>'
                for kind, (text, glyph, attrs) in EDGE_STYLES.items()
                if kind in self.used_edges
            ]
            if rows:
                c.node(
                    "legend_edges",
                    label=_html('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows) + "</TABLE>"),
                    shape="plaintext",
                    **{"class": "legend"},
                )
                if prev:
                    c.edge(prev, "legend_edges", style="invis")


_LEGEND_NODE = {"class": "legend", "height": "0.3", "width": "0.4", "margin": "0.06,0.03"}
_PART_CLUSTER = {"style": "rounded,filled", "color": "#b8b8b8", "fontsize": "13", "margin": "12"}
_LINE_CLUSTER = {"style": "rounded,dashed", "color": "#c8c8c8", "bgcolor": "transparent", "margin": "6"}
_CALL_CLUSTER = {"style": "rounded", "color": "#9aaed0", "bgcolor": "transparent", "margin": "6"}


def _init_text(init: tuple) -> str:
    kind, *args = init
    if kind == "number":
        return _num(args[0])
    return f"{kind}({', '.join(_num(a) for a in args)})" if args else kind


# ---- the public functions --------------------------------------------------------------------


def to_digraph(
    g: Graph,
    values: dict | None = None,
    backward: bool | None = None,
    rankdir: str = "LR",
    group_by_line: bool = False,
    collapse: bool = False,
    legend: bool = True,
    title: str | None = None,
    group_by_call: bool = False,
) -> graphviz.Digraph:
    """The picture of a graph as a graphviz.Digraph, which Jupyter displays inline (Model.to_digraph
    makes the graph and its values from a model: this function only draws).

    g: a forward graph, or a gradient graph (e.g. ``Model.backward()``), drawn with its backward part.
    values: {node id: value} (``Model.trace``): every node then shows its value.
    backward: draw the backward part (default: when g has one).
    rankdir: LR (left to right), TB (top to bottom), RL or BT.
    group_by_line: cluster the nodes by the model line they come from (for large graphs).
    group_by_call: draw each call of the model's own functions as a box (calls in its body inside it).
    collapse: one box per named value, its expression written inside, instead of a node per operation.
    """
    rankdir = rankdir.upper()
    if rankdir not in RANKDIRS:
        raise GraphcError(f"rankdir must be one of {', '.join(RANKDIRS)}, not {rankdir!r}", usage=True)
    if backward and not g.grads:
        raise GraphcError(
            "this Graph has no backward part to draw",
            hint="pass the Model with backward=True, or Model.backward()",
            usage=True,
        )
    vals = dict(values or {})
    backward = bool(g.grads) if backward is None else bool(backward)
    drawing = _Drawing(g, vals, backward, group_by_line, collapse, group_by_call)
    dg = graphviz.Digraph(name=Path(g.path).stem or "model")
    if title is None:
        what = "forward and backward graphs" if drawing.backward else "forward graph"
        title = f"{Path(g.path).name}: {what}" + (", with values" if vals else "")
    dg.attr(
        rankdir=rankdir,
        fontname=FONT,
        labelloc="t",
        label=_html(f"<B>{_esc(title)}</B>") if title else "",
        nodesep="0.25",
        ranksep="0.3",
        newrank="true",
    )
    dg.attr("node", fontname=FONT, fontsize="12", margin="0.1,0.05")
    dg.attr("edge", fontname=FONT, arrowsize="0.7")
    if len(drawing.nodes) > LARGE:  # keep dot's layout time in check: its spline routing is slow on long edges
        dg.attr(nslimit="4", mclimit="0.5", splines="line")
    drawing.build(dg, legend)
    note = unknown_note(g, drawing.writer) if drawing.writer else ""
    if note:  # (what the collapsed expressions could not know, said once, under the title)
        dg.attr(label=_html(f"<B>{_esc(title)}</B><BR/>" * bool(title) + _small(_esc(note), "#555555", 10)))
    return dg


def format_of(path: str) -> str:
    ext = Path(path).suffix.lower().lstrip(".")
    if ext not in FORMATS:
        raise GraphcError(
            f"cannot tell the picture format of {path!r} from its extension",
            hint=f"end the file name with one of: {', '.join('.' + f for f in FORMATS)}",
            usage=True,
        )
    return ext


def install_command(platform: str | None = None, which=shutil.which) -> str | None:
    """The command that installs the Graphviz program here, or None if no package manager is known."""
    platform = sys.platform if platform is None else platform
    if platform == "darwin":
        return "brew install graphviz"
    if platform.startswith(("win", "cygwin", "msys")):
        return "winget install graphviz"
    for tool, command in (
        ("apt-get", "sudo apt-get install graphviz"),
        ("dnf", "sudo dnf install graphviz"),
        ("yum", "sudo yum install graphviz"),
        ("pacman", "sudo pacman -S graphviz"),
        ("zypper", "sudo zypper install graphviz"),
        ("apk", "sudo apk add graphviz"),
        ("conda", "conda install -c conda-forge graphviz"),
    ):
        if which(tool):
            return command
    return None


def missing_dot_error() -> GraphcError:
    command = install_command()
    how = f"install it with `{command}`" if command else "install it from https://graphviz.org/download/"
    return GraphcError(
        "the Graphviz program `dot` is not installed (or not on PATH), and pictures need it; "
        "`pip install graphviz` installs only the Python half",
        hint=f"{how}, or write -o graph.dot, which needs no Graphviz program",
    )


def pipe(dg: graphviz.Digraph, fmt: str) -> bytes:
    """The picture in format fmt, made by the dot program."""
    if fmt == "dot":
        return dg.source.encode("utf-8")
    try:
        return dg.pipe(format=fmt, engine="dot")
    except graphviz.ExecutableNotFound:
        raise missing_dot_error() from None
    except graphviz.CalledProcessError as e:
        err = e.stderr.decode("utf-8", "replace").strip() if isinstance(e.stderr, bytes) else str(e.stderr or e)
        raise GraphcError(f"Graphviz's dot failed to draw the graph: {err}") from None


def node_count(dg: graphviz.Digraph) -> int:
    """The nodes of the model's graph drawn in dg (its values and operations; the legend not counted)."""
    return sum(1 for line in dg.body if _NODE_STMT.match(line))


_NODE_STMT = re.compile(r"^\s*[no]\d+ \[")


def save(dg: graphviz.Digraph, path: str, protect=()) -> str:
    """Write dg to path in the format its extension names, atomically: a failure leaves no half file."""
    fmt = format_of(path)
    data = pipe(dg, fmt)
    write_atomic(path, lambda f: f.write(data), protect=protect)
    return path


def render(g: Graph, path: str, protect=(), **options) -> str:
    """Draw graph g (the options are to_digraph's) into path, the format taken from its extension: svg,
    png, pdf, or dot (Graphviz's text, which needs no Graphviz program). Returns path."""
    format_of(path)  # a wrong extension is reported before any work
    return save(to_digraph(g, **options), path, protect)


def mimebundle(picture, text: str, include=None, exclude=None) -> dict:
    """What Jupyter shows for a model or graph: picture() (a Digraph), or the reason there is none."""
    bundle: dict = {}
    try:
        bundle.update(picture()._repr_mimebundle_(include, exclude))
    except graphviz.ExecutableNotFound:
        e = missing_dot_error()
        text = f"{e.message}\nhint: {e.hint}"
    except GraphcError as e:
        text = e.message + (f"\nhint: {e.hint}" if e.hint else "")
    bundle.setdefault("text/plain", text)
    return bundle
