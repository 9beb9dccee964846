"""The array-api target (issue 14, items 1-2): one module, every array library that is installed.

Each shipped example runs through `--target array-api` on NumPy, array-api-strict (the standard's
reference implementation: the module uses nothing else), PyTorch, JAX (x64) and Dask (chunked along the
example axis, lazy until computed), and equals the NumPy target to 1e-10. CUDA and CuPy run where a GPU
is. The random models of tests/test_differential.py go through it there too.
"""

from __future__ import annotations

import numpy as np
import pytest
from arraylibs import LIBRARIES, Library
from goldens import example_models

import graphc
from graphc import GraphcError

pytest.importorskip("array_api_compat")

RTOL = 1e-10


@pytest.fixture(scope="module")
def modules():
    """Compiled modules, shared by the tests: (path, target, dtype) -> (Model, module)."""
    cache = {}

    def get(path, target="array-api", dtype="float64"):
        key = (path, target, dtype)
        if key not in cache:
            m = graphc.load(path)
            cache[key] = m, m.compiled(dtype=dtype, target=target)
        return cache[key]

    return get


def _given(lib: Library, values: dict, model) -> dict:
    """The values as the library's arrays: inputs as data (chunked, for Dask), params whole."""
    return {k: lib.to(v, data=k in model.inputs) for k, v in values.items()}


def _close(got, want, lib: Library, what: str):
    got = np.asarray(got) if isinstance(got, float) else lib.back(got)  # (a named constant: a Python float)
    assert got.shape == np.shape(want), what
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("lib", LIBRARIES)
@pytest.mark.parametrize("path", example_models(), ids=lambda p: p.stem)
def test_every_example_agrees_with_the_numpy_target(path, lib, modules, example_values):
    m, mod = modules(path)
    _, ref = modules(path, "numpy")
    values = example_values(path, m)
    given = _given(lib, values, m)
    loss, grads = mod.loss_and_grad(**given)
    want_loss, want = ref.loss_and_grad(**values)
    if lib.array_type is not None:  # the library's own arrays come back, Dask's still lazy
        assert all(isinstance(g, lib.array_type) for g in grads.values())
    _close(loss, want_loss, lib, "loss")
    assert grads.keys() == want.keys()
    for k in want:
        _close(grads[k], want[k], lib, k)
    fwd, want_fwd = mod.forward(**given), ref.forward(**values)
    assert fwd.keys() == want_fwd.keys()
    for k in want_fwd:
        _close(fwd[k], want_fwd[k], lib, k)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_omitted_params_are_made_in_the_library_of_the_other_arguments(lib, modules, example_values):
    path = next(p for p in example_models() if p.stem == "two_layer")
    m, mod = modules(path)
    _, ref = modules(path, "numpy")
    values = {k: v for k, v in example_values(path, m).items() if k not in ("b1", "b2")}
    loss, grads = mod.loss_and_grad(**_given(lib, values, m))
    want_loss, want = ref.loss_and_grad(**values)
    if lib.array_type is not None:
        assert isinstance(grads["b1"], lib.array_type)
    _close(loss, want_loss, lib, "loss")
    for k in want:
        _close(grads[k], want[k], lib, k)


def test_dask_data_with_numpy_params_is_taken_into_dask_and_stays_lazy(modules, example_values):
    da = pytest.importorskip("dask.array")
    path = next(p for p in example_models() if p.stem == "digits_mlp")
    m, mod = modules(path)
    _, ref = modules(path, "numpy")
    values = example_values(path, m)
    given = {k: da.from_array(v, chunks=(90, *v.shape[1:])) if k in m.inputs else v for k, v in values.items()}
    loss, grads = mod.loss_and_grad(**given)
    assert isinstance(loss, da.Array) and all(isinstance(g, da.Array) for g in grads.values())
    assert given["X"].numblocks[0] == 4
    want_loss, want = ref.loss_and_grad(**values)
    np.testing.assert_allclose(loss.compute(), want_loss, rtol=RTOL)
    for k in want:
        np.testing.assert_allclose(grads[k].compute(), want[k], rtol=RTOL, atol=1e-14)


def test_float32_stays_float32_on_torch(modules, example_values):
    torch = pytest.importorskip("torch")
    path = next(p for p in example_models() if p.stem == "digits_cnn")
    m, mod = modules(path, dtype="float32")
    _, ref = modules(path, "numpy")
    values = example_values(path, m)
    loss, grads = mod.loss_and_grad(**{k: torch.asarray(v) for k, v in values.items()})
    want_loss, want = ref.loss_and_grad(**values)
    assert loss.dtype == torch.float32 and all(g.dtype == torch.float32 for g in grads.values())
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-4)
    for k in want:
        np.testing.assert_allclose(grads[k].numpy(), want[k], rtol=2e-3, atol=1e-5)


def test_every_example_s_module_imports_only_array_api_compat_and_is_ruff_clean(tmp_path):
    import ast
    import subprocess
    import sys

    for path in example_models():
        text = graphc.load(path).emit(target="array-api", order=2 if path.stem != "digits_cnn" else 1)
        (tmp_path / f"{path.stem}.py").write_text(text, encoding="utf-8")
        tree = ast.parse(text)
        names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names]
        assert {n.split(".")[0] for n in names} <= {"array_api_compat", "importlib"}, path.stem  # (stdlib)
    for args in (["format", "--check", "--isolated"], ["check", "--isolated"]):
        r = subprocess.run([sys.executable, "-m", "ruff", *args, str(tmp_path)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("lib", LIBRARIES)
def test_order_two_hvp_and_hessian_agree_with_the_numpy_target(lib, example_values):
    path = next(p for p in example_models() if p.stem == "logistic_least_squares_l2")
    m = graphc.load(path)
    mod, ref = m.compiled(order=2, target="array-api"), m.compiled(order=2)
    values = example_values(path, m)
    w = m.params[0]
    direction = np.linspace(-1, 1, np.size(values[w])).reshape(np.shape(values[w]))
    given = _given(lib, values, m)
    _close(mod.hvp(lib.to(direction), **given), ref.hvp(direction, **values), lib, "hvp")
    _close(mod.hessian(**given), ref.hessian(**values), lib, "hessian")


def test_names_that_shadow_the_module_s_own_are_renamed():
    src = (
        "input xp: [3]; input device: [3]; param math = 2; param array_api_compat: [3] = 1; const _sigmoid = 3\n"
        "L = sum(sigmoid(math * xp + device) * array_api_compat) * _sigmoid"
    )
    m = graphc.compile(src)
    mod, ref = m.compiled(target="array-api"), m.compiled()
    v = {"xp": np.array([0.5, -1.0, 2.0]), "device": np.array([1.0, 0.0, -1.0])}
    loss, grads = mod.loss_and_grad(**v)
    want_loss, want = ref.loss_and_grad(**v)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
    for k in want:
        np.testing.assert_allclose(grads[k], want[k], rtol=1e-13)


def test_indexing_with_negative_steps_and_gathering_run_on_torch():
    torch = pytest.importorskip("torch")
    src = (
        "input X: [N, 5]; input idx: [M]; param E: [3, 3]\n"
        "Y = take(X[::-1, 4:0:-2], idx, axis=1)\n"
        "L = sum(Y * Y) + sum(X[..., ::-2] @ E)"
    )
    m = graphc.compile(src)
    mod, ref = m.compiled(target="array-api"), m.compiled()
    rng = np.random.default_rng(0)
    v = {"X": rng.normal(size=(4, 5)), "idx": np.array([1, 0, 1, -1]), "E": rng.normal(size=(3, 3))}
    loss, grads = mod.loss_and_grad(**{k: torch.asarray(a) for k, a in v.items()})
    want_loss, want = ref.loss_and_grad(**v)
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-12)
    for k in want:
        np.testing.assert_allclose(grads[k].numpy(), want[k], rtol=1e-12)


def test_an_index_out_of_range_is_an_index_error_where_values_are_at_hand():
    m = graphc.compile("input X: [N, 3]; input idx: [M]; L = sum(take(X, idx, axis=1))")
    mod = m.compiled(target="array-api")
    with pytest.raises(IndexError, match="index 3 is out of range for axis 1 of size 3"):
        mod.loss_and_grad(X=np.ones((2, 3)), idx=np.array([0, 3]))


def test_the_command_line_writes_the_array_api_module(tmp_path):
    from clitools import run_graphc

    (tmp_path / "m.gc").write_text("z = w*x + b; y = sigmoid(z); L = 0.5*(y - t)^2")
    r = run_graphc("emit", "m.gc", "--target", "array-api", "-o", "m.py", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "m.py").read_text()
    assert "import array_api_compat" in text and "import numpy" not in text and "xp, device = _namespace(" in text


def test_emit_help_lists_every_target_with_a_line_each():
    from clitools import run_graphc

    r = run_graphc("emit", "--help")
    assert r.returncode == 0
    for target in graphc.backends.targets():
        assert target in r.stdout


def test_a_model_is_refused_at_emit_time_for_a_target_that_lacks_its_op(monkeypatch):
    from graphc.backends.array_api import dialect

    monkeypatch.delitem(dialect.CODE, "softplus")
    with pytest.raises(GraphcError, match="the array-api target cannot compute `softplus`") as e:
        graphc.compile("input x: [3]\nL = sum(softplus(x))").emit(target="array-api")
    assert e.value.span.line == 2 and "numpy" in e.value.hint


@pytest.mark.parametrize("path", example_models(), ids=lambda p: p.stem)
def test_the_functions_are_pure_so_jax_jit_compiles_them(path, modules, example_values):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    m, mod = modules(path)
    _, ref = modules(path, "numpy")
    values = example_values(path, m)
    loss, grads = jax.jit(mod.loss_and_grad)(**{k: jax.numpy.asarray(v) for k, v in values.items()})
    want_loss, want = ref.loss_and_grad(**values)
    np.testing.assert_allclose(float(loss), want_loss, rtol=RTOL)
    for k in want:
        np.testing.assert_allclose(np.asarray(grads[k]), want[k], rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("lib", LIBRARIES)
def test_an_index_naming_fewer_axes_than_the_array_has_runs_everywhere(lib):
    # (the standard, and array-api-strict, want every axis named: stack's gradient took h[0] of a 3-d array)
    m = graphc.compile("param w: [1, 2]\nh = stack(w, 2 * w, axis=0)\nL = sum(h[1] * h[0, ...]) + sum(h[0])")
    mod, ref = m.compiled(target="array-api"), m.compiled()
    w = np.array([[-2.0, 0.5]])
    loss, grads = mod.loss_and_grad(w=lib.to(w))
    want_loss, want = ref.loss_and_grad(w=w)
    _close(loss, want_loss, lib, "loss")
    _close(grads["w"], want["w"], lib, "w")


@pytest.mark.parametrize("lib", LIBRARIES)
def test_where_between_named_constants_runs_everywhere(lib):
    # (named constants are arrays of the function's library: where(x, c, c) once asked full_like for a number)
    m = graphc.compile("input x: [2]\nconst c = 0.5\nv = x + where(x, c, 2 * c) + where(x > 0, 1, 0)\nL = sum(v * v)")
    mod, ref = m.compiled(target="array-api"), m.compiled()
    x = np.array([-2.0, 0.0])
    loss, grads = mod.loss_and_grad(x=lib.to(x))
    want_loss, want = ref.loss_and_grad(x=x)
    _close(loss, want_loss, lib, "loss")
    _close(grads["x"], want["x"], lib, "x")


@pytest.mark.parametrize("key", ["-10:2", "10:", ":10", "1:-10", "-10:", "::2"])
@pytest.mark.parametrize("lib", LIBRARIES)
def test_a_slice_past_the_ends_of_a_known_axis_is_clamped_as_python_does(key, lib):
    # (the standard leaves out-of-bounds starts unspecified; array-api-strict refuses them: a differential hunt)
    _agree(f"param Z: [4, 3]\nL = sum(Z[{key}]^2) + sum(Z)", {"Z": np.arange(12.0).reshape(4, 3) / 7}, lib)


def _agree(src: str, values: dict, lib: Library):
    """The array-api module of src on lib's arrays equals the NumPy target's loss and gradients."""
    m = graphc.compile(src)
    mod, ref = m.compiled(target="array-api"), m.compiled()
    loss, grads = mod.loss_and_grad(**{k: lib.to(v) for k, v in values.items()})
    want_loss, want = ref.loss_and_grad(**values)
    _close(loss, want_loss, lib, "loss")
    assert grads.keys() == want.keys()
    for k in want:
        _close(grads[k], want[k], lib, k)


# A loss that is an op's value itself: the gradient seed, the number 1.0, reaches the op's adjoint, which
# must make an array of it (the slow differential run found L = sum(w[0, 0]) on array-api-strict).
_SEEDED = {
    "index": ("param w: [1, 1]\nL = w[0, 0]", {"w": [[-2.0]]}),
    "index of a sum": ("param w: [1, 1]\nz = w[0, 0]\nL = sum(z)", {"w": [[-2.0]]}),
    "index, negative step": ("param w: [3]\nL = w[::-1][0]", {"w": [1.0, 2.0, 3.0]}),
    "take": ("param w: [3]\ninput i: []\nL = take(w, i)", {"w": [1.0, 2.0, 3.0], "i": 2}),
    "reshape": ("param w: [1, 1]\nL = reshape(w, [])", {"w": [[-2.0]]}),
    "max": ("param w: [3]\nL = max(w)", {"w": [1.0, 3.0, 2.0]}),
    "logsumexp": ("param w: [3]\nL = logsumexp(w)", {"w": [1.0, 3.0, 2.0]}),
    "norm": ("param w: [3]\nL = norm(w)", {"w": [1.0, 3.0, 2.0]}),
    "prod": ("param w: [3]\nL = prod(w)", {"w": [1.0, 3.0, 2.0]}),
    "std": ("param w: [3]\nL = std(w)", {"w": [1.0, 3.0, 2.0]}),
    "dot": ("param w: [3]\nL = w @ w", {"w": [1.0, 3.0, 2.0]}),
    "a number's op": ("param w: []\nL = sigmoid(transpose(w))", {"w": 0.5}),
    "where": ("param w: []\nL = where(w > 0, w, 2 * w)", {"w": -0.5}),
    "clip": ("param w: []\nL = clip(w, 0, 1)", {"w": 0.5}),
    # a signal that is the fan-out's seeds summed, y_bar = 1.0 + 1.0: a number too (CI's differential run)
    "seeds summed, where": ("param w: []\ny = relu(exp(w))\nz = y\nL = sum(y) + sum(z)", {"w": -2.0}),
    "seeds summed, index": ("param w: [1, 1]\nv = w[0, 0]\nu = v\nL = v + u", {"w": [[-2.0]]}),
}


@pytest.mark.parametrize("lib", LIBRARIES)
@pytest.mark.parametrize("case", _SEEDED, ids=str)
def test_a_loss_that_is_an_op_s_value_itself_runs_everywhere(case, lib):
    src, values = _SEEDED[case]
    _agree(src, {k: np.asarray(v, dtype=np.int64 if k == "i" else float) for k, v in values.items()}, lib)


@pytest.mark.parametrize("pool", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize("size, k", [((6, 4), 2), ((7, 5), 2), ((7, 8), 3), ((5, 5), 1)])
@pytest.mark.parametrize("lib", LIBRARIES, ids=str)
def test_pooling_gradients_with_windows_that_tile_and_rows_left_over(pool, size, k, lib):
    """Pooling's adjoint (windows that tile: entries interleaved) on sizes k divides and does not."""
    h, w = size
    src = f"param x: [2, 3, {h}, {w}]\ninput c: [2, 3, {h // k}, {w // k}]\nL = sum(c * {pool}(x, {k}))"
    rng = np.random.default_rng(h * w + k)
    _agree(src, {"x": rng.normal(size=(2, 3, h, w)), "c": rng.normal(size=(2, 3, h // k, w // k))}, lib)
