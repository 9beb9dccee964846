"""Issue 11, items 1-8: the interpreter, `grad`'s fused plan and the emitted module give one answer.

Each case here is a class of bug that once made two paths disagree (see the issue for the history);
the random models of test_differential.py look for the next member of each class.
"""

import numpy as np
import pytest

import graphc


def paths(source: str, values: dict, wrt=None):
    """(loss, grads) from the interpreter's plan, and from the emitted module (float64)."""
    m = graphc.compile(source)
    interp = m.loss_and_grad(dict(values), wrt=wrt)
    with np.errstate(all="ignore"):
        emitted = m.compiled(wrt).loss_and_grad(**values)
    return m, interp, emitted


def assert_same(a, b, rtol=1e-12):
    (la, ga), (lb, gb) = a, b
    np.testing.assert_allclose(la, lb, rtol=rtol)
    assert ga.keys() == gb.keys()
    for k in ga:
        np.testing.assert_allclose(ga[k], gb[k], rtol=rtol, atol=1e-300, err_msg=k)


# item 1: an alias line (`net = z`) fused into its user kept its argument's text without its parentheses
ALIASES = {
    "param w = 1; param b = -1; z = w*1.5 + b; net = z; L = 0.5*(2*net - 1)^2": ({}, 0.0, {"w": 0.0, "b": 0.0}),
    "param p: [3] = 1; v = p*p; w = v; L = sum(w)": ({}, 3.0, {"p": [2.0, 2.0, 2.0]}),
    "param p = 3; param q = 1; w = p - q; L = 2*w": ({}, 4.0, {"p": 2.0, "q": -2.0}),
    "input X: [N, 2]; input y: [N]; param w: [2] = 0.5; param b = 0; z = X @ w + b; logits = z; "
    "L = mean(softplus(-y*logits))": ({"X": np.ones((4, 2)), "y": np.ones(4)}, np.log1p(np.exp(-1.0)), None),
}


@pytest.mark.parametrize("source", ALIASES)
def test_an_alias_line_changes_no_answer(source):
    values, loss, grads = ALIASES[source]
    m, interp, emitted = paths(source, values)
    assert_same(interp, emitted)
    np.testing.assert_allclose(interp[0], loss, rtol=1e-12)
    np.testing.assert_allclose(m.evaluate(dict(values))["L"], loss, rtol=1e-12)
    for k, want in (grads or {}).items():
        np.testing.assert_allclose(interp[1][k], want, rtol=1e-12, atol=1e-15)
    without = graphc.compile(source.replace("net = z; L = 0.5*(2*net", "L = 0.5*(2*z"))
    if "net = z" in source:
        assert_same(interp, without.loss_and_grad(dict(values)))


# item 2: PyTorch's conventions at kinks: a gradient PyTorch gives as 0 is 0 (a mask selects, never
# multiplies: 0 * inf is nan)
KINKS = {
    "input z: [4]\nL = sum(sqrt(relu(z)))": [0.0, 0.0, 0.0, 0.5 / np.sqrt(2.0)],
    "input z: [4]\nL = sum(z^0)": [0.0, 0.0, 0.0, 0.0],
    "input z: [4]\nparam p = 0\nL = sum(z^p)": [0.0, 0.0, 0.0, 0.0],
    "input z: [4]\nL = sum(z^3)": [3.0, 0.0, 0.0, 12.0],
    "input z: [4]\nL = sum(minimum(z, 0))": [1.0, 0.5, 0.5, 0.0],
    "input z: [4]\nL = sum(maximum(z, 0*z))": [0.0, 0.5, 0.5, 1.0],
}
Z = [-1.0, 0.0, -0.0, 2.0]


@pytest.mark.parametrize("source", KINKS)
def test_kinks_follow_pytorch(source):
    _, interp, emitted = paths(source, {"z": np.array(Z)}, wrt=["z"])
    assert_same(interp, emitted)
    np.testing.assert_allclose(interp[1]["z"], KINKS[source], rtol=1e-15, atol=0)


def test_the_exponent_gets_no_nan_at_a_zero_base():
    source = "input x: [3]\nparam p = 2\nL = sum(x^p)"
    _, interp, emitted = paths(source, {"x": np.array([0.0, 1.0, 2.0])})
    assert_same(interp, emitted)
    np.testing.assert_allclose(interp[1]["p"], 4.0 * np.log(2.0), rtol=1e-15)  # 0^p contributes 0, not nan


def test_kinks_against_pytorch():
    torch = pytest.importorskip("torch")
    z = torch.tensor(Z, dtype=torch.float64, requires_grad=True)
    torch.sqrt(torch.relu(z)).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), KINKS["input z: [4]\nL = sum(sqrt(relu(z)))"])
    z.grad = None
    (z**0).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), KINKS["input z: [4]\nL = sum(z^0)"])
    z.grad = None
    torch.minimum(z, torch.zeros(4, dtype=torch.float64)).sum().backward()
    np.testing.assert_allclose(z.grad.numpy(), KINKS["input z: [4]\nL = sum(minimum(z, 0))"])
