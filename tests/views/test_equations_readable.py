"""Equations (and collapsed pictures) read like the lecture's slides before any value arrives (issue 11, item 17).

No graphc internals in the text: no `sum_to(..., shape(...))`, no `size_ratio(...)`; a mean's 1/N is
written as a fraction of dims; where a shape really is unknown, one note line says so in words; the
`=` signs line up on screen (a combining overline takes no room).
"""

import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from goldens import example_models

import graphc

EX = Path(__file__).resolve().parents[2] / "examples"
EXAMPLES = [p.name for p in example_models()]
INTERNALS = ("sum_to", "shape(", "size_ratio", "unbroadcast", "%")


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def backward_lines(text: str) -> dict[str, str]:
    """{lhs: rhs} of the backward pass, the names in NFD (ȳ may be y + a combining macron)."""
    bwd = nfd(text).split("# backward pass", 1)[1].splitlines()[1:]
    pairs = [ln.split(" = ", 1) for ln in bwd if " = " in ln and not ln.startswith("#")]
    return {lhs.strip(): rhs.strip() for lhs, rhs in pairs}


def width(text: str) -> int:
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


# ---- the lecture's scalar examples --------------------------------------------------------------


def test_logistic_least_squares_prints_the_slide_without_values():
    text = graphc.load(EX / "logistic_least_squares.gc").equations()
    eq = backward_lines(text)
    y, z = nfd("ȳ"), nfd("z̄")
    assert eq[y] == "y - t"
    assert eq[z] == f"{y} σ'(z)"  # z̄ = ȳ σ'(z), as on the slide
    assert eq[nfd("w̄")] == f"{z} * x"
    assert eq[nfd("b̄")] == z


def test_l2_example_prints_the_fan_out_sum_without_values():
    eq = backward_lines(graphc.load(EX / "logistic_least_squares_l2.gc").equations())
    y, z = nfd("ȳ"), nfd("z̄")
    assert eq[y] == "y - t" and eq[z] == f"{y} σ'(z)"
    assert eq[nfd("w̄")] == f"lam * w + {z} * x" and eq[nfd("b̄")] == z


def test_chain_rule_example_prints_the_slide_without_values():
    eq = backward_lines(graphc.load(EX / "chain_rule.gc").equations())
    x, y = nfd("x̄"), nfd("ȳ")
    assert eq[nfd("t̄")] == f"{y} * 2 * t - {x} * sin(t)"  # t̄ = ȳ dy/dt + x̄ dx/dt


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_declares_the_shapes_its_data_has(example, example_inputs):
    """No input is left of unknown shape, and each declared shape is what the example's data hold."""
    m = graphc.load(EX / example)
    declared = {name: shape for name, kind, shape, _ in m.summary() if kind == "input"}
    assert "unknown" not in declared.values(), declared
    values = example_inputs(example)
    for name, shape in declared.items():
        dims = [d.strip() for d in shape.strip("[]").split(",") if d.strip()]
        got = np.shape(values[name])
        assert len(got) == len(dims), (name, shape, got)
        assert all(not d.isdigit() or int(d) == n for d, n in zip(dims, got)), (name, shape, got)


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_internals_in_equations_or_collapsed_pictures(example):
    m = graphc.load(EX / example)
    picture = re.sub(r'tooltip="[^"]*"', "", m.to_digraph(backward=True, collapse=True).source)  # (hover text)
    for text in (m.equations(), m.equations(latex=True), picture):
        for word in INTERNALS:  # (as words: reshape( is the model's own)
            assert not re.search(rf"(?<!\w){re.escape(word)}", text), (word, text)


# ---- the mechanism: any model --------------------------------------------------------------------


def test_a_mean_writes_one_over_its_count():
    m = graphc.compile("input X: [N, K]\nparam w: [K]\nL = mean(X * w)\n")
    assert backward_lines(m.equations())[nfd("w̄")] == "sum(1/(N K) * X, axis=0)"
    m = graphc.compile("input X: [N, K]\nparam w: [K]\nL = sum(mean(X * w, axis=1))\n")
    assert backward_lines(m.equations())[nfd("w̄")] == "sum(1/K * X, axis=0)"
    assert r"\frac{1}{K}" in m.equations(latex=True)


def test_a_sum_back_to_a_known_shape_is_a_sum_over_axes():
    m = graphc.compile("input X: [N, D]\nparam b: [D]\nL = sum(X * b)\n")
    assert backward_lines(m.equations())[nfd("b̄")] == "sum(X, axis=0)"
    m = graphc.compile("input X: [N, D]\nparam b: [1, D]\nparam c\nL = sum(X * b * c)\n")
    eq = backward_lines(m.equations())
    assert eq[nfd("b̄")].endswith(", axis=0, keepdims=True)") and eq[nfd("c̄")].startswith("sum(")


def test_a_sum_of_a_constant_is_its_count():
    m = graphc.compile("input X: [N, D]\nparam b: [D]\nparam c\nL = -0.5 * sum(X + b + c)\n")
    eq = backward_lines(m.equations())
    assert eq[nfd("b̄")] == "-N/2" and eq[nfd("c̄")] == "-N D/2"


def test_unknown_shapes_are_said_once_in_words():
    m = graphc.compile("z = w*x + b; y = sigmoid(z); L = 0.5*(y - t)^2")  # x, t, w, b undeclared
    text = m.equations()
    notes = [ln for ln in text.splitlines() if "unknown" in ln]
    assert len(notes) == 1 and notes[0].startswith("#")
    assert notes[0].startswith("# the shapes of b, t, w, x are unknown until values are given") and "Σ→" in notes[0]
    for word in INTERNALS:
        assert word not in text
    assert "Σ→" in text.replace(notes[0], "")
    tex = m.equations(latex=True)
    for word in ("sum_to", "size_ratio", "shape("):
        assert word not in tex


def test_a_sum_back_to_the_same_unknown_shape_is_no_sum():
    """x + 1 has x's shape, whatever that is: its error signal needs no summing back."""
    m = graphc.compile("y = ((x + 1) + 1) + 1\nL = sum(y)\n")
    text = m.equations()
    assert "Σ→" not in text and "unknown" not in text
    assert backward_lines(text)[nfd("x̄")] == nfd("ȳ")
    assert "t1" not in text  # a value read only for its shape is not named for it


def test_the_equals_signs_line_up_on_screen():
    for example in ("two_layer.gc", "logistic_least_squares_l2.gc", "digits_mlp.gc"):
        text = graphc.load(EX / example).equations()
        for part in text.split("\n\n"):
            cols = {width(ln.split(" = ", 1)[0]) for ln in part.splitlines() if " = " in ln and not ln[0] == "#"}
            assert len(cols) == 1, (example, part)


# ---- local derivatives: σ'(z), tanh'(z), and the comparisons and where() of kinks ----------------


def equations_of(src: str, latex: bool = False) -> str:
    return graphc.compile(src).equations(latex=latex)


def test_sigmoid_derivative_is_sigma_prime_with_the_slides_products():
    """Scalars: juxtaposition (z̄ = ȳ σ'(z)); arrays: the vectorised slide's elementwise ∘ (z̄ = h̄ ∘ σ'(z))."""
    tex = graphc.load(EX / "logistic_least_squares.gc").equations(latex=True)
    assert r"\overline{z} &= \overline{y} \, \sigma'(z)" in tex
    eq = backward_lines(graphc.load(EX / "two_layer.gc").equations())
    assert eq[nfd("z̄")] == nfd("h̄ ∘ σ'(z)")
    tex = graphc.load(EX / "two_layer.gc").equations(latex=True)
    assert r"\overline{z} &= \overline{h} \circ \sigma'(z)" in tex
    # an anonymous net input is named once (t1), not written twice
    text = graphc.load(EX / "digits_mlp.gc").equations()
    assert "t1 = X @ W1 + b1" in nfd(text) and "H  = sigmoid(t1)" in nfd(text)
    assert nfd("H̄ ∘ σ'(t1)") in nfd(text) and "(1 - H)" not in text


def test_tanh_derivative_is_tanh_prime():
    eq = backward_lines(equations_of("input x: []\nparam w\nz = w*x\nh = tanh(z)\nL = 0.5*h^2\n"))
    assert eq[nfd("z̄")] == "h tanh'(z)"  # h̄ = h (L = h^2 / 2)
    eq = backward_lines(equations_of("input x: [3]\nparam W: [2, 3]\nz = W @ x\nh = tanh(z)\nL = sum(h)\n"))
    assert eq[nfd("z̄")] == "tanh'(z)"  # h̄ = 1
    assert r"\tanh'(z)" in equations_of("input x: [3]\nparam W: [2, 3]\nz = W @ x\nh = tanh(z)\nL = sum(h)\n", True)

    # y * (1 - y) and 1 - y^2 are f'(z) only for y = f(z) with f the sigmoid or tanh
    def q_line(f: str, q: str) -> str:
        text = equations_of(f"input x: []\nparam w\nz = w*x\ny = {f}(z)\nq = {q}\nL = q\n")
        return next(ln for ln in text.splitlines() if ln.startswith("q "))

    assert q_line("sigmoid", "y * (1 - y)").endswith("= σ'(z)") and q_line("tanh", "1 - y*y").endswith("= tanh'(z)")
    for f, q in (("tanh", "y * (1 - y)"), ("exp", "y * (1 - y)"), ("sigmoid", "1 - y*y"), ("exp", "1 - y^2")):
        assert "'" not in q_line(f, q), (f, q)


RELU = "input x: [3]\ninput t: [2]\nparam W1: [4, 3]\nparam b1: [4]\nparam W2: [2, 4]\n"
RELU += "z = W1 @ x + b1\nh = relu(z)\ny = W2 @ h\nL = 0.5*sum((y - t)^2)\n"


def test_relu_gradient_is_an_iverson_bracket():
    eq = backward_lines(equations_of(RELU))
    assert eq[nfd("z̄")] == nfd("h̄ ∘ [z > 0]")
    assert r"\overline{z} &= \overline{h} \circ \mathbf{1}[z > 0]" in equations_of(RELU, latex=True)
    eq = backward_lines(equations_of("input x: []\nparam w\nz = w*x\nh = relu(z)\nL = 0.5*h^2\n"))
    assert eq[nfd("z̄")] == "h [z > 0]"


def test_maximum_and_minimum_split_the_signal_with_disjoint_brackets():
    """where(a > b, g, where(a == b, 0.5 g, 0)) is g [a > b] + 0.5 g [a == b]: the two never hold together."""
    src = "input x: [3]\nparam a: [3]\nparam b: [3]\nm = maximum(a, b)\nn = minimum(a, b*x)\nL = sum(m * x + n)\n"
    text = nfd(equations_of(src))
    eq = backward_lines(text)
    assert "t2 = 0.5 * x" in text  # m̄ = x: all of it to a where a wins, half at a tie
    assert eq[nfd("ā")].endswith(nfd("(x ∘ [a > b] + t2 ∘ [a == b])"))
    assert eq[nfd("ā")].startswith(nfd("n̄ ∘ [t1 > a] + 0.5 [t1 == a]"))  # n̄ = 1, n = minimum(a, t1)
    assert "where" not in text and "gt(" not in text
    tex = equations_of(src, latex=True)
    assert r"\overline{n} \circ \mathbf{1}[t_{1} > a] + 0.5 \, \mathbf{1}[t_{1} = a]" in tex


def graph_of(build):
    """A graph of graphc's internal ops, built by hand: inputs a, b, x, y (scalars) and L = build(g, ids)."""
    from graphc.ir.graph import Graph

    g = Graph()
    ids = {v: g.add("input", name=v, shape=()) for v in "abxy"}
    g.names.update(ids)
    g.loss = build(g, ids)
    g[g.loss]["name"] = "L"
    g.names["L"] = g.loss
    return g


@pytest.mark.parametrize(
    "inner, swapped, text",
    [
        ("gt", False, "where(a > b, x, y [a > b])"),  # may both hold: not a sum
        ("ge", False, "where(a > b, x, y [a >= b])"),
        ("lt", False, "x [a > b] + y [a < b]"),
        ("eq", False, "x [a > b] + y [a == b]"),
        ("le", False, "x [a > b] + y [a <= b]"),
        ("ne", False, "where(a > b, x, y [a != b])"),
        ("lt", True, "where(a > b, x, y [b < a])"),  # b < a is a > b
        ("gt", True, "x [a > b] + y [b > a]"),
        ("eq", True, "x [a > b] + y [b == a]"),
    ],
)
def test_a_nested_where_is_a_sum_only_where_its_conditions_exclude_each_other(inner, swapped, text):
    from graphc.views.equations import equations

    def build(g, v):
        c = g.add(inner, (v["b"], v["a"]) if swapped else (v["a"], v["b"]), shape=())
        e = g.add("where", (c, v["y"], g.const(0)))
        return g.add("where", (g.add("gt", (v["a"], v["b"]), shape=()), v["x"], e), shape=())

    assert f"L = {text}" in equations(graph_of(build))


def test_a_comparison_binds_looser_than_arithmetic():
    from graphc.views.equations import equations

    def build(g, v):
        d = g.add("sub", (v["a"], v["b"]), shape=())
        c = g.add("mul", (g.add("ge", (d, g.const(0)), shape=()), g.add("lt", (v["x"], v["y"]), shape=())), shape=())
        return g.add("add", (g.add("where", (c, v["x"], v["y"]), shape=()), g.add("gt", (v["a"], v["b"]), shape=())))

    assert "L = where(a - b >= 0 ∧ x < y, x, y) + (a > b)" in equations(graph_of(build))
    assert r"\operatorname{where}\left(a - b \geq 0 \land x < y, x, y\right) + \left(a > b\right)" in equations(
        graph_of(build), latex=True
    )


def test_comparisons_are_infix_with_the_lowest_precedence():
    eq = backward_lines(equations_of("input x: []\nparam p\nparam w\ny = (w*x)^p\nL = y\n"))
    assert eq[nfd("w̄")] == "where(p == 0, 0, p * t1^(p - 1)) * x"
    assert eq[nfd("p̄")] == "where(t1 == 0 ∧ p >= 0, 0, y * log(t1))"
    tex = equations_of("input x: []\nparam p\nparam w\ny = (w*x)^p\nL = y\n", latex=True)
    assert r"t_{1} = 0 \land p \geq 0" in tex and r"\operatorname{where}\left(p = 0, 0," in tex
    eq = backward_lines(equations_of("input x: []\nparam w\nz = relu(w*x - 1)\nL = z\n"))
    assert eq[nfd("w̄")] == "[t1 > 0] * x"  # (t1 = w * x - 1)
    assert backward_lines(equations_of("param a: [3]\nL = sum(abs(a))\n"))[nfd("ā")] == "sign(a)"


@pytest.mark.parametrize(
    "src",
    [
        RELU,
        "input x: [3]\nparam a: [3]\nparam b: [3]\nL = sum(maximum(a*x, b) + minimum(a, b*x))\n",
        "input x: []\nparam p\nparam w\ny = (w*x)^p\nL = y\n",
        "input x: [3]\nparam a: [3]\nL = sum(abs(a*x))\n",
        "input x: [3]\nparam W: [2, 3]\nL = sum(tanh(W @ x))\n",
    ],
)
def test_kinks_print_without_internals_in_text_latex_and_pictures(src):
    m = graphc.compile(src)
    picture = re.sub(r'tooltip="[^"]*"', "", m.to_digraph(backward=True, collapse=True).source)
    for text in (m.equations(), m.equations(latex=True), picture):
        for word in (*INTERNALS, "gt(", "ge(", "eq(", "where(gt", "where(eq"):
            assert word not in text, (word, text)
