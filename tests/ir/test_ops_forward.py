"""Every user-visible op's forward value against an independent NumPy reference.

The list of ops comes from graphc itself (``graphc.ops.FUNCTIONS`` and the parser's binary
operators), and ``test_every_user_op_is_tested`` fails when an op is added without a
reference here. Stability: the stable kernels stay finite and correct for |x| up to 1e4,
and the fragile forms SPEC §1 names are rewritten.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pytest
from gradtools import ops_tested_in_files

import graphc
from graphc import GraphcError
from graphc.frontend import builder, lalr
from graphc.ir import ops as O

SEED = 1234


def rng(*key):
    """A generator seeded by the test's own key: reproducible, independent between tests."""
    return np.random.default_rng([SEED, *[zlib.crc32(str(k).encode()) for k in key]])


def run(src: str, **values) -> dict:
    """Evaluate a model; every named value."""
    return graphc.compile(src).evaluate(values)


def close(got, want, rtol=1e-12, atol=1e-12):
    got = np.asarray(got)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# ---- independent references ----------------------------------------------------------------


def np_sigmoid(x):
    """1 / (1 + e^-x) = exp(-log(1 + e^-x)), via NumPy's logaddexp."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(under="ignore"):
        return np.exp(-np.logaddexp(0.0, -x))


def np_softplus(x):
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(under="ignore"):
        return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else (np.squeeze(out, axis=axis) if axis is not None else out.reshape(()))


def np_softmax(x, axis=-1):
    with np.errstate(under="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def positive(shape, key):
    return rng("pos", key, shape).uniform(0.1, 4.0, size=shape)


def anywhere(shape, key):
    """Normal values with exact zeros and small magnitudes sprinkled in (kinks of relu, step, abs)."""
    x = rng("any", key, shape).normal(scale=2.0, size=shape)
    flat = x.reshape(-1)
    flat[::3] = 0.0
    return x


# name -> (reference, domain)
UNARY = {
    "exp": (np.exp, anywhere),
    "log": (np.log, positive),
    "sqrt": (np.sqrt, positive),
    "abs": (np.abs, anywhere),
    "sin": (np.sin, anywhere),
    "cos": (np.cos, anywhere),
    "tanh": (np.tanh, anywhere),
    "sigmoid": (np_sigmoid, anywhere),
    "logistic": (np_sigmoid, anywhere),
    "relu": (lambda x: np.where(x > 0, x, 0.0), anywhere),
    "softplus": (np_softplus, anywhere),
    "softrelu": (np_softplus, anywhere),
    "step": (lambda x: np.where(x > 0, 1.0, 0.0), anywhere),
    "identity": (lambda x: x, anywhere),
    "square": (lambda x: x * x, anywhere),
}
# name -> (reference, domain of the second argument)
BINARY_FUNCTIONS = {
    "maximum": np.maximum,
    "minimum": np.minimum,
}
REDUCTIONS = {
    "sum": np.sum,
    "mean": np.mean,
    "max": np.max,
    "logsumexp": np_logsumexp,
}
NORMALISERS = {
    "softmax": np_softmax,
    "log_softmax": np_log_softmax,
}
SHAPE_FUNCTIONS = {"transpose": np.transpose}

OPERATORS = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "^": np.power,
    "**": np.power,
}
MATMUL = {"@": np.matmul}


def test_every_user_op_is_tested():
    tested = set(UNARY) | set(BINARY_FUNCTIONS) | set(REDUCTIONS) | set(NORMALISERS) | set(SHAPE_FUNCTIONS)
    tested |= ops_tested_in_files()  # the op families tested in files of their own
    assert tested == set(O.FUNCTIONS), "add a forward reference for new ops (or drop removed ones)"
    assert set(OPERATORS) | set(MATMUL) == set(builder.BINARY)


def test_spec_functions_and_aliases_are_all_present():
    spec = {
        "exp",
        "log",
        "sqrt",
        "abs",
        "sin",
        "cos",
        "tanh",
        "sigmoid",
        "logistic",
        "relu",
        "softplus",
        "softrelu",
        "step",
        "identity",
        "square",
        "maximum",
        "minimum",
        "sum",
        "mean",
        "max",
        "logsumexp",
        "softmax",
        "log_softmax",
        "transpose",
    }
    assert spec <= set(O.FUNCTIONS)


@pytest.mark.parametrize(
    "name", sorted(n for n, op in O.OPS.items() if not op.user and n not in O.FUNCTIONS and n not in lalr.RESERVED)
)
def test_internal_ops_are_not_callable_from_a_model(name):
    with pytest.raises(GraphcError, match="unknown function"):
        graphc.compile(f"y = {name}(x, x)\nL = sum(y)")


# ---- elementwise ---------------------------------------------------------------------------

SHAPES = [(), (1,), (5,), (3, 4), (2, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(name, shape):
    ref, domain = UNARY[name]
    x = domain(shape, name)
    v = run(f"y = {name}(x)\nL = sum(y)", x=x)
    close(v["y"], ref(x))
    close(v["L"], np.sum(ref(x)), rtol=1e-10)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_with_declared_shape_infers_it(name):
    m = graphc.compile(f"input x: [N, 3]\ny = {name}(x)\nL = sum(y)")
    shapes = {n: s.replace(" ", "") for n, _, s, _ in m.summary()}
    assert shapes["y"] == "[N,3]"


def test_step_is_a_hard_threshold_at_zero():
    x = np.array([-2.0, -1e-300, 0.0, 1e-300, 3.0])
    close(run("y = step(x)\nL = sum(y)", x=x)["y"], [0.0, 0.0, 0.0, 1.0, 1.0])


def test_relu_and_abs_at_zero():
    x = np.array([-1.0, 0.0, 2.0])
    v = run("r = relu(x)\na = abs(x)\nL = sum(r) + sum(a)", x=x)
    close(v["r"], [0.0, 0.0, 2.0])
    close(v["a"], [1.0, 0.0, 2.0])


BROADCAST_PAIRS = [
    ((), ()),
    ((4,), (4,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3, 4), (3, 4)),
    ((2, 1, 4), (3, 1)),
    ((1,), (5,)),
]


def _operands(op, sa, sb):
    a = rng("a", op, sa, sb).normal(size=sa)
    b = rng("b", op, sa, sb).normal(size=sb)
    if op in ("^", "**"):
        a = rng("a", op, sa, sb).uniform(0.2, 3.0, size=sa)
    if op == "/":
        b = np.sign(b + (b == 0)) * (np.abs(b) + 0.5)
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("op", sorted(OPERATORS))
def test_binary_operator(op, sa, sb):
    a, b = _operands(op, sa, sb)
    v = run(f"y = a {op} b\nL = sum(y)", a=a, b=b)
    close(v["y"], OPERATORS[op](a, b))


@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("name", sorted(BINARY_FUNCTIONS))
def test_two_argument_function(name, sa, sb):
    a, b = _operands(name, sa, sb)
    if a.size and b.size:  # ties too
        a.reshape(-1)[0] = 0.25
        b.reshape(-1)[0] = 0.25
    v = run(f"y = {name}(a, b)\nL = sum(y)", a=a, b=b)
    close(v["y"], BINARY_FUNCTIONS[name](a, b))


@pytest.mark.parametrize("sa, sb", BROADCAST_PAIRS, ids=str)
@pytest.mark.parametrize("op", ["+", "*", "maximum"])
def test_declared_shapes_infer_the_broadcast_shape(op, sa, sb):
    expr = "maximum(a, b)" if op == "maximum" else f"a {op} b"
    src = f"input a: [{', '.join(map(str, sa))}]\ninput b: [{', '.join(map(str, sb))}]\ny = {expr}\nL = sum(y)"
    shapes = {n: s.replace(" ", "") for n, _, s, _ in graphc.compile(src).summary()}
    assert shapes["y"] == "[" + ",".join(map(str, np.broadcast_shapes(sa, sb))) + "]"


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "^"])
def test_operator_with_a_number(op):
    x = rng("num", op).uniform(0.5, 2.0, size=(3, 2))
    v = run(f"y = x {op} 2.5\nz = 2.5 {op} x\nL = sum(y) + sum(z)", x=x)
    close(v["y"], OPERATORS[op](x, 2.5))
    close(v["z"], OPERATORS[op](2.5, x))


def test_negation():
    x = rng("neg").normal(size=(3, 4))
    close(run("y = -x\nL = sum(y)", x=x)["y"], -x)


# ---- matmul --------------------------------------------------------------------------------

MATMUL_SHAPES = [
    ((3,), (3,)),  # vector . vector -> scalar
    ((2, 3), (3,)),  # matrix . vector
    ((3,), (3, 4)),  # vector . matrix
    ((2, 3), (3, 4)),  # matrix . matrix
    ((1, 1), (1, 1)),
    ((5, 2, 3), (3, 4)),  # batched . matrix
    ((2, 3), (5, 3, 4)),  # matrix . batched
    ((5, 2, 3), (5, 3, 4)),  # batched . batched
    ((5, 2, 3), (3,)),  # batched . vector
    ((3,), (5, 3, 4)),  # vector . batched
    ((2, 1, 2, 3), (4, 3, 5)),  # broadcast batch dims
]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
def test_matmul(sa, sb):
    a = rng("mm-a", sa, sb).normal(size=sa)
    b = rng("mm-b", sa, sb).normal(size=sb)
    v = run("y = a @ b\nL = sum(y)", a=a, b=b)
    close(v["y"], np.matmul(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
def test_matmul_declared_shapes_infer_numpy_result_shape(sa, sb):
    src = f"input a: [{', '.join(map(str, sa))}]\ninput b: [{', '.join(map(str, sb))}]\ny = a @ b\nL = sum(y)"
    shapes = {n: s.replace(" ", "") for n, _, s, _ in graphc.compile(src).summary()}
    want = np.matmul(np.zeros(sa), np.zeros(sb)).shape
    assert shapes["y"] == "[" + ",".join(map(str, want)) + "]"


def test_matmul_symbolic_dims():
    src = "input X: [N, D]\nparam W: [D, H]\ny = X @ W\nL = sum(y)"
    shapes = {n: s.replace(" ", "") for n, _, s, _ in graphc.compile(src).summary()}
    assert shapes["y"] == "[N,H]"
    X, W = rng("X").normal(size=(7, 3)), rng("W").normal(size=(3, 2))
    close(run(src, X=X, W=W)["y"], X @ W)


# ---- reductions and normalisers ------------------------------------------------------------

RED_SHAPES = [(5,), (3, 4), (2, 3, 4)]


def _red_cases():
    for shape in RED_SHAPES:
        for axis in [None, *range(-len(shape), len(shape))]:
            for keepdims in (False, True):
                yield shape, axis, keepdims


@pytest.mark.parametrize("shape, axis, keepdims", list(_red_cases()), ids=str)
@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction(name, shape, axis, keepdims):
    x = rng("red", name, shape).normal(scale=3.0, size=shape)
    kw = ([f"axis={axis}"] if axis is not None else []) + (["keepdims=true"] if keepdims else [])
    call = f"{name}(x{''.join(', ' + k for k in kw)})"
    v = run(f"y = {call}\nL = sum(y)", x=x)
    close(v["y"], REDUCTIONS[name](x, axis=axis, keepdims=keepdims), rtol=1e-12)


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_of_a_scalar(name):
    close(run(f"y = {name}(x)", x=1.5)["y"], REDUCTIONS[name](np.float64(1.5)))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize(
    "axis, keepdims, want",
    [
        (None, False, "[]"),
        (None, True, "[1,1]"),
        (0, False, "[D]"),
        (-1, False, "[N]"),
        (1, True, "[N,1]"),
        (-2, True, "[1,D]"),
    ],
)
def test_reduction_declared_shape(name, axis, keepdims, want):
    kw = (f", axis={axis}" if axis is not None else "") + (", keepdims=true" if keepdims else "")
    src = f"input x: [N, D]\ny = {name}(x{kw})\nL = sum(y)"
    shapes = {n: s.replace(" ", "") for n, _, s, _ in graphc.compile(src).summary()}
    assert shapes["y"] == want


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_full_reduction_of_unknown_shape_is_a_scalar(name):
    """Without axis or keepdims a reduction is a scalar whatever its argument's shape."""
    shapes = {n: s.replace(" ", "") for n, _, s, _ in graphc.compile(f"input x\ny = {name}(x)").summary()}
    assert shapes["y"] == "[]"


def test_max_with_ties_and_infinities():
    x = np.array([[1.0, 3.0, 3.0], [-np.inf, -2.0, -np.inf]])
    close(run("y = max(x, axis=1)\nL = sum(y)", x=x)["y"], [3.0, -2.0])


@pytest.mark.parametrize("shape", RED_SHAPES + [(1,)], ids=str)
@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_normaliser_default_axis_is_last(name, shape):
    x = rng("norm", name, shape).normal(scale=3.0, size=shape)
    v = run(f"y = {name}(x)\nL = sum(y)", x=x)
    close(v["y"], NORMALISERS[name](x, axis=-1))


@pytest.mark.parametrize("shape", RED_SHAPES, ids=str)
@pytest.mark.parametrize("name", sorted(NORMALISERS))
def test_normaliser_every_axis(name, shape):
    x = rng("norm-ax", name, shape).normal(scale=3.0, size=shape)
    for axis in range(-len(shape), len(shape)):
        v = run(f"y = {name}(x, axis={axis})\nL = sum(y)", x=x)
        close(v["y"], NORMALISERS[name](x, axis=axis))


def test_softmax_rows_sum_to_one():
    x = rng("rows").normal(scale=5.0, size=(6, 5))
    y = run("y = softmax(x)\nL = sum(y)", x=x)["y"]
    close(y.sum(axis=-1), np.ones(6))
    assert np.all(y > 0)


# ---- shape functions -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (4,), (3, 4), (2, 3, 4)], ids=str)
@pytest.mark.parametrize("form", ["x.T", "transpose(x)"])
def test_transpose(form, shape):
    x = rng("T", shape).normal(size=shape)
    close(run(f"y = {form}\nL = sum(y)", x=x)["y"], np.transpose(x))


@pytest.mark.parametrize("form", ["x.T", "transpose(x)"])
def test_transpose_declared_shape(form):
    shapes = {
        n: s.replace(" ", "") for n, _, s, _ in graphc.compile(f"input x: [N, 3, 5]\ny = {form}\nL = sum(y)").summary()
    }
    assert shapes["y"] == "[5,3,N]"


# ---- SciPy cross-check ---------------------------------------------------------------------


def test_against_scipy():
    special = pytest.importorskip("scipy.special")
    x = rng("scipy").normal(scale=4.0, size=(4, 5))
    v = run(
        "a = sigmoid(x)\nb = softmax(x, axis=0)\nc = log_softmax(x)\nd = logsumexp(x, axis=1)\ne = logsumexp(x)\n"
        "f = softplus(x)\nL = sum(a) + sum(b) + sum(c) + sum(d) + e + sum(f)",
        x=x,
    )
    close(v["a"], special.expit(x))
    close(v["b"], special.softmax(x, axis=0))
    close(v["c"], special.log_softmax(x, axis=-1))
    close(v["d"], special.logsumexp(x, axis=1))
    close(v["e"], special.logsumexp(x))
    close(v["f"], special.logsumexp(np.stack([np.zeros_like(x), x]), axis=0))


# ---- numerical stability -------------------------------------------------------------------

EXTREME = np.array([-1e4, -1000.0, -745.0, -40.0, -1.0, 0.0, 1.0, 40.0, 745.0, 1000.0, 1e4])
EXTREME_ROWS = np.array(
    [
        [1e4, 0.0, -1e4],
        [-1e4, -1e4, -1e4],
        [1e4, 1e4, 0.0],
        [1000.0, 999.0, -1000.0],
        [-1e4, 1e4, -1e4 + 1.0],
    ]
)


@pytest.fixture
def strict_numpy():
    """Any NumPy floating-point warning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            yield


STABLE = [
    ("y = sigmoid(x)", EXTREME, lambda x: np_sigmoid(x)),
    ("y = logistic(x)", EXTREME, lambda x: np_sigmoid(x)),
    ("y = softplus(x)", EXTREME, lambda x: np_softplus(x)),
    ("y = softrelu(x)", EXTREME, lambda x: np_softplus(x)),
    ("y = softmax(x)", EXTREME_ROWS, lambda x: np_softmax(x, -1)),
    ("y = softmax(x, axis=0)", EXTREME_ROWS, lambda x: np_softmax(x, 0)),
    ("y = log_softmax(x)", EXTREME_ROWS, lambda x: np_log_softmax(x, -1)),
    ("y = log_softmax(x, axis=0)", EXTREME_ROWS, lambda x: np_log_softmax(x, 0)),
    ("y = logsumexp(x, axis=1)", EXTREME_ROWS, lambda x: np_logsumexp(x, 1)),
    ("y = logsumexp(x, axis=0, keepdims=true)", EXTREME_ROWS, lambda x: np_logsumexp(x, 0, True)),
    ("y = logsumexp(x)", EXTREME, lambda x: np_logsumexp(x)),
]


@pytest.mark.parametrize("src, x, ref", STABLE, ids=[s for s, _, _ in STABLE])
def test_stable_kernels_at_extremes(strict_numpy, src, x, ref):
    y = run(src + "\nL = sum(y)", x=x)["y"]
    assert np.all(np.isfinite(y))
    close(y, ref(x), rtol=1e-12, atol=1e-300)


def test_stable_kernel_exact_values():
    v = run("s = sigmoid(x)\np = softplus(x)\nL = sum(s) + sum(p)", x=np.array([-1e4, 0.0, 1e4]))
    close(v["s"], [0.0, 0.5, 1.0], atol=0)
    close(v["p"], [0.0, np.log(2.0), 1e4], atol=0)
    v = run("m = softmax(z)\nq = log_softmax(z)\nl = logsumexp(z)", z=np.array([1e4, -1e4, 0.0]))
    close(v["m"], [1.0, 0.0, 0.0], atol=0)
    close(v["q"], [0.0, -2e4, -1e4], atol=0)
    close(v["l"], 1e4, atol=0)
    close(run("l = logsumexp(z)", z=np.array([1e4, 1e4]))["l"], 1e4 + np.log(2.0))


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "log_softmax", "logsumexp"])
def test_stable_kernel_code_raises_no_floating_point_error(name):
    """The op's kernel itself (the code the interpreter runs and `emit` writes) is stable: checked
    outside the interpreter, which might silence NumPy."""
    from graphc.backends.numpy import dialect, runtime

    code = dialect.CODE[name].format("x", kw="")
    fn = eval(f"lambda x: {code}", {"np": np, **vars(runtime)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            for x in (EXTREME, EXTREME_ROWS, -EXTREME_ROWS):
                assert np.all(np.isfinite(fn(x)))


# log(softmax), log(sigmoid), log(sum(exp)) are rewritten before evaluation (SPEC §1)
Z = np.array([1000.0, -1000.0, 0.0])
Z2 = np.array([[1000.0, 1000.0, -1000.0], [-1000.0, -1000.0, -999.0]])
REWRITES = [
    ("y = log(softmax(z))", Z, np_log_softmax(Z)),
    ("y = log(softmax(z, axis=0))", Z2, np_log_softmax(Z2, axis=0)),
    ("y = log(softmax(z, axis=-1))", Z2, np_log_softmax(Z2, axis=-1)),
    ("y = log(sigmoid(z))", Z, -np_softplus(-Z)),
    ("y = log(logistic(z))", Z, -np_softplus(-Z)),
    ("y = log(sum(exp(z)))", Z, np_logsumexp(Z)),
    ("y = log(sum(exp(z), axis=1))", Z2, np_logsumexp(Z2, axis=1)),
    ("y = log(sum(exp(z), axis=0, keepdims=true))", Z2, np_logsumexp(Z2, axis=0, keepdims=True)),
    # the same forms written through named intermediate values, as the shipped examples do
    ("p = softmax(z)\ny = log(p)", Z2, np_log_softmax(Z2)),
    ("s = sigmoid(z)\ny = log(s)", Z, -np_softplus(-Z)),
    ("e = exp(z)\ns = sum(e)\ny = log(s)", Z, np_logsumexp(Z)),
]


@pytest.mark.parametrize("src, z, want", REWRITES, ids=[s.replace("\n", "; ") for s, _, _ in REWRITES])
def test_fragile_forms_are_rewritten(src, z, want):
    v = run(src + "\nL = sum(y)", z=z)
    assert np.all(np.isfinite(v["y"]))
    close(v["y"], want, rtol=1e-12, atol=1e-12)
    assert np.isfinite(v["L"])


def test_cross_entropy_with_confident_wrong_prediction_is_finite():
    Z = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]])
    T = np.array([[0.0, 1.0], [0.0, 1.0]])
    v = run("L = -mean(sum(T * log(softmax(Z)), axis=1))", Z=Z, T=T)
    close(v["L"], 1000.0, rtol=1e-12)
