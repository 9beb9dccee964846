"""Each pass on its own, the stabilising rewrites at large magnitudes, and the two-layer op count."""

import warnings

import numpy as np
import pytest
from gradtools import assert_close, numeric_grad

import graphc
from graphc.backends.numpy.kernels import evaluate
from graphc.backends.numpy.plan import run
from graphc.backends.numpy.values import bind
from graphc.transforms import autodiff
from graphc.transforms import simplify as passes
from graphc.transforms.stabilise import stabilise


def ops_of(g, nodes=None):
    return sorted(g[i]["op"] for i in (g.nx.nodes if nodes is None else nodes))


def compiled(src, values=None):
    m = graphc.compile(src)
    if values is None:
        return m, m.graph.copy()
    g, _ = bind(m.graph, values)
    return m, g


# ---- simplification passes -----------------------------------------------------------------------


def test_fold_constants_evaluates_constant_subexpressions():
    _, g = compiled("y = x * (2 * 3 + 1)")
    assert passes.fold_constants(g, evaluate=evaluate)
    consts = [g[i]["attrs"]["value"] for i in g.upstream([g.names["y"]]) if g[i]["op"] == "const"]
    assert 7.0 in consts and g[g.names["y"]]["op"] == "mul"


def test_fold_constants_turns_size_ratios_of_known_shapes_into_numbers():
    _, g = compiled("input x: [4, 5]\nL = mean(x)")
    gb = autodiff.differentiate(g, ["x"])
    passes.fold_constants(gb, evaluate=evaluate)
    passes.remove_dead(gb)
    assert "size_ratio" not in ops_of(gb)


@pytest.mark.parametrize(
    "expr, gone",
    [
        ("x * 1", "mul"),
        ("1 * x", "mul"),
        ("x + 0", "add"),
        ("0 + x", "add"),
        ("x - 0", "sub"),
        ("x / 1", "div"),
        ("x ^ 1", "pow"),
        ("-(-x)", "neg"),
    ],
)
def test_identities_remove_no_op_arithmetic(expr, gone):
    _, g = compiled(f"input x: [3]\ny = sin({expr})\nL = sum(y)")
    passes.identities(g)
    passes.remove_dead(g)
    assert gone not in ops_of(g, g.upstream([g.names["y"]]))


def test_identities_rewrite_squares_and_scalar_zeros():
    _, g = compiled("input x: [3]\ny = sum(x ^ 2)\nz = sin(sum(x) * 0)\nL = y + z")
    passes.identities(g)
    passes.remove_dead(g)
    assert "pow" not in ops_of(g)
    sq = g[g.names["y"]]["args"][0]
    assert g[sq]["op"] == "mul" and g[sq]["args"][0] == g[sq]["args"][1] == g.names["x"]
    zero = g[g.names["z"]]["args"][0]
    assert g[zero]["op"] == "const" and g[zero]["attrs"]["value"] == 0.0


def test_identities_x_times_zero_keeps_its_shape():
    # x: [3] times 0 is a vector of zeros, not the scalar 0: it must stay
    _, g = compiled("input x: [3]\ny = sin(x * 0)\nL = sum(y)")
    passes.identities(g)
    arg = g[g.names["y"]]["args"][0]
    assert g[arg]["op"] == "mul" and g[arg]["shape"] == (3,)


def test_identities_x_to_the_zero_is_one_of_its_shape():
    # NumPy has nan ** 0 = inf ** 0 = 1: the rule holds for every value, and keeps x's shape
    m, g = compiled("input x: [3]\nparam w: [3]\nv = w * (x - 1) ^ 0\nL = sum(v) + sum(x ^ 0)")
    x, w = np.array([np.nan, np.inf, 2.0]), np.array([1.0, 2.0, 3.0])
    want = m.evaluate({"x": x, "w": w})
    assert want["v"].tolist() == w.tolist() and want["L"] == 9.0
    gs = passes.simplify(g, evaluate)
    assert "pow" not in ops_of(gs) and gs[gs.names["v"]]["shape"] == (3,)
    np.testing.assert_array_equal(run(gs, bind(gs, {"x": x, "w": w})[1])[gs.names["v"]], w)


@pytest.mark.parametrize("test, picked", [("0", "b"), ("2", "a"), ("-0.0", "b")])
def test_identities_a_constant_test_picks_its_branch(test, picked):
    # (second derivatives of where meet where(0, ...): the array-api target refuses a number as a test)
    _, g = compiled(f"input a: [3]; input b: [3]\nL = sum(2 * where({test}, sin(a), cos(b)))")
    gs = passes.simplify(g, evaluate)
    assert "where" not in ops_of(gs) and ("sin" in ops_of(gs)) == (picked == "a")
    v = {"a": np.array([0.5, 1.0, 2.0]), "b": np.array([-1.0, 0.0, 3.0])}
    want = 2 * np.sum(np.sin(v["a"]) if picked == "a" else np.cos(v["b"]))
    np.testing.assert_allclose(run(gs, bind(gs, v)[1])[gs.names["L"]], want, rtol=1e-15)


def test_identities_a_constant_test_keeps_the_where_that_spreads_a_branch():
    _, g = compiled("input b: [3]\nL = sum(2 * where(1, 2.0, b))")
    gs = passes.simplify(g, evaluate)
    assert "where" in ops_of(gs)  # (2.0 alone has the wrong shape)
    np.testing.assert_allclose(run(gs, bind(gs, {"b": np.zeros(3)})[1])[gs.names["L"]], 12.0)


def test_merge_common_merges_identical_subexpressions():
    _, g = compiled("input x: [3]\na = sum(exp(x) * 2)\nb = sum(exp(x) * 3)")
    assert ops_of(g).count("exp") == 2
    passes.merge_common(g)
    passes.remove_dead(g)
    assert ops_of(g).count("exp") == 1


def test_share_softmax_reuses_log_softmax():
    _, g = compiled("input z: [2, 3]\ny = softmax(z)\nL = sum(log_softmax(z)) + sum(y)")
    assert passes.share_softmax(g)
    y = g[g.names["y"]]
    assert y["op"] == "exp" and g[y["args"][0]]["op"] == "log_softmax"
    m = graphc.compile("input z: [2, 3]\ny = softmax(z)\nL = sum(log_softmax(z)) + sum(y)")
    z = np.random.default_rng(0).normal(size=(2, 3))
    e = np.exp(z - z.max(1, keepdims=True))
    assert_close(m.evaluate({"z": z})["y"], e / e.sum(1, keepdims=True), rtol=1e-15)


def test_remove_dead_drops_only_what_nothing_needs():
    _, g = compiled("input x: [3]\ny = sum(x)")
    dangling = g.add("exp", [g.names["x"]], shape=(3,))
    assert passes.remove_dead(g)
    assert dangling not in g.nx and "y" in g.names and "x" in g.names


def test_simplify_keeps_every_model_value_and_gradient():
    m = graphc.load("examples/digits_mlp.gc")
    gb = m.backward()
    assert set(m.names) <= set(gb.names)
    assert set(gb.grads) == set(m.params)


def test_simplify_runs_every_pass_until_none_changes_anything():
    """One model with work for each pass: simplify folds the constants, applies the identities, shares the
    softmax, merges the common subexpressions and drops the dead node, and then no pass of its pipeline
    (passes.PIPELINE, as a round runs them) finds anything left to do."""
    src = "input x: [3]\ninput z: [2, 3]\na = sum(exp(x) * (2 * 3 + 1))\nb = sum(exp(x) * 1)\ny = softmax(z)\n"
    m, g = compiled(src + "L = a + b + sum(log_softmax(z)) + sum(y)")
    dangling = g.add("exp", [g.names["x"]], shape=(3,))
    gs = passes.simplify(g, evaluate)
    a, b, y = (gs[gs.names[k]] for k in "aby")
    scaled = gs[a["args"][0]]
    assert scaled["op"] == "mul" and 7.0 in [gs[i]["attrs"].get("value") for i in scaled["args"]]  # folded
    assert b["args"][0] in scaled["args"]  # exp(x) * 1 is exp(x): an identity; and one exp(x), merged
    assert ops_of(gs, gs.upstream([gs.names["a"], gs.names["b"]])).count("exp") == 1
    assert y["op"] == "exp" and gs[y["args"][0]]["op"] == "log_softmax"  # softmax shares log_softmax
    assert dangling not in gs.nx  # dead
    for p in passes.round_passes(evaluate):
        again = gs.copy()
        assert not p(again, again.order()), p
    z = np.random.default_rng(1).normal(size=(2, 3))
    x = np.array([0.1, -0.4, 2.0])
    want = m.evaluate({"x": x, "z": z})
    got = run(gs, bind(gs, {"x": x, "z": z})[1])
    for k in ("a", "b", "y", "L"):
        assert_close(got[gs.names[k]], want[k], rtol=1e-14)


# ---- op count: the lecture's two-layer network -------------------------------------------------------

ARITH = {"add", "sub", "mul", "div", "matmul", "neg", "pow", "exp", "log", "sigmoid", "sum", "mean"}


def test_two_layer_backward_has_no_more_arithmetic_than_the_slide():
    m = graphc.compile("""
        input x: [2]; input t: [2]
        param W1: [3, 2]; param b1: [3]; param W2: [2, 3]; param b2: [2]
        z = W1 @ x + b1; h = sigmoid(z); y = W2 @ h + b2; L = 0.5*sum((t - y)^2)""")
    gb = m.backward()
    backward = [i for i in gb.nx.nodes if i not in gb.upstream([gb.loss])]
    arith = [gb[i]["op"] for i in backward if gb[i]["op"] in ARITH | {"outer"}]
    shape_ops = [gb[i]["op"] for i in backward if gb[i]["op"] not in ARITH | {"outer", "const"}]
    # the slide: ȳ = y - t (1), W̄2 = ȳ hᵀ (1), h̄ = W2ᵀ ȳ (1), z̄ = h̄ ∘ h(1 - h) (3), W̄1 = z̄ xᵀ (1); b̄2, b̄1: none
    assert len(arith) <= 7, arith
    assert arith.count("outer") == 2, arith  # W̄2 = ȳ hᵀ and W̄1 = z̄ xᵀ
    assert set(shape_ops) <= {"transpose", "mT"}, shape_ops
    assert gb[gb.grads["b2"]]["name"] == "y_bar" and gb[gb.grads["b1"]]["name"] == "z_bar"


# ---- stabilisation ------------------------------------------------------------------------------


STABLE = [
    ("log(softmax(z))", "log_softmax", lambda z: z - np.max(z) - np.log(np.sum(np.exp(z - np.max(z))))),
    ("log(sigmoid(z))", "softplus", lambda z: -np.logaddexp(0, -z)),
    ("log(1 - sigmoid(z))", "softplus", lambda z: -np.logaddexp(0, z)),
    ("log(sum(exp(z)))", "logsumexp", lambda z: np.max(z) + np.log(np.sum(np.exp(z - np.max(z))))),
    (
        "1 / (1 + exp(-z))",
        "sigmoid",
        lambda z: np.where(z > 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))),
    ),
]


@pytest.mark.parametrize("expr, op, reference", STABLE, ids=[s[0] for s in STABLE])
def test_stabilise_rewrites_and_stays_finite_at_large_magnitudes(expr, op, reference):
    m = graphc.compile(f"input z: [3]\ny = {expr}\nL = sum(y * w)")
    g = stabilise(m.graph)
    assert op in ops_of(g, g.upstream([g.names["y"]]))
    z = np.array([1000.0, -1000.0, 0.5])
    w = np.array([0.3, -0.7, 1.1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = m.evaluate({"z": z, "w": w})
        loss, grads = m.loss_and_grad({"z": z, "w": w}, wrt=["z"])
    assert np.all(np.isfinite(values["y"])) and np.isfinite(loss) and np.all(np.isfinite(grads["z"]))
    assert_close(values["y"], reference(z), rtol=1e-12)
    small = np.array([0.2, -0.4, 0.5])
    assert_close(
        m.loss_and_grad({"z": small, "w": w}, wrt=["z"])[1]["z"], numeric_grad(m, {"z": small, "w": w}, "z"), rtol=1e-6
    )


def test_softmax_cross_entropy_gets_the_simple_gradient():
    # z̄ = softmax(z) sum(t) - t, through log_softmax's rule, not a special case
    m = graphc.compile("input z: [4]\ninput t: [4]\nL = -sum(t * log(softmax(z)))")
    z = np.array([1000.0, -3.0, 999.0, 0.0])
    t = np.array([0.1, 0.2, 0.3, 0.4]) * 2
    _, g = m.loss_and_grad({"z": z, "t": t}, wrt=["z"])
    s = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    assert_close(g["z"], s * t.sum() - t, rtol=1e-12)
