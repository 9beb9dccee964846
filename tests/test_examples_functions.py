"""The examples written with functions (examples/layers.gc): each computes what it says, and trains."""

import re
from pathlib import Path

import numpy as np
import pytest
from clitools import run_cleanly

import graphc
from graphc.data import load_npz

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_two_layer_network_with_a_layer_function_is_the_lecture_network():
    values = load_npz(str(EXAMPLES / "two_layer.npz"))
    a, b = graphc.load(EXAMPLES / "two_layer.gc"), graphc.load(EXAMPLES / "two_layer_layers.gc")
    loss_a, grads_a = a.loss_and_grad(dict(values))
    loss_b, grads_b = b.loss_and_grad(dict(values))
    assert loss_a == loss_b
    for k in grads_a:
        np.testing.assert_array_equal(grads_a[k], grads_b[k])
    assert "z = W1 @ x + b1" in b.emit()  # the call's result keeps the name it is assigned


def test_every_function_of_layers_gc_computes_its_formula():
    rng = np.random.default_rng(0)
    X, W, b = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=4)
    T = np.eye(4)[rng.integers(0, 4, 5)]
    y, z = np.sign(rng.normal(size=5)), rng.normal(size=5)
    src = (
        'use "layers.gc"\ninput X: [5, 3]\ninput W: [3, 4]\ninput b: [4]\ninput T: [5, 4]\ninput y: [5]\ninput z: [5]\n'
        "d = dense(X, W, b)\ns = sigmoid_layer(X, W, b)\nt = tanh_layer(X, W, b)\nr = relu_layer(X, W, b)\n"
        "ce = softmax_cross_entropy(d, T)\nse = mse(d, T)\nlog = logistic_loss(z, y)\npen = l2(W)\nok = correct(d, T)\n"
        "L = ce + se + log + pen + sum(s + t + r) + sum(ok)"
    )
    v = graphc.compile(src, str(EXAMPLES / "model.gc")).evaluate({"X": X, "W": W, "b": b, "T": T, "y": y, "z": z})
    d = X @ W + b
    np.testing.assert_allclose(v["d"], d, rtol=1e-14)
    np.testing.assert_allclose(v["s"], 1 / (1 + np.exp(-d)), rtol=1e-14)
    np.testing.assert_allclose(v["t"], np.tanh(d), rtol=1e-14)
    np.testing.assert_allclose(v["r"], np.maximum(d, 0), rtol=1e-14)
    logp = d - d.max(1, keepdims=True) - np.log(np.exp(d - d.max(1, keepdims=True)).sum(1, keepdims=True))
    assert v["ce"] == pytest.approx(-(T * logp).sum(1).mean(), rel=1e-14)
    assert v["se"] == pytest.approx((0.5 * ((d - T) ** 2).sum(1)).mean(), rel=1e-14)
    assert v["log"] == pytest.approx(np.log1p(np.exp(-y * z)).mean(), rel=1e-14)
    assert v["pen"] == pytest.approx(0.5 * (W**2).sum(), rel=1e-14)
    np.testing.assert_array_equal(v["ok"], (d.argmax(1) == T.argmax(1)).astype(float))


@pytest.mark.slow
def test_the_deeper_digits_network_written_with_layers_trains_to_96_percent(tmp_path):
    r = run_cleanly(
        "train", EXAMPLES / "digits_mlp2.gc", "--data", EXAMPLES / "digits_train.npz",
        "--val", EXAMPLES / "digits_test.npz", "--lr", "0.1", "--epochs", "30", "--batch-size", "32",
        "--metric", "accuracy", "-o", tmp_path / "params.npz", cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    held_out = float(re.search(r"val accuracy = ([0-9.]+)", r.stdout + r.stderr).group(1))
    assert held_out >= 0.96


def test_the_readmes_language_example_is_a_model_that_runs():
    text = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("### The language", 1)[1].split("```\n")[1]
    m = graphc.compile(block, str(EXAMPLES / "readme.gc"))  # (beside layers.gc, as if in examples/)
    rng = np.random.default_rng(0)
    values = {"X": rng.random((3, 64)), "tokens": np.array([1, 0, 9]), "W1": rng.normal(0, 0.1, (64, 16))}
    values |= {"E": rng.normal(size=(10, 16)), "K": rng.normal(size=(4, 1, 3, 3))}
    loss, grads = m.loss_and_grad(values)
    assert np.isfinite(loss) and set(grads) == {"W1", "b1", "E", "K"}
    mloss, _ = m.compiled().loss_and_grad(**values)
    assert mloss == pytest.approx(loss, rel=1e-12)
