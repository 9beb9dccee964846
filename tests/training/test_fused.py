"""The numba backend's compiled epoch (graphc/training/fused.py): the loop's mini-batch epoch, the
kernel and the optimizer's rule in one compiled function. It makes the same operations in the same
order as the loop does in Python around the same kernel (the numba backend with the epoch left to
Python), so the runs must be equal to the bit: params, histories, step counts, the stop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.data import load_npz
from graphc.training.optimizers import OPTIMIZERS

fused = pytest.importorskip("graphc.training.fused", reason="numba is not installed")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS = graphc.load(EXAMPLES / "digits_mlp.gc")
DATA = {k: v[:300] for k, v in load_npz(str(EXAMPLES / "digits_train.npz")).items()}
EPOCH = fused.epoch
VAL = {k: v[:100] for k, v in load_npz(str(EXAMPLES / "digits_test.npz")).items()}


def runs(model, data, monkeypatch, **kw):
    """(the run with the compiled epoch, the same run with the epoch in Python), both on the numba backend."""
    made = []
    monkeypatch.setattr(fused, "epoch", lambda *a: made.append(EPOCH(*a)) or made[-1])
    compiled = model.train(data, backend="numba", quiet=True, **kw)
    assert made and made[-1] is not None, "the compiled epoch did not run"
    monkeypatch.setattr(fused, "epoch", lambda *a: None)
    return compiled, model.train(data, backend="numba", quiet=True, **kw)


def assert_equal_runs(a, b):
    counts = lambda r: (r.epochs, r.steps, r.stopped, r.best_epoch, r.notes)  # noqa: E731
    assert counts(a) == counts(b)
    for p in b.params:
        assert np.array_equal(a.params[p], b.params[p]), p
    assert a.history == b.history


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_each_optimizer_as_the_loop_makes_it(optimizer, monkeypatch):
    kw = dict(lr=0.01 if optimizer.startswith("adam") else 0.3, epochs=3, batch_size=32, optimizer=optimizer,
              schedule="cosine", warmup=1, val=VAL, metric="accuracy", seed=1)  # fmt: skip
    if optimizer != "sgd":
        kw["weight_decay"] = 0.01
    a, b = runs(DIGITS, DATA, monkeypatch, **kw)
    assert_equal_runs(a, b)
    assert a.steps == 3 * 10 and a.history["loss"][-1] < a.history["loss"][0]


@pytest.mark.slow
def test_a_loss_that_explodes_mid_epoch_stops_it_and_halve_redoes_it(monkeypatch):
    m = graphc.compile("input x: [N]\ninput t: [N]\nparam w = 1\nL = mean((w * x - t)^2)\n")
    data = {"x": np.linspace(-3, 3, 40), "t": np.linspace(0, 1, 40)}
    a, b = runs(m, data, monkeypatch, lr=50.0, epochs=4, batch_size=8, schedule="halve", seed=0)
    assert a.notes and "redone with lr" in a.notes[0]
    assert_equal_runs(a, b)


@pytest.mark.slow
def test_integer_tokens_keyword_names_and_names_like_the_drivers_own(monkeypatch):
    """The embedding's int tokens gathered in the loop; params named like Python keywords and builtins
    and like the driver's own names (its prefix grows past them); a scalar param."""
    m = graphc.load(EXAMPLES / "embedding.gc")
    a, b = runs(m, load_npz(str(EXAMPLES / "embedding_train.npz")), monkeypatch, lr=0.5, epochs=2, batch_size=64)
    assert_equal_runs(a, b)
    k = graphc.compile(
        "input _gX: [N]\ninput range: [N]\nparam lambda: [] = 0.5\nparam np: [2] = 0.1\nparam _gk: [] = 0\n"
        "L = mean((lambda * _gX + np[0] * range + np[1] + _gk - range)^2)\n"
    )
    xy = {"_gX": np.linspace(-1, 1, 20), "range": np.linspace(0, 3, 20)}
    a, b = runs(k, xy, monkeypatch, lr=0.1, epochs=3, batch_size=7, optimizer="adam")
    assert_equal_runs(a, b)
    assert a.steps == 9


def test_options_the_compiled_epoch_lacks_run_the_loop_in_python(monkeypatch):
    made = []
    monkeypatch.setattr(fused, "epoch", lambda *a: made.append(a))
    for kw in ({"l2": 1e-3}, {"clip_norm": 1.0}, {"batch_size": None}):
        DIGITS.train(DATA, backend="numba", quiet=True, lr=0.1, epochs=1, **{"batch_size": 32, **kw})
    assert made == []
