"""Regressions: inputs that once gave an internal error (exit 3) instead of a result or a clear error."""

import importlib.util
import math

import numpy as np
import pytest
from clitools import run_graphc

import graphc

# models whose constants fold to inf or nan, as NumPy float64 arithmetic gives them (b / 0 = inf, 0 / 0 = nan)
NONFINITE = {
    "param b = 1\nL = b / 0\n": (math.inf, math.inf),
    "param b = 1\nL = 0 / 0 * b\n": (math.nan, math.nan),
    "param b = 1\nL = -b / 0\n": (-math.inf, -math.inf),
    "param b = 1\nL = b * 2.0^10000\n": (math.inf, math.inf),  # float ** overflows in Python, not in NumPy
    "param b = 1\nL = b * (-8)^(1/3)\n": (math.nan, math.nan),  # Python would make a complex number
}


def same(a, b) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("source", NONFINITE)
def test_nonfinite_constants_fold_like_numpy(source):
    m = graphc.compile(source)
    loss, grads = m.loss_and_grad()
    want_loss, want_grad = NONFINITE[source]
    assert same(float(loss), want_loss) and same(float(grads["b"]), want_grad)
    assert same(float(m.evaluate()["L"]), want_loss)


@pytest.mark.parametrize("source", NONFINITE)
def test_emitted_module_prints_inf_and_nan_as_numpy_names_and_runs(source):
    m = graphc.compile(source)
    code = m.emit()
    assert "= inf" not in code and "* inf" not in code and "nan *" not in code.replace("np.nan *", "")
    with np.errstate(all="ignore"):
        loss, grads = m.compiled().loss_and_grad()
    want_loss, want_grad = NONFINITE[source]
    assert same(float(loss), want_loss) and same(float(grads["b"]), want_grad)


# Named scalars and signed zeros: NumPy float64 arithmetic on every path (interpreter, each target, each
# array library): a division by zero is inf or nan, an overflow inf, -0.0 keeps its sign, a test on a
# number is an array's. (loss, dL/dx) at x = [0.5, 2.0]; found by a differential hunt.
INF = math.inf
SCALARS = {
    "L = sum(x / -0.0)": (-INF, [-INF, -INF]),  # -0.0 is not 0.0: no merging them as one constant
    "L = sum(x / -0.0) + sum(x / 0)": (math.nan, [math.nan, math.nan]),
    "L = sum(x / (-0))": (-INF, [-INF, -INF]),
    "c = 0\nL = sum(x / c)": (INF, [INF, INF]),
    "c = 0\nd = 1 / c\nL = sum(x * d)": (INF, [INF, INF]),
    "c = 0\nL = sum(x * c^-1)": (INF, [INF, INF]),
    "c = 10\nL = sum(x * c^400)": (INF, [INF, INF]),
    "c = 3\nL = sum(x / (c - 3))": (INF, [INF, INF]),
    "c = 2\nL = sum(x^c)": (4.25, [1.0, 4.0]),
    "c = 2\nL = sum(where(c, x, -x))": (2.5, [1.0, 1.0]),
    "c = 2\nL = sum(x * (c > 1))": (2.5, [1.0, 1.0]),
    "c = 2\nL = sum(x * where(c > 0, c, 0))": (5.0, [2.0, 2.0]),
}


def same_values(got, want) -> bool:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return got.shape == want.shape and bool(np.all((got == want) | (np.isnan(got) & np.isnan(want))))


def scalar_paths():
    """(name, f(model, x) -> (loss, dL/dx)) for the interpreter, evaluate, and every target and library."""
    from arraylibs import installed

    paths = [
        ("interpreter", lambda m, x: m.loss_and_grad({"x": x}, wrt=["x"])),
        ("evaluate", lambda m, x: (m.evaluate({"x": x})["L"], {"x": None})),
        ("numpy", lambda m, x: m.compiled(["x"]).loss_and_grad(x=x)),
    ]
    if importlib.util.find_spec("numba"):
        paths.append(("numba", lambda m, x: m.compiled(["x"], target="numba").loss_and_grad(x=x)))
    for lib in installed() if importlib.util.find_spec("array_api_compat") else []:

        def run(m, x, lib=lib):
            loss, grads = m.compiled(["x"], target="array-api").loss_and_grad(x=lib.to(x))
            return lib.back(loss), {"x": lib.back(grads["x"])}

        paths.append((f"array-api on {lib.name}", run))
    return paths


@pytest.mark.parametrize("source", SCALARS)
def test_named_scalars_and_signed_zeros_follow_numpy_on_every_path(source):
    m = graphc.compile("input x: [2]\n" + source + "\n")
    want_loss, want_grad = SCALARS[source]
    x = np.array([0.5, 2.0])
    wrong = []
    for name, f in scalar_paths():
        try:
            with np.errstate(all="ignore"):
                loss, grads = f(m, x)
                grad = grads["x"]
        except Exception as e:  # noqa: BLE001 (each path's failure is reported, not the first alone)
            wrong.append(f"{name}: {type(e).__name__}: {e}")
            continue
        if not same_values(loss, want_loss) or (grad is not None and not same_values(grad, want_grad)):
            wrong.append(f"{name}: ({loss}, {grad})")
    assert not wrong, f"want ({want_loss}, {want_grad}); " + "; ".join(wrong)


def test_a_constant_gradient_is_defined_in_the_emitted_module():
    loss, grads = graphc.compile("param b = 1\nL = 2 * b\n").compiled().loss_and_grad()
    assert float(loss) == 2.0 and float(grads["b"]) == 2.0


def test_mean_of_an_empty_array_folds_to_nan():
    m = graphc.compile("param x: [0]\nL = mean(x)\n")
    loss, grads = m.loss_and_grad()
    assert math.isnan(float(loss)) and grads["x"].shape == (0,)


@pytest.mark.parametrize("command", ["eval", "grad", "emit", "equations"])
def test_division_by_zero_on_the_command_line(tmp_path, command):
    path = tmp_path / "div0.gc"
    path.write_text("param b = 1\nL = b / 0\n")
    r = run_graphc(command, path)
    assert r.returncode == 0, r.stderr
    assert "internal error" not in r.stderr


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
@pytest.mark.parametrize("decl", ["param x = 1", "input x: []"])
def test_softmax_of_a_scalar_is_a_shape_error_at_the_expression(fn, decl):
    with pytest.raises(graphc.GraphcError) as e:
        graphc.compile(f"{decl}\ny = {fn}(x)\nL = sum(y)\n")
    assert f"{fn} needs at least 1 dimension, got a scalar" in e.value.message
    assert e.value.span is not None and e.value.span.line == 2


def test_softmax_of_a_scalar_value_for_an_undeclared_input_is_a_shape_error():
    m = graphc.compile("input x\ny = softmax(x)\nL = sum(y)\n")
    for run in (m.evaluate, m.loss_and_grad):
        with pytest.raises(graphc.GraphcError, match="softmax needs at least 1 dimension") as e:
            run({"x": 1.0})
        assert e.value.span.line == 2


@pytest.mark.parametrize("command", ["check", "eval", "grad"])
def test_softmax_of_a_scalar_on_the_command_line(tmp_path, command):
    path = tmp_path / "sm.gc"
    path.write_text("param x = 1\ny = softmax(x)\nL = sum(y)\n")
    r = run_graphc(command, path)
    assert r.returncode == 1
    assert "sm.gc:2:5: error: softmax needs at least 1 dimension, got a scalar" in r.stderr


def test_softmax_along_an_axis_still_works():
    m = graphc.compile("input x: [2, 3]\ny = softmax(x, axis=0)\nL = sum(y * x)\n")
    x = np.arange(6.0).reshape(2, 3)
    loss, grads = m.loss_and_grad({"x": x})
    e = np.exp(x - x.max(axis=0))
    assert np.isclose(float(loss), float(np.sum(e / e.sum(axis=0) * x)))
    with pytest.raises(graphc.GraphcError, match="axis 2 is out of range"):
        graphc.compile("input x: [2, 3]\ny = softmax(x, axis=2)\nL = sum(y)\n")


def test_reducing_a_scalar_along_an_axis_says_to_drop_the_axis():
    with pytest.raises(graphc.GraphcError, match=r"drop `axis=0`") as e:
        graphc.compile("param x = 1\nL = logsumexp(x, axis=0)\n")
    assert e.value.span.line == 2


def test_equations_of_a_model_whose_gradient_is_zero_everywhere():
    r = run_graphc("equations", graphc.__path__[0] + "/../examples/xor_threshold.gc")
    assert r.returncode == 0, r.stderr
    lines = [line.split() for line in r.stdout.splitlines()]
    assert ["x̅1̅", "=", "0"] in lines and ["x̅2̅", "=", "0"] in lines


def test_equations_show_a_constant_gradient():
    m = graphc.compile("param b = 1\nL = 2 * b\n")
    assert m.equations().rstrip().endswith("b̄ = 2")
    assert m.equations(latex=True).rstrip().endswith("\\overline{b} &= 2\n\\end{align*}")
    inf = graphc.compile("param b = 1\nL = b / 0\n").equations(latex=True)
    assert "\\overline{b} &= \\infty" in inf


def test_equations_of_a_step_model():
    eq = graphc.compile("param w = 1\nL = step(w)\n").equations()
    assert eq.rstrip().endswith("w̄ = 0")


def test_a_float64_dtype_that_is_not_numpy_s_own_object_is_float64():
    # (Zarr's arrays carry dtype('<f8'): equal to NumPy's float64, not the same object; once, evaluate and
    # train crashed on them with a TypeError)
    import numpy as np

    import graphc

    m = graphc.compile("input X: [N, 3]; input t: [N]; param w: [3] = 0.5\nL = mean((X @ w - t)^2)")
    f8 = np.dtype(np.float64).newbyteorder("<")
    X, t = np.ones((4, 3), dtype=f8), np.arange(4.0).astype(f8)
    assert X.dtype == np.float64 and X.dtype is not np.dtype(np.float64)
    want = m.evaluate({"X": np.ones((4, 3)), "t": np.arange(4.0)})["L"]
    assert m.evaluate({"X": X, "t": t})["L"] == want
    assert m.loss_and_grad({"X": X, "t": t})[0] == want
