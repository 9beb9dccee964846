"""The numba target (graphc emit --target numba): the same functions as the NumPy module, with the same numbers,
compiled once and cached on disk, so that another process loads the kernels instead of compiling them.

Numba compiles slowly (seconds a module), so the modules are made once for the whole file, in a cache folder
that test sessions share (pytest's temporary root: a second session loads them); the cache's own test has a
folder of its own. The big random run is marked slow."""

from __future__ import annotations

import ast
import collections
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from goldens import example_models
from hypothesis import HealthCheck, Phase, given, settings
from test_differential import agree, arg, call_hvp, cases

import graphc
from graphc import GraphcError

numba = pytest.importorskip("numba")

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = example_models()
SLOW_TO_COMPILE = {"digits_cnn"}  # 4-d array expressions: Numba (LLVM) takes about a minute
TIGHT, LOOSE = 1e-10, 2e-3


@pytest.fixture(scope="module", autouse=True)
def cache_folder(tmp_path_factory):
    """XDG_CACHE_HOME for this file's modules: under pytest's temporary root, which outlives a session."""
    folder = tmp_path_factory.getbasetemp().parent / "graphc-numba-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


_MODELS: dict[str, graphc.Model] = {}


def model(path: Path) -> graphc.Model:
    """One Model per example for the whole file: Model.compiled keeps each module it made."""
    if path.stem not in _MODELS:
        _MODELS[path.stem] = graphc.load(path)
    return _MODELS[path.stem]


def kw(values: dict) -> dict:
    return {arg(k): v for k, v in values.items()}


def assert_same(got: dict, want: dict, rtol: float, what: str):
    assert set(got) == set(want), f"{what}: {sorted(got)} != {sorted(want)}"
    for k in want:
        agree(got[k], want[k], rtol, f"{what} [{k!r}]")


def assert_dtype(values: dict, dtype: str, integers=()):
    for k, v in values.items():
        if k not in integers:
            assert np.asarray(v).dtype == dtype, f"{k} is {np.asarray(v).dtype}, not {dtype}"


def check_module(m: graphc.Model, values: dict, dtype: str = "float64", rtol: float = TIGHT) -> dict:
    """forward and loss_and_grad of m's numba module against its NumPy module; forward's values."""
    mod, ref = m.compiled(target="numba", dtype=dtype), m.compiled(dtype=dtype)
    forward = mod.forward(**kw(values))
    assert_same(forward, ref.forward(**kw(values)), rtol, "forward")
    loss, grads = mod.loss_and_grad(**kw(values))
    want_loss, want = ref.loss_and_grad(**kw(values))
    agree(loss, want_loss, rtol, "loss")
    assert_same(grads, want, rtol, "gradient")
    assert_dtype({**grads, "loss": loss}, dtype)
    return forward


# ---- the examples ---------------------------------------------------------------------------------------


def _marks(path):
    return [pytest.mark.slow] if path.stem in SLOW_TO_COMPILE else []


@pytest.mark.parametrize("path", [pytest.param(p, marks=_marks(p)) for p in EXAMPLES], ids=lambda p: p.stem)
def test_every_example_computes_what_the_numpy_module_does(path, example_values):
    m = model(path)
    check_module(m, example_values(path, m))


@pytest.mark.parametrize("name", ["two_layer", "softmax_regression", "embedding"])
def test_a_float32_module_computes_in_float32(name, example_values):
    path = REPO / "examples" / f"{name}.gc"
    m = model(path)
    values = example_values(path, m)
    forward = check_module(m, values, "float32", LOOSE)
    assert_dtype(forward, "float32", integers={"tokens", "labels"})


@pytest.mark.parametrize("name", ["two_layer", "logistic_least_squares", "softmax_regression"])
def test_order_2_hvp_and_hessian_are_the_numpy_modules(name, example_values):
    path = REPO / "examples" / f"{name}.gc"
    m = model(path)
    values = kw(example_values(path, m))
    mod, ref = m.compiled(target="numba", order=2), m.compiled(order=2)
    loss, grads = mod.loss_and_grad(**values)
    assert_same(grads, ref.loss_and_grad(**values)[1], TIGHT, "order-2 gradient")
    w = (m.params or m.inputs)[0]
    direction = np.linspace(-1.0, 1.0, np.size(values[w])).reshape(np.shape(values[w]))
    agree(call_hvp(mod, direction, values), call_hvp(ref, direction, values), TIGHT, "hvp")
    agree(mod.hessian(**values), ref.hessian(**values), TIGHT, "hessian")


# ---- the module's contract: names, defaults, scalars, integers ------------------------------------------

AWKWARD = """
input lambda: [N, 2]
input np: [N]
param numba: [2] = 0.5
param _exp: [] = 1
param _sigmoid = 2
param out = 0
const _float32 = 3
tmp1 = lambda @ numba + _exp
_loss_and_grad = sigmoid(tmp1) * _sigmoid + out
_forward = max(exp(tmp1 - np), axis=0)
L = mean((_loss_and_grad - np)^2) + _forward / _float32
"""


def test_names_that_are_python_keywords_or_the_modules_own_stay_the_models():
    m = graphc.compile(AWKWARD)
    source = m.emit(target="numba")
    ast.parse(source)
    values = {"lambda": [[0.5, -1.0], [2.0, 0.25], [0.0, 1.0]], "np": [1.0, 0.0, -0.5]}
    check_module(m, values)
    check_module(m, {**values, "numba": [0.1, -0.2], "_exp": 0.5, "_sigmoid": 1.5, "out": -1.0})


def test_omitted_params_take_their_defaults_and_dims_come_from_the_arguments():
    m = graphc.compile("input x: [N, D]\nparam w: [D] = 0.5\nparam b = -1\ny = x @ w + b\nL = sum(y^2)")
    mod = m.compiled(target="numba")
    x = np.arange(6.0).reshape(3, 2)
    loss, grads = mod.loss_and_grad(x=x)
    agree(loss, np.sum((x @ np.full(2, 0.5) - 1) ** 2), TIGHT, "loss with the defaults")
    assert np.shape(grads["w"]) == (2,) and np.shape(grads["b"]) == ()
    check_module(m, {"x": x})
    check_module(m, {"x": x[:, :1], "w": [2.0]})  # D = 1 from the arguments given


def test_scalars_lists_and_integer_inputs_as_numpy_users_pass_them():
    m = graphc.load(REPO / "examples" / "embedding.gc")
    tokens = [[0, 3, 5], [23, 1, 1]]
    check_module(m, {"tokens": tokens, "labels": [2.0, 0.0], "E": np.ones((24, 8)) * 0.1})
    E = np.ones((24, 8))
    forward = m.compiled(target="numba").forward(tokens=np.array(tokens, dtype=np.int32), labels=[2, 0], E=E)
    assert forward["tokens"].dtype.kind == "i" and forward["labels"].dtype.kind == "i"
    with pytest.raises(ValueError, match="`labels` must be integers, got 0.5"):
        m.compiled(target="numba").forward(tokens=tokens, labels=[0.5, 1], E=E)
    with pytest.raises(IndexError, match="one_hot's labels are out of range"):
        m.compiled(target="numba").forward(tokens=tokens, labels=[3, 0], E=E)
    s = graphc.load(REPO / "examples" / "logistic_least_squares.gc")
    check_module(s, {"x": 1.5, "t": True, "w": 1, "b": np.float32(-1.0)})


# ---- how the code is compiled ------------------------------------------------------------------------------


MLP = """
input X: [N, 5]
input T: [N, 3]
param W1: [5, 4]
param b1: [4] = 0.1
param W2: [4, 3]
param b2: [3] = -0.2
A = sigmoid(X @ W1 + b1)
Z = A @ W2 + b2
L = -mean(sum(T * log_softmax(Z), axis=1))
"""


def _random(m: graphc.Model, seed: int = 0, **dims) -> dict:
    """Random values (normal) for m's inputs and params at the dims given."""
    rng = np.random.default_rng(seed)
    g = m.graph
    out = {}
    for name in m.inputs + m.params:
        shape = [dims.get(d, d) for d in g[g.names[name]]["attrs"]["declared"] or ()]
        out[name] = rng.standard_normal(shape)
    return out


def _loss_and_grad_agree(source: str, **dims) -> str:
    """The numba module of the model against its NumPy module, forward and loss_and_grad, to 1e-10: its source."""
    m = graphc.compile(source)
    check_module(m, _random(m, **dims))
    check_module(m, _random(m, seed=1, **dims), "float32", LOOSE)
    return m.emit(target="numba")


def _steps(source: str) -> str:
    return source[source.index("def _loss_and_grad(") :]


def test_an_elementwise_chain_is_one_loop_stored_into_the_product_it_starts_from():
    steps = _steps(_loss_and_grad_agree(MLP, N=7))
    assert "A = X @ W1  # line 8\n    for i in range(N):\n        for j in range(4):\n" in steps
    assert "A[i, j] = _sigmoid(A[i, j] + b1[j])" in steps  # (the bias broadcast: read at the trailing index)
    assert "Z[i, j] = Z[i, j] + b2[j]" in steps
    # the sums of a loop's value are added up in its loop: b2_bar and b1_bar
    assert "b2_bar[j] += Z_bar[i, j]" in steps and "b1_bar[j] += " in steps
    assert ".sum(" not in steps and "np.expand_dims" not in steps


def test_a_sum_of_a_chain_is_one_loop_with_no_array_of_the_chain():
    source = """
input x: [N, 3]
input s: [N, 1]
param b: [3] = 0.5
y = tanh(x * 2 + b) * s
L = sum(sin(y) * x) + mean(y * s)
"""
    steps = _steps(_loss_and_grad_agree(source, N=6))
    assert "+= np.sin(y[i, j]) * x[i, j]\n" in steps, steps
    assert "s[i, 0]" in steps  # (a dim of 1 broadcast: read at 0)
    assert "np.broadcast_to" not in steps and "np.expand_dims" not in steps  # (a mean's gradient: its number)


def test_a_product_used_again_is_not_written_in_place():
    source = """
input x: [N, 3]
param W: [3, 4]
param b: [4] = 0.1
H = x @ W
A = sigmoid(H + b)
B = sigmoid(x @ W - b)
L = sum(A * H) + sum(B)
"""
    steps = _steps(_loss_and_grad_agree(source, N=5))
    assert "H = x @ W" in steps and "A = np.empty((N, 4)" in steps and "A[i, j] = _sigmoid(H[i, j] + b[j])" in steps
    assert "B = np.empty((N, 4)" in steps  # (x @ W is H, used by A too)


def test_a_model_name_that_hides_range_keeps_array_expressions():
    source = "input range: [N, 3]\nparam w: [3] = 0.5\ny = sigmoid(range * w)\nL = sum(y * y)\n"
    steps = _steps(_loss_and_grad_agree(source, N=4))
    assert "for i in" not in steps


def test_shapes_unknown_when_emitting_keep_array_expressions():
    source = "input x: [N, 3]\ny = reshape(x, [-1])\nz = sigmoid(y * 2)\nL = sum(z * z)\n"
    m = graphc.compile(source)
    if m.graph[m.graph.names["z"]]["shape"] is not None:
        pytest.skip("the reshape's shape is known")
    steps = _steps(m.emit(target="numba"))
    assert "for i in" not in steps
    check_module(m, _random(m, N=4))


def _example(path: Path) -> dict:
    from conftest import EXAMPLE_DATA

    from graphc import data

    m = model(path)
    values = {k: v for k, v in data.load_npz(str(path.parent / EXAMPLE_DATA[path.name])).items() if k in m.names}
    full = m.evaluate(values, seed=3)
    return {**values, **{p: full[p] for p in m.params}}


def test_the_emitted_module_imports_numpy_and_numba_only_and_is_ruff_clean(tmp_path):
    for path in EXAMPLES:
        source = model(path).emit(target="numba", module_name=path.stem)
        tree = ast.parse(source)
        imports = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        assert imports == {"numpy", "numba"}, path.stem
        (tmp_path / f"{path.stem}.py").write_text(source, encoding="utf-8")
    for args in (["format", "--check", "--isolated"], ["check", "--isolated"]):
        r = subprocess.run([sys.executable, "-m", "ruff", *args, str(tmp_path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


LOAD = """
import json, sys
import graphc
m = graphc.load(sys.argv[1])
mod = m.compiled(target="numba")
import numpy as np
x = np.array([1.5]); loss, grads = mod.loss_and_grad(x=x, t=np.array([1.0]))
stats = mod._loss_and_grad.stats
print(json.dumps([float(loss), sum(stats.cache_hits.values()), sum(stats.cache_misses.values()), mod.__file__]))
"""


def test_a_second_process_loads_the_compiled_kernels_from_the_cache(tmp_path):
    (tmp_path / "m.gc").write_text("input x: [1]\ninput t: [1]\nparam w = 2\ny = sigmoid(w * x)\nL = sum((y - t)^2)")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    runs = []
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-c", LOAD, str(tmp_path / "m.gc")], env=env, capture_output=True, text=True, check=False
        )
        assert r.returncode == 0, r.stderr
        runs.append(ast.literal_eval(r.stdout.strip().splitlines()[-1]))
    (loss1, hits1, misses1, file1), (loss2, hits2, misses2, file2) = runs
    assert loss1 == loss2 and file1 == file2
    assert Path(file1).parent == tmp_path / "cache" / "graphc" / "numba"
    assert (hits1, misses1) == (0, 1), "the first process compiles"
    assert (hits2, misses2) == (1, 0), "the second process loads what the first compiled"
    assert list((Path(file1).parent / "__pycache__").glob(f"{Path(file1).stem}.*.nbi")), "no cache index"


def test_an_op_the_dialect_lacks_is_a_located_error_naming_it(tmp_path, monkeypatch):
    """(Every op has Numba code: an op taken out of the dialect stands for one a target lacks.)"""
    (tmp_path / "m.gc").write_text("input x: [3]\n\ny = tanh(x)\nL = sum(y)\n")
    code = (
        "import sys; from graphc.backends.numba import dialect; del dialect.CODE['tanh']; "
        "from graphc.app.cli import console; sys.argv = ['graphc', 'emit', 'm.gc', '--target', 'numba']; console()"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert r.returncode == 1, r.stderr
    assert "m.gc:3:5: error: the numba target cannot compute `tanh`" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    from graphc.backends.numba import dialect

    monkeypatch.delitem(dialect.CODE, "tanh")
    with pytest.raises(GraphcError, match="the numba target cannot compute `tanh`") as e:
        graphc.compile("input x: [3]\ny = tanh(x)\nL = sum(y)").emit(target="numba")
    assert e.value.span.line == 2 and "numpy" in e.value.hint


def test_batched_matmul_is_a_located_error_at_emit_time_not_a_typing_error_at_the_call(tmp_path):
    """Numba's @ is of vectors and matrices: a 3-d operand is refused when emitting, at its line."""
    (tmp_path / "m.gc").write_text("input A: [2, 4, 3]\ninput B: [3, 2]\nL = sum(A @ B)\n")
    r = subprocess.run(
        [sys.executable, "-m", "graphc", "emit", "m.gc", "--target", "numba"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "m.gc:3:9: error: the numba target cannot compute `@` of arrays of more than 2 dims" in r.stderr, r.stderr
    assert "emit it for" in r.stderr


def test_a_stack_of_scalars(tmp_path):
    """Inputs are 0-d arrays and computed scalars floats in a kernel: np.array([...]) takes neither as it is."""
    m = graphc.compile("input a: []\ninput b: []\nc = sum(a * b)\nL = sum(stack(a, b, c) * stack(1, 2, 3))\n")
    got = m.compiled(["a", "b"], target="numba").loss_and_grad(a=1.5, b=2.0)
    want = m.loss_and_grad({"a": 1.5, "b": 2.0}, wrt=["a", "b"])
    assert got[0] == want[0] and all(float(got[1][k]) == float(want[1][k]) for k in ("a", "b"))


NO_NUMBA = """
import sys
sys.modules["numba"] = None  # (as if it were not installed)
import graphc
m = graphc.compile("input x: [2]\\nL = sum(sigmoid(x))")
assert "import numba" in m.emit(target="numba")
try:
    m.compiled(target="numba")
except graphc.GraphcError as e:
    print(e.message, "|", e.hint)
"""


def test_emitting_needs_no_numba_and_loading_without_it_says_so():
    r = subprocess.run(
        [sys.executable, "-c", NO_NUMBA], env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "the numba target's module needs Numba, which is not installed | pip install numba"


# ---- random models: the differential test's generator -----------------------------------------------------


def run_random_models(n: int) -> collections.Counter:
    """Random models through the numba module against the NumPy module: {"ran": k, "skipped: <why>": k}."""
    counts = collections.Counter()

    @settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # (no shrinking: each example compiles for seconds)
        report_multiple_bugs=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(cases())
    def run(case):
        m = graphc.compile(case.src)
        try:
            m.compiled().forward(**kw(case.args))
        except (ValueError, IndexError, FloatingPointError):
            counts["skipped: the NumPy module refuses the values"] += 1
            return
        try:
            m.compiled(target="numba")
        except GraphcError as e:  # an op the numba dialect lacks
            counts[f"skipped: {str(e).split(chr(10))[0]}"] += 1
            return
        check_module(m, case.args)
        counts["ran"] += 1

    run()
    return counts


def test_random_models_compute_what_the_numpy_module_does():
    counts = run_random_models(12)
    assert counts["ran"] >= 0.9 * sum(counts.values()), counts


@pytest.mark.slow
def test_many_random_models_compute_what_the_numpy_module_does():
    counts = run_random_models(60)
    assert counts["ran"] >= 0.9 * sum(counts.values()), counts


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_runtime_s_exp_is_numpy_s_to_an_ulp(dtype):
    """runtime.py's vectorising e^x (through a module's exp) against NumPy's in float64 (rounded once to
    float32), over the whole range and at its ends: the clamps, subnormal results, infinities and NaN."""
    finfo = np.finfo(dtype)
    rng = np.random.default_rng(0)
    hi, lo = np.log(finfo.max), np.log(finfo.smallest_subnormal)
    x = np.concatenate(
        [
            rng.uniform(lo - 5, hi + 2, 20_000),
            rng.normal(0, 3, 20_000),
            [-746.0, -745.2, -745.1, -744.4, -708.4, -1000, 0.0, -0.0, 1e-300, -1e-300, 709.78, 709.79, 710, 800],
            [np.inf, -np.inf, np.nan, hi, -hi, np.log(finfo.tiny), lo],
        ]
    ).astype(dtype)
    module = graphc.compile("input x: [K]\ny = exp(x)\nL = sum(y)\n").compiled(dtype=dtype, target="numba")
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        got, want = module.forward(x=x)["y"], np.exp(x.astype(np.float64)).astype(dtype)
    assert got.dtype == dtype
    spacing = np.spacing(np.abs(want)).astype(np.float64)
    ulps = np.abs(got.astype(np.float64) - want) / np.where(spacing > 0, spacing, 1)
    ok = (got == want) | (np.isnan(got) & np.isnan(want)) | (ulps <= 1)
    assert ok.all(), list(zip(x[~ok][:5], got[~ok][:5], want[~ok][:5]))
