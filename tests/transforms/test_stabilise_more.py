"""The stabilising rewrites to log1p, expm1 and softplus: log(1 + x), log(x + 1) -> log1p(x); exp(x) - 1 ->
expm1(x); log1p(exp(x)) (and so log(1 + exp(x))) -> softplus(x). Each fires, keeps the value and the gradient
where the fragile form is accurate, and is accurate where it is not (tiny x, large x)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from gradtools import assert_close, numeric_grad

import graphc
from graphc.transforms.stabilise import stabilise


def ops_upstream(g, name):
    return {g[i]["op"] for i in g.upstream([g.names[name]])}


def model(expr: str) -> graphc.Model:
    return graphc.compile(f"input z: [4]\ninput w: [4]\ny = {expr}\nL = sum(w * y)")


# form, the op it becomes, the ops it no longer computes y with, exact value and derivative
FORMS = [
    ("log(1 + z)", "log1p", {"log", "add"}, np.log1p, lambda z: 1 / (1 + z)),
    ("log(z + 1)", "log1p", {"log", "add"}, np.log1p, lambda z: 1 / (1 + z)),
    ("exp(z) - 1", "expm1", {"exp", "sub"}, np.expm1, np.exp),
    ("log1p(exp(z))", "softplus", {"exp", "log1p"}, lambda z: np.logaddexp(0, z), lambda z: 1 / (1 + np.exp(-z))),
    (
        "log(1 + exp(z))",
        "softplus",
        {"exp", "log", "add"},
        lambda z: np.logaddexp(0, z),
        lambda z: 1 / (1 + np.exp(-z)),
    ),
]
IDS = [f[0] for f in FORMS]
W = np.array([0.3, -0.7, 1.1, 2.0])


@pytest.mark.parametrize("expr, op, gone, value, slope", FORMS, ids=IDS)
def test_the_rewrite_fires_and_keeps_value_and_gradient(expr, op, gone, value, slope):
    m = model(expr)
    g = stabilise(m.graph)
    assert op in ops_upstream(g, "y") and not gone & ops_upstream(g, "y")
    assert g[g.names["y"]]["op"] == op  # in place: the named node is the rewritten one
    assert m.graph[m.graph.names["y"]]["op"] != op  # (a copy was rewritten: the model's graph is as written)
    z = np.array([0.2, -0.4, 0.5, 1.5])
    values = {"z": z, "w": W}
    assert_close(m.evaluate(values)["y"], value(z), rtol=1e-15, atol=0)
    loss, grads = m.loss_and_grad(values, wrt=["z"])
    assert_close(grads["z"], W * slope(z), rtol=1e-15, atol=0)
    assert_close(grads["z"], numeric_grad(m, values, "z"), rtol=1e-8)
    emitted = m.compiled(["z"]).loss_and_grad(**values)
    assert_close(emitted[1]["z"], grads["z"], rtol=1e-15, atol=0)
    assert {"log1p": "np.log1p(z)", "expm1": "np.expm1(z)", "softplus": "np.logaddexp(0.0, z)"}[op] in m.emit(["z"])


TINY = np.array([1e-20, -3e-17, 1e-300, 2.5e-12])


@pytest.mark.parametrize("expr", ["log(1 + z)", "log(z + 1)", "exp(z) - 1"])
def test_tiny_values_keep_their_digits(expr):
    """log(1 + 1e-20) is 0 in float64 and exp(1e-20) - 1 too: the rewritten forms give z (to the last bit)."""
    m = model(expr)
    values = {"z": TINY, "w": W}
    exact = np.array([math.log1p(t) if "log" in expr else math.expm1(t) for t in TINY])
    y = m.evaluate(values)["y"]
    assert_close(y, exact, rtol=0, atol=0)
    assert np.all(y != 0.0)
    _, grads = m.loss_and_grad(values, wrt=["z"])  # 1 / (1 + z), or e^z: W, to the last bit
    assert_close(grads["z"], W * (1 / (1 + TINY) if "log" in expr else np.exp(TINY)), rtol=1e-16, atol=0)
    emitted = m.compiled(["z"]).forward(**values)["y"]
    assert_close(emitted, exact, rtol=0, atol=0)


@pytest.mark.parametrize("expr", ["log1p(exp(z))", "log(1 + exp(z))"])
def test_large_values_stay_finite_through_softplus(expr):
    """log(1 + e^800) is inf (e^800 overflows); softplus(800) is 800, and its slope 1."""
    m = model(expr)
    z = np.array([800.0, -800.0, 1e4, 0.5])
    values = {"z": z, "w": W}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = m.evaluate(values)["y"]
        _, grads = m.loss_and_grad(values, wrt=["z"])
        emitted = m.compiled(["z"]).loss_and_grad(**values)
    assert_close(y, [800.0, 0.0, 1e4, np.logaddexp(0, 0.5)], rtol=1e-15, atol=0)
    assert_close(grads["z"], W * [1.0, 0.0, 1.0, 1 / (1 + np.exp(-0.5))], rtol=1e-15, atol=0)
    assert_close(emitted[1]["z"], grads["z"], rtol=1e-15, atol=0)


@pytest.mark.parametrize(
    "expr, op",
    [
        ("log(2 + z)", "log"),  # not a 1
        ("log(1 - z)", "log"),  # a difference: log1p(-z) is another rule, not asked for
        ("exp(z) - 2", "sub"),
        ("1 - exp(z)", "sub"),
        ("exp(z) + 1", "add"),
        ("log1p(sin(z))", "log1p"),
        ("log1p(z) - 1", "sub"),
    ],
)
def test_other_forms_stay_as_written(expr, op):
    g = stabilise(model(expr).graph)
    assert g[g.names["y"]]["op"] == op


def test_a_shared_exp_is_kept_for_its_other_users():
    m = graphc.compile("input z: [3]\ne = exp(z)\nd = e - 1\nL = sum(d * e)")
    g = stabilise(m.graph)
    assert g[g.names["d"]]["op"] == "expm1" and g[g.names["e"]]["op"] == "exp"
    z = np.array([1e-10, 0.5, -2.0])
    loss, grads = m.loss_and_grad({"z": z}, wrt=["z"])
    assert_close(loss, np.sum(np.expm1(z) * np.exp(z)), rtol=1e-15)
    assert_close(grads["z"], np.exp(z) * np.exp(z) + np.expm1(z) * np.exp(z), rtol=1e-15)


def test_the_equations_show_the_stable_form():
    text = graphc.compile("input z: [3]\ny = log(1 + z) + (exp(z) - 1)\nL = sum(y)").equations()
    assert "log1p(z)" in text and "expm1(z)" in text and "log(" not in text
