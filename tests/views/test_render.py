"""`graphc render` and graphc.render (issue 5): DOT structure, golden files, real pictures, errors.

Expected counts come from the models' text and the lecture's slides, expected numbers from
Model.evaluate / Model.loss_and_grad; the only recorded output is the golden DOT files, which
`python tests/regen_render_golden.py` regenerates (never edit them by hand).
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import graphviz
import numpy as np
import pytest
from clitools import run_cleanly
from goldens import RENDER_CASES as CASES
from goldens import RENDER_GOLDEN as GOLDEN
from goldens import drawn, example_models

import graphc
from graphc import data
from graphc.errors import GraphcError
from graphc.views import render

REPO = Path(__file__).resolve().parents[2]
EX = REPO / "examples"
sys.path.insert(0, str(REPO / "bench"))
from models import chain_model  # noqa: E402


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def bar(name: str) -> str:
    """ȳ as the pictures write it: each character with a combining overline (macron for one letter)."""
    return nfd(name + "\u0304" if len(name) == 1 else "".join(c + "\u0305" for c in name))


def example(name: str, npz: str | None = None):
    m = graphc.load(EX / name)
    if npz is None:
        return m, None
    return m, {k: v for k, v in data.load_npz(str(EX / npz)).items() if k in m.names}


# ---- a reader for the DOT graphc writes: one statement per line ---------------------------------

NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")
CLASS = re.compile(r"\bclass=(\w+)")


class Dot:
    """Nodes {id: (class, label, clusters)}, edges [(from, to, class, attrs)] in the data's direction."""

    def __init__(self, source: str):
        self.source = source
        self.nodes: dict[str, tuple[str, str, tuple]] = {}
        self.edges: list[tuple[str, str, str, str]] = []
        stack: list[str] = []
        for line in source.splitlines():
            s = line.strip()
            if s.startswith("subgraph ") or s == "{":
                stack.append(s.split()[1] if s.startswith("subgraph") else "")
                continue
            if s == "}":
                if stack:
                    stack.pop()
                continue
            e = EDGE.match(line)
            if e:
                a, b, attrs = e.group(1), e.group(2), e.group(3) or ""
                if "style=invis" in attrs:
                    continue
                if "dir=back" in attrs:  # the backward pass is laid out the other way round
                    a, b = b, a
                c = CLASS.search(attrs)
                self.edges.append((a, b, c.group(1) if c else "", attrs))
                continue
            n = NODE.match(line)
            if n and n.group(1) not in ("node", "edge", "graph"):
                c = CLASS.search(n.group(2))
                label = re.search(r"label=<(.*)> ", n.group(2))
                self.nodes[n.group(1)] = (c.group(1) if c else "", nfd(label.group(1)) if label else "", tuple(stack))

    def kinds(self) -> Counter:
        return Counter(k for k, _, _ in self.nodes.values() if k != "legend")

    def edge_kinds(self) -> Counter:
        return Counter(k for _, _, k, _ in self.edges)

    def of(self, kind: str) -> dict[str, str]:
        return {i: label for i, (k, label, _) in self.nodes.items() if k == kind}

    def box(self, name: str) -> str:
        """The id of the value box whose title is `name` (bold) or starts with the error signal `name`."""
        hits = [
            i
            for i, (k, label, _) in self.nodes.items()
            if i.startswith("n") and (label.startswith(f"<B>{name}</B>") or re.match(rf"{re.escape(name)}[ <]", label))
        ]
        assert len(hits) == 1, f"{len(hits)} boxes for {name!r}"
        return hits[0]

    def label(self, name: str) -> str:
        return self.nodes[self.box(name)][1]

    def sources(self, kind: str) -> set[str]:
        return {a for a, _, k, _ in self.edges if k == kind}


def to_digraph(obj, **options):
    """The picture of a Model (its method traces it) or of a Graph (the view draws it as it is)."""
    return obj.to_digraph(**options) if isinstance(obj, graphc.Model) else render.to_digraph(obj, **options)


def dot_of(obj, **options) -> Dot:
    return Dot(to_digraph(obj, **options).source)


def titles(d: Dot, ids) -> set[str]:
    """The bold names of the boxes ids."""
    out = set()
    for i in ids:
        m = re.match(r"<B>(.*?)</B>", d.nodes[i][1])
        out.add(m.group(1) if m else d.nodes[i][1].split("  ")[0])
    return out


# ---- the forward graph -------------------------------------------------------------------------


def test_two_layer_forward_structure():
    """z = W1 @ x + b1; h = sigmoid(z); y = W2 @ h + b2; L = 0.5*sum((t - y)^2), counted by hand:
    operations @ + σ @ + − ^ Σ × (the constants 0.5 and 2 are written inside theirs)."""
    d = dot_of(graphc.load(EX / "two_layer.gc"))
    assert d.kinds() == Counter(input=2, param=4, value=2, output=1, loss=1, op=9)
    assert titles(d, d.of("input")) == {"x", "t"}
    assert titles(d, d.of("param")) == {"W1", "b1", "W2", "b2"}
    assert titles(d, d.of("value")) == {"z", "h"}
    assert titles(d, d.of("output")) == {"y"} and titles(d, d.of("loss")) == {"L"}
    # argument edges: W1@x 2, + 2, σ 1, W2@h 2, + 2, t−y 2, ^2 1, Σ 1, 0.5× 1 = 14; op -> z, h, y, L: 4
    assert d.edge_kinds() == Counter(data=18)
    ops = sorted(label for label in d.of("op").values())
    assert ops == sorted(["W1 @ x", "+", "σ", "W2 @ h", "+", "t − y", "^ 2", "Σ", "0.5 ×"])
    assert "cluster_forward" not in d.source and "cluster_backward" not in d.source


def test_every_named_value_has_one_box_with_its_shape():
    for path in example_models():
        m = graphc.load(path)
        d = dot_of(m)
        for name, _kind, shape, _line in m.summary():
            label = d.label(name)
            assert f">{shape if shape != '[]' else 'scalar'}<" in label, (path.name, name, label)


def test_forward_picture_has_a_node_per_operation_and_an_edge_per_argument():
    """Against the graph itself: every non-leaf node is one operation; every argument that is
    not an anonymous constant is one edge, repeated arguments (x * x) included."""
    for path in example_models():
        m = graphc.load(path)
        g, _ = m.trace(backward=False)
        d = dot_of(m)
        ops = [i for i in g.nx.nodes if g[i]["args"]]
        anon_const = {i for i in g.nx.nodes if g[i]["op"] == "const" and not g[i]["name"]}
        args = sum(1 for i in ops for a in g[i]["args"] if a not in anon_const)
        named = sum(1 for i in ops if g[i]["name"] or i == g.loss or i in g.outputs)
        assert d.kinds()["op"] == len(ops), path.name
        assert len(d.edges) == args + named, path.name


@pytest.mark.parametrize("path", example_models(), ids=lambda p: p.stem)
def test_every_edge_joins_drawn_nodes_in_every_mode(path, example_inputs):
    m = graphc.load(path)
    values = {k: v for k, v in example_inputs(path).items() if k in m.names}
    for options in (
        {},
        {"backward": True},
        {"backward": True, "values": values},
        {"backward": True, "collapse": True, "values": values},
        {"backward": True, "group_by_line": True},
    ):
        d = dot_of(m, **options)
        ends = {x for a, b, _, _ in d.edges for x in (a, b)}
        assert ends <= set(d.nodes), (options, ends - set(d.nodes))
        assert all(kind in render.NODE_STYLES for kind in d.kinds()), d.kinds()


def test_a_constant_contribution_to_a_fan_out_is_drawn():
    """chain rule slide: f = y + exp(x y), so ȳ = 1 + x exp(x y): the 1 comes straight from f."""
    m = graphc.load(EX / "chain_rule.gc")
    d = dot_of(m, backward=True, values={"t": 0.7})
    (sigma,) = d.of("fanout")
    sources = [a for a, b, k, _ in d.edges if k == "contribution" and b == sigma]
    assert len(sources) == 2 and any(d.nodes[a][0] == "const" and d.nodes[a][1].startswith("1 ") for a in sources)


def test_kinds_have_distinct_shapes_and_colours_and_a_legend():
    src = to_digraph(graphc.load(EX / "logistic_least_squares_l2.gc"), backward=True).source
    styles = {}
    for kind in ("input", "param", "const", "value", "output", "loss", "op", "signal"):
        m = re.search(rf"class={kind} color=\"([^\"]+)\" fillcolor=\"([^\"]+)\".*?shape=(\w+)", src)
        assert m, kind
        styles[kind] = m.groups()
    shapes = [styles[k] for k in ("input", "param", "const", "value", "loss", "op")]
    assert len({s[2] for s in shapes}) == len(shapes)  # leaves, values, loss and operations: each its own shape
    assert len({s[1] for s in styles.values()}) >= 6  # and colour
    legend = re.findall(r"legend_(\w+) \[", src)
    assert {"input", "param", "const", "value", "output", "loss", "op", "signal", "bop", "fanout"} <= set(legend)


def test_legend_lists_only_what_is_drawn_and_can_be_left_out():
    m = graphc.load(EX / "two_layer.gc")
    src = to_digraph(m).source
    assert "legend_param" in src and "legend_signal" not in src and "legend_const" not in src
    assert "cluster_legend" not in to_digraph(m, legend=False).source


def test_folded_constants_and_operand_order():
    d = dot_of(graphc.compile("input a\ninput b\nparam c = 1\nu = a - b\nv = 2 - a\nw = b / 3\nL = u*v*w*c\n"))
    ops = set(d.of("op").values())
    assert {"a − b", "2 −", "÷ 3"} <= ops
    assert d.kinds()["const"] == 0  # anonymous constants are written inside their operations


# ---- the backward graph (lecture: "Backpropagation for Two-Layer Neural Network") ---------------


def test_two_layer_backward_matches_the_slide():
    """Slide: ȳ = y - t, W̄2 = ȳ hᵀ, b̄2 = ȳ, h̄ = W2ᵀ ȳ, z̄ = h̄ ∘ σ'(z), W̄1 = z̄ xᵀ, b̄1 = z̄."""
    d = dot_of(graphc.load(EX / "two_layer.gc"), backward=True)
    signals = {i: label for i, label in d.of("signal").items()}
    heads = {label.split("  ")[0] for label in signals.values()}
    assert heads == {f"{bar('y')} = {bar('b2')}", bar("h"), bar("W2"), f"{bar('z')} = {bar('b1')}", bar("W1")}
    # the backward steps reuse exactly these forward values: y and t (ȳ), h (W̄2 and σ'), W2 (h̄), x (W̄1)
    reused = titles(d, d.sources("reuse"))
    assert reused == {"y", "t", "h", "W2", "x"}
    for i, (_k, _label, clusters) in d.nodes.items():
        if d.nodes[i][0] in ("signal", "bop"):
            assert clusters[:1] == ("cluster_backward",), i
        elif d.nodes[i][0] != "legend":
            assert clusters[:1] == ("cluster_forward",), i
    # reused values are drawn as dashed edges; error signals flow along solid ones
    assert all("style=dashed" in attrs for _, _, k, attrs in d.edges if k == "reuse")
    assert all("dashed" not in attrs for _, _, k, attrs in d.edges if k == "signal")
    assert "backward pass" in d.source and "forward pass" in d.source


def test_backward_edges_lead_from_each_signal_to_the_next():
    """ȳ -> h̄ -> z̄ -> W̄1 and ȳ -> W̄2: each error signal reaches the next through signal edges."""
    d = dot_of(graphc.load(EX / "two_layer.gc"), backward=True)
    succ: dict[str, set] = {}
    for a, b, k, _ in d.edges:
        if k in ("signal", "contribution"):
            succ.setdefault(a, set()).add(b)

    def reaches(a, b):
        seen, todo = set(), [a]
        while todo:
            x = todo.pop()
            if x == b:
                return True
            if x not in seen:
                seen.add(x)
                todo.extend(succ.get(x, ()))
        return False

    y, h, z, w1, w2 = (d.box(n) for n in (bar("y"), bar("h"), bar("z"), bar("W1"), bar("W2")))
    assert reaches(y, h) and reaches(h, z) and reaches(z, w1) and reaches(y, w2)
    assert not reaches(z, h) and not reaches(w1, y)


def test_each_error_signal_is_level_with_its_value():
    src = to_digraph(graphc.load(EX / "two_layer.gc"), backward=True).source
    d = Dot(src)
    pairs = re.findall(r"\{\s*rank=same\s*(\w+)\s*(\w+)\s*\}", src)
    assert (d.box("h"), d.box(bar("h"))) in pairs and (d.box("W1"), d.box(bar("W1"))) in pairs


def test_fan_out_is_a_sum_of_one_contribution_per_child():
    """L2-regularised logistic least squares: w feeds z and R, so w̄ = z̄ x + R̄ w (slide)."""
    m, values = example("logistic_least_squares_l2.gc", "logistic_least_squares.npz")
    for vals in (None, values):
        d = dot_of(m, backward=True, values=vals)
        (sigma,) = d.of("fanout")
        contributions = [(a, attrs) for a, b, k, attrs in d.edges if k == "contribution"]
        assert all(b == sigma for _, b, k, _ in d.edges if k == "contribution")
        assert len(contributions) == 2
        assert sorted(re.search(r"from (\w+)", attrs).group(1) for _, attrs in contributions) == ["R", "z"]
        assert [b for a, b, k, _ in d.edges if a == sigma] == [d.box(bar("w"))]
    # no other value fans out into the loss: b, z, y each have one child
    assert len(dot_of(graphc.load(EX / "logistic_least_squares.gc"), backward=True).of("fanout")) == 0


def test_wrt_limits_the_backward_graph():
    d = dot_of(graphc.load(EX / "two_layer.gc"), backward=True, wrt=["W2"])
    heads = {label.split("  ")[0] for label in d.of("signal").values()}
    assert bar("W2") in heads and not any(bar("W1") in h or bar("z") in h for h in heads)


def test_a_backward_graph_draws_itself_and_a_forward_graph_cannot_pretend():
    m = graphc.load(EX / "two_layer.gc")
    assert "cluster_backward" in to_digraph(m.backward()).source
    assert "cluster_backward" not in to_digraph(m.backward(), backward=False).source
    with pytest.raises(GraphcError, match="no backward part"):
        to_digraph(m.graph, backward=True)


# ---- values and error signals in the labels ------------------------------------------------------


def four(v) -> str:
    return f"{float(v):.4g}"


def test_values_and_error_signals_are_in_the_labels():
    m, values = example("two_layer.gc", "two_layer.npz")
    named = m.evaluate(values)
    loss, grads = m.loss_and_grad(values)
    d = dot_of(m, backward=True, values=values)
    for name in ("x", "t", "z", "h", "y", "b1", "b2"):  # at most 4 entries: all shown
        label = d.label(name)
        assert "[" + ", ".join(four(v) for v in named[name].ravel()) + "]" in label, name
    for name in ("W1", "W2"):  # 6 entries: the first three, then min and max
        v = named[name].ravel()
        label = d.label(name)
        assert "[" + ", ".join(four(x) for x in v[:3]) + ", …]" in label
        assert f"min {four(v.min())}  max {four(v.max())}" in label
    assert four(loss) in d.label("L")
    for name, gv in grads.items():  # each param's box shows its gradient, and so does the signal's own box
        first = ", ".join(four(x) for x in gv.ravel()[:3])
        assert f"{bar(name)} = [{first}" in d.label(name), name
        (box,) = [label for label in d.of("signal").values() if bar(name) in label.split("  ")[0]]
        assert f"[{first}" in box
    # h̄ is no param's gradient, but its box and h's show its value too: h̄ = W2ᵀ (y - t)
    W2, y, t = named["W2"], named["y"], named["t"]
    h_bar = W2.T @ (y - t)
    assert "[" + ", ".join(four(v) for v in h_bar) + "]" in d.label(bar("h"))
    assert "[" + ", ".join(four(v) for v in h_bar) + "]" in d.label("h")


def test_anonymous_operations_show_their_values():
    m = graphc.compile("input x\ny = 3 * exp(x)\nL = y")
    d = dot_of(m, values={"x": 0.5})
    (exp_op,) = [label for label in d.of("op").values() if label.startswith("exp")]
    assert four(np.exp(0.5)) in exp_op


@pytest.mark.parametrize(
    "value, lines",
    [
        (np.float64(np.pi), ["3.142"]),
        (2.0, ["2"]),
        (-1234567.0, ["-1.235e+06"]),
        (np.array([1.0, 2.5]), ["[1, 2.5]"]),
        (np.arange(4.0), ["[0, 1, 2, 3]"]),
        (np.arange(10.0).reshape(2, 5) - 3, ["[-3, -2, -1, …]", "min -3  max 6"]),
        (np.array([]), ["[] (empty)"]),
        (np.array([np.nan, 1.0]), ["[nan, 1]"]),
        (np.array([True, False]), ["[1, 0]"]),
    ],
)
def test_value_format(value, lines):
    assert render.fmt_value(value) == lines


# ---- large graphs --------------------------------------------------------------------------------


def deep_model(layers: int) -> graphc.Model:
    lines, prev = ["input x: [4]", "input t: [4]"], "x"
    for k in range(1, layers + 1):
        lines += [f"param W{k}: [4, 4]", f"param b{k}: [4] = 0", f"h{k} = tanh(W{k} @ {prev} + b{k})"]
        prev = f"h{k}"
    lines.append(f"L = 0.5*sum(({prev} - t)^2)")
    return graphc.compile("\n".join(lines), "deep.gc")


def test_group_by_line_makes_a_cluster_per_statement():
    m = graphc.compile(chain_model(60), "chain.gc")
    d = dot_of(m, group_by_line=True)
    lines = {int(c[len("cluster_line") :]) for _, _, cs in d.nodes.values() for c in cs if c.startswith("cluster_line")}
    statements = {line for _name, kind, _shape, line in m.summary() if kind == "value"}
    assert lines == statements
    for kind, _label, clusters in d.nodes.values():
        if kind in ("input", "param"):
            assert not any(c.startswith("cluster_line") for c in clusters)


def test_collapse_draws_one_box_per_named_value():
    m = graphc.compile(chain_model(60), "chain.gc")
    d = dot_of(m, collapse=True)
    assert d.kinds()["op"] == 0
    named = {name for name, *_ in m.summary()}
    assert titles(d, d.nodes) >= named
    assert "= sigmoid(v" in d.source  # the expression is written inside the box
    assert len(d.nodes) < len(dot_of(m).nodes) / 2


def test_collapsed_backward_reads_like_the_slide():
    d = dot_of(graphc.load(EX / "two_layer.gc"), backward=True, collapse=True)
    assert f"= {bar('y')} hᵀ" in d.label(bar("W2")) and f"= {bar('z')} xᵀ" in d.label(bar("W1"))
    assert f"= {bar('y')} @ W2" in d.label(bar("h"))
    assert nfd(f"= {bar('h')} ∘ σ'(z)") in d.label(bar("z"))  # z̄ = h̄ ∘ σ'(z), as on the slide
    n = d.box(bar("z"))
    assert {a for a, b, *_ in d.edges if b == n} == {d.box(bar("h")), d.box("z")}  # σ'(z) reads z


RELU = "input x: [3]\nparam W: [4, 3]\nparam a: [4]\nz = W @ x\nh = relu(z)\nL = sum(maximum(h, a))\n"


def test_comparisons_and_where_are_drawn_readably():
    """relu's and maximum's gradients select with comparisons and where: `z > 0` in an operation, not `gt`."""
    ops = set(dot_of(graphc.compile(RELU), backward=True).of("bop").values())
    assert "&gt; 0" in ops and "h &gt; a" in ops and "h == a" in ops and "a &gt; h" in ops
    assert any(o.startswith("where") for o in ops)
    assert not any(o.startswith(("gt", "eq")) for o in ops)
    d = dot_of(graphc.compile(RELU), backward=True, collapse=True)
    assert nfd(f"= {bar('h')} ∘ [z &gt; 0]") in d.label(bar("z"))


def test_a_graph_of_500_plus_nodes_renders_with_dot(tmp_path):
    m = deep_model(40)
    dg = to_digraph(m, backward=True, group_by_line=True)
    assert render.node_count(dg) > 500
    out = render.save(dg, str(tmp_path / "deep.svg"))
    svg = ET.parse(out).getroot()
    drawn_nodes = [g for g in svg.iter("{http://www.w3.org/2000/svg}g") if "node" in g.get("class", "").split()]
    assert len([g for g in drawn_nodes if "legend" not in g.get("class")]) == render.node_count(dg)


# ---- golden DOT files ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_dot(name):
    golden = GOLDEN / f"{name}.dot"
    assert golden.exists(), f"no {golden}: run python tests/regen_render_golden.py"
    assert drawn(name) == golden.read_text(encoding="utf-8"), (
        f"the picture of {name} changed: if on purpose, run python tests/regen_render_golden.py and review the diff"
    )


def test_golden_files_are_exactly_the_cases():
    assert sorted(p.stem for p in GOLDEN.glob("*.dot")) == sorted(CASES)


# ---- real pictures, made by the dot program ------------------------------------------------------


SVG = "{http://www.w3.org/2000/svg}"


def test_svg_has_every_node_and_edge_of_the_dot(tmp_path):
    m, values = example("two_layer.gc", "two_layer.npz")
    dg = to_digraph(m, backward=True, values=values)
    d = Dot(dg.source)
    path = m.render(tmp_path / "g.svg", backward=True, values=values)
    root = ET.parse(path).getroot()
    groups = list(root.iter(f"{SVG}g"))
    classes = [g.get("class", "").split() for g in groups]
    node_classes = Counter(c[1] for c in classes if c[:1] == ["node"] and c[1] != "legend")
    assert node_classes == d.kinds()
    edge_classes = Counter(c[1] for c in classes if c[:1] == ["edge"])
    assert edge_classes == d.edge_kinds()
    text = nfd(" ".join(t.text or "" for t in root.iter(f"{SVG}text")))
    assert bar("W1") in text and "backward pass" in text and four(m.loss_and_grad(values)[0]) in text


def test_png_and_pdf_are_real_pictures(tmp_path):
    m = graphc.load(EX / "logistic_least_squares_l2.gc")
    png = Path(m.render(str(tmp_path / "g.png"), backward=True))
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 300 and height > 100
    pdf = Path(m.render(str(tmp_path / "g.pdf")))
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_dot_output_is_the_digraph_source(tmp_path):
    m = graphc.load(EX / "two_layer.gc")
    out = m.render(str(tmp_path / "g.dot"), backward=True)
    assert Path(out).read_text(encoding="utf-8") == to_digraph(m, backward=True).source


@pytest.mark.parametrize("name", ["g.gif", "g", "g.svg.txt"])
def test_unknown_extension_is_a_usage_error(tmp_path, name):
    with pytest.raises(GraphcError) as e:
        graphc.load(EX / "two_layer.gc").render(str(tmp_path / name))
    assert e.value.usage and "svg" in e.value.hint
    assert list(tmp_path.iterdir()) == []


def test_rankdir(tmp_path):
    m = graphc.load(EX / "two_layer.gc")
    assert "rankdir=TB" in to_digraph(m, rankdir="tb").source
    with pytest.raises(GraphcError, match="rankdir"):
        to_digraph(m, rankdir="sideways")


# ---- no dot program ------------------------------------------------------------------------------


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH on which there is no `dot` (nor anything else)."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


def test_missing_dot_is_a_graphc_error_with_the_install_command(tmp_path, no_dot):
    m = graphc.load(EX / "two_layer.gc")
    out = tmp_path / "g.svg"
    with pytest.raises(GraphcError) as e:
        m.render(str(out))
    assert "dot" in e.value.message and "pip install graphviz" in e.value.message
    assert "graphviz.org" in e.value.hint and ".dot" in e.value.hint
    assert not e.value.usage and not out.exists()
    m.render(str(tmp_path / "g.dot"))  # DOT needs no program
    assert (tmp_path / "g.dot").read_text(encoding="utf-8").startswith("digraph")


@pytest.mark.parametrize(
    "platform, tools, command",
    [
        ("darwin", set(), "brew install graphviz"),
        ("win32", set(), "winget install graphviz"),
        ("linux", {"apt-get"}, "sudo apt-get install graphviz"),
        ("linux", {"dnf", "yum"}, "sudo dnf install graphviz"),
        ("linux", {"pacman"}, "sudo pacman -S graphviz"),
        ("linux", set(), None),
    ],
)
def test_install_command_for_the_platform(platform, tools, command):
    assert render.install_command(platform, which=lambda tool: tool in tools) == command


def test_missing_dot_hint_names_the_platforms_command(no_dot, monkeypatch):
    monkeypatch.setattr(render, "install_command", lambda: "sudo apt-get install graphviz")
    assert "`sudo apt-get install graphviz`" in render.missing_dot_error().hint


def test_a_dot_failure_keeps_the_earlier_picture(tmp_path, monkeypatch):
    out = tmp_path / "g.svg"
    out.write_text("earlier", encoding="utf-8")

    def fail(*args, **kwargs):
        raise graphviz.CalledProcessError(1, ["dot"], stderr=b"Error: syntax error in line 1")

    monkeypatch.setattr(graphviz.Digraph, "pipe", fail)
    with pytest.raises(GraphcError, match="syntax error"):
        graphc.load(EX / "two_layer.gc").render(str(out))
    assert out.read_text(encoding="utf-8") == "earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.svg"]


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path, monkeypatch):
    out = tmp_path / "g.svg"
    out.write_text("earlier", encoding="utf-8")
    during = []
    real = data.write_atomic

    def spy(path, write, protect=()):
        def check(f):
            during.append((out.read_text(encoding="utf-8"), sorted(p.name for p in tmp_path.iterdir())))
            write(f)

        real(path, check, protect)

    monkeypatch.setattr(render, "write_atomic", spy)
    graphc.load(EX / "two_layer.gc").render(str(out))
    ((text, files),) = during
    assert text == "earlier" and len(files) == 2  # while writing: the old picture, and a temporary file beside it
    assert "<svg" in out.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.svg"]


# ---- Jupyter -------------------------------------------------------------------------------------


def test_models_and_graphs_display_inline():
    m = graphc.load(EX / "two_layer.gc")
    bundle = m._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "W1" in bundle["image/svg+xml"]
    assert "backward pass" in m.backward()._repr_mimebundle_()["image/svg+xml"]
    assert isinstance(m.to_digraph(backward=True), graphviz.Digraph)


def test_inline_display_without_dot_explains_instead_of_raising(no_dot):
    bundle = graphc.load(EX / "two_layer.gc")._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "dot" in bundle["text/plain"]


# ---- the command line ----------------------------------------------------------------------------


def graphc_cli(*args, cwd, path: str | None = None) -> subprocess.CompletedProcess:
    return run_cleanly(*args, cwd=cwd, env_extra={"PATH": path} if path is not None else None, timeout=300)


def test_cli_renders_the_backward_graph_with_values(tmp_path):
    r = graphc_cli(
        "render", EX / "two_layer.gc", "-o", "g.svg", "--backward", "--inputs", EX / "two_layer.npz", cwd=tmp_path
    )
    assert r.returncode == 0, r.stderr
    assert "wrote g.svg" in r.stderr
    root = ET.parse(tmp_path / "g.svg").getroot()
    text = nfd(" ".join(t.text or "" for t in root.iter(f"{SVG}text")))
    m, values = example("two_layer.gc", "two_layer.npz")
    assert four(m.loss_and_grad(values)[0]) in text and bar("W1") in text


def test_cli_dot_output_matches_the_api_with_every_option(tmp_path):
    args = ["--backward", "--set", "x=[1, 2]", "--set", "t=[0, 1]", "--seed", "3", "--wrt", "W1,b2"]
    args += ["--rankdir", "TB", "--group-by-line", "--no-legend"]
    r = graphc_cli("render", EX / "two_layer.gc", "-o", "g.dot", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    m = graphc.compile((EX / "two_layer.gc").read_text(encoding="utf-8"), str(EX / "two_layer.gc"))
    expected = to_digraph(
        m,
        backward=True,
        values={"x": [1.0, 2.0], "t": [0.0, 1.0]},
        seed=3,
        wrt=["W1", "b2"],
        rankdir="TB",
        group_by_line=True,
        legend=False,
    ).source
    assert (tmp_path / "g.dot").read_text(encoding="utf-8") == expected
    assert "rankdir=TB" in expected and "cluster_line" in expected and "cluster_legend" not in expected


def test_cli_png_and_collapse(tmp_path):
    r = graphc_cli("render", EX / "digits_mlp.gc", "-o", "g.png", "--backward", "--collapse", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_without_output_prints_dot(tmp_path):
    r = graphc_cli("render", EX / "two_layer.gc", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("digraph two_layer {")


def test_cli_missing_dot_exits_1_with_the_install_hint(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    r = graphc_cli("render", EX / "two_layer.gc", "-o", "g.svg", cwd=tmp_path, path=str(empty))
    assert r.returncode == 1
    assert "error: the Graphviz program `dot` is not installed" in r.stderr and "hint: install it" in r.stderr
    assert not (tmp_path / "g.svg").exists()
    r = graphc_cli("render", EX / "two_layer.gc", "-o", "g.dot", cwd=tmp_path, path=str(empty))
    assert r.returncode == 0 and (tmp_path / "g.dot").exists()


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["-o", "g.gif"], 2, "picture format"),
        (["-o", "g.svg", "--rankdir", "XY"], 2, "invalid choice"),
        (["-o", "g.svg", "--wrt", "nope"], 2, "no such value"),
        (["-o", "g.svg", "--backward", "--wrt", "W1,nope"], 2, "no such value"),
        (["-o", "g.svg", "--set", "nope=1"], 1, "does not use"),
        (["-o", "g.svg", "--set", "x=[1, 2, 3]", "--set", "t=[0, 1]"], 1, "shape"),
        (["-o", "missing/g.svg"], 1, "no folder"),
    ],
)
def test_cli_errors(tmp_path, args, code, words):
    r = graphc_cli("render", EX / "two_layer.gc", *args, cwd=tmp_path)
    assert r.returncode == code, r.stderr
    assert words in r.stderr
    assert not (tmp_path / "g.svg").exists() and not (tmp_path / "g.gif").exists()


def test_cli_refuses_to_overwrite_the_model(tmp_path):
    model = tmp_path / "m.dot"  # a model file whose name looks like a picture
    model.write_text("y = sigmoid(x)\nL = y\n", encoding="utf-8")
    r = graphc_cli("render", model, "-o", model, cwd=tmp_path)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    assert model.read_text(encoding="utf-8") == "y = sigmoid(x)\nL = y\n"


def test_cli_suggests_grouping_for_large_graphs(tmp_path):
    (tmp_path / "deep.gc").write_text(deep_model(40).graph.source, encoding="utf-8")
    r = graphc_cli("render", "deep.gc", "--backward", cwd=tmp_path)
    assert r.returncode == 0 and "--collapse" in r.stderr and "--group-by-line" in r.stderr
    r = graphc_cli("render", "deep.gc", "--backward", "--collapse", cwd=tmp_path)
    assert r.returncode == 0 and "note:" not in r.stderr


def test_a_negative_zero_shows_as_zero():
    assert (render.fmt_value(-0.0), render.fmt_value(-0.25), render.fmt_value(1e-7)) == (["0"], ["-0.25"], ["1e-07"])
    assert render.fmt_value(np.array([-0.0, -0.25, 1e-7])) == ["[0, -0.25, 1e-07]"]
    m = graphc.compile("input x\nL = -relu(x)")
    assert np.signbit(m.evaluate({"x": -1.0})["L"])  # L = -0.0
    dot = m.to_digraph(backward=True, values={"x": -1.0}).source
    assert ">0</FONT>" in dot and ">-0<" not in dot and "-0<" not in dot
