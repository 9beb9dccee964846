"""Every emitted function checks its arguments' shapes against the model's declarations, on every target and
library: a wrong shape is a ValueError naming the argument, what the model declares and what was given.

The numba target's loops run over the declared extents with no bounds checks, so before this check a `T` of
9 columns where the model declares 10 read past its end and gave a loss from whatever memory followed; NumPy
and the array-api module broadcast a [1] bias silently, or failed inside a step with a library's message.
"""

import re

import numpy as np
import pytest
from arraylibs import libraries

import graphc

MLP = """
input X: [N, D]
input T: [N, 10]
param W1: [D, 8]
param b1: [8] = 0
param W2: [8, 10]
param s = 1
Z = s * (sigmoid(X @ W1 + b1) @ W2)
L = -mean(sum(T * log_softmax(Z), axis=1))
"""


def good(N=5, D=3):
    rng = np.random.default_rng(0)
    return {
        "X": rng.normal(size=(N, D)),
        "T": np.eye(10)[rng.integers(0, 10, N)],
        "W1": rng.normal(size=(D, 8)),
        "W2": rng.normal(size=(8, 10)),
    }


BAD = {  # (the change, the argument named, its shape as given)
    "a literal dim": ({"T": np.zeros((5, 9))}, "T", "[5, 9]"),
    "a symbolic dim that disagrees": ({"T": np.zeros((6, 10))}, "T", "[6, 10]"),
    "a dim bound only by a param": ({"W1": np.zeros((4, 8))}, "W1", "[4, 8]"),
    "one dim too few": ({"X": np.zeros(3)}, "X", "[3]"),
    "a number for a matrix": ({"X": 1.0}, "X", "[]"),
    "one dim too many": ({"W2": np.zeros((8, 10, 1))}, "W2", "[8, 10, 1]"),
    "a bias that would broadcast": ({"b1": np.zeros(1)}, "b1", "[1]"),
    "a vector for a scalar": ({"s": np.ones(2)}, "s", "[2]"),
}


def targets():
    out = [pytest.param("numpy", id="numpy"), pytest.param("array-api", id="array-api")]
    out.append(pytest.param("numba", id="numba", marks=pytest.mark.skipif(not _has("numba"), reason="no numba")))
    return out


def _has(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def model():
    return graphc.compile(MLP)


@pytest.mark.parametrize("target", targets())
@pytest.mark.parametrize("case", BAD)
def test_a_wrong_shape_is_an_error_naming_the_argument(model, target, case):
    change, name, given = BAD[case]
    module = model.compiled(target=target)
    declared = {"X": "[N, D]", "T": "[N, 10]", "W1": "[D, 8]", "b1": "[8]", "W2": "[8, 10]", "s": "[]"}[name]
    for f in (module.forward, module.loss_and_grad):
        with pytest.raises(ValueError) as e:
            f(**{**good(), **change})
        message = str(e.value)
        assert f"`{name}` is declared with shape {declared}" in message, message
        assert f"has shape {given}" in message, message


@pytest.mark.parametrize("target", targets())
def test_the_error_says_where_a_symbolic_dim_was_bound(model, target):
    with pytest.raises(ValueError, match=re.escape("N = 5, from `X`")):
        model.compiled(target=target).loss_and_grad(**{**good(), "T": np.zeros((6, 10))})
    with pytest.raises(ValueError, match=re.escape("D = 3, from `X`")):
        model.compiled(target=target).loss_and_grad(**{**good(), "W1": np.zeros((4, 8))})


@pytest.mark.parametrize("target", targets())
def test_right_shapes_pass_on_every_size(model, target):
    module = model.compiled(target=target)
    for N, D in ((1, 1), (5, 3), (7, 2)):
        loss, grads = module.loss_and_grad(**good(N, D))
        want = model.loss_and_grad(good(N, D))
        np.testing.assert_allclose(loss, want[0], rtol=1e-12)
        assert grads["W1"].shape == (D, 8)


@pytest.mark.parametrize("lib", libraries())
def test_the_array_api_module_checks_shapes_on_every_library(model, lib):
    module = model.compiled(target="array-api")
    values = {k: lib.to(v) for k, v in good().items()}
    module.loss_and_grad(**values)
    with pytest.raises(ValueError, match=re.escape("`T` is declared with shape [N, 10]")):
        module.loss_and_grad(**{**values, "T": lib.to(np.zeros((5, 9)))})


def test_hvp_checks_its_direction_against_the_param():
    m = graphc.compile("param w: [3] = 1; input x: [3]; L = sum(w * w * x)")
    module = m.compiled(order=2)
    np.testing.assert_allclose(module.hvp(np.ones(3), x=np.ones(3)), [2.0, 2.0, 2.0])
    with pytest.raises(ValueError, match=re.escape("is declared with shape [3] but its value has shape [2]")):
        module.hvp(np.ones(2), x=np.ones(3))


def test_a_model_name_that_shadows_the_check_keeps_its_meaning():
    m = graphc.compile("param _wrong_shape: [2] = 1; input x: [2]; L = sum(_wrong_shape * x)")
    module = m.compiled()
    loss, grads = module.loss_and_grad(x=np.array([1.0, 2.0]))
    assert loss == 3.0 and list(grads["_wrong_shape"]) == [1.0, 2.0]
    with pytest.raises(ValueError, match="`x` is declared with shape"):
        module.loss_and_grad(x=np.ones(3))
