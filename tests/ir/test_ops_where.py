"""Comparisons (1.0 or 0.0, no gradient) and `where(c, a, b)` (gradients to a and b), against NumPy and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import GraphcError

OPS_TESTED = {"where"}
COMPARISONS = {
    "<": np.less,
    "<=": np.less_equal,
    ">": np.greater,
    ">=": np.greater_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
GRID = np.array([-1.0, -0.5, 0.0, 0.0, 0.5, 1.0])


@pytest.mark.parametrize("sym", sorted(COMPARISONS))
def test_a_comparison_is_one_or_zero_in_float64_and_passes_no_gradient(sym):
    m = graphc.compile(f"input a: [6]\nparam b: [6] = 0\nc = a {sym} b\nL = sum(c * b)")
    b = GRID[::-1].copy()
    v = m.evaluate({"a": GRID, "b": b})
    assert v["c"].dtype == np.float64
    np.testing.assert_array_equal(v["c"], COMPARISONS[sym](GRID, b).astype(float))
    _, grads = m.loss_and_grad({"a": GRID, "b": b})
    np.testing.assert_array_equal(grads["b"], v["c"])  # d(c * b)/db = c: nothing flows through c itself


def test_comparisons_bind_loosest_of_all():
    v = graphc.compile("y = 1 + 2 > 2 * 1").evaluate({})
    assert v["y"] == 1.0  # (1 + 2) > (2 * 1)
    v = graphc.compile("y = (1 < 2) + (3 < 2)").evaluate({})
    assert v["y"] == 1.0


def test_comparisons_do_not_chain():
    with pytest.raises(GraphcError, match="do not chain") as e:
        graphc.compile("input x\ny = 0 < x < 1")
    assert e.value.span.line == 2 and e.value.span.col == 11
    assert "(a < b) * (b < c)" in e.value.hint
    assert graphc.compile("y = (0 < 2) < 1").evaluate({})["y"] == 0.0  # parenthesised, it is a new operand


SHAPES = [((4,), (4,), (4,)), ((3, 1), (4,), ()), ((), (2, 3), (3,)), ((2, 3), (2, 1), (1, 3))]


@pytest.mark.parametrize("sc, sa, sb", SHAPES, ids=str)
def test_where_broadcasts_and_sends_gradients_to_both_branches(sc, sa, sb):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(len(sc) * 7 + len(sa))
    c = rng.integers(0, 2, sc).astype(float) * rng.choice([1.0, -2.0], sc)  # any non-zero is true
    a, b = rng.normal(size=sa), rng.normal(size=sb)
    decl = "\n".join(f"param {n}: [{', '.join(map(str, s))}]" for n, s in (("a", sa), ("b", sb)))
    m = graphc.compile(f"input c: [{', '.join(map(str, sc))}]\n{decl}\ny = where(c, a * a, sin(b))\nL = sum(y * y)")
    v = m.evaluate({"c": c, "a": a, "b": b})
    np.testing.assert_allclose(v["y"], np.where(c, a * a, np.sin(b)), rtol=1e-15)
    _, grads = m.loss_and_grad({"c": c, "a": a, "b": b})
    ta, tb = (torch.tensor(x, requires_grad=True) for x in (a, b))
    y = torch.where(torch.tensor(c) != 0, ta * ta, torch.sin(tb))
    (y * y).sum().backward()
    np.testing.assert_allclose(grads["a"], ta.grad.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(grads["b"], tb.grad.numpy(), rtol=1e-13, atol=1e-15)
    mod = m.compiled()  # the emitted module agrees
    loss, g2 = mod.loss_and_grad(c=c, a=a, b=b)
    np.testing.assert_allclose(g2["a"], grads["a"], rtol=1e-14)
    np.testing.assert_allclose(g2["b"], grads["b"], rtol=1e-14)


def test_a_comparison_as_a_condition_is_the_test_itself():
    m = graphc.compile("input x: [3]\nparam a: [3] = 1\nL = sum(where(x > 0, a * x, -a))")
    code = m.emit()
    assert "1.0, 0.0" not in code and "tmp1 = x > 0.0" in code  # not where(where(x > 0, 1, 0), ...)
    x = np.array([-1.0, 0.0, 2.0])
    np.testing.assert_allclose(m.loss_and_grad({"x": x})[1]["a"], [-1.0, -1.0, 2.0])


def test_where_takes_three_arguments():
    with pytest.raises(GraphcError, match="`where` takes 3 arguments, got 2"):
        graphc.compile("input c\ny = where(c, 1)")
