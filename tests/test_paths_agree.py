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


def emitted(source: str, **options):
    return graphc.compile(source).compiled(**options)


# item 3: float32 code stays float32 through every reduction's gradient (a bool mask over its int count
# was float64)
F32_OPS = ["sum", "mean", "max", "logsumexp"]


@pytest.mark.parametrize("op", F32_OPS)
@pytest.mark.parametrize("kw", ["", ", axis=1", ", axis=0, keepdims=true", ", axis=-1"])
def test_float32_code_stays_float32(op, kw):
    source = f"input X: [N, 3]\nparam W: [3, 4] = 0.5\nZ = X @ W\nL = sum({op}(Z{kw})) + mean(softmax(Z))"
    mod = emitted(source, dtype="float32")
    X = np.random.default_rng(0).normal(size=(5, 3))
    loss, grads = mod.loss_and_grad(X=X)
    assert np.asarray(loss).dtype == np.float32 and grads["W"].dtype == np.float32
    assert all(np.asarray(v).dtype == np.float32 for v in mod.forward(X=X).values())
    want = graphc.compile(source).loss_and_grad({"X": X})
    np.testing.assert_allclose(grads["W"], want[1]["W"], rtol=1e-4, atol=1e-5)


# item 4: every dim is read from any argument that carries it, params included
def test_a_dim_bound_only_by_params_is_read_from_them():
    source = "input X: [N, D]\nparam W1: [D, H]\nparam b1: [H] = 0\nL = sum(X @ W1 + b1)"
    mod = emitted(source)
    X, W1 = np.ones((2, 3)), np.ones((3, 4))
    loss, grads = mod.loss_and_grad(X=X, W1=W1)
    assert loss == 24.0 and grads["b1"].tolist() == [2.0] * 4
    assert mod.forward(X=X, W1=W1)["b1"].shape == (4,)


def test_a_dim_that_nothing_passed_fixes_is_a_clear_error():
    source = "input x: [2]\nparam b: [H] = 0\nparam c: [H, 2] = 1\nL = sum(b) + sum(c @ x)"
    mod = emitted(source)
    assert mod.loss_and_grad(x=[1.0, 2.0], c=np.ones((5, 2)))[1]["b"].shape == (5,)  # H from c, made after b
    assert mod.loss_and_grad(x=[1.0, 2.0], b=np.ones(3))[1]["c"].shape == (3, 2)  # H from b
    with pytest.raises(TypeError, match="pass `b` or `c`: nothing else given fixes the model's dim H"):
        mod.loss_and_grad(x=[1.0, 2.0])


# item 5: a scalar constant never takes a method (1.0.T)
TRANSPOSES = ["input x\nL = sum(x.T + x*x)", "input x\nL = sum(x.T) + sum(x)"]


@pytest.mark.parametrize("source", TRANSPOSES)
@pytest.mark.parametrize("x", [2.0, [1.0, 2.0], [[1.0, 2.0], [3.0, 4.0]]])
def test_transposes_of_scalars_and_constants(source, x):
    _, interp, emitted_ = paths(source, {"x": np.array(x)})
    assert_same(interp, emitted_)


def test_the_transpose_of_a_vector_param():
    _, interp, emitted_ = paths("param p: [2] = 2\nL = sum(p.T * 3)", {})
    assert_same(interp, emitted_)


# item 6: model names never clash with what graphc adds
CLASHES = [
    "input np: [3]\ninput np_: [3]\nL = sum(np * np_)",
    "input numpy: [3]\ninput np: [3]\nL = sum(exp(np) * numpy)",
    "input _sigmoid: [3]\nL = sum(sigmoid(_sigmoid) * _sigmoid)",
    "input _softmax: [2, 3]\nL = sum(softmax(_softmax) * log_softmax(_softmax))",
    "input X: [tmp1, 3]\nparam W: [3, 2] = 0.1\nL = mean(exp(X @ W) * (X @ W + 1))",
    "input X: [np, 3]\nparam W: [3, 2] = 0.1\nL = mean(sigmoid(X @ W))",
    "input class: [3]\ninput class_: [3]\nlambda = class * 2\nL = sum(lambda * class_)",
    "input x: [N]\nconst N = 3\nL = mean(x)",
    "const forward = 2\nconst len = 3\nconst range = 0.5\ninput x: [3]\nL = sum(forward * x + len * range)",
    "const loss_and_grad = 2\nconst hessian = 1\ninput x: [3]\nL = sum(loss_and_grad * x) + hessian",
    "input x: [2]\nv = x * 2\nL = sum(v * v)",
]


@pytest.mark.parametrize("source", CLASHES)
def test_names_that_shadow_helpers_keywords_and_temporaries(source):
    m = graphc.compile(source)
    rng = np.random.default_rng(3)
    values = {}
    for name in m.inputs:
        shape = m.graph[m.graph.names[name]]["shape"]
        values[name] = rng.normal(size=tuple(3 if isinstance(d, str) else d for d in shape))
    py = {{"class": "class__"}.get(k, k): v for k, v in values.items()}  # (class_ is the model's own)
    interp = m.loss_and_grad(dict(values), wrt=m.inputs)
    mod = m.compiled(m.inputs)
    assert_same(interp, mod.loss_and_grad(**py))
    forward = mod.forward(**py)
    for k, v in m.evaluate(dict(values)).items():
        np.testing.assert_allclose(forward[k], v, rtol=1e-12)


# item 7: arguments as NumPy users pass them
def test_lists_floats_ints_and_bools_are_arguments():
    source = "input x: [3]\ninput t: []\nparam w: [3] = 0.5\nparam b = 0\nL = (sum(w * x) + b - t)^2"
    mod = emitted(source)
    want = mod.loss_and_grad(x=np.array([1.0, 2.0, 0.0]), t=np.float64(1.0), b=np.float64(1.0))
    for x, t, b in (([1, 2, 0], 1, 1), ([1.0, 2.0, False], 1.0, True), ((1, 2.0, 0), True, 1.0)):
        got = mod.loss_and_grad(x=x, t=t, b=b)
        assert_same(got, want)
        assert all(np.asarray(g).dtype == np.float64 for g in got[1].values())


# item 8: --order 2 keeps loss_and_grad whole, and hvp's direction is positional (no model name can hit it)
def test_order_two_keeps_every_gradient_and_takes_its_direction_by_position():
    source = "param v: [2] = 1\nparam w: [2] = 2\nL = sum(v * v * w)"
    m = graphc.compile(source)
    mod = m.compiled(order=2)
    assert mod.loss_and_grad()[1].keys() == {"v", "w"}
    np.testing.assert_allclose(mod.hvp(np.array([1.0, 0.0])), [4.0, 0.0])  # d²L/dv² = diag(2w)
    np.testing.assert_allclose(mod.hvp([1.0, 0.0], w=[3.0, 3.0]), [6.0, 0.0])
    np.testing.assert_allclose(mod.hessian(), m.hessian({}, "v"))
    assert m.compiled(["w"], order=2).loss_and_grad()[1].keys() == {"w"}


def test_the_transpose_of_a_float_gradient():
    _, interp, emitted_ = paths("input x\nL = x.T + x*x", {"x": 2.0})  # x_bar = 1.0.T + ... raised
    assert_same(interp, emitted_)
    assert interp[1]["x"] == 5.0


# item 13: a const and a dim of one name are one size; values go to inputs and params only
def test_a_const_fixes_the_dim_of_its_name():
    m = graphc.compile("const N = 3\ninput X: [N, 2]\nL = sum(X)", "m.gc")
    assert m.graph[m.graph.names["X"]]["shape"] == (3, 2)
    assert m.evaluate({"X": np.ones((3, 2))})["L"] == 6.0
    with pytest.raises(graphc.GraphcError) as info:
        m.evaluate({"X": np.ones((5, 2))})
    assert info.value.span.line == 2 and "`N` is the const on line 1" in info.value.message
    with pytest.raises(graphc.GraphcError, match="must be a size"):
        graphc.compile("const N = 2.5\ninput X: [N, 2]\nL = sum(X)")


def test_the_api_skips_a_byte_order_mark_and_refuses_complex_values():
    m = graphc.compile("\ufeffinput x: [2]\nL = sum(x)")
    assert m.evaluate({"x": [1, 2]})["L"] == 3.0
    with pytest.raises(graphc.GraphcError, match="complex"):
        m.evaluate({"x": np.array([1 + 1j, 2])})


@pytest.mark.parametrize("source", ["input x\nL = mean(x)", "input x\nL = mean(x * x)", "input x\nL = sum(x) / 2"])
@pytest.mark.parametrize("x", [-2.0, [1.0, 2.0]])
def test_float32_code_stays_float32_for_shapes_known_only_at_run_time(source, x):
    loss, grads = emitted(source, dtype="float32").loss_and_grad(x=x)
    assert np.asarray(loss).dtype == np.float32 and np.asarray(grads["x"]).dtype == np.float32


def test_a_param_not_given_is_made_in_the_dims_a_later_param_given_fixes():
    source = "input x: []\nparam y: [N] = 0\nparam z: [N]\nL = sum(y * z) + x"  # (found by test_differential)
    m = graphc.compile(source)
    loss, grads = m.loss_and_grad({"x": 1.0, "z": [2.0, 3.0]})
    assert grads["y"].tolist() == [2.0, 3.0] and grads["z"].tolist() == [0.0, 0.0]
    assert_same((loss, grads), m.compiled().loss_and_grad(x=1.0, z=[2.0, 3.0]))


def test_a_const_dim_sizes_the_params_the_emitted_module_makes():
    source = "const N = 3\nparam b: [N] = 1\ninput x: []\nL = mean(b*x)"  # (it raised: nothing fixes N)
    m = graphc.compile(source)
    for dtype in ("float64", "float32"):
        mod = m.compiled(dtype=dtype)
        loss, grads = mod.loss_and_grad(x=2.0)
        assert loss == 2.0 and grads["b"].tolist() == [2.0 / 3] * 3 if dtype == "float64" else grads["b"].shape == (3,)
        assert all(np.asarray(v).dtype == np.dtype(dtype) for v in mod.forward(x=2.0).values())  # const N too


def test_a_model_without_inputs_or_params_emits_a_module_that_runs():
    m = graphc.compile("L = 2*3")
    assert m.compiled().forward() == {"L": 6.0} and m.compiled().loss_and_grad() == (6.0, {})
    with pytest.raises(graphc.GraphcError, match="needs a param or an input"):
        m.emit(order=2)
