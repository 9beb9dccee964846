"""Full-batch gradient descent on a Dask cluster (graphc.training.distributed) against graphc's NumPy
gradient descent: the same params after every epoch and the same loss history, to 1e-10, on a
local cluster of two worker processes started once for the module."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import psutil  # noqa: E402  (a dependency of distributed)
from dask.callbacks import Callback  # noqa: E402

import graphc  # noqa: E402
from graphc.errors import GraphcError  # noqa: E402
from graphc.training import train  # noqa: E402
from graphc.training.distributed import open_zarr, save_zarr, train_dask  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TOL = 1e-10
EPOCHS = 5


@pytest.fixture(scope="module")
def cluster():
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c,
        distributed.Client(c) as client,
    ):
        yield c, client


@pytest.fixture(scope="module")
def least_squares():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2003, 6))
    t = X @ rng.normal(size=6) + 0.1 * rng.normal(size=2003)
    return graphc.load(EXAMPLES / "least_squares.gc"), {"X": X, "t": t}


@pytest.fixture(scope="module")
def digits():
    return graphc.load(EXAMPLES / "digits_mlp.gc"), dict(np.load(EXAMPLES / "digits_train.npz"))


def _numpy_run(model, data, lr, epochs, **kw):
    return train(model, data, lr=lr, epochs=epochs, quiet=True, **kw)


def _assert_same(got, want):
    np.testing.assert_allclose(got.history["loss"], want.history["loss"], rtol=TOL, atol=0)
    assert got.params.keys() == want.params.keys()
    for k in want.params:
        np.testing.assert_allclose(got.params[k], want.params[k], rtol=TOL, atol=TOL, err_msg=k)
    assert abs(got.loss - want.loss) <= TOL * abs(want.loss)


@pytest.mark.parametrize("case, lr, chunk", [("least_squares", 0.1, 300), ("digits", 0.5, None)])
def test_dask_gradient_descent_equals_numpy_gradient_descent_epoch_by_epoch(case, lr, chunk, cluster, request):
    model, data = request.getfixturevalue(case)
    _, client = cluster
    want = _numpy_run(model, data, lr, EPOCHS)
    got = train_dask(model, data, lr=lr, epochs=EPOCHS, scheduler=client, chunk=chunk, quiet=True)
    _assert_same(got, want)
    assert got.epochs == got.steps == EPOCHS and got.method == "gradient descent" and got.engine == "dask"
    assert got.n_examples == len(next(iter(data.values())))
    # the params after each epoch: one epoch at a time from the last one's params (GD keeps no state)
    params = None
    for k in range(1, EPOCHS + 1):
        step = train_dask(model, data, lr=lr, epochs=1, scheduler=client, chunk=chunk, init=params, quiet=True)
        ref = _numpy_run(model, data, lr, k)
        for p in ref.params:
            np.testing.assert_allclose(step.params[p], ref.params[p], rtol=TOL, atol=TOL, err_msg=f"{p}, epoch {k}")
        params = step.params


def test_l2_and_wrt_as_in_numpy_gradient_descent(least_squares, cluster):
    model, data = least_squares
    want = _numpy_run(model, data, 0.1, 3, l2=0.3)
    _assert_same(train_dask(model, data, lr=0.1, epochs=3, l2=0.3, scheduler=cluster[1], quiet=True), want)


def test_a_zarr_store_is_read_on_the_workers_in_its_chunks(least_squares, cluster, tmp_path):
    model, data = least_squares
    store = tmp_path / "train.zarr"
    save_zarr(store, {**data, "unused": np.arange(3)}, chunk=500)
    opened = open_zarr(store)
    assert opened["X"].chunks[0] == (500, 500, 500, 500, 3) and isinstance(opened["X"], da.Array)
    got = train_dask(model, str(store), lr=0.1, epochs=EPOCHS, scheduler=cluster[1], quiet=True)
    _assert_same(got, _numpy_run(model, data, 0.1, EPOCHS))
    assert got.notes == ["5 chunks on 2 workers"]


def test_arrays_of_an_equal_but_distinct_float64_dtype_as_zarr_gives(least_squares, cluster):
    model, data = least_squares
    le = np.dtype(np.float64).newbyteorder("<")  # what Zarr's arrays have: == float64, yet not np.float64's object
    assert le == np.float64 and le is not np.dtype(np.float64)
    given = {k: v.astype(le) for k, v in data.items()}
    fresh = graphc.load(EXAMPLES / "least_squares.gc")  # no plan cached from other tests
    got = train_dask(fresh, given, lr=0.1, epochs=2, scheduler=cluster[1], quiet=True)
    _assert_same(got, _numpy_run(model, data, 0.1, 2))


def test_save_zarr_writes_dask_arrays_chunk_by_chunk(least_squares, tmp_path):
    _, data = least_squares
    save_zarr(tmp_path / "s.zarr", {"X": da.from_array(data["X"], chunks=(700, 6))}, chunk=400)
    back = open_zarr(tmp_path / "s.zarr")["X"]
    assert back.chunks[0][0] == 400
    np.testing.assert_array_equal(back.compute(), data["X"])


def test_an_npz_path_and_the_scheduler_s_address(digits, cluster, tmp_path):
    model, data = digits
    path = tmp_path / "d.npz"
    np.savez(path, **data)
    c, _ = cluster
    got = train_dask(model, path, lr=0.5, epochs=2, scheduler=c.scheduler_address, chunk=500, quiet=True)
    _assert_same(got, _numpy_run(model, data, 0.5, 2))
    assert got.notes == ["3 chunks on 2 workers"]


def test_without_a_scheduler_a_local_cluster_is_started_and_closed(least_squares, cluster):
    model, data = least_squares
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    got = train_dask(model, data, lr=0.1, epochs=2, n_workers=1, threads_per_worker=1, quiet=True)
    _assert_same(got, _numpy_run(model, data, 0.1, 2))
    assert got.notes == ["1 chunks on 1 workers"]
    left = {p.pid for p in psutil.Process().children(recursive=True) if p.is_running()} - before
    assert not left, "the local cluster's worker processes are still running"


# ---- the task graph: partial sums where the chunks are, not a gather ------------------------------
class _MostRead(Callback):
    """The most bytes any one task reads from the results of other tasks."""

    def __init__(self):
        super().__init__()
        self.nbytes, self.most = {}, 0

    def _pretask(self, key, dsk, state):
        self.most = max(self.most, sum(self.nbytes.get(d, 0) for d in dsk[key].dependencies))

    def _posttask(self, key, result, dsk, state, id):
        self.nbytes[key] = getattr(result, "nbytes", 0)


def _most_read(*collections) -> int:
    """Unfused (each op its own task), so no task hides what it reads inside itself."""
    with _MostRead() as watch:
        dask.compute(*collections, scheduler="sync", optimize_graph=False)
    return watch.most


def _chunked(a: np.ndarray, rows: int):
    """A Dask array whose chunks are separate keys, as on the cluster (from_array's would all read `a`)."""
    return da.concatenate([da.from_array(a[s : s + rows], chunks=-1) for s in range(0, len(a), rows)])


@pytest.mark.parametrize("case", ["least_squares", "digits"])
def test_each_task_reads_at_most_one_chunk_of_the_data(case, request):
    model, data = request.getfixturevalue(case)
    module = model.compiled(target="array-api")
    rows = 200
    chunked = {k: _chunked(data[k], rows) for k in model.inputs}
    one_chunk = sum(data[k][:rows].nbytes for k in model.inputs)
    inputs = {k: data[k] for k in model.inputs}
    params = {p: np.asarray(v) for p, v in model.evaluate(inputs).items() if p in model.params}
    loss, grads = module.loss_and_grad(**chunked, **params)
    assert chunked[model.inputs[0]].numblocks[0] >= 5
    per_chunk = _most_read(loss, *grads.values())
    assert per_chunk <= 2 * one_chunk + sum(p.nbytes for p in params.values())
    # the check sees a gather: the whole data in one task
    gathered = _most_read(chunked[model.inputs[0]].rechunk(-1).sum(axis=0))
    assert gathered >= data[model.inputs[0]].nbytes


# ---- errors --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_no_scheduler_at_the_address_is_a_clear_error(least_squares):
    model, data = least_squares
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(GraphcError) as e:
        train_dask(model, data, lr=0.1, epochs=1, scheduler=address, timeout=1, quiet=True)
    assert "no Dask scheduler reachable at" in e.value.message and address in e.value.message
    assert "dask scheduler" in e.value.hint and "dask worker tcp://" in e.value.hint


def test_a_directory_that_is_not_a_zarr_store(least_squares, tmp_path):
    model, _ = least_squares
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(GraphcError) as e:
        train_dask(model, tmp_path, lr=0.1, epochs=1, quiet=True)
    assert "is not a Zarr store" in e.value.message and "save_zarr" in e.value.hint
    with pytest.raises(GraphcError, match="no such data file or Zarr store"):
        train_dask(model, tmp_path / "missing.zarr", lr=0.1, epochs=1, quiet=True)


def test_chunks_that_disagree_on_the_examples(least_squares, tmp_path):
    model, data = least_squares
    lazy = {"X": da.from_array(data["X"], chunks=(500, 6)), "t": da.from_array(data["t"], chunks=400)}
    with pytest.raises(GraphcError) as e:
        train_dask(model, lazy, lr=0.1, epochs=1, quiet=True)
    assert "chunks disagree" in e.value.message and "`X` in chunks of 500 rows" in e.value.message
    assert "chunk" in e.value.hint


def test_chunk_rechunks_disagreeing_arrays_alike(least_squares, cluster):
    model, data = least_squares
    lazy = {"X": da.from_array(data["X"], chunks=(500, 6)), "t": da.from_array(data["t"], chunks=400)}
    got = train_dask(model, lazy, lr=0.1, epochs=2, chunk=1000, scheduler=cluster[1], quiet=True)
    _assert_same(got, _numpy_run(model, data, 0.1, 2))
    assert got.notes == ["3 chunks on 2 workers"]


def test_arrays_that_disagree_on_the_number_of_examples(least_squares):
    model, data = least_squares
    with pytest.raises(GraphcError, match=r"disagree on the number of examples.*`t` has 2000"):
        train_dask(model, {"X": data["X"], "t": data["t"][:2000]}, lr=0.1, epochs=1, quiet=True)


@pytest.mark.parametrize("bad", [0, 2.5, True])
def test_a_bad_chunk_is_a_usage_error(least_squares, bad):
    model, data = least_squares
    with pytest.raises(GraphcError) as e:
        train_dask(model, data, lr=0.1, epochs=1, chunk=bad, quiet=True)
    assert e.value.usage and "(examples per chunk)" in e.value.message


def test_the_command_line_trains_on_the_cluster_it_is_pointed_at(cluster, least_squares, tmp_path):
    from clitools import run_graphc

    c, _ = cluster
    model, values = least_squares
    np.savez(tmp_path / "ls.npz", **values)
    (tmp_path / "ls.gc").write_text((EXAMPLES / "least_squares.gc").read_text())
    args = ["train", "ls.gc", "--data", "ls.npz", "--lr", "0.1", "--epochs", "3", "--quiet", "-o", "p.npz"]
    r = run_graphc(*args, "--backend", "dask", "--scheduler", c.scheduler_address, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "dask gradient step" in r.stdout
    want = _numpy_run(model, values, 0.1, 3)
    got = dict(np.load(tmp_path / "p.npz"))
    for k in want.params:
        np.testing.assert_allclose(got[k], want.params[k], rtol=TOL)


def test_the_command_line_refuses_what_the_dask_backend_does_not_do(tmp_path):
    from clitools import run_graphc

    (tmp_path / "ls.gc").write_text((EXAMPLES / "least_squares.gc").read_text())
    r = run_graphc("train", "ls.gc", "--data", "x.npz", "--backend", "dask", "--batch-size", "8", cwd=tmp_path)
    assert r.returncode == 2 and "takes no --batch-size" in r.stderr and "Traceback" not in r.stderr
    for flag, value in (("--scheduler", "tcp://x:1"), ("--workers", "2"), ("--chunk", "10")):
        r = run_graphc("train", "ls.gc", "--data", "x.npz", flag, value, cwd=tmp_path)
        assert r.returncode == 2 and f"{flag} is for the Dask cluster" in r.stderr and "add --backend dask" in r.stderr
    for flag in ("--workers", "--chunk"):
        r = run_graphc("train", "ls.gc", "--data", "x.npz", "--backend", "dask", flag, "0", cwd=tmp_path)
        assert r.returncode == 2 and f"{flag} " in r.stderr and "must be a whole number >= 1" in r.stderr


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_an_interrupt_lets_the_epoch_finish_and_writes_the_params_of_the_last(cluster, least_squares, tmp_path, sig):
    """SPEC §5 on the cluster too: the epoch in progress finishes, -o holds the last one's params, exit 130."""
    import os
    import signal
    import subprocess
    import sys
    import time

    c, _ = cluster
    model, values = least_squares
    np.savez(tmp_path / "ls.npz", **values)
    (tmp_path / "ls.gc").write_text((EXAMPLES / "least_squares.gc").read_text())
    args = ["train", "ls.gc", "--data", "ls.npz", "--lr", "0.1", "--epochs", "100000"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "graphc", *args, "-o", "p.npz", "--backend", "dask", "--scheduler", c.scheduler_address],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    line = ""
    while "epoch" not in line:  # (the progress log's first line: the loop runs)
        assert proc.poll() is None and time.monotonic() < deadline
        line = proc.stdout.readline()
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted: stopped after epoch" in err
    done = int(err.split("stopped after epoch ")[1].split()[0])
    want = _numpy_run(model, values, 0.1, done)
    got = dict(np.load(tmp_path / "p.npz"))
    for k in want.params:
        np.testing.assert_allclose(got[k], want.params[k], rtol=TOL)
