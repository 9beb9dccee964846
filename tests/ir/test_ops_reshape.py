"""reshape(x, [d1, d2, ...]): NumPy's reshape with one -1 and symbolic dims (issue 13, item 5).

Forward against np.reshape; the shape rule with symbolic dims (what the counts fix is inferred); every
error; the gradient against PyTorch and finite differences in the interpreter and the emitted module
(float64 and float32); the Hessian-vector product against PyTorch's double backward.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtools import assert_close, assert_matches_finite_differences, error_of, shapes_of

import graphc

torch = pytest.importorskip("torch")
OPS_TESTED = {"reshape"}


# ---- forward -------------------------------------------------------------------------------------

CASES = [  # (shape of x, target as written, the shape np.reshape gives)
    ((2, 3, 4), "[6, 4]", (6, 4)),
    ((2, 3, 4), "[4, -1]", (4, 6)),
    ((2, 3, 4), "[-1]", (24,)),
    ((24,), "[2, 3, 2, 2]", (2, 3, 2, 2)),
    ((5, 64), "[5, 1, 8, 8]", (5, 1, 8, 8)),
    ((1,), "[]", ()),
    ((), "[1, 1]", (1, 1)),
    ((0, 3), "[3, 0]", (3, 0)),
]


@pytest.mark.parametrize(("shape", "target", "want"), CASES, ids=str)
def test_forward_is_numpys_reshape(shape, target, want):
    x = np.random.default_rng(0).normal(size=shape)
    v = graphc.compile(f"y = reshape(x, {target})\nL = sum(y)").evaluate({"x": x})
    assert v["y"].shape == want
    np.testing.assert_array_equal(v["y"], np.reshape(x, want))


def test_the_shape_may_be_given_as_a_keyword():
    x = np.arange(6.0)
    v = graphc.compile("y = reshape(x, shape=[3, 2])\nL = sum(y)").evaluate({"x": x})
    np.testing.assert_array_equal(v["y"], x.reshape(3, 2))


# ---- the shape rule with symbolic dims -------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "target", "want"),
    [
        ("[N, 64]", "[N, 1, 8, 8]", "[N, 1, 8, 8]"),  # N kept
        ("[N, 64]", "[-1, 1, 8, 8]", "[N, 1, 8, 8]"),  # -1 is N
        ("[N, 8, 8]", "[N, -1]", "[N, 64]"),  # -1 from the known dims
        ("[N, 64]", "[M, 64]", "[N, 64]"),  # M unified with N
        ("[N, K]", "[K, N]", "[K, N]"),  # a permutation of the symbols
        ("[N, K]", "[-1]", "unknown"),  # N K elements: no single dim names it
        ("[N, 3]", "[-1, 2]", "unknown"),  # 3N / 2
    ],
)
def test_symbolic_dims_are_inferred_where_the_counts_fix_them(declared, target, want):
    m = graphc.compile(f"input x: {declared}\ny = reshape(x, {target})\nL = sum(y)")
    assert shapes_of(m)["y"] == want


def test_a_count_that_fixes_a_symbol_binds_it():
    m = graphc.compile("input x: [N, 64]\ny = reshape(x, [128, 32])\nL = sum(y)")
    assert shapes_of(m)["x"] == "[64, 64]"


def test_a_dim_unified_by_reshape_is_one_size_everywhere():
    src = "input x: [N, 64]\ninput t: [M]\ny = reshape(x, [M, 8, 8])\nL = sum(y) + sum(t)"
    assert shapes_of(graphc.compile(src))["t"] == "[N]"
    e = error_of(src, x=np.zeros((3, 64)), t=np.zeros(4))
    assert "t" in e.message and "[4]" in e.message


def test_unknown_input_shape_takes_the_target():
    m = graphc.compile("y = reshape(x, [2, 3])\nL = sum(y)")
    assert shapes_of(m)["y"] == "[2, 3]"
    m = graphc.compile("y = reshape(x, [-1, 3])\nL = sum(y)")
    assert shapes_of(m)["y"] == "unknown"
    assert graphc.compile("y = reshape(x, [-1, 3])\nL = sum(y)").evaluate({"x": np.ones(6)})["y"].shape == (2, 3)


# ---- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("src", "words"),
    [
        ("input x: [3, 4]\ny = reshape(x, [5, 2])", ["[3, 4]", "12 elements", "[5, 2]", "10 elements"]),
        ("input x: [N, 64]\ny = reshape(x, [N, 65])", ["[N, 64]", "64 * N elements", "[N, 65]", "65 * N elements"]),
        ("input x: [N, 64]\ny = reshape(x, [100])", ["[N, 64]", "[100]", "100 elements"]),
        ("input x: [4, 6]\ny = reshape(x, [-1, 5])", ["[4, 6]", "24 elements", "multiple of 5"]),
        ("input x: [4, 6]\ny = reshape(x, [-1, -1])", ["one dim can be -1"]),
        ("input x: [4, 6]\ny = reshape(x, [-2, 12])", ["-2", "negative"]),
        ("input x: [0, 6]\ny = reshape(x, [0, -1])", ["0", "-1 is undefined"]),
    ],
)
def test_bad_shapes_are_located_errors_naming_both_shapes(src, words):
    e = error_of(src + "\nL = sum(y)")
    assert e.span is not None and e.span.line == 2, e.message
    for w in words:
        assert w in e.message, (w, e.message)


def test_a_mismatch_known_only_from_the_values_is_located():
    e = error_of("input x: [A, B]\ny = reshape(x, [C, 5])\nL = sum(y)", x=np.zeros((2, 3)))
    assert e.span.line == 2 and "[2, 3]" in e.message and "6 elements" in e.message and "5 * C elements" in e.message


def test_two_dims_nothing_fixes_are_an_error_not_a_guess():
    e = error_of("input x: [N, 6]\ny = reshape(x, [A, B])\nL = sum(y)", x=np.zeros((2, 6)))
    assert e.span.line == 2 and "A and B" in e.message and "-1" in e.hint


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("reshape(x)", ["needs `shape`"]),
        ("reshape(x, 3)", ["list of dims"]),
        ("reshape(x, [2, 3], [6])", ["takes 1 to 2 arguments"]),
    ],
)
def test_bad_calls(call, words):
    e = error_of(f"y = {call}\nL = sum(y)")
    assert e.span is not None and e.span.line == 1
    for w in words:
        assert w in e.message, (w, e.message)


# ---- gradients: interpreter and emitted module, against PyTorch and finite differences ---------------

MODEL = """
input X: [N, 12]
param W: [4, 3]
H = reshape(X, [N, 3, 4]) @ W      # [N, 3, 3]
Z = reshape(tanh(H), [-1, 9])      # [N, 9]
L = sum(reshape(Z * Z, [N, 3, 3]) * H)
"""


def values(seed=0, n=5):
    rng = np.random.default_rng(seed)
    return {"X": rng.normal(size=(n, 12)), "W": rng.normal(size=(4, 3))}


def torch_loss(X, W):
    H = X.reshape(X.shape[0], 3, 4) @ W
    Z = torch.tanh(H).reshape(-1, 9)
    return ((Z * Z).reshape(X.shape[0], 3, 3) * H).sum()


def torch_reference(v):
    t = {k: torch.tensor(a, requires_grad=True) for k, a in v.items()}
    loss = torch_loss(**t)
    grads = torch.autograd.grad(loss, [t["X"], t["W"]])
    return loss.item(), {"X": grads[0].numpy(), "W": grads[1].numpy()}


def test_gradients_agree_with_pytorch_and_finite_differences_in_the_interpreter():
    m = graphc.compile(MODEL)
    v = values()
    loss, grads = m.loss_and_grad(v, wrt=["X", "W"])
    ref_loss, ref = torch_reference(v)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in ("X", "W"):
        assert_close(grads[k], ref[k], rtol=1e-12, atol=1e-12, what=k)
        assert_matches_finite_differences(m, v, k, grads[k])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_emitted_module_agrees_with_the_interpreter(dtype):
    m = graphc.compile(MODEL)
    mod = m.compiled(wrt=["X", "W"], dtype=dtype)
    assert "np.reshape(X, (N, 3, 4))" in mod.__source__  # N read from X, as the model writes it
    tol = 1e-12 if dtype == "float64" else 1e-4
    for n in (1, 5):  # any N: the dims are read at run time
        v = values(n=n)
        loss, grads = mod.loss_and_grad(**v)
        ref_loss, ref = m.loss_and_grad(v, wrt=["X", "W"])
        assert np.asarray(loss).dtype == np.dtype(dtype) and grads["X"].dtype == np.dtype(dtype)
        assert float(loss) == pytest.approx(ref_loss, rel=tol)
        for k in ("X", "W"):
            assert grads[k].shape == v[k].shape
            assert_close(grads[k], ref[k], rtol=tol, atol=tol, what=f"{dtype} {k}")


def test_a_dim_only_the_reshape_knows_is_inferred_at_run_time():
    """[A, B] -> [K, 2]: K is A B / 2, which no dim names; the module writes -1, the interpreter binds K."""
    m = graphc.compile("input X: [A, B]\nY = reshape(X * X, [K, 2])\nL = sum(Y * sin(Y))\n")
    mod = m.compiled(wrt=["X"])
    assert "(-1, 2)" in mod.__source__
    X = np.linspace(-1, 1, 12).reshape(2, 6)
    want = (np.sin(X * X) + X * X * np.cos(X * X)) * 2 * X
    for loss, grads in (mod.loss_and_grad(X=X), m.loss_and_grad({"X": X})):
        assert loss == pytest.approx(np.sum(X * X * np.sin(X * X))) and np.allclose(grads["X"], want)


def test_hvp_agrees_with_pytorchs_double_backward():
    m = graphc.compile(MODEL)
    v = values(1)
    direction = np.random.default_rng(2).normal(size=(4, 3))
    t = {k: torch.tensor(a, requires_grad=True) for k, a in v.items()}
    (gw,) = torch.autograd.grad(torch_loss(**t), [t["W"]], create_graph=True)
    (ref,) = torch.autograd.grad((gw * torch.tensor(direction)).sum(), [t["W"]])
    assert_close(m.hvp(v, direction, "W"), ref.numpy(), rtol=1e-11, atol=1e-12, what="interpreter hvp")
    mod = m.compiled(["W"], order=2)
    assert_close(mod.hvp(direction, **v), ref.numpy(), rtol=1e-11, atol=1e-12, what="emitted hvp")


def test_a_const_fixes_a_dim_that_only_a_reshape_names():
    m = graphc.compile("const M = 3\ninput x: [6]\ny = reshape(x, [M, -1])\nL = sum(y)")
    assert m.graph[m.graph.names["y"]]["shape"] == (3, 2)


@pytest.mark.parametrize("target", ["[K, K]", "[K, -1]"])
def test_more_than_one_size_to_infer_is_an_error_when_checking(target):
    """(found by a review: `graphc check` said ok, and only a run refused it)"""
    e = error_of(f"param W: [4, 2]\nY = reshape(W, {target})\nL = sum(Y)")
    assert e.span.line == 2 and "nothing fixes the dims K" in e.message and "-1" in e.hint
