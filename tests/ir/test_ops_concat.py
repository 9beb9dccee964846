"""concat(a, b, ..., axis=0) and stack(a, b, ..., axis=0): values against NumPy, shapes with symbolic dims (N+M
along a symbolic axis), gradients (slices of g back to each argument: index where the sizes are known, unconcat,
split by the arguments' sizes when it runs, where they are not) against finite differences and PyTorch, the
interpreter and the emitted module (float64, float32), second derivatives, and every error."""

from __future__ import annotations

import numpy as np
import pytest
from gradtools import assert_close, assert_matches_finite_differences, torch_loss_and_grad

import graphc
from graphc import GraphcError

torch = pytest.importorskip("torch")
OPS_TESTED = {"concat", "stack"}

rng = np.random.default_rng(11)
CASES = [  # op, the arguments' shapes, axis
    ("concat", [(3,)], 0),
    ("concat", [(3,), (2,), (4,)], 0),
    ("concat", [(2, 3), (4, 3)], 0),
    ("concat", [(2, 3), (2, 1), (2, 2)], 1),
    ("concat", [(2, 3), (2, 1)], -1),
    ("concat", [(2, 3, 4), (2, 0, 4), (2, 2, 4)], -2),  # an empty part
    ("stack", [()], 0),
    ("stack", [(), (), ()], 0),
    ("stack", [(3,), (3,)], 0),
    ("stack", [(3,), (3,)], -1),
    ("stack", [(2, 3), (2, 3), (2, 3)], 1),
    ("stack", [(2, 3), (2, 3)], -2),
]


def _model(op, shapes, axis, declared=True):
    names = [f"x{k}" for k in range(len(shapes))]
    decls = "".join(f"input {n}: [{', '.join(map(str, s))}]\n" if declared else "" for n, s in zip(names, shapes))
    ax = "" if axis == 0 else f", axis={axis}"
    src = f"{decls}y = {op}({', '.join(names)}{ax})\nL = sum(sin(y) * y)"
    return graphc.compile(src), {n: rng.normal(size=s) for n, s in zip(names, shapes)}


def _reference(op, v, axis):
    return (np.concatenate if op == "concat" else np.stack)(list(v.values()), axis=axis)


@pytest.mark.parametrize("op, shapes, axis", CASES)
def test_values_and_shapes_are_numpys(op, shapes, axis):
    m, v = _model(op, shapes, axis)
    want = _reference(op, v, axis)
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == graphc.ir.shapes.fmt(want.shape)
    np.testing.assert_array_equal(m.evaluate(v)["y"], want)


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "from-values"])
@pytest.mark.parametrize("op, shapes, axis", CASES)
def test_gradients_against_finite_differences_and_pytorch(op, shapes, axis, declared):
    m, v = _model(op, shapes, axis, declared)
    loss, grads = m.loss_and_grad(v)
    tloss, tgrads = torch_loss_and_grad(m, v, list(v))
    assert_close(loss, tloss, rtol=1e-14)
    for name in v:
        assert np.shape(grads[name]) == v[name].shape
        if v[name].size:  # (an empty part has nothing to perturb)
            assert_matches_finite_differences(m, v, name, grads[name])
        assert_close(grads[name], tgrads[name], rtol=1e-14, atol=1e-15, what=f"{op} d/d{name} vs PyTorch")


SYMBOLIC = (
    "input a: [N, 3]\ninput b: [M, 3]\nparam w: [3] = 0.5\n"
    "c = concat(a, sin(b), a * 2)\ns = stack(a, a + 1, axis=-1)\nL = sum(c * c * w) + sum(sin(s) * s)"
)
STATIC = (
    "input a: [2, 3]\ninput b: [4, 3]\nparam w: [3] = 0.5\n"
    "c = concat(a, sin(b), a * 2)\nd = concat(a.T, b.T, axis=-1)\nL = sum(c * c * w) + sum(sin(d))"
)


@pytest.mark.parametrize("src", [SYMBOLIC, STATIC], ids=["symbolic", "static"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emitted_module_agrees_with_the_interpreter(src, dtype):
    m = graphc.compile(src)
    v = {"a": rng.normal(size=(2, 3)), "b": rng.normal(size=(4, 3)), "w": np.array([0.5, -1.0, 2.0])}
    mod = m.compiled(dtype=dtype)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 2e-5, "atol": 1e-5}
    out, ref = mod.forward(**v), m.evaluate(v)
    for k in ref:
        assert_close(out[k], ref[k], **tol, what=k)
    loss, grads = mod.loss_and_grad(**v)
    rloss, rgrads = m.loss_and_grad(v)
    tloss, tgrads = torch_loss_and_grad(m, v, ["w"])
    assert_close(loss, rloss, **tol)
    assert_close(rloss, tloss, rtol=1e-14)
    assert_close(rgrads["w"], tgrads["w"], rtol=1e-13, atol=1e-15)
    for k in rgrads:
        assert grads[k].dtype == dtype
        assert_close(grads[k], rgrads[k], **tol, what=f"{k}_bar")


def test_the_gradient_slices_g_by_index_where_sizes_are_known_else_by_unconcat():
    static = graphc.compile(STATIC).emit(wrt=["a", "b"])
    assert "c_bar[:2]" in static and "c_bar[2:6]" in static and "c_bar[6:]" in static
    assert "d_bar[..., :2]" in static and "_unconcat" not in static
    symbolic = graphc.compile(SYMBOLIC).emit(wrt=["a", "b"])
    assert "_unconcat(c_bar, a, tmp" in symbolic and "part=1" in symbolic and "part=2" in symbolic


@pytest.mark.parametrize("src", [SYMBOLIC, STATIC], ids=["symbolic", "static"])
def test_second_derivatives_against_pytorch_and_the_emitted_module(src):
    m = graphc.compile(src.replace("sin(b)", "b ^ 3"))
    v = {"a": rng.normal(size=(2, 3)), "b": rng.normal(size=(4, 3)), "w": np.array([0.5, -1.0, 2.0])}
    h = m.hessian(v, "b")
    a, w = torch.tensor(v["a"]), torch.tensor(v["w"])

    def f(b):
        c = torch.cat([a, b**3, a * 2])
        if "stack" in src:
            s = torch.stack([a, a + 1], dim=-1)
            return (c * c * w).sum() + (torch.sin(s) * s).sum()
        return (c * c * w).sum() + torch.sin(torch.cat([a.T, b.T], dim=-1)).sum()

    want = torch.autograd.functional.hessian(f, torch.tensor(v["b"]))
    assert_close(h, want.numpy(), rtol=1e-12, atol=1e-12, what="Hessian vs PyTorch")
    assert_close(m.compiled(["b"], order=2).hessian(**v), h, rtol=1e-12, atol=1e-12, what="emitted Hessian")


def test_unconcat_is_differentiated_by_concat():
    m = graphc.compile("input a: [N]\ninput b: [M]\nL = sum(concat(a, b) ^ 2)")
    g = m.backward(["a", "b"])
    parts = sorted((i for i in g.nx.nodes if g[i]["op"] == "unconcat"), key=lambda i: g[i]["attrs"]["part"])
    assert [g.grads["a"], g.grads["b"]] == parts
    from graphc.transforms.autodiff import differentiate

    again = differentiate(g, ["a"], loss=g.add("sum", (parts[0],), shape=()))
    assert sum(again[i]["op"] == "concat" for i in again.nx.nodes) == 2  # the model's, and the way back


# ---- shapes with symbolic dims --------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, shape",
    [
        ("concat(a, b)", "[N+M, D]"),
        ("concat(a, a, b)", "[N+N+M, D]"),
        ("concat(a, c)", "[N+3, D]"),
        ("concat(c, c)", "[6, D]"),
        ("concat(a, a[1:])", "[N+N-1, D]"),
        ("concat(a.T, b.T, axis=1)", "[D, N+M]"),
        ("concat(a, e, axis=-1)", "[N, D+2]"),
        ("stack(a, a)", "[2, N, D]"),
        ("stack(a, e[:, :1] + a, axis=1)", "[N, 2, D]"),
        ("stack(a, a, a, axis=-1)", "[N, D, 3]"),
    ],
)
def test_symbolic_dims(call, shape):
    decls = "input a: [N, D]\ninput b: [M, D]\ninput c: [3, D]\ninput e: [N, 2]\n"
    m = graphc.compile(f"{decls}y = {call}\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == shape


def test_concat_unifies_the_other_dims_and_a_const_dim_is_a_number():
    m = graphc.compile("input a: [N, D]\ninput b: [M, 4]\ny = concat(a, b)\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["a"] == "[N, 4]"
    m = graphc.compile("const N = 2\ninput a: [N, 3]\ninput b: [M, 3]\ny = concat(a, b, a)\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == "[M+4, 3]"


# ---- errors ---------------------------------------------------------------------------------------------


def _error(src: str) -> GraphcError:
    with pytest.raises(GraphcError) as info:
        graphc.compile(src + "\nL = sum(y)", "model.gc")
    return info.value


@pytest.mark.parametrize(
    "decls, call, words",
    [
        ("input s: []", "concat(s, s)", ["concat", "scalar", "stack"]),
        ("input a: [2, 3]\ninput v: [3]", "concat(a, v)", ["[2, 3]", "[3]", "number of dims"]),
        ("input a: [2, 3]\ninput b: [2, 4]", "concat(a, b)", ["[2, 3]", "[2, 4]", "axis 0", "axis 1 has 3 and 4"]),
        ("input a: [N, D]\ninput b: [M, 4]\ninput c: [2, 5]", "concat(a, b, c)", ["[N, D]", "[2, 5]", "4 and 5"]),
        ("input a: [2, 3]", "concat(a, a, axis=2)", ["axis 2", "[2, 3]"]),
        ("input a: [2, 3]\ninput b: [3, 2]", "stack(a, b)", ["[2, 3] (6 elements)", "[3, 2] (6 elements)"]),
        ("input a: [2, 3]\ninput v: [6]", "stack(a, v)", ["[2, 3] (6 elements)", "[6] (6 elements)"]),
        ("input a: [N, 3]\ninput v: [N]", "stack(a, v, a)", ["[N, 3]", "[N]"]),
        ("input a: [2, 3]", "stack(a, a, axis=3)", ["axis 3", "[2, 3]", "3 dims"]),
        ("input a: [2, 3]", "stack(a, a, axis=-4)", ["axis -4"]),
        ("input a: [2, 3]", "concat()", ["concat", "1 or more"]),
        ("input a: [2, 3]", "stack(a, axis=true)", ["axis", "integer"]),
    ],
)
def test_shape_errors_are_located_and_say_both_shapes(decls, call, words):
    e = _error(f"{decls}\ny = {call}")
    assert e.span.line == decls.count("\n") + 2, e.message
    for w in words:
        assert w in e.message, (w, e.message)


def test_a_mismatch_found_from_the_values_is_located():
    m = graphc.compile("input a\ninput b\ny = concat(a, b, axis=1)\nL = sum(y)", "model.gc")
    with pytest.raises(GraphcError) as info:
        m.evaluate({"a": np.ones((2, 3)), "b": np.ones((3, 3))})
    assert info.value.span.line == 3 and "[2, 3]" in info.value.message and "[3, 3]" in info.value.message
