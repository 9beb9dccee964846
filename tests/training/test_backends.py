"""`train(..., backend=)` / `graphc train --backend numba|torch|jax [--device]`: the same run as the NumPy
backend's, params and every epoch's numbers to 1e-10, for every optimizer, with the schedule, warmup, L2,
clipping, validation and the metric; integer inputs (token ids); and the torch and JAX loops stay on the
device: no tensor comes back to NumPy per step."""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.data import load_npz
from graphc.errors import GraphcError
from graphc.training.optimizers import OPTIMIZERS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOL = 1e-10
BACKENDS = [
    pytest.param(b, marks=pytest.mark.skipif(not importlib.util.find_spec(b), reason=f"{b} is not installed"))
    for b in ("numba", "torch", "jax")
]


@pytest.fixture(scope="module")
def digits():
    return (
        graphc.load(EXAMPLES / "digits_mlp.gc"),
        load_npz(str(EXAMPLES / "digits_train.npz")),
        load_npz(str(EXAMPLES / "digits_test.npz")),
    )


def assert_same_run(got, want):
    """Params and every epoch's figures to TOL, relative to their scale; the counts exactly."""
    assert (got.epochs, got.steps, got.stopped, got.best_epoch) == (
        want.epochs,
        want.steps,
        want.stopped,
        want.best_epoch,
    )
    for p, w in want.params.items():
        assert got.params[p].dtype == np.float64 and got.params[p].shape == w.shape
        np.testing.assert_allclose(got.params[p], w, rtol=0, atol=TOL * max(1.0, np.abs(w).max()), err_msg=p)
    assert set(got.history) == set(want.history)
    for k, w in want.history.items():
        np.testing.assert_allclose(got.history[k], w, rtol=TOL, atol=TOL, err_msg=k)
    for k in ("loss", "metric", "val_loss", "val_metric", "lr"):
        if getattr(want, k) is None:
            assert getattr(got, k) is None, k
        else:
            np.testing.assert_allclose(getattr(got, k), getattr(want, k), rtol=TOL, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_mini_batches_as_on_numpy(backend, optimizer, digits):
    m, data, val = digits
    kw = {
        "lr": 0.01 if optimizer.startswith("adam") else 0.3, "epochs": 3, "batch_size": 50, "optimizer": optimizer,
        "l2": 1e-3, "clip_norm": 2.0, "schedule": "cosine", "warmup": 1, "val": val, "metric": "accuracy",
        "quiet": True, "seed": 3,
    }  # fmt: skip
    if optimizer != "sgd":
        kw["weight_decay"] = 0.01
    got, want = m.train(data, backend=backend, **kw), m.train(data, **kw)
    assert_same_run(got, want)
    assert got.engine == ("compiled numba" if backend == "numba" else f"array-api ({backend}, cpu)")


@pytest.mark.parametrize("backend", BACKENDS)
def test_full_batch_gradient_descent_as_on_numpy(backend):
    m = graphc.load(EXAMPLES / "least_squares.gc")
    data = load_npz(str(EXAMPLES / "least_squares.npz"))
    kw = {"lr": 0.05, "epochs": 6, "quiet": True, "optimizer": "momentum", "schedule": "step", "step_size": 2}
    assert_same_run(m.train(data, backend=backend, **kw), m.train(data, **kw))


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_ids_and_names_that_are_python_keywords(backend):
    """An embedding's integer tokens gathered on the device; a param named `lambda` (the module's `lambda_`)."""
    m = graphc.load(EXAMPLES / "embedding.gc")
    data = load_npz(str(EXAMPLES / "embedding_train.npz"))
    kw = {"lr": 0.5, "epochs": 2, "batch_size": 64, "quiet": True, "metric": "accuracy"}
    assert_same_run(m.train(data, backend=backend, **kw), m.train(data, **kw))
    k = graphc.compile("input x: [N]\ninput t: [N]\nparam lambda: [] = 0.5\nL = mean((lambda * x - t)^2)\n")
    xy = {"x": np.linspace(-1, 1, 20), "t": np.linspace(0, 3, 20)}
    kw = {"lr": 0.1, "epochs": 3, "batch_size": 7, "quiet": True}
    assert_same_run(k.train(xy, backend=backend, **kw), k.train(xy, **kw))


def test_the_torch_loop_brings_no_tensor_back_per_step(digits, monkeypatch):
    """What crosses to the host is counted: a few reads an epoch (its loss, the metric's scores), none a step."""
    torch = pytest.importorskip("torch")
    m, data, _ = digits
    reads = []
    for name in ("numpy", "item", "tolist", "__float__", "cpu"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(
            torch.Tensor, name, lambda self, *a, _real=real, _n=name, **k: reads.append(_n) or _real(self, *a, **k)
        )
    r = m.train(data, backend="torch", lr=0.3, epochs=4, batch_size=16, quiet=True)
    assert r.steps == 4 * 90
    assert len(reads) <= 4 * 2 + 10, reads  # an epoch's loss; the final params and loss


def test_an_interrupt_stops_the_device_loop_after_its_epoch_and_its_checkpoint(digits, tmp_path):
    pytest.importorskip("torch")
    from graphc.training import checkpoints

    m, data, _ = digits
    r = m.train(
        data, backend="torch", lr=0.3, epochs=5, batch_size=64, quiet=True, handle_signals=True,
        callback=lambda rec: os.kill(os.getpid(), signal.SIGINT) and None, checkpoint=str(tmp_path),
    )  # fmt: skip
    assert (r.stopped, r.epochs) == ("interrupted", 1)
    params, _, meta = checkpoints.load(str(tmp_path), {p: v.shape for p, v in r.params.items()})
    assert meta["epoch"] == 1 and all(np.array_equal(params[p], v) for p, v in r.params.items())


def _has_gpu(backend: str, lib) -> bool:
    return lib.cuda.is_available() if backend == "torch" else any(d.platform == "gpu" for d in lib.devices())


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_cuda_runs_where_there_is_a_gpu(backend, digits):
    lib = pytest.importorskip(backend)
    has_gpu = _has_gpu(backend, lib)
    if not has_gpu:
        pytest.skip(f"{backend} sees no GPU on this machine")
    m, data, _ = digits
    kw = {"lr": 0.01, "epochs": 2, "batch_size": 64, "quiet": True, "optimizer": "adam"}
    got = m.train(data, backend=backend, device="cuda", **kw)
    assert_same_run(got, m.train(data, **kw))
    assert got.engine == f"array-api ({backend}, cuda)"


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_cuda_without_a_gpu_is_a_clear_error(backend, digits):
    lib = pytest.importorskip(backend)
    has_gpu = _has_gpu(backend, lib)
    if has_gpu:
        pytest.skip(f"{backend} sees a GPU on this machine")
    m, data, _ = digits
    with pytest.raises(GraphcError, match=r"device='cuda': .* no (CUDA device|GPU) here") as e:
        m.train(data, backend=backend, device="cuda", epochs=1, quiet=True)
    assert "CPU" in e.value.hint


def test_a_missing_library_is_a_clear_error_with_its_install(digits, monkeypatch):
    m, data, _ = digits
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(GraphcError, match="needs torch, which is not installed") as e:
        m.train(data, backend="torch", epochs=1, quiet=True)
    assert e.value.hint == "pip install torch"


@pytest.mark.parametrize(
    "options, message",
    [
        ({"backend": "cupy"}, "unknown backend='cupy'"),
        ({"device": "cuda"}, "device='cuda' is for backend='torch' or jax"),
        ({"backend": "numba", "device": "cpu"}, "device='cpu' is for"),
        ({"backend": "torch", "device": "tpu"}, "unknown device='tpu'"),
        ({"backend": "torch", "schedule": "halve"}, "backend='torch' trains without schedule='halve'"),
        ({"backend": "jax", "tol": 1e-3}, "backend='jax' trains without tol=0.001"),
    ],
)
def test_options_a_backend_does_not_take_are_usage_errors(options, message, digits):
    m, data, _ = digits
    with pytest.raises(GraphcError, match=message.replace("(", r"\(")) as e:
        m.train(data, epochs=1, quiet=True, **options)
    assert e.value.usage


def test_the_command_line_trains_on_torch_and_refuses_a_device_for_numpy(tmp_path):
    pytest.importorskip("torch")
    from clitools import run_cleanly

    args = ["train", EXAMPLES / "digits_mlp.gc", "--data", EXAMPLES / "digits_train.npz", "--epochs", "1", "--quiet"]
    r = run_cleanly(*args, "--backend", "torch", "--batch-size", "32", "-o", tmp_path / "p.npz")
    assert r.returncode == 0, r.stderr
    assert "array-api (torch, cpu) gradient step" in r.stdout and (tmp_path / "p.npz").exists()
    r = run_cleanly(*args, "--device", "cpu")
    assert r.returncode == 2 and "--device cpu is for --backend torch or jax" in r.stderr


def test_the_metric_log_and_plot_from_a_device_run(digits, tmp_path):
    pytest.importorskip("jax")
    import json

    m, data, val = digits
    log = tmp_path / "metrics.jsonl"
    kw = {"lr": 0.3, "epochs": 2, "batch_size": 64, "quiet": True, "val": val, "metric": "accuracy"}
    r = m.train(data, backend="jax", log=str(log), plot=str(tmp_path / "loss.png"), **kw)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [rec["epoch"] for rec in records] == [1, 2] and [rec["step"] for rec in records] == [23, 46]
    assert [rec["loss"] for rec in records] == r.history["loss"]
    assert {"lr", "seconds", "val_loss", "accuracy", "val_accuracy"} <= set(records[0])
    assert (tmp_path / "loss.png").stat().st_size > 0


# every shipped example that trains, with its data file
EXAMPLE_DATA = {
    "digits_mlp": "digits_train", "digits_mlp2": "digits_train", "digits_cnn": "digits_train",
    "embedding": "embedding_train", "xor_mlp": "xor_mlp", "xor_features": "xor", "least_squares": "least_squares",
    "logistic_least_squares": "logistic_least_squares", "logistic_least_squares_l2": "logistic_least_squares",
    "softmax_regression": "softmax_regression", "two_layer": "two_layer", "two_layer_layers": "two_layer",
    "attention": "attention",
}  # fmt: skip


@pytest.mark.parametrize(
    "backend",
    [p if p.values[0] != "numba" else pytest.param("numba", marks=[*p.marks, pytest.mark.slow]) for p in BACKENDS],
)
@pytest.mark.parametrize("example", EXAMPLE_DATA)
def test_every_example_trains_as_on_numpy(example, backend):
    if backend == "numba" and example == "digits_cnn":
        pytest.skip("4-d array expressions: Numba takes about a minute to compile them (tests/backends/test_numba.py)")
    m = graphc.load(EXAMPLES / f"{example}.gc")
    data = load_npz(str(EXAMPLES / f"{EXAMPLE_DATA[example]}.npz"))
    kw = {"lr": 0.05, "epochs": 2, "quiet": True}
    assert_same_run(m.train(data, backend=backend, **kw), m.train(data, **kw))


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.values[0] != "numba"])
def test_divergence_is_the_numpy_loop_s_error(backend, digits):
    """A batch's loss far above the initial loss stops training as on NumPy (there at that batch, on the device
    at the end of its epoch: the largest batch loss is kept there)."""
    m, data, _ = digits
    with pytest.raises(
        GraphcError, match=r"training diverged: the loss grew to .*, from 2.498 at the start, at epoch 1"
    ):
        m.train(data, backend=backend, lr=1e6, epochs=3, batch_size=32, quiet=True)
    bad = graphc.compile("input x: [N]\nparam w: [] = 1\nL = mean(log(w * x))\n")
    with pytest.raises(GraphcError, match="at the initial params: there is nothing to descend"):
        bad.train({"x": np.array([-1.0, 2.0])}, backend=backend, epochs=1, quiet=True)


@pytest.mark.parametrize("backend", [b for b in BACKENDS if b.values[0] != "numba"])
def test_a_device_run_resumed_is_the_run_that_never_stopped(backend, digits, tmp_path):
    """Bit for bit on the same backend (params, optimizer state, shuffling generator, history); and the
    checkpoint is the NumPy loop's: a run checkpointed on NumPy resumes on the device, to rounding."""
    m, data, val = digits
    kw = {"lr": 0.01, "batch_size": 50, "optimizer": "adam", "schedule": "cosine", "quiet": True, "val": val}
    whole = m.train(data, backend=backend, epochs=4, **kw)
    stop = {"epochs": 4, "callback": lambda rec: rec["epoch"] == 2}  # (the cosine schedule spans the 4)
    first = m.train(data, backend=backend, checkpoint=str(tmp_path / "run"), **stop, **kw)
    assert first.stopped == "callback" and (tmp_path / "run" / "params.npz").exists()
    rest = m.train(data, backend=backend, epochs=4, resume=str(tmp_path / "run"), **kw)
    assert rest.resumed == 2 and rest.steps == whole.steps and rest.history == whole.history
    for p, w in whole.params.items():
        assert np.array_equal(rest.params[p], w), p
    m.train(data, checkpoint=str(tmp_path / "numpy"), **stop, **kw)
    assert_same_run(m.train(data, backend=backend, epochs=4, resume=str(tmp_path / "numpy"), **kw), whole)
