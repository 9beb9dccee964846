"""Training (issue 6): `graphc.train.train`, `graphc train`, the examples trained, and `graphc demo`.

Expected numbers come from NumPy (closed forms, hand-computed steps); CLI runs are real
subprocesses (`python -m graphc`), which must never show a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from clitools import run_cleanly

import graphc
from graphc.data import load_npz
from graphc.errors import GraphcError
from graphc.training import loop as T

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"


def run(*args, cwd, env_extra=None, timeout=180) -> subprocess.CompletedProcess:
    return run_cleanly(*args, cwd=cwd, env_extra=env_extra, timeout=timeout)


def printed(stdout: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} = ([-+0-9.eE]+|nan|inf)\s*$", stdout, re.MULTILINE)
    assert m, f"no `{name} = ...` line in:\n{stdout}"
    return float(m.group(1))


def quiet_train(model, data, **kw):
    return T.train(model, data, quiet=True, **kw)


LSQ = graphc.load(EXAMPLES / "least_squares.gc")
LSQ_DATA = load_npz(str(EXAMPLES / "least_squares.npz"))

# y = w*x fitted to x; with x all ones the loss is 0.5*w^2 and the gradient w
QUAD = "input x: [N]\nparam w = 1\nL = 0.5 * mean(x) * w^2\n"
# the mean of x: w moves towards mean(x); loss (w - x)^2 averaged
MEAN = "input x: [N]\nparam w = 0\nL = mean((w - x)^2)\noutput w\n"


# ---- gradient descent and SGD ----------------------------------------------------------------
def test_full_batch_gd_reaches_the_closed_form_least_squares_solution():
    X, t = LSQ_DATA["X"], LSQ_DATA["t"]
    w_star = np.linalg.lstsq(X, t, rcond=None)[0]
    r = quiet_train(LSQ, LSQ_DATA, lr=0.5, epochs=300)
    assert r.method == "gradient descent" and r.steps == 300 and r.batch_size == 100
    np.testing.assert_allclose(r.params["w"], w_star, rtol=0, atol=1e-9)
    assert r.loss == pytest.approx(0.5 * np.mean((X @ w_star - t) ** 2), rel=1e-9)
    assert r.history["loss"][0] == pytest.approx(0.5 * np.mean(t**2))  # the loss at w = 0, before the first step
    assert all(a >= b - 1e-15 for a, b in zip(r.history["loss"], r.history["loss"][1:]))  # up to rounding


def test_full_batch_gd_is_w_minus_lr_times_the_gradient():
    X, t = LSQ_DATA["X"], LSQ_DATA["t"]
    w = np.zeros(3)
    for _ in range(3):
        w = w - 0.1 * X.T @ (X @ w - t) / len(t)
    r = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=3)
    np.testing.assert_allclose(r.params["w"], w, rtol=1e-12)


def test_batch_size_at_least_n_is_full_batch():
    a = quiet_train(LSQ, LSQ_DATA, lr=0.3, epochs=5)
    b = quiet_train(LSQ, LSQ_DATA, lr=0.3, epochs=5, batch_size=1000)
    assert b.method == "gradient descent"
    np.testing.assert_array_equal(a.params["w"], b.params["w"])


def watch_steps(monkeypatch, model, name: str = "x") -> list:
    """Record values[name] of every batch a gradient is taken on while `model` trains. The trainer's
    step is the model's emitted loss_and_grad (Model.compiled), else Model.loss_and_grad: both are watched."""
    seen = []
    compiled, interpreted = model.compiled, model.loss_and_grad

    def watched_compiled(*args, **kw):
        module = compiled(*args, **kw)
        watched = types.ModuleType(module.__name__)
        watched.__dict__.update(module.__dict__)
        real = module.loss_and_grad

        @functools.wraps(real)  # (the same signature: the trainer reads the module's argument names)
        def loss_and_grad(*a, **k):
            seen.append(np.array(k[name]))
            return real(*a, **k)

        watched.loss_and_grad = loss_and_grad
        return watched

    def watched_loss_and_grad(values=None, *args, **kw):
        seen.append(np.array(values[name]))
        return interpreted(values, *args, **kw)

    monkeypatch.setattr(model, "compiled", watched_compiled)
    monkeypatch.setattr(model, "loss_and_grad", watched_loss_and_grad)
    return seen


def test_sgd_reshuffles_every_epoch_deterministically_from_the_seed(monkeypatch):
    m = graphc.compile(MEAN)
    data = {"x": np.arange(10.0)}
    seen = watch_steps(monkeypatch, m)
    r = quiet_train(m, data, lr=0.1, epochs=3, batch_size=4, seed=7)
    assert r.method == "mini-batch SGD" and r.steps == 9
    assert [len(b) for b in seen] == [4, 4, 2] * 3  # the last batch of an epoch is the remainder
    epochs = [np.concatenate(seen[k : k + 3]) for k in (0, 3, 6)]
    for e in epochs:  # each epoch sees every example exactly once
        assert sorted(e) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1]) or not np.array_equal(epochs[1], epochs[2])
    assert any(not np.array_equal(e, np.arange(10)) for e in epochs)  # shuffled, not in order

    first = [b.copy() for b in seen]
    seen.clear()
    r2 = quiet_train(m, data, lr=0.1, epochs=3, batch_size=4, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, seen))
    np.testing.assert_array_equal(r.params["w"], r2.params["w"])
    assert r.history == r2.history

    seen.clear()
    quiet_train(m, data, lr=0.1, epochs=3, batch_size=4, seed=8)
    assert any(not np.array_equal(a, b) for a, b in zip(first, seen))


def test_sgd_epoch_loss_is_the_batch_weighted_mean_of_batch_losses(monkeypatch):
    m = graphc.compile(MEAN)
    data = {"x": np.arange(10.0)}
    seen = watch_steps(monkeypatch, m)
    r = quiet_train(m, data, lr=0.0001, epochs=1, batch_size=4)
    # with a tiny step w stays ~0: batch losses ~ mean(x_b^2)
    expect = sum(len(b) * np.mean(b**2) for b in seen) / 10
    assert r.history["loss"][0] == pytest.approx(expect, rel=1e-3)


def test_sgd_converges_on_least_squares():
    r = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=60, batch_size=10)
    w_star = np.linalg.lstsq(LSQ_DATA["X"], LSQ_DATA["t"], rcond=None)[0]
    np.testing.assert_allclose(r.params["w"], w_star, atol=0.02)


def test_scalar_data_is_passed_whole_to_every_step():
    m = graphc.load(EXAMPLES / "logistic_least_squares.gc")
    data = load_npz(str(EXAMPLES / "logistic_least_squares.npz"))
    r = quiet_train(m, data, lr=1.0, epochs=5, batch_size=4)
    assert r.n_examples == 1 and r.method == "gradient descent" and r.steps == 5
    assert r.history["loss"][-1] < r.history["loss"][0]


# ---- schedule, tol, val and patience ----------------------------------------------------------
def test_halve_schedule_halves_the_step_when_the_loss_goes_up():
    m = graphc.compile(QUAD)
    data = {"x": np.ones(4)}
    # w <- w - 2.5 w = -1.5 w: the loss grows by 2.25 each step with a constant step size
    const = quiet_train(m, data, lr=2.5, epochs=4)
    assert const.history["lr"] == [2.5] * 4
    assert all(b == pytest.approx(2.25 * a) for a, b in zip(const.history["loss"], const.history["loss"][1:]))
    h = quiet_train(m, data, lr=2.5, epochs=4, schedule="halve")
    # epoch 1: L = 0.5, w -> -1.5; epoch 2: L = 1.125 went up -> halve before stepping: w -> -1.5 + 1.25*1.5
    assert h.history["loss"][:3] == pytest.approx([0.5, 1.125, 0.5 * 0.375**2])
    assert h.history["lr"] == [2.5, 1.25, 1.25, 1.25]
    assert h.lr == 1.25
    assert h.params["w"] == pytest.approx(0.375 * (1 - 1.25) ** 2)
    assert any("halved to 1.25" in n for n in h.notes)


def test_halve_schedule_retries_an_epoch_whose_loss_is_not_finite():
    m = graphc.compile(QUAD)
    r = quiet_train(m, {"x": np.ones(4)}, lr=1e300, epochs=3, schedule="halve")
    assert all(np.isfinite(r.history["loss"])) and np.isfinite(r.params["w"])
    assert r.lr < 1e300 and any("redone with lr" in n for n in r.notes)


def test_halve_schedule_redoes_a_mini_batch_epoch_whose_loss_is_not_finite():
    m = graphc.compile(QUAD)
    r = quiet_train(m, {"x": np.ones(4)}, lr=1e300, epochs=3, batch_size=2, schedule="halve")
    assert r.method == "mini-batch SGD"
    assert all(np.isfinite(r.history["loss"])) and np.isfinite(r.params["w"])
    assert any(re.match(r"epoch 1: the loss (was not finite|exploded to \S+); redone with lr", n) for n in r.notes)


def test_a_loss_that_is_not_finite_at_the_start_is_an_error():
    m = graphc.compile("input x: [N]\nparam w = 0\nL = mean(log(w * x))\n")
    for kw in ({}, {"batch_size": 2}, {"schedule": "halve"}, {"schedule": "halve", "batch_size": 2}):
        with pytest.raises(GraphcError, match="initial params"):
            quiet_train(m, {"x": np.ones(4)}, lr=0.1, epochs=2, **kw)


def test_divergence_is_an_error_with_a_hint():
    m = graphc.compile(QUAD)
    with pytest.raises(GraphcError) as e:
        quiet_train(m, {"x": np.ones(4)}, lr=1e300, epochs=3)
    assert "diverged" in e.value.message and "lr=" in e.value.hint  # the API's words; the CLI says --lr


def test_tol_stops_full_batch_gd_when_the_gradient_is_small():
    r = quiet_train(LSQ, LSQ_DATA, lr=0.5, epochs=1000, tol=1e-6)
    assert r.stopped == "tol" and r.epochs < 100
    assert r.grad_norm < 1e-6 and r.history["grad_norm"][-1] == r.grad_norm
    assert all(g >= 1e-6 for g in r.history["grad_norm"][:-1])
    _, grads = LSQ.loss_and_grad({**LSQ_DATA, "w": r.params["w"]})
    assert np.linalg.norm(grads["w"]) < 1e-6  # the returned params are the converged ones


def test_tol_with_mini_batches_uses_the_full_data_gradient():
    r = quiet_train(LSQ, LSQ_DATA, lr=0.2, epochs=500, batch_size=33, tol=1e-2)
    assert r.stopped == "tol" and r.epochs < 500
    _, grads = LSQ.loss_and_grad({**LSQ_DATA, "w": r.params["w"]})
    assert np.linalg.norm(grads["w"]) == pytest.approx(r.grad_norm) and r.grad_norm < 1e-2
    assert all(g >= 1e-2 for g in r.history["grad_norm"][:-1])


def test_without_tol_every_epoch_runs():
    r = quiet_train(LSQ, LSQ_DATA, lr=0.5, epochs=40)
    assert r.stopped == "epochs" and r.epochs == 40 and "grad_norm" not in r.history


def test_val_and_patience_stop_early_and_keep_the_best_params():
    m = graphc.compile(MEAN)
    train_data, val = {"x": np.ones(8)}, {"x": np.full(3, 0.5)}
    # w climbs from 0 to 1; the val loss (w - 0.5)^2 falls until w passes 0.5, then rises
    r = quiet_train(m, train_data, lr=0.1, epochs=100, val=val, patience=3)
    w, ws = 0.0, []
    for _ in range(r.epochs):
        w = w - 0.1 * 2 * (w - 1)
        ws.append(w)
    best = int(np.argmin([(v - 0.5) ** 2 for v in ws]))
    assert r.stopped == "patience" and r.epochs == best + 1 + 3
    assert r.best_epoch == best + 1
    assert r.params["w"] == pytest.approx(ws[best])
    assert r.val_loss == pytest.approx(min(r.history["val_loss"]))
    assert r.history["val_loss"] == pytest.approx([(v - 0.5) ** 2 for v in ws])


def test_val_without_patience_returns_the_last_params():
    m = graphc.compile(MEAN)
    r = quiet_train(m, {"x": np.ones(8)}, lr=0.1, epochs=30, val={"x": np.full(3, 0.5)})
    assert r.stopped == "epochs" and r.epochs == 30
    assert r.params["w"] == pytest.approx(1 - 0.8**30)
    assert r.best_epoch is not None and r.best_epoch < 30


# ---- l2, metric, init --------------------------------------------------------------------------
def test_l2_adds_lambda_w_to_the_gradient():
    X, t = LSQ_DATA["X"], LSQ_DATA["t"]
    w0 = np.array([1.0, -2.0, 3.0])
    lam, lr = 0.3, 0.1
    g = X.T @ (X @ w0 - t) / len(t)
    r = quiet_train(LSQ, LSQ_DATA, lr=lr, epochs=1, l2=lam, init={"w": w0})
    np.testing.assert_allclose(r.params["w"], w0 - lr * (g + lam * w0), rtol=1e-12)
    plain = quiet_train(LSQ, LSQ_DATA, lr=lr, epochs=1, init={"w": w0})
    np.testing.assert_allclose(r.params["w"] - plain.params["w"], -lr * lam * w0, rtol=1e-9)
    # the history's loss is the objective: the model's loss plus (lam/2)|w|^2
    assert r.history["loss"][0] == pytest.approx(0.5 * np.mean((X @ w0 - t) ** 2) + 0.5 * lam * w0 @ w0)


def test_l2_with_mini_batches_shrinks_the_weights():
    a = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=30, batch_size=20)
    b = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=30, batch_size=20, l2=1.0)
    assert np.linalg.norm(b.params["w"]) < 0.7 * np.linalg.norm(a.params["w"])


@pytest.mark.parametrize(
    "y, t, acc",
    [
        ([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [[0, 1], [1, 0], [1, 0]], 2 / 3),  # one-hot targets
        ([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], [1, 0, 0], 2 / 3),  # integer labels
        ([[0.1, 0.9, 0.0], [0.1, 0.2, 0.7]], np.array([1, 2], dtype=np.int64), 1.0),
        ([0.2, 0.7, 0.6, 0.4], [0, 1, 0, 0], 0.75),  # one output: threshold 0.5
        ([[0.2], [0.7], [0.6], [0.4]], [0, 1, 1, 1], 0.75),  # [N, 1] against [N]
        (0.9, 1.0, 1.0),
    ],
)
def test_accuracy(y, t, acc):
    assert T.accuracy(np.array(y), np.array(t)) == pytest.approx(acc)


def test_accuracy_refuses_shapes_it_cannot_compare():
    with pytest.raises(GraphcError, match="cannot compare"):
        T.accuracy(np.zeros((4, 3)), np.zeros((4, 2)))


def test_accuracy_metric_on_one_hot_targets_and_integer_labels_agree():
    m = graphc.load(EXAMPLES / "softmax_regression.gc")
    data = load_npz(str(EXAMPLES / "softmax_regression.npz"))
    a = quiet_train(m, data, lr=0.5, epochs=5, batch_size=15, metric="accuracy")
    labels = {**data, "labels": np.argmax(data["T"], axis=1)}
    b = quiet_train(m, labels, lr=0.5, epochs=5, batch_size=15, metric="accuracy", metric_target="labels")
    assert a.metric == b.metric and a.history["accuracy"] == b.history["accuracy"]
    Y = m.evaluate({**data, **a.params})["y"]
    assert a.metric == pytest.approx(np.mean(np.argmax(Y, 1) == np.argmax(data["T"], 1)))


def test_metric_needs_an_output_and_a_findable_target():
    with pytest.raises(GraphcError, match="declares no output"):
        quiet_train(graphc.compile(QUAD), {"x": np.ones(3)}, lr=0.1, epochs=1, metric="accuracy")
    two = graphc.compile(
        "input x: [N]\ninput t: [N]\ninput u: [N]\nparam w = 0\ny = w*x\nL = mean((y - t)^2 + (y - u)^2)\noutput y\n"
    )
    data = {"x": np.ones(3), "t": np.ones(3), "u": np.zeros(3)}
    with pytest.raises(GraphcError, match="several") as e:
        quiet_train(two, data, lr=0.1, epochs=1, metric="accuracy")
    assert "metric_target=" in e.value.hint  # the API's words; the CLI says --target
    r = quiet_train(two, data, lr=0.1, epochs=1, metric="accuracy", metric_target="t")
    assert r.metric is not None


def test_init_resumes_where_training_stopped(tmp_path):
    whole = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=10)
    first = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=4)
    again = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=6, init=first.params)
    np.testing.assert_allclose(again.params["w"], whole.params["w"], rtol=1e-13)
    np.savez(tmp_path / "p.npz", **first.params)
    from_file = quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=6, init=str(tmp_path / "p.npz"))
    np.testing.assert_array_equal(from_file.params["w"], again.params["w"])


def test_init_does_not_change_the_callers_arrays():
    w0 = np.array([1.0, 2.0, 3.0])
    quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=3, init={"w": w0})
    np.testing.assert_array_equal(w0, [1.0, 2.0, 3.0])


def test_init_errors():
    with pytest.raises(GraphcError, match="none of the model's params"):
        quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=1, init={"v": np.zeros(3)})
    with pytest.raises(GraphcError, match="shape"):
        quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=1, init={"w": np.zeros(4)})


def test_params_start_from_their_initialisers_with_the_seed():
    m = graphc.load(EXAMPLES / "xor_mlp.gc")
    data = load_npz(str(EXAMPLES / "xor_mlp.npz"))
    a = quiet_train(m, data, lr=1e-12, epochs=1, seed=3)
    start = m.evaluate(data, seed=3)
    for p in m.params:
        np.testing.assert_allclose(a.params[p], start[p], atol=1e-9)


def test_bad_options_are_usage_errors():
    for kw in (
        {"lr": -1},
        {"lr": float("nan")},
        {"lr": "0.1"},
        {"epochs": 0},
        {"epochs": 2.5},
        {"epochs": True},
        {"batch_size": 0},
        {"schedule": "cyclic"},
        {"tol": 0.0},
        {"patience": 2},
        {"l2": -1.0},
        {"l2": None},
        {"metric": "f1"},
    ):
        with pytest.raises(GraphcError) as e:
            quiet_train(LSQ, LSQ_DATA, **{"lr": 0.1, "epochs": 1, **kw})
        assert e.value.usage, kw


def test_numpy_numbers_are_fine_as_options():
    r = quiet_train(LSQ, LSQ_DATA, lr=np.float64(0.3), epochs=np.int64(3), batch_size=np.int32(50))
    assert r.epochs == 3 and r.steps == 6


def test_data_errors():
    with pytest.raises(GraphcError, match="no `t`") as e:
        quiet_train(LSQ, {"X": LSQ_DATA["X"]}, lr=0.1, epochs=1)
    assert "inputs" in e.value.hint
    with pytest.raises(GraphcError, match="disagree"):
        quiet_train(LSQ, {"X": LSQ_DATA["X"], "t": LSQ_DATA["t"][:50]}, lr=0.1, epochs=1, batch_size=10)
    with pytest.raises(GraphcError, match="no params"):
        quiet_train(graphc.load(EXAMPLES / "chain_rule.gc"), {"t": np.array(0.7)}, lr=0.1, epochs=1)


def test_data_keys_the_model_does_not_use_are_ignored():
    r = quiet_train(LSQ, {**LSQ_DATA, "labels": np.arange(100)}, lr=0.5, epochs=3)
    assert r.epochs == 3


def test_the_training_step_agrees_with_the_interpreter():
    m = graphc.load(EXAMPLES / "digits_mlp.gc")
    d = load_npz(str(EXAMPLES / "digits_train.npz"))
    start = m.evaluate({"X": d["X"][:1], "T": d["T"][:1]}, seed=1)
    init = {p: start[p] for p in m.params}
    values = {"X": d["X"][:32], "T": d["T"][:32], **init}
    # the step training runs: the emitted loss_and_grad, loaded in memory (Model.compiled)
    loss, grads = m.compiled(list(m.params)).loss_and_grad(**values)
    ref_loss, ref = m.loss_and_grad(values)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for p in m.params:
        np.testing.assert_allclose(grads[p], ref[p], rtol=1e-10, atol=1e-14)
    # one epoch of full-batch gradient descent: one step, params - lr * the interpreter's gradient
    r = quiet_train(m, {"X": values["X"], "T": values["T"]}, lr=0.5, epochs=1, init=init)
    assert r.steps == 1
    for p in m.params:
        np.testing.assert_allclose(r.params[p], init[p] - 0.5 * ref[p], rtol=1e-10, atol=1e-14)
    if hasattr(graphc.Model, "compiled"):
        assert r.engine == "compiled"


def test_names_that_are_python_keywords_train():
    m = graphc.compile("input in: [N]\nparam lambda = 0\nL = mean((lambda - in)^2)\n")
    r = quiet_train(m, {"in": np.full(5, 2.0)}, lr=0.25, epochs=40)
    assert r.params["lambda"] == pytest.approx(2.0, abs=1e-6)


# ---- progress, plot ---------------------------------------------------------------------------
def test_plain_log_lines_when_not_a_terminal():
    out = io.StringIO()
    T.train(LSQ, LSQ_DATA, lr=0.5, epochs=3, file=out)
    lines = out.getvalue().splitlines()
    assert [ln.split()[1] for ln in lines] == ["1/3", "2/3", "3/3"]
    assert all(ln.startswith("epoch") and " loss " in ln and " lr 0.5" in ln for ln in lines)
    assert "\r" not in out.getvalue()


def test_log_lines_are_thinned_for_many_epochs():
    out = io.StringIO()
    T.train(LSQ, LSQ_DATA, lr=0.5, epochs=200, file=out)
    epochs = [int(ln.split()[1].split("/")[0]) for ln in out.getvalue().splitlines()]
    assert epochs[0] == 1 and epochs[-1] == 200 and 10 <= len(epochs) <= 25


def test_log_lines_show_metric_and_val():
    out = io.StringIO()
    m = graphc.load(EXAMPLES / "softmax_regression.gc")
    d = load_npz(str(EXAMPLES / "softmax_regression.npz"))
    T.train(m, d, lr=0.5, epochs=2, batch_size=15, metric="accuracy", val=d, file=out, progress=False)
    first = out.getvalue().splitlines()[0]
    for word in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert f" {word} " in first


def test_progress_bar_when_asked():
    out = io.StringIO()
    T.train(LSQ, LSQ_DATA, lr=0.5, epochs=3, file=out, progress=True)
    text = out.getvalue()
    assert "3/3" in text and "epoch" in text and "loss=" in text and "\r" in text
    assert "epoch 1/3" not in text


def test_quiet_prints_nothing():
    out = io.StringIO()
    T.train(LSQ, LSQ_DATA, lr=0.5, epochs=3, file=out, quiet=True, progress=True)
    assert out.getvalue() == ""


def test_cli_draws_a_bar_on_a_terminal_and_logs_otherwise(tmp_path):
    import fcntl
    import pty
    import select
    import struct
    import termios

    args = [
        sys.executable,
        "-m",
        "graphc",
        "train",
        str(EXAMPLES / "least_squares.gc"),
        "--data",
        str(EXAMPLES / "least_squares.npz"),
        "--lr",
        "0.5",
        "--epochs",
        "5",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    p = subprocess.Popen(args, stdout=slave, stderr=slave, env=env, cwd=tmp_path)
    os.close(slave)
    chunks = []
    while select.select([master], [], [], 60)[0]:  # never blocks for good on a hung child
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    p.wait(timeout=60)
    os.close(master)
    tty = b"".join(chunks).decode()
    assert p.returncode == 0, tty
    assert "100%" in tty and "5/5" in tty and "loss=" in tty
    assert "epoch 1/5" not in tty
    piped = run("train", *args[4:], cwd=tmp_path)
    assert "epoch 1/5" in piped.stdout and "100%" not in piped.stdout + piped.stderr


def test_plot_draws_train_and_val_loss(tmp_path):
    m = graphc.compile(MEAN)
    path = tmp_path / "loss.png"
    r = quiet_train(m, {"x": np.ones(8)}, lr=0.1, epochs=5, val={"x": np.zeros(2)}, plot=str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(r.history["val_loss"]) == 5
    svg = tmp_path / "loss.svg"
    quiet_train(m, {"x": np.ones(8)}, lr=0.1, epochs=5, val={"x": np.zeros(2)}, plot=str(svg))
    text = svg.read_text()
    assert "<svg" in text and "training loss" in text and "validation loss" in text


def test_plot_without_matplotlib_is_a_clear_error_before_training(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    m = graphc.load(EXAMPLES / "least_squares.gc")
    called = []
    for method in ("compiled", "loss_and_grad", "evaluate"):  # all a training step could run
        monkeypatch.setattr(m, method, lambda *a, method=method, **k: called.append(method))
    with pytest.raises(GraphcError) as e:
        quiet_train(m, LSQ_DATA, lr=0.1, epochs=1, plot=str(tmp_path / "loss.png"))
    assert "matplotlib" in e.value.message and "pip install 'graphc[plot]'" in e.value.hint
    assert not called and not (tmp_path / "loss.png").exists()


def test_plot_format_comes_from_the_extension(tmp_path):
    with pytest.raises(GraphcError, match="format") as e:
        quiet_train(LSQ, LSQ_DATA, lr=0.1, epochs=1, plot=str(tmp_path / "loss.bmp"))
    assert e.value.usage


# ---- the command line -------------------------------------------------------------------------
def test_cli_train_writes_params_atomically(tmp_path):
    out = tmp_path / "params.npz"
    out.write_bytes(b"old")
    r = run(
        "train",
        EXAMPLES / "least_squares.gc",
        "--data",
        EXAMPLES / "least_squares.npz",
        "--lr",
        "0.5",
        "--epochs",
        "200",
        "-o",
        out,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    w = np.load(out)["w"]
    np.testing.assert_allclose(w, np.linalg.lstsq(LSQ_DATA["X"], LSQ_DATA["t"], rcond=None)[0], atol=1e-8)
    assert printed(r.stdout, "E") == pytest.approx(0.005362667, rel=1e-6)
    assert "wrote 1 params to" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.npz"]  # no temporary files left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_train_output_never_overwrites_an_input_and_fails_before_training(tmp_path):
    data = tmp_path / "d.npz"
    np.savez(data, **LSQ_DATA)
    before = data.read_bytes()
    r = run(
        "train", EXAMPLES / "least_squares.gc", "--data", data, "--lr", "0.5", "--epochs", "5", "-o", data, cwd=tmp_path
    )
    assert r.returncode == 2 and "overwrite the input" in r.stderr and r.stdout == ""
    assert data.read_bytes() == before
    model = tmp_path / "m.gc"
    model.write_text((EXAMPLES / "least_squares.gc").read_text())
    r = run("train", model, "--data", data, "--epochs", "1", "--plot", model, cwd=tmp_path)
    assert r.returncode == 2 and model.read_text() == (EXAMPLES / "least_squares.gc").read_text()
    r = run("train", model, "--data", data, "--epochs", "1", "-o", tmp_path / "nope" / "p.npz", cwd=tmp_path)
    assert r.returncode == 1 and "no folder" in r.stderr


def test_cli_failed_save_keeps_the_earlier_output(tmp_path, monkeypatch):
    from graphc.app import cli

    out = tmp_path / "p.npz"
    out.write_bytes(b"earlier")

    def broken(f, **arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)  # what data.save_npz calls
    code = cli.main(
        [
            "train",
            str(EXAMPLES / "least_squares.gc"),
            "--data",
            str(EXAMPLES / "least_squares.npz"),
            "--epochs",
            "2",
            "--quiet",
            "-o",
            str(out),
        ]
    )
    assert code != 0
    assert out.read_bytes() == b"earlier"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.npz"]


def test_cli_resume_with_init(tmp_path):
    args = ["train", EXAMPLES / "least_squares.gc", "--data", EXAMPLES / "least_squares.npz", "--lr", "0.1", "--quiet"]
    assert run(*args, "--epochs", "4", "-o", "a.npz", cwd=tmp_path).returncode == 0
    assert run(*args, "--epochs", "6", "--init", "a.npz", "-o", "b.npz", cwd=tmp_path).returncode == 0
    assert run(*args, "--epochs", "10", "-o", "c.npz", cwd=tmp_path).returncode == 0
    np.testing.assert_allclose(np.load(tmp_path / "b.npz")["w"], np.load(tmp_path / "c.npz")["w"], rtol=1e-13)


def test_cli_train_reports_val_metric_and_early_stop(tmp_path):
    r = run(
        "train",
        EXAMPLES / "least_squares.gc",
        "--data",
        EXAMPLES / "least_squares.npz",
        "--lr",
        "0.5",
        "--epochs",
        "500",
        "--tol",
        "1e-6",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "stopped early: gradient norm" in r.stdout
    r = run(
        "train",
        EXAMPLES / "softmax_regression.gc",
        "--data",
        EXAMPLES / "softmax_regression.npz",
        "--val",
        EXAMPLES / "softmax_regression.npz",
        "--lr",
        "0.5",
        "--epochs",
        "3",
        "--batch-size",
        "15",
        "--metric",
        "accuracy",
        "--quiet",
        "--schedule",
        "halve",
        "--l2",
        "0.001",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert 0 <= printed(r.stdout, "accuracy") <= 1 and 0 <= printed(r.stdout, "val accuracy") <= 1
    assert printed(r.stdout, "val L") > 0 and "best epoch = " in r.stdout
    assert r.stdout.splitlines()[0].startswith("trained 3 epochs (30 steps) of mini-batch SGD, batch 15")


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["examples/chain_rule.gc", "--data", "examples/chain_rule.npz"], 1, "no params"),
        (["examples/least_squares.gc", "--data", "examples/xor.npz"], 1, "no `X`"),
        (["examples/least_squares.gc", "--data", "missing.npz"], 1, "no such file"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--lr", "-1"], 2, "learning rate"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--patience", "3"], 2, "--val"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--metric", "f1"], 2, "invalid choice"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--metric", "accuracy"], 1, "no output"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--lr", "1e300"], 1, "diverged"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--batch-size", "0"], 2, "batch size"),
        (
            ["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--init", "examples/xor.npz"],
            1,
            "none of the model's params",
        ),
        (["examples/least_squares.gc"], 2, "--data"),
        (["examples/least_squares.gc", "--data", "examples/least_squares.npz", "--plot", "x.gif"], 2, "format"),
    ],
)
def test_cli_train_errors(args, code, words, monkeypatch, capsys):
    """In process (the same main() as `python -m graphc`), to keep the suite quick."""
    from graphc.app import cli

    monkeypatch.chdir(REPO)
    monkeypatch.delenv("GRAPHC_DEBUG", raising=False)
    try:
        got = cli.main(["train", *args])
    except SystemExit as e:  # argparse's usage errors
        got = e.code
    out, err = capsys.readouterr()
    assert got == code, (out, err)
    assert words in err and "Traceback" not in out + err and "internal error" not in err
    assert not (REPO / "x.gif").exists()


def test_errors_name_options_as_the_caller_gave_them(monkeypatch, capsys):
    """The library's errors say `lr`, `batch_size=...`: its keywords; the command line's, its flags."""
    from graphc.app import cli

    with pytest.raises(GraphcError) as e:
        quiet_train(LSQ, LSQ_DATA, lr=-1)
    assert e.value.message.startswith("lr, the learning rate, must be") and "--" not in e.value.message
    with pytest.raises(GraphcError) as e:
        quiet_train(LSQ, LSQ_DATA, lr=0.1, batch_size=0)
    assert "leave out batch_size " in e.value.hint
    monkeypatch.chdir(REPO)
    args = ["train", "examples/least_squares.gc", "--data", "examples/least_squares.npz", "--quiet"]
    assert cli.main([*args, "--lr", "-1"]) == 2
    assert "error: --lr, the learning rate, must be" in capsys.readouterr().err
    assert cli.main([*args, "--batch-size", "0"]) == 2
    assert "leave out --batch-size " in capsys.readouterr().err


def test_cli_train_error_from_a_real_process(tmp_path):
    r = run("train", EXAMPLES / "chain_rule.gc", "--data", EXAMPLES / "chain_rule.npz", cwd=tmp_path)
    assert r.returncode == 1 and "error: nothing to train" in r.stderr and "hint:" in r.stderr


def test_cli_plot(tmp_path):
    r = run(
        "train",
        EXAMPLES / "least_squares.gc",
        "--data",
        EXAMPLES / "least_squares.npz",
        "--lr",
        "0.5",
        "--epochs",
        "20",
        "--quiet",
        "--plot",
        "loss.png",
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "wrote the loss plot to loss.png" in r.stdout
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


# ---- the examples -----------------------------------------------------------------------------
def _readme_commands() -> list[str]:
    text = (EXAMPLES / "README.md").read_text()
    return re.findall(r"^\| `[^`]+\.gc` \|[^|]*\| `(graphc [^`]+)` \|", text, re.MULTILINE)


# the result examples/README.md documents for each `graphc train` command in its table
EXPECTED = {
    "least_squares.gc": {"E": (0.0053627, 1e-4)},
    "logistic_least_squares.gc": {"L": (0.00088, 0.1)},
    "logistic_least_squares_l2.gc": {"L_reg": (0.00796, 0.1)},
    "xor_features.gc": {"accuracy": (1.0, 0), "L": (0.013, 0.1)},
    "xor_mlp.gc": {"accuracy": (1.0, 0)},
    "softmax_regression.gc": {"accuracy": (0.98, 0.015)},
    "digits_mlp.gc": {"val accuracy": (0.98, 0.025)},
    "digits_mlp2.gc": {"val accuracy": (0.975, 0.02)},
    "embedding.gc": {"val accuracy": (0.9567, 0.01)},
    "digits_cnn.gc": {"val accuracy": (0.9889, 0.015)},
}


def test_every_trained_example_has_a_documented_result():
    trained = {shlex.split(c)[2].split("/")[-1] for c in _readme_commands() if c.startswith("graphc train")}
    assert trained == set(EXPECTED)


def _available(command: str) -> bool:
    from graphc.app.cli import build_parser

    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
        try:  # `graphc COMMAND --help`: exit 0 for a command the CLI has, 2 (invalid choice) for another
            build_parser().parse_args([shlex.split(command)[1], "--help"])
        except SystemExit as e:
            return e.code == 0
    return True


@pytest.fixture
def workdir(tmp_path):
    """A folder like the repository root for the README's commands: examples/ in it, outputs land in it."""
    (tmp_path / "examples").symlink_to(EXAMPLES)
    return tmp_path


@pytest.mark.parametrize("command", [c for c in _readme_commands() if _available(c)], ids=lambda c: c.split()[2])
def test_every_example_command_in_the_readme_table_runs(command, workdir):
    words = shlex.split(command)[1:]
    r = run(*words, cwd=workdir)
    assert r.returncode == 0, r.stderr
    name = words[1].split("/")[-1]
    for key, (value, rel) in EXPECTED.get(name, {}).items():
        assert printed(r.stdout, key) == pytest.approx(value, rel=rel, abs=1e-4), (key, r.stdout)


def test_the_readmes_other_train_commands_run_in_order(workdir):
    text = (EXAMPLES / "README.md").read_text()
    lines = re.findall(r"^    (graphc train .*)$", text, re.MULTILINE)
    assert len(lines) >= 3
    for line in lines:
        r = run(*shlex.split(line, comments=True)[1:], cwd=workdir)
        assert r.returncode == 0, (line, r.stderr)
    assert (workdir / "loss.png").exists() and (workdir / "params.npz").exists()


def test_digits_reaches_95_percent_held_out_in_few_epochs():
    m = graphc.load(EXAMPLES / "digits_mlp.gc")
    r = quiet_train(
        m,
        load_npz(str(EXAMPLES / "digits_train.npz")),
        lr=0.5,
        epochs=10,
        batch_size=32,
        val=load_npz(str(EXAMPLES / "digits_test.npz")),
        metric="accuracy",
    )
    assert r.val_metric >= 0.95


# ---- the demo ---------------------------------------------------------------------------------
def test_demo_writes_params_plot_and_code_and_says_what_next(tmp_path):
    r = run("demo", "--out", tmp_path / "out", "--epochs", "12", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    acc = float(re.search(r"held-out accuracy: ([0-9.]+)%", r.stdout).group(1))
    assert acc >= 95
    out = tmp_path / "out"
    params = np.load(out / "digits_params.npz")
    assert sorted(params.files) == ["W1", "W2", "b1", "b2"]
    assert (out / "loss.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("digits_params.npz", "loss.png"):
        assert name in r.stdout
    if _available("graphc emit x"):
        assert "def loss_and_grad" in (out / "digits_backprop.py").read_text()
    else:
        assert "no `emit` command" in r.stdout
    if _available("graphc render x"):  # Graphviz's dot is installed by the setup
        assert "<svg" in (out / "forward.svg").read_text() and "<svg" in (out / "backward.svg").read_text()
        assert "forward.svg" in r.stdout and "backward.svg" in r.stdout
    else:
        assert "no `render` command" in r.stdout
    assert "next, try:" in r.stdout and "graphc eval" in r.stdout
    suggested = [ln.strip() for ln in r.stdout.split("next, try:")[1].splitlines() if ln.startswith("  graphc ")]
    assert len(suggested) >= 3
    for line in suggested:  # every command it suggests runs
        s = run(*shlex.split(line)[1:], cwd=tmp_path)
        assert s.returncode == 0, (line, s.stderr)
    # the params it wrote give the accuracy it printed
    m = graphc.load(EXAMPLES / "digits_mlp.gc")
    test = load_npz(str(EXAMPLES / "digits_test.npz"))
    Y = m.evaluate({"X": test["X"], "T": test["T"], **params})["Y"]
    assert 100 * np.mean(np.argmax(Y, 1) == test["labels"]) == pytest.approx(acc, abs=0.05)


def test_demo_without_matplotlib_says_so(tmp_path, monkeypatch):
    from graphc.app import demo

    out = io.StringIO()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    written = demo.run(tmp_path / "o", epochs=1, file=out)
    assert "pip install 'graphc[plot]'" in out.getvalue()
    assert not (tmp_path / "o" / "loss.png").exists()
    assert str(tmp_path / "o" / "digits_params.npz") in written


def test_demo_refuses_a_file_as_its_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    r = run("demo", "--out", tmp_path / "f", cwd=tmp_path)
    assert r.returncode == 2 and "folder" in r.stderr


def test_model_train_is_the_same_as_train():
    a = LSQ.train(LSQ_DATA, lr=0.3, epochs=4, quiet=True)
    b = quiet_train(LSQ, LSQ_DATA, lr=0.3, epochs=4)
    np.testing.assert_array_equal(a.params["w"], b.params["w"])


def test_callback_sees_each_epoch_and_can_stop_training():
    seen = []
    r = quiet_train(LSQ, LSQ_DATA, lr=0.5, epochs=50, callback=lambda rec: seen.append(rec) or rec["epoch"] == 4)
    assert [rec["epoch"] for rec in seen] == [1, 2, 3, 4]
    assert r.stopped == "callback" and r.epochs == 4 and r.steps == 4
    assert [rec["loss"] for rec in seen] == r.history["loss"]


def test_cli_summary_counts_in_words(monkeypatch, capsys):
    from graphc.app import cli

    monkeypatch.chdir(REPO)
    code = cli.main(
        [
            "train",
            "examples/logistic_least_squares.gc",
            "--data",
            "examples/logistic_least_squares.npz",
            "--epochs",
            "1",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("trained 1 epoch (1 step) of gradient descent on 1 example, lr 0.1")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["data", "val"])
def test_a_value_that_is_not_finite_in_the_data_is_an_error_naming_it(bad, where):
    """(a nan in the validation data once made every val loss nan and --patience keep no epoch)"""
    m = graphc.compile(MEAN)
    x = np.linspace(-1, 1, 10)
    spoilt = x.copy()
    spoilt[7] = bad
    kw = {"val": {"x": spoilt}} if where == "val" else {}
    with pytest.raises(GraphcError, match=r"data's `x` holds -?(nan|inf) at \[7\]") as e:
        quiet_train(m, {"x": spoilt if where == "data" else x}, lr=0.1, epochs=2, batch_size=5, **kw)
    assert ("validation" in e.value.message) == (where == "val") and "finite" in e.value.hint


def test_a_missing_input_s_hint_names_every_key_of_the_file_even_those_not_read(tmp_path):
    """(the command line reads only the model's names from --data: a mistyped `x` for `X` went unshown)"""
    np.savez(tmp_path / "d.npz", x=np.ones((4, 3)), t=np.ones(4), notes=np.zeros(1))
    m = graphc.load(EXAMPLES / "least_squares.gc")
    with pytest.raises(GraphcError, match="the training data has no `X`") as e:
        quiet_train(m, load_npz(str(tmp_path / "d.npz"), keep={"X", "t", "w"}), lr=0.1, epochs=1)
    assert "the training data holds: notes, t, x" in e.value.hint
