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

import graphc
from graphc import data

EX = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(p.name for p in EX.glob("*.gc"))
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
    assert eq[z] == f"{y} * (y * (1 - y))"  # z̄ = ȳ σ'(z)
    assert eq[nfd("w̄")] == f"{z} * x"
    assert eq[nfd("b̄")] == z


def test_l2_example_prints_the_fan_out_sum_without_values():
    eq = backward_lines(graphc.load(EX / "logistic_least_squares_l2.gc").equations())
    y, z = nfd("ȳ"), nfd("z̄")
    assert eq[y] == "y - t" and eq[z] == f"{y} * (y * (1 - y))"
    assert eq[nfd("w̄")] == f"lam * w + {z} * x" and eq[nfd("b̄")] == z


def test_chain_rule_example_prints_the_slide_without_values():
    eq = backward_lines(graphc.load(EX / "chain_rule.gc").equations())
    x, y = nfd("x̄"), nfd("ȳ")
    assert eq[nfd("t̄")] == f"{y} * 2 * t - {x} * sin(t)"  # t̄ = ȳ dy/dt + x̄ dx/dt


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_example_declares_the_shapes_its_data_has(example):
    """No input is left of unknown shape, and each declared shape is what the example's data hold."""
    m = graphc.load(EX / example)
    declared = {name: shape for name, kind, shape, _ in m.summary() if kind == "input"}
    assert "unknown" not in declared.values(), declared
    files = {"xor_threshold.gc": "xor.npz", "xor_features.gc": "xor.npz", "digits_mlp.gc": "digits_test.npz"}
    npz = EX / files.get(example, example.replace("_l2", "").replace(".gc", ".npz"))
    values = data.load_npz(str(npz))
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
        for word in INTERNALS:
            assert word not in text, (word, text)


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
