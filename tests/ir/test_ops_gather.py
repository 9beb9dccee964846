"""take(x, idx, axis=0) and one_hot(labels, K): values against NumPy, shapes with symbolic dims, take's gradient (a
scatter-add, np.add.at: repeated indices sum; its own gradient is take again) against finite differences and
PyTorch, the interpreter and the emitted module (float64, float32), second derivatives, integer inputs (kept
integers, checked, never perturbed by gradcheck), and every error."""

from __future__ import annotations

import numpy as np
import pytest
from clitools import run_graphc
from gradtools import assert_close, assert_matches_finite_differences, torch_loss_and_grad

import graphc
from graphc import GraphcError
from graphc.gradcheck import gradcheck

torch = pytest.importorskip("torch")


OPS_TESTED = {"take", "one_hot"}

rng = np.random.default_rng(7)
CASES = [  # x's shape, idx, axis
    ((5,), [3, 0, 3, -1], 0),
    ((5,), 2, 0),  # a scalar index drops the axis
    ((5, 3), [[0, 4], [4, 4], [1, -5]], 0),  # repeats sum their gradients
    ((5, 3), [2, 2, 0], 1),
    ((5, 3), [1], -1),
    ((4, 5, 3), [[3, 0, 3]], 1),
    ((4, 5, 3), [2, 2, 2, 2], -1),
    ((4, 5, 3), [], 0),  # no indices: an empty result, a zero gradient
]


def _model(xshape, idx, axis):
    ax = "" if axis == 0 else f", axis={axis}"
    dims = ", ".join(map(str, xshape))
    src = f"input x: [{dims}]\ninput i\ny = take(x, i{ax})\nL = sum(sin(y) * y)"
    v = {"x": rng.normal(size=xshape), "i": np.array(idx, dtype=np.int64)}
    return graphc.compile(src), v


@pytest.mark.parametrize("xshape, idx, axis", CASES)
def test_take_is_np_take(xshape, idx, axis):
    m, v = _model(xshape, idx, axis)
    got = m.evaluate(v)["y"]
    np.testing.assert_array_equal(got, np.take(v["x"], v["i"], axis=axis))


@pytest.mark.parametrize("xshape, idx, axis", CASES)
def test_take_gradient_against_finite_differences_and_pytorch(xshape, idx, axis):
    m, v = _model(xshape, idx, axis)
    loss, grads = m.loss_and_grad(v, ["x"])
    assert_matches_finite_differences(m, v, "x", grads["x"])
    tloss, tgrads = torch_loss_and_grad(m, v, ["x"])
    assert_close(loss, tloss, rtol=1e-14)
    assert_close(grads["x"], tgrads["x"], rtol=1e-14, atol=1e-15, what="take vs PyTorch")


def test_repeated_indices_sum_their_gradients():
    m = graphc.compile("input E: [3, 2]\ninput t: [4]\nL = sum(take(E, t) * take(E, t))")
    E = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    grads = m.loss_and_grad({"E": E, "t": np.array([2, 0, 2, 2])}, ["E"])[1]
    np.testing.assert_array_equal(grads["E"], [[2.0, 4.0], [0.0, 0.0], [30.0, 36.0]])  # row 2 taken 3 times


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_emitted_module_agrees_with_the_interpreter_and_keeps_integers(dtype):
    src = (
        "input t: [B, T]\ninput labels: [B, T]\nparam E: [V, D]\nparam W: [D, 3]\n"
        "z = take(E, t) @ W\nL = -mean(sum(one_hot(labels, 3) * log_softmax(z), axis=-1))"
    )
    m = graphc.compile(src)
    v = {
        "t": np.array([[0, 3, 3], [4, 1, 0]]),
        "labels": np.array([[0, 2, 1], [1, 1, 0]]),
        "E": rng.normal(size=(5, 4)),
        "W": rng.normal(size=(4, 3)),
    }
    mod = m.compiled(dtype=dtype)
    out = mod.forward(**v)
    assert out["t"].dtype == np.int64 and out["labels"].dtype == np.int64  # not cast to the dtype's floats
    assert out["z"].dtype == dtype
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == "float64" else {"rtol": 2e-5, "atol": 1e-6}
    ref = m.evaluate(v)
    for k in ref:
        assert_close(out[k], ref[k], **tol, what=k)
    loss, grads = mod.loss_and_grad(**v)
    rloss, rgrads = m.loss_and_grad(v)
    assert_close(loss, rloss, **tol)
    assert set(grads) == {"E", "W"}
    for k in grads:
        assert grads[k].dtype == dtype
        assert_close(grads[k], rgrads[k], **tol, what=f"{k}_bar")
    tloss, tgrads = torch_loss_and_grad(m, v, ["E", "W"])
    assert_close(rloss, tloss, rtol=1e-14)
    for k in tgrads:
        assert_close(rgrads[k], tgrads[k], rtol=1e-13, atol=1e-15, what=f"{k} vs PyTorch")
    floats = {**v, "t": v["t"].astype(np.float64)}  # integral floats are accepted, by the module too
    assert_close(mod.loss_and_grad(**floats)[0], loss, rtol=0)
    assert_close(m.loss_and_grad(floats)[0], rloss, rtol=0)


def test_second_derivatives_through_take_against_pytorch_and_the_emitted_module():
    m = graphc.compile("input x: [4, 3]\ninput t: [5]\nL = sum(take(x, t) ^ 3) + sum(take(x, t, axis=1) ^ 2)")
    t = np.array([1, 2, 1, 0, 2])
    v = {"x": rng.normal(size=(4, 3)), "t": t}
    h = m.hessian(v, "x")
    tt = torch.as_tensor(t)
    want = torch.autograd.functional.hessian(lambda x: (x[tt] ** 3).sum() + (x[:, tt] ** 2).sum(), torch.tensor(v["x"]))
    assert_close(h, want.numpy(), rtol=1e-12, atol=1e-13, what="Hessian vs PyTorch")
    assert_close(m.compiled(["x"], order=2).hessian(**v), h, rtol=1e-12, atol=1e-13, what="emitted Hessian")


def test_the_gradient_is_one_untake_whose_gradient_is_take():
    m = graphc.compile("input x: [4, 3]\ninput t: [5]\nL = sum(take(x, t, axis=0) ^ 2)")
    g = m.backward(["x"])
    (bar,) = [i for i in g.nx.nodes if g[i]["op"] == "untake"]
    assert g.grads["x"] == bar
    assert [g[a]["name"] for a in g[bar]["args"][1:]] == ["t", "x"]
    from graphc.transforms.autodiff import differentiate

    again = differentiate(g, ["x"], loss=g.add("sum", (bar,), shape=()))
    assert sum(again[i]["op"] == "take" for i in again.nx.nodes) == 2  # the model's, and the one back through untake


# ---- one_hot --------------------------------------------------------------------------------


@pytest.mark.parametrize("labels", [2, [0, 2, 1, 2], [[0, 1], [3, 3]]])
def test_one_hot_is_rows_of_the_identity(labels):
    m = graphc.compile("input labels\nparam w: [4] = 0.5\ny = one_hot(labels, 4)\nL = sum(y * w)")
    y = m.evaluate({"labels": np.array(labels)})["y"]
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.eye(4)[np.array(labels)])
    assert graphc.compile("input labels: [N, M]\ny = one_hot(labels, K=4)\nL = sum(y)").summary()[1][2] == "[N, M, 4]"


def test_one_hot_has_no_gradient_and_labels_none_to_check():
    m = graphc.compile("input labels: [N]\ninput z: [N, 3]\nL = -sum(one_hot(labels, 3) * log_softmax(z))")
    v = {"labels": np.array([0, 2, 2]), "z": rng.normal(size=(3, 3))}
    report = gradcheck(m, v)  # the inputs, but not the labels
    assert set(report) == {"z"} and report["z"][0] < 1e-6
    e = _error(lambda: gradcheck(m, v, wrt=["labels"]))
    assert e.usage and "labels" in e.message and "one_hot" in e.message and e.span.line == 1
    assert torch_loss_and_grad(m, v, ["z"])[1]["z"] == pytest.approx(m.loss_and_grad(v, ["z"])[1]["z"], rel=1e-13)
    only_labels = graphc.compile("input labels: [N]\nL = sum(one_hot(labels, 3) * 2)")
    e = _error(gradcheck, only_labels, {"labels": np.array([0, 2])})
    assert e.usage and "nothing to check" in e.message


# ---- shapes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, shape",
    [
        ("take(E, t)", "[B, T, D]"),
        ("take(E, t, axis=1)", "[V, B, T]"),
        ("take(E, t, axis=-1)", "[V, B, T]"),
        ("take(E, t[0])", "[T, D]"),
        ("take(E, t[0, 0])", "[D]"),
        ("one_hot(t, 7)", "[B, T, 7]"),
    ],
)
def test_shapes_with_symbolic_dims(call, shape):
    m = graphc.compile(f"input E: [V, D]\ninput t: [B, T]\ny = {call}\nL = sum(y)")
    assert dict((n, s) for n, _, s, _ in m.summary())["y"] == shape


def test_an_input_used_also_as_a_number_is_a_float_and_take_checks_its_values():
    m = graphc.compile("input E: [3]\ninput t: [2]\nL = sum(take(E, t)) + sum(t)")
    v = {"E": np.array([1.0, 2.0, 4.0]), "t": np.array([2, 2])}
    assert m.evaluate(v)["L"] == 12.0
    assert m.compiled(dtype="float32").forward(**v)["t"].dtype == np.float32  # a float, like any other
    e = _error(lambda: m.evaluate({**v, "t": np.array([0.5, 1.0])}))
    assert e.span.line == 3 and "integers" in e.message and "0.5" in e.message


# ---- errors --------------------------------------------------------------------------------------


def _error(f, *args, **kwargs) -> GraphcError:
    with pytest.raises(GraphcError) as info:
        f(*args, **kwargs)
    return info.value


@pytest.mark.parametrize(
    "src, where, words",
    [
        ("input s: []\ninput t: [2]\ny = take(s, t)", (3, 5), ["take", "scalar"]),
        ("input x: [3, 4]\ninput t: [2]\ny = take(x, t, axis=2)", (3, 5), ["axis 2", "[3, 4]"]),
        ("input l: [2]\ny = one_hot(l, 0)", (2, 5), ["K >= 1", "0"]),
        ("input l: [2]\ny = one_hot(l)", (2, 5), ["one_hot", "needs `K`"]),
        ("input l: [2]\ny = one_hot(l, K=2.5)", (2, 16), ["K", "integer"]),
    ],
)
def test_compile_errors_are_located(src, where, words):
    e = _error(lambda: graphc.compile(src + "\nL = sum(y)", "model.gc"))
    assert (e.span.line, e.span.col) == where, e.message
    for w in words:
        assert w in e.message + (e.hint or ""), (w, e.message)


@pytest.mark.parametrize("bad, first", [([0, 4, 1], 4), ([-5, 0, 0], -5)])
def test_indices_out_of_range_are_located_in_the_interpreter_and_an_index_error_in_the_module(bad, first):
    src = "input t: [N]\nparam E: [4, 2] = 1\n\nh = take(E, t)\nL = sum(h)"
    m = graphc.compile(src, "model.gc")
    for run in (m.evaluate, m.loss_and_grad):  # the forward plan and the gradient's
        e = _error(run, {"t": np.array(bad)})
        assert e.span.line == 4 and f"index {first} is out of range for axis 0 of size 4" in e.message
        assert "model.gc:4:5: error:" in e.render("model.gc", src)
    with pytest.raises(
        IndexError, match=rf"index {first} is out of range for axis 0 of size 4 \(take's indices are -4\.\.3\)"
    ):
        m.compiled().forward(t=np.array(bad))


@pytest.mark.parametrize("bad, first", [([0, 3], 3), ([-1, 0], -1)])
def test_labels_out_of_range_are_located(bad, first):
    m = graphc.compile("input labels: [N]\ny = one_hot(labels, 3)\nL = sum(y)", "model.gc")
    e = _error(m.evaluate, {"labels": np.array(bad)})
    assert e.span.line == 2 and f"label {first} is out of range for K = 3 classes" in e.message and "0..2" in e.message
    with pytest.raises(IndexError, match=f"label {first} is out of range for K = 3 classes"):
        m.compiled().forward(labels=np.array(bad))


def test_labels_that_are_not_whole_numbers_are_located():
    m = graphc.compile("input labels: [N]\ny = one_hot(labels, 3)\nL = sum(y)", "model.gc")
    e = _error(m.evaluate, {"labels": np.array([0.0, 1.5, 1.0])})  # at the input, naming the op's line
    assert e.span.line == 1 and "`labels`" in e.message and "one_hot (line 2)" in e.message and "1.5" in e.message
    m.evaluate({"labels": np.array([0, 1])})
    e = _error(m.evaluate, {"labels": np.array([0.0, 1.5])})  # by the plan made for these shapes: at the op
    assert e.span.line == 2 and "one_hot's labels must be integers, got 1.5" in e.message
    with pytest.raises(ValueError, match="one_hot's labels must be integers, got 1.5"):
        m.compiled().forward(labels=np.array([0.0, 1.5]))


def test_gradcheck_on_the_command_line_skips_the_indices(tmp_path):
    model = tmp_path / "m.gc"
    model.write_text("input t: [N]\nparam E: [5, 2] = normal(0, 1)\nL = sum(take(E, t) ^ 2)\n", encoding="utf-8")
    np.savez(tmp_path / "d.npz", t=np.array([1, 1, 4, 0]))
    r = run_graphc("gradcheck", str(model), "--inputs", str(tmp_path / "d.npz"))
    assert r.returncode == 0, r.stderr
    assert "E: max relative error" in r.stdout and "t:" not in r.stdout
    r = run_graphc("gradcheck", str(model), "--inputs", str(tmp_path / "d.npz"), "--wrt", "t")
    assert r.returncode == 2 and "holds integers" in r.stderr


def test_without_params_the_gradients_are_for_every_input_but_the_integer_ones():
    """(the differential test's find: `b`, read only by one_hot, had a gradient of zeros by default)"""
    m = graphc.compile("input E: [3, 2]\ninput ids: [2]\ninput y: []\nL = sum(take(E, ids)) + sum(one_hot(y, 2))")
    assert m.default_wrt() == ["E"]
    values = {"E": np.ones((3, 2)), "ids": [0, 0], "y": 1}
    for _, grads in (m.loss_and_grad(values), m.compiled().loss_and_grad(**values)):  # interpreter, module
        assert set(grads) == {"E"} and grads["E"].tolist() == [[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]
