"""The interpreter's plan (issue 4, item 6): statements fused as `graphc emit` writes them, with the
values, errors and returned arrays of one step per node."""

import sys
from pathlib import Path

import numpy as np
import pytest
from goldens import example_models

import graphc
from graphc import GraphcError
from graphc.backends.numpy import plan as plan_module
from graphc.backends.numpy.kernels import evaluate
from graphc.backends.numpy.plan import Plan, run
from graphc.backends.numpy.values import bind
from graphc.transforms.pipeline import gradient_graph

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = example_models()
sys.path.insert(0, str(REPO / "bench"))
from models import MLP, mlp_values  # noqa: E402 (the benchmark's model)


def mlp(N=4, D=2, H=8, K=3, seed=0):
    return graphc.compile(MLP.format(D=D, H=H, K=K), "mlp.gc"), mlp_values(N, D, H, K, seed)


@pytest.fixture
def plans_made(monkeypatch):
    """Every Plan built from now on (Model builds its plans with graphc.backends.numpy.plan.Plan), in order."""
    made = []

    class Recorded(Plan):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            made.append(self)

    monkeypatch.setattr(plan_module, "Plan", Recorded)
    return made


# A statement may sum in another order than its nodes one by one (mean(sum(x, axis=1)) as one x.sum() / N):
# the same value to a few roundings, which NumPy's summation order on the machine decides.
ROUNDING = 1e-14


def assert_same_values(plan_values, every, ids):
    for i in ids:
        np.testing.assert_allclose(plan_values[i], every[i], rtol=ROUNDING, atol=0, err_msg=f"node {i}")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_fused_plan_gives_the_values_of_one_step_per_node(path, example_values):
    m = graphc.load(path)
    g, env = bind(m.graph, example_values(path, m))
    gb = gradient_graph(g, None, evaluate)
    every = run(gb, env)  # no targets: every node its own step
    targets = [gb.loss, *gb.grads.values()]
    plan = Plan(gb, targets)
    vals = plan.run(env)
    assert_same_values(vals, every, targets)
    assert_same_values(vals, every, [i for i, _ in plan.steps])  # each statement's value too
    assert len(plan.steps) <= len(Plan(gb).steps)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_model_methods_agree_with_the_trace(path, example_values):
    m = graphc.load(path)
    values = example_values(path, m)
    g, every = m.trace(values)
    assert set(every) == set(g.nx.nodes)  # trace still gives every node's value
    loss, grads = m.loss_and_grad(values)
    assert loss == pytest.approx(float(every[g.loss]), rel=ROUNDING, abs=0)
    for w, i in g.grads.items():
        np.testing.assert_allclose(grads[w], every[i], rtol=ROUNDING, atol=0)
    gf, every_f = m.trace(values, backward=False)
    assert set(every_f) == set(gf.nx.nodes)
    for name, value in m.evaluate(values).items():
        np.testing.assert_allclose(value, every_f[gf.names[name]], rtol=ROUNDING, atol=0, err_msg=name)


def test_the_mlp_step_is_as_many_statements_as_the_emitted_code(plans_made):
    m, values = mlp()
    m.loss_and_grad(values)
    (plan,) = plans_made  # the gradient step's plan
    gx = plan.graph
    emitted = m.emit().split("def loss_and_grad")[1]
    statements = [line for line in emitted.splitlines() if " = " in line and not line.lstrip().startswith("N =")]
    assert len(plan.steps) <= len(statements)
    assert len(plan.steps) < len(Plan(gx).steps)


def test_gradients_are_not_changed_by_a_later_call_nor_by_changing_them():
    m, values = mlp(K=1)
    loss1, g1 = m.loss_and_grad(values)
    kept = {k: v.copy() for k, v in g1.items()}
    other = {**values, "X": values["X"] + 1.0, "W1": values["W1"] * 2}
    m.loss_and_grad(other)
    for k in g1:
        np.testing.assert_array_equal(g1[k], kept[k])  # a second call made new arrays
        assert g1[k].flags.writeable
        g1[k] += 1.0  # the caller may change what it got
    loss3, g3 = m.loss_and_grad(values)
    assert loss3 == loss1
    for k in g3:
        np.testing.assert_array_equal(g3[k], kept[k])


@pytest.mark.parametrize(
    "src",
    [
        "input x: [3]\nparam w: [3]\nL = sum(w * x)",  # dL/dw is x itself
        "input x: [3]\nparam w: [3] = 1\nL = sum(w)",  # dL/dw is a read-only broadcast of 1
        "input x: [3]\nparam a: [3]\nparam b: [3]\nL = sum(x * (a + b))",  # a and b: the same node, x
        "input x: [3]\nparam w: [3] = 2\nparam v: [3]\nL = sum(w * v) + sum(x)",  # dL/dv is w's initial value
    ],
)
def test_gradients_that_could_share_memory_are_copies(src):
    m = graphc.compile(src)
    x = np.arange(3.0)
    given = {k: v for k, v in {"x": x, "v": np.ones(3)}.items() if k in m.names}
    _, grads = m.loss_and_grad(given)
    before = m.evaluate(given)
    for g in grads.values():
        assert g.flags.writeable and g.dtype == np.float64
        assert not any(np.shares_memory(g, v) for v in given.values())
        g += 100.0
    assert not any(np.shares_memory(a, b) for a in grads.values() for b in grads.values() if a is not b)
    np.testing.assert_array_equal(x, np.arange(3.0))
    after = m.evaluate(given)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k])


def test_scalar_gradients_are_0d_arrays():
    m = graphc.compile("input x\nparam w = 2\nL = w * x")
    _, grads = m.loss_and_grad({"x": 3.0})
    assert isinstance(grads["w"], np.ndarray) and grads["w"].shape == () and grads["w"] == 3.0


def test_changing_an_evaluated_initial_param_does_not_change_the_next_call():
    m = graphc.compile("input x: [3]\nparam w: [3] = 1\nwt = w\nL = sum(w * x)")
    out = m.evaluate({"x": np.ones(3)})
    out["w"] += 5.0
    out["wt"] += 5.0
    np.testing.assert_array_equal(m.evaluate({"x": np.ones(3)})["w"], np.ones(3))
    assert m.loss_and_grad({"x": np.ones(3)})[0] == 3.0


def test_an_error_in_a_fused_statement_names_the_node_that_failed(plans_made):
    src = "input x: [n, 3]\nL = sum(exp(max(x, axis=0)))"
    m = graphc.compile(src, "model.gc")
    with pytest.raises(GraphcError) as info:
        m.evaluate({"x": np.zeros((0, 3))})
    e = info.value
    assert (e.span.line, e.span.col) == (2, 13) and "max" in e.message
    (plan,) = plans_made  # evaluate's plan
    assert len(plan.steps) == 1  # max was fused into L's statement
    with pytest.raises(GraphcError) as info:
        m.loss_and_grad({"x": np.zeros((0, 3))})
    assert (info.value.span.line, info.value.span.col) == (2, 13)


def test_an_error_after_other_statements_ran_names_the_node_that_failed(plans_made):
    m = graphc.compile("input x: [n]\ny = exp(x)\nL = sum(y) + 2 * max(y)", "model.gc")
    with pytest.raises(GraphcError) as info:
        m.evaluate({"x": np.zeros(0)})
    assert (info.value.span.line, info.value.span.col) == (3, 18) and "max" in info.value.message
    (plan,) = plans_made  # evaluate's plan
    assert len(plan.steps) == 2  # y ran; L's statement failed inside, at max


def test_a_value_for_a_computed_name_is_an_error_at_its_line():
    # (it was overwritten in silence, as --set's was: issue 11, item 13; evaluate's output is no input)
    m = graphc.compile("input x: [n]\nconst c = 2\ny = max(x)\nL = exp(y) + c", "model.gc")
    for given, line in (({"y": np.array(0.0)}, 3), ({"L": np.array(0.0)}, 4), ({"c": 3.0}, 2)):
        for call in (m.evaluate, m.loss_and_grad):
            with pytest.raises(GraphcError) as info:
                call({"x": np.zeros(2), **given})
            assert info.value.span.line == line and "only inputs and params take values" in info.value.hint
            assert ("a const" if line == 2 else f"computed by the model (line {line})") in info.value.message


def test_a_long_chain_is_cut_into_statements_python_can_compile(plans_made):
    depth = 400
    m = graphc.compile("input x: [2]\nL = sum(" + "sin(" * depth + "x" + ")" * depth + ")")
    x = np.array([0.3, -1.2])
    loss, grads = m.loss_and_grad({"x": x})
    g, every = m.trace({"x": x})
    assert loss == float(every[g.loss])
    np.testing.assert_array_equal(grads["x"], every[g.grads["x"]])
    before = len(plans_made)
    assert m.evaluate({"x": x})["L"] == loss
    forward = plans_made[before:]  # evaluate's plan
    assert len(forward) == 1
    assert 1 < len(forward[0].steps) < depth / 10  # fused, in pieces of bounded length


def test_values_in_another_order_reuse_the_plan(plans_made):
    m, values = mlp()
    loss, grads = m.loss_and_grad(values)
    loss2, grads2 = m.loss_and_grad(dict(reversed(values.items())))
    assert loss2 == loss
    assert len({id(p) for p in plans_made}) == 1  # planned once, for the first call
    for k in grads:
        np.testing.assert_array_equal(grads[k], grads2[k])


def test_a_call_unlike_the_last_one_takes_the_careful_path():
    """After a call, the next one with the same names and shapes goes straight to the plan: any other
    call must still be checked, converted and planned as a first call is."""
    m, values = mlp()
    loss, grads = m.loss_and_grad(values)
    for other in [
        {**values, "X": values["X"][:2], "T": values["T"][:2]},  # other shapes
        {k: v for k, v in values.items() if k != "b1"},  # a param left to its initial value (0 here)
        {**values, "X": values["X"].astype(np.float32).astype(np.float64).tolist()},  # not an array
        {**values, "X": np.asarray(values["X"], order="F")},  # the same numbers in another layout
        mlp(N=7)[1],  # other shapes, and other arrays
    ]:
        want = m.trace(other)
        got_loss, got = m.loss_and_grad(other)
        assert got_loss == float(want[1][want[0].loss])
        for w, i in want[0].grads.items():
            np.testing.assert_array_equal(got[w], want[1][i])
        assert m.loss_and_grad(values)[0] == loss  # and back
    with pytest.raises(GraphcError, match="`Xs`"):
        m.loss_and_grad({**values, "Xs": values["X"]})
    with pytest.raises(GraphcError, match="no value for input `T`"):
        m.loss_and_grad({k: v for k, v in values.items() if k != "T"})
    with pytest.raises(GraphcError, match="shape"):
        m.loss_and_grad({**values, "W1": values["W1"].T})


def test_values_that_are_not_float64_arrays_are_converted():
    m, values = mlp()
    loss, grads = m.loss_and_grad(values)
    loss2, grads2 = m.loss_and_grad({k: v.astype(np.float32).astype(np.float64).tolist() for k, v in values.items()})
    assert abs(loss2 - loss) < 1e-6
    with pytest.raises(GraphcError, match="`X`"):
        m.loss_and_grad({**values, "X": "abc"})
