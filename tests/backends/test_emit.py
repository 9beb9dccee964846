"""graphc emit: the standalone module agrees with the interpreter, reads cleanly, and stays stable."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from goldens import EMIT_GOLDEN as GOLDEN
from goldens import emitted, example_models
from gradtools import (
    assert_close,
    assert_matches_finite_differences,
    finite_differences_can_judge,
    make_values,
    random_models,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = example_models()


def close(a, b):
    assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_emitted_module_agrees_with_the_interpreter(path, example_values):
    m = graphc.load(path)
    values = example_values(path, m)
    mod = m.compiled()
    kwargs = {(k + "_" if k in ("lambda",) else k): v for k, v in values.items()}
    fwd = mod.forward(**kwargs)
    ref = m.evaluate(values)
    assert set(fwd) == set(ref)
    for k in ref:
        close(fwd[k], ref[k])
    loss, grads = mod.loss_and_grad(**kwargs)
    rloss, rgrads = m.loss_and_grad(values)
    close(loss, rloss)
    assert set(grads) == set(rgrads)
    for k in rgrads:
        close(grads[k], rgrads[k])


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_emitted_module_matches_its_golden_file(path):
    golden = GOLDEN / f"{path.stem}.py"
    assert golden.exists(), "run: python tests/regen_emit_golden.py"
    assert emitted(path) == golden.read_text(encoding="utf-8"), (
        f"{path.stem}: the emitted code changed; review it and run: python tests/regen_emit_golden.py"
    )


def test_golden_modules_import_only_numpy_and_are_ruff_clean():
    for golden in sorted(GOLDEN.glob("*.py")):
        tree = ast.parse(golden.read_text(encoding="utf-8"))
        imports = {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
        imports |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert imports == {"numpy"}, golden.name
        funcs = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert {"forward", "loss_and_grad"} <= funcs
    for args in (["format", "--check", "--isolated"], ["check", "--isolated"]):
        r = subprocess.run([sys.executable, "-m", "ruff", *args, str(GOLDEN)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr


def test_emit_is_deterministic():
    m = graphc.load(REPO / "examples" / "digits_mlp.gc")
    assert m.emit() == graphc.load(REPO / "examples" / "digits_mlp.gc").emit()


def test_module_reads_like_the_slide():
    src = graphc.load(REPO / "examples" / "two_layer.gc").emit()
    body = src[src.index("def loss_and_grad") :]
    for line in [
        "y_bar = y - t",
        "h_bar = y_bar @ W2",
        "W2_bar = np.outer(y_bar, h)",
        "z_bar = h_bar * (h * (1.0 - h))",
        "W1_bar = np.outer(z_bar, x)",
    ]:
        assert line in body, line
    assert '"b1": z_bar' in body and '"b2": y_bar' in body
    assert "# line 32" in body  # each step points at the model line it comes from


@pytest.mark.parametrize(
    "src, want, line",
    [
        ("L = sum(sum(x * x, axis=1))", lambda x: (x * x).sum(), "L = (x * x).sum()"),
        ("L = mean(sum(x * x, axis=0))", lambda x: (x * x).sum() / 3, "L = (x * x).sum() / 3"),
        # (its gradient spreads a scalar over the partial sum, then over x: once over x, so the sum is not kept)
        ("L = -mean(sum(x, axis=1, keepdims=true))", lambda x: -x.sum() / len(x), "L = -(x.sum() / N)"),
        ("s = sum(x, axis=1)\nL = sum(s)", lambda x: x.sum(), "L = s.sum()"),  # s is named: it stays
    ],
)
def test_the_total_of_a_partial_sum_is_one_reduction(src, want, line):
    m = graphc.compile("input x: [N, 3]\n" + src)
    x = np.random.default_rng(0).normal(size=(4, 3))
    body = m.emit(wrt=["x"]).split("def loss_and_grad")[1]
    assert line in body
    assert ("s = x.sum(axis=1)" in body) == ("s = " in src)
    loss, grads = m.compiled(wrt=["x"]).loss_and_grad(x=x)
    close(loss, want(x))
    close(m.loss_and_grad({"x": x}, wrt=["x"])[0], want(x))
    close(grads["x"], m.loss_and_grad({"x": x}, wrt=["x"])[1]["x"])


def test_python_keywords_get_a_trailing_underscore_and_params_are_optional():
    m = graphc.compile("input lambda: [3]\nparam w = 2\nparam v: [3] = 0.5\nL = sum(w * lambda + v)")
    mod = m.compiled()
    x = np.array([1.0, 2.0, 3.0])
    out = mod.forward(lambda_=x)
    assert set(out) == {"lambda", "w", "v", "L"}
    close(out["L"], 2 * x.sum() + 1.5)
    loss, grads = mod.loss_and_grad(lambda_=x, w=3.0)
    close(loss, 3 * x.sum() + 1.5)
    close(grads["w"], x.sum())
    close(grads["v"], np.ones(3))
    with pytest.raises(TypeError):
        mod.forward()  # inputs are required


def test_params_shaped_by_symbolic_dims_default_from_the_inputs():
    m = graphc.compile("input X: [N, D]\nparam b: [D] = 0.25\nL = sum(X + b)")
    out = m.compiled().forward(X=np.ones((2, 3)))
    close(out["b"], np.full(3, 0.25))
    close(out["L"], 6 * 1.25)


def test_float32(example_values):
    m = graphc.load(REPO / "examples" / "digits_mlp.gc")
    values = example_values(REPO / "examples" / "digits_mlp.gc", m)
    loss, grads = m.compiled(dtype="float32").loss_and_grad(**values)
    assert grads["W1"].dtype == np.float32 and np.asarray(loss).dtype == np.float32
    rloss, rgrads = m.loss_and_grad(values)
    assert_close(loss, rloss, rtol=1e-5)
    assert_close(grads["W2"], rgrads["W2"], rtol=1e-4, atol=1e-6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_models(), st.integers(0, 2**16))
def test_random_models_emitted_equals_interpreter_and_finite_differences(model_and_shapes, seed):
    src, shapes = model_and_shapes
    m = graphc.compile(src)
    used = [n for n in shapes if n in m.graph.names]
    values = make_values({n: shapes[n] for n in used}, seed)
    loss, grads = m.compiled().loss_and_grad(**values)
    rloss, rgrads = m.loss_and_grad(values)
    close(loss, rloss)
    judged = finite_differences_can_judge(m, values)
    for name in used:
        close(grads[name], rgrads[name])
        if judged:
            assert_matches_finite_differences(m, values, name, grads[name])


def test_cli_emit_writes_atomically_and_never_over_the_model(tmp_path):
    model = tmp_path / "m.gc"
    model.write_text("z = w*x + b; y = sigmoid(z); L = 0.5*(y-t)^2\n")
    out = tmp_path / "m_grad.py"
    r = subprocess.run(
        [sys.executable, "-m", "graphc", "emit", str(model), "-o", str(out)], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    ns = {}
    exec(out.read_text(), ns)  # noqa: S102 - our own output
    loss, g = ns["loss_and_grad"](w=1.0, x=2.0, b=0.5, t=1.0)
    assert loss == pytest.approx(0.0028772317380676895, rel=1e-14)
    assert {p.name for p in tmp_path.iterdir()} == {"m.gc", "m_grad.py"}  # no temporary file left behind
    r = subprocess.run(
        [sys.executable, "-m", "graphc", "emit", str(model), "-o", str(model)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    assert model.read_text().startswith("z = w*x")
    r = subprocess.run([sys.executable, "-m", "graphc", "emit", str(model)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith('"""Gradient code for')


def test_api_gives_source_and_a_loaded_module():
    m = graphc.compile("param w = 0.5\nL = (w - 3)^2")
    assert "def loss_and_grad" in m.emit()
    loss, g = m.compiled().loss_and_grad()
    assert loss == pytest.approx(6.25) and g["w"] == pytest.approx(-5.0)
