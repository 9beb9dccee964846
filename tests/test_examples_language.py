"""The examples of the grown language (examples/README.md, "Beyond the lecture"): embedding.gc trains to a held-out
accuracy far above chance, and attention.gc's gradients pass `graphc gradcheck` and agree with PyTorch."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from clitools import run_cleanly
from gradtools import assert_close

import graphc
from graphc.data import load_npz
from graphc.ir.ops import integer_inputs

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
README = (EXAMPLES / "README.md").read_text(encoding="utf-8")


def _command(example: str) -> list[str]:
    """The README's command for an example of the "Beyond the lecture" table, as arguments to graphc."""
    (line,) = re.findall(rf"^\| `{re.escape(example)}` \|[^|]*\| `(graphc [^`]+)` \|$", README, re.MULTILINE)
    return shlex.split(line)[1:]


def test_embedding_trains_to_held_out_accuracy_far_above_chance():
    m = graphc.load(EXAMPLES / "embedding.gc")
    train, test = load_npz(str(EXAMPLES / "embedding_train.npz")), load_npz(str(EXAMPLES / "embedding_test.npz"))
    assert train["tokens"].dtype == np.int64 and set(integer_inputs(m.graph)) == {"tokens", "labels"}
    r = m.train(train, lr=1, epochs=10, batch_size=32, val=test, metric="accuracy", quiet=True)
    assert r.engine == "compiled"  # the emitted module's step, fed the data's tokens
    assert r.val_metric == pytest.approx(0.9567, abs=0.01)  # chance: 1/3 (README: 287 of 300)
    Y = m.evaluate({**test, **r.params})["Y"]  # the params it returned give the accuracy it reported
    assert np.mean(np.argmax(Y, axis=1) == test["labels"]) == r.val_metric
    words = m.evaluate({"tokens": np.arange(24).reshape(24, 1), "labels": np.zeros(24), **r.params})["Y"]
    assert (np.argmax(words[:18], axis=1) == np.arange(18) // 6).all()  # each topic's words point to it


def test_embedding_readme_command_prints_the_documented_result(tmp_path):
    (tmp_path / "examples").symlink_to(EXAMPLES)
    r = run_cleanly(*_command("embedding.gc"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^val accuracy = 0\.95666", r.stdout, re.MULTILINE), r.stdout


def test_attention_passes_gradcheck_on_the_command_line(tmp_path):
    (tmp_path / "examples").symlink_to(EXAMPLES)
    r = run_cleanly(*_command("attention.gc"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    worst = {name: float(e) for name, e in re.findall(r"(\w+): max relative error (\S+)\s+ok", r.stdout)}
    assert set(worst) == {"Wq", "Wk", "Wv"} and max(worst.values()) < 1e-8


def test_attention_gradients_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    m = graphc.load(EXAMPLES / "attention.gc")
    values = load_npz(str(EXAMPLES / "attention.npz"))
    start = m.evaluate(values)  # the params' initial values
    params = {w: torch.tensor(start[w], requires_grad=True) for w in m.params}
    X, Y = torch.tensor(values["X"]), torch.tensor(values["Y"])
    Q, K, V = X @ params["Wq"], X @ params["Wk"], X @ params["Wv"]
    H = torch.softmax(Q @ K.T / np.sqrt(Q.shape[1]), dim=-1) @ V
    loss = 0.5 * ((H - Y) ** 2).sum()
    loss.backward()
    got_loss, grads = m.loss_and_grad(values)
    assert got_loss == pytest.approx(loss.item(), rel=1e-13) and got_loss == pytest.approx(9.19452, abs=5e-6)
    for w, p in params.items():
        assert_close(grads[w], p.grad.numpy(), rtol=1e-12, atol=1e-14, what=f"d/d{w} vs PyTorch")
    _, grads2 = m.compiled().loss_and_grad(**values, **{w: start[w] for w in m.params})
    for w in m.params:
        assert_close(grads2[w], grads[w], rtol=1e-12, atol=1e-14, what=f"d/d{w}, emitted vs interpreter")
