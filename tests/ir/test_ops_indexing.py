"""index, `x[1:, ::2]` and `x[..., -1]`: NumPy's basic indexing by integer constants. Its values against NumPy,
its shapes (symbolic dims too), its gradient (one unindex op, whose own gradient is index again) against finite
differences and PyTorch, in the interpreter and the emitted module (float64 and float32), second derivatives,
its code and notation, and every error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from gradtools import assert_close, assert_matches_finite_differences, torch_loss_and_grad

import graphc
from graphc import GraphcError

torch = pytest.importorskip("torch")


SHAPE = (4, 5, 6)
KEYS = [  # what a model writes between the brackets, for an x of SHAPE
    "0",
    "-1",
    "1:",
    ":-1",
    "1:3",
    "::2",
    "::-1",
    "-2::-2",
    "3:1",  # empty
    "10:",  # empty, past the end
    ":, 0",
    "1, -2",
    "1, 2, 3",
    "..., -1",
    "...",
    "1, ..., 1:5:2",
    ":, ::-2, 1",
    "-4:, 1:, :-1",
    "..., 2, :",
]


def np_key(text: str):
    return eval(f"np.s_[{text}]")  # noqa: S307 - the test's own keys


def values(shape=SHAPE, seed=0):
    return {"x": np.random.default_rng(seed).normal(size=shape)}


@pytest.mark.parametrize("key", KEYS)
def test_values_and_declared_shapes_are_numpys(key):
    m = graphc.compile(f"input x: [4, 5, 6]\ny = x[{key}]\nL = sum(sin(y))")
    v = values()
    want = v["x"][np_key(key)]
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == graphc.ir.shapes.fmt(want.shape)
    got = m.evaluate(v)["y"]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("key", KEYS)
def test_gradient_against_finite_differences_and_pytorch(key):
    m = graphc.compile(f"input x: [4, 5, 6]\ny = x[{key}]\nL = sum(sin(y) * y)")
    v = values()
    loss, grads = m.loss_and_grad(v)
    assert_matches_finite_differences(m, v, "x", grads["x"])
    tloss, tgrads = torch_loss_and_grad(m, v, ["x"])
    assert_close(loss, tloss, rtol=1e-14)
    assert_close(grads["x"], tgrads["x"], rtol=1e-14, atol=1e-15, what=f"x[{key}] vs PyTorch")


@pytest.mark.parametrize("key", ["1:, ::2", "..., -1", "-1", "::-1, 2"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emitted_module_agrees_with_the_interpreter(key, dtype):
    m = graphc.compile(f"input x: [N, 5]\nparam w: [5] = 0.5\ny = x[{key}]\nL = sum(y * y * w[{key.split(',')[-1]}])")
    v = {**values((4, 5)), "w": np.linspace(-1, 1, 5)}
    mod = m.compiled(dtype=dtype)
    out = mod.forward(**v)
    ref = m.evaluate(v)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    for k in ref:
        assert_close(out[k], ref[k], **tol, what=k)
    loss, grads = mod.loss_and_grad(**v)
    rloss, rgrads = m.loss_and_grad(v)
    assert_close(loss, rloss, **tol)
    for k in rgrads:
        assert np.asarray(grads[k]).dtype == dtype
        assert_close(grads[k], rgrads[k], **tol, what=f"{k}_bar")


def test_second_derivatives_against_pytorch_and_the_emitted_module():
    src = "input x: [3, 4]\nL = sum(x[1:, ::2] ^ 3) + sum(x[..., -1] * x[0, 1:])"
    m = graphc.compile(src)
    v = values((3, 4), seed=2)
    h = m.hessian(v, "x")

    def f(x):
        return (x[1:, ::2] ** 3).sum() + (x[..., -1] * x[0, 1:]).sum()

    want = torch.autograd.functional.hessian(f, torch.tensor(v["x"]))
    assert_close(h, want.numpy(), rtol=1e-12, atol=1e-13, what="Hessian vs PyTorch")
    assert_close(m.compiled(["x"], order=2).hessian(**v), h, rtol=1e-12, atol=1e-13, what="emitted Hessian")


def test_the_gradient_is_one_unindex_whose_gradient_is_index():
    m = graphc.compile("input x: [3, 4]\ny = x[1:, ::2]\nL = sum(y * y)")
    g = m.backward(["x"])
    (bar,) = [i for i in g.nx.nodes if g[i]["op"] == "unindex"]
    assert g.grads["x"] == bar and g[bar]["attrs"]["key"] == ((1, None, None), (None, None, 2))
    from graphc.transforms.autodiff import differentiate

    again = differentiate(g, ["x"], loss=g.add("sum", (bar,), shape=()))  # d(sum x̄)/dx passes back through index
    assert any(again[i]["op"] == "index" and again[i]["args"][0] != again.names["x"] for i in again.nx.nodes)


# ---- shapes with symbolic dims --------------------------------------------------------------


@pytest.mark.parametrize(
    "key, shape",
    [
        (":", "[N, 5]"),
        ("0", "[5]"),
        ("-1, 2", "[]"),
        ("1:", "[N-1, 5]"),
        (":-1", "[N-1, 5]"),
        ("2:-1", "[N-3, 5]"),
        ("0:", "[N, 5]"),
        ("::-1", "[N, 5]"),
        ("::2", "[len(N[::2]), 5]"),
        (":3", "[len(N[:3]), 5]"),
        (":, 1:", "[N, 4]"),
        (":, ::-2", "[N, 3]"),
        ("..., 0", "[N]"),
        ("..., 1:-1", "[N, 3]"),
    ],
)
def test_symbolic_dims(key, shape):
    m = graphc.compile(f"input x: [N, 5]\ny = x[{key}]\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == shape
    for n in (1, 2, 7):  # the values' shapes are NumPy's, whatever N is
        v = values((n, 5))
        np.testing.assert_array_equal(m.evaluate(v)["y"], v["x"][np_key(key)])


def test_slicing_a_slice_counts_on_and_a_const_dim_is_a_number():
    m = graphc.compile("input x: [N, M]\ny = x[1:]\nz = y[1:, 2:]\nL = sum(z)")
    assert dict((n, s) for n, _, s, _ in m.summary())["z"] == "[N-2, M-2]"
    m = graphc.compile("const N = 6\ninput x: [N, 5]\ny = x[1::2]\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == "[3, 5]"


def test_a_derived_dim_unifies_like_any_other():
    m = graphc.compile("input x: [N]\ninput y: [M]\nz = x[1:] + y[:-1]\nL = sum(z)")
    assert dict((n, s) for n, _, s, _ in m.summary())["z"] in ("[N-1]", "[M-1]")
    assert m.evaluate({"x": np.arange(4.0), "y": np.ones(4)})["L"] == 6 + 3
    e = _error(lambda: m.evaluate({"x": np.arange(4.0), "y": np.ones(5)}))
    assert "[3]" in e.message and "[4]" in e.message


# ---- code and notation ------------------------------------------------------------------------


def test_code_writes_the_key_as_python_does_and_is_ruff_clean(tmp_path):
    m = graphc.compile("input x: [N, 5]\ny = x[1:, ::2]\nz = x[..., -1]\nL = sum(y * y) + sum(z)")
    src = m.emit()
    assert "y = x[1:, ::2]  # line 2" in src and "z = x[..., -1]  # line 3" in src
    assert "_unindex(" in src and "np.s_[1:, ::2]" in src and "np.s_[..., -1]" in src
    path = tmp_path / "m.py"
    path.write_text(src, encoding="utf-8")
    for args in (["format", "--check", "--isolated"], ["check", "--isolated"]):
        r = subprocess.run([sys.executable, "-m", "ruff", *args, str(path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_an_indexed_expression_is_parenthesised():
    m = graphc.compile("input a: [4]\ninput b: [4]\ny = (a + b)[1:]\nL = sum(y)")
    assert "y = (a + b)[1:]" in m.emit()
    assert "y = (a + b)[1:]" in m.equations()


def test_equations_show_the_key_and_the_signal_put_back_in_its_place():
    m = graphc.compile("input x: [N, 5]\ny = x[1:, ::2]\nz = x[..., -1]\nL = sum(y * y) + sum(z)")
    text = m.equations()
    assert "y = x[1:, ::2]" in text and "z = x[..., -1]" in text
    assert "x\u0304 = z\u0304→[..., -1] + y\u0304→[1:, ::2]" in text  # x̄ = z̄→[..., -1] + ȳ→[1:, ::2]
    tex = m.equations(latex=True)
    assert r"y &= x[1{:}, {:}{:}2]" in tex and r"x[\ldots, -1]" in tex
    assert r"\overline{y} \to [1{:}, {:}{:}2]" in tex


def test_a_collapsed_picture_writes_the_key():
    m = graphc.compile("input x: [N, 5]\ny = x[1:, ::2]\nL = sum(y * y)")
    dot = m.to_digraph(backward=True, collapse=True).source
    assert "x[1:, ::2]" in dot and "→[1:, ::2]" in dot


# ---- errors --------------------------------------------------------------------------------------


def _error(f) -> GraphcError:
    with pytest.raises(GraphcError) as info:
        f()
    return info.value


@pytest.mark.parametrize(
    "decl, key, words",
    [
        ("[3, 4]", "3", ["index 3", "axis 0", "size 3", "[3, 4]", "[3]"]),
        ("[3, 4]", "-4", ["index -4", "axis 0", "size 3", "[-4]"]),
        ("[3, 4]", "1:, 4", ["index 4", "axis 1", "size 4", "[3, 4]", "[1:, 4]"]),
        ("[N, 4]", "..., -5", ["index -5", "axis 1", "size 4", "[N, 4]", "[..., -5]"]),
        ("[3, 4]", "0, 0, 0", ["too many indices", "[0, 0, 0]", "3 axes", "[3, 4]", "has 2"]),
        ("[3, 4]", "0, ..., 0, :", ["too many indices", "[0, ..., 0, :]", "[3, 4]"]),
        ("[]", "0", ["scalar", "[]", "[0]"]),
        ("[]", ":", ["scalar", "[:]"]),
    ],
)
def test_shape_errors_are_located_and_name_the_shape_and_the_index(decl, key, words):
    e = _error(lambda: graphc.compile(f"input x: {decl}\ny = x[{key}]\nL = sum(y)", "model.gc"))
    assert (e.span.line, e.span.col, e.span.end_col) == (2, 5, 8 + len(key))
    for w in words:
        assert w in e.message, (w, e.message)


def test_an_index_out_of_range_of_the_values_is_located():
    m = graphc.compile("input x: [N, 2]\ny = x[5]\nL = sum(y)", "model.gc")
    e = _error(lambda: m.evaluate({"x": np.ones((3, 2))}))
    assert e.span.line == 2 and "index 5" in e.message and "size 3" in e.message
    m = graphc.compile("input x\ny = x[0, 1]\nL = y", "model.gc")  # the shape comes with the value
    e = _error(lambda: m.evaluate({"x": np.ones(3)}))
    assert e.span.line == 2 and "too many indices" in e.message and "[3]" in e.message


def test_a_scalar_indexed_by_ellipsis_alone_is_itself():
    m = graphc.compile("input s: []\ny = s[...]\nL = y * y")
    assert m.evaluate({"s": 3.0})["y"] == 3.0
    assert m.loss_and_grad({"s": 3.0})[1]["s"] == 6.0


def test_a_picture_shows_the_key_on_the_index_node_and_on_its_gradient():
    dot = graphc.compile("input X: [N, 4]\nparam w: [3]\ny = X[:, 1:] @ w\nL = sum(y[::2]^2)").to_digraph(backward=True)
    for label in ("label=<[:, 1:]>", "label=<[::2]>", "label=<→[::2]>"):
        assert label in dot.source
