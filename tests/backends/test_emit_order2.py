"""graphc emit --order 2: the module's hvp() and hessian() agree with the interpreter's Model.hessian
and with finite differences of its own gradient, and the module stays standalone and ruff-clean."""

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from goldens import example_models
from gradtools import assert_close

import graphc

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = example_models()
SMALL = [p for p in EXAMPLES if p.stem != "digits_mlp"]  # digits' W1 has 4,096 entries: a 4096² Hessian
KINKED = {"xor_threshold"}  # |y - t| with y = t exactly: differences straddle the kink of |.|


def _kw(values: dict) -> dict:
    return {(k + "_" if k == "lambda" else k): v for k, v in values.items()}


@pytest.mark.parametrize("path", SMALL, ids=lambda p: p.stem)
def test_emitted_hessian_agrees_with_the_interpreter_and_finite_differences(path, example_values):
    m = graphc.load(path)
    values = example_values(path, m)
    wrt = (m.params or m.inputs)[-1]
    mod = m.compiled([wrt], order=2)
    h = mod.hessian(**_kw(values))
    w = np.asarray(values[wrt], dtype=np.float64)
    assert h.shape == w.shape + w.shape
    assert_close(h, m.hessian(values, wrt), rtol=1e-10, atol=1e-12, what="emitted vs interpreter")
    if path.stem in KINKED:
        return
    # central differences of the emitted gradient, column by column
    flat, cols = w.reshape(-1), []
    for k in range(flat.size):
        e = np.zeros_like(flat)
        e[k] = 1e-5
        up = mod.loss_and_grad(**_kw({**values, wrt: (flat + e).reshape(w.shape)}))[1][wrt]
        down = mod.loss_and_grad(**_kw({**values, wrt: (flat - e).reshape(w.shape)}))[1][wrt]
        cols.append((np.asarray(up) - np.asarray(down)).reshape(-1) / 2e-5)
    fd = np.stack(cols, axis=1).reshape(h.shape)
    assert_close(h, fd, rtol=1e-5, atol=1e-6, what="emitted vs finite differences")


def test_hvp_is_the_hessian_times_v_and_the_module_is_standalone(tmp_path):
    model = REPO / "examples" / "two_layer.gc"
    out = tmp_path / "two_layer_h.py"
    r = subprocess.run(
        [sys.executable, "-m", "graphc", "emit", str(model), "--wrt", "W1", "--order", "2", "-o", str(out)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    src = out.read_text(encoding="utf-8")
    tree = ast.parse(src)
    assert {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names} == {"numpy"}
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert {"forward", "loss_and_grad", "hvp", "hessian"} <= functions
    for args in (["format", "--check", "--isolated"], ["check", "--isolated"]):
        done = subprocess.run([sys.executable, "-m", "ruff", *args, str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    ns = {}
    exec(compile(src, str(out), "exec"), ns)  # noqa: S102 - our own output
    rng = np.random.default_rng(1)
    values = {
        "x": rng.normal(size=2),
        "t": rng.normal(size=2),
        "W1": rng.normal(size=(3, 2)),
        "b1": rng.normal(size=3),
        "W2": rng.normal(size=(2, 3)),
        "b2": rng.normal(size=2),
    }
    h = ns["hessian"](**values)
    v = rng.normal(size=(3, 2))
    assert_close(ns["hvp"](v, **values), (h.reshape(6, 6) @ v.reshape(6)).reshape(3, 2), rtol=1e-12, atol=1e-14)
    assert_close(h, graphc.load(model).hessian(values, "W1"), rtol=1e-12, atol=1e-14)
    assert_close(h.reshape(6, 6), h.reshape(6, 6).T, rtol=1e-12, atol=1e-14, what="symmetric")


def test_order_2_takes_one_name():
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphc",
            "emit",
            str(REPO / "examples" / "two_layer.gc"),
            "--wrt",
            "W1,W2",
            "--order",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "exactly one name" in r.stderr and "Traceback" not in r.stderr


def test_the_hessian_for_an_empty_param_is_empty_on_every_path():
    """(the differential test's find: Model.hessian stacked no columns, a NumPy error)"""
    m = graphc.compile("param v: [0, 2]\ninput x: [3, 0]\nL = sum(x @ v) + 1")
    values = {"x": np.zeros((3, 0)), "v": np.zeros((0, 2))}
    assert m.hessian(values, "v").shape == (0, 2, 0, 2)
    assert m.compiled(["v"], order=2).hessian(**values).shape == (0, 2, 0, 2)
