"""Full-batch gradient descent, data-parallel on a Dask cluster.

    result = graphc.training.distributed.train_dask(model, "train.zarr", lr=0.1, epochs=20)
    result = train_dask(model, "train.npz", lr=0.1, epochs=20, scheduler="tcp://10.0.0.5:8786")

The data (a dict of arrays, an .npz file, or a Zarr store: a directory holding one array per input,
for data larger than memory) are cut along the example axis into chunks and placed on the workers
once: chunk i of every input on the same worker, scattered from the client (arrays in memory) or
read there (Zarr, Dask arrays). Each epoch the array-api module's `loss_and_grad` runs on those
chunks with the current NumPy params: the chunks' partial sums are computed where the chunks live
and reduced on the cluster, so only the loss and the gradients (the size of the params) reach the
client, which makes the update. The numbers are those of `graphc.training.train` in full batch
(`history["loss"]` is the objective at the start of each epoch), up to the order of the sums.

`scheduler` is an address (`tcp://host:8786`) or a `distributed` Client or cluster; without one,
a LocalCluster on this machine (worker processes) is started and closed at the end.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np

from ..data import load_npz, option
from ..errors import GraphcError
from .checkpoints import interrupts
from .inputs import EXPLODE, as_float, check_options, initial_params
from .loop import TrainResult
from .progress import Progress, terminal

INSTALL = "pip install 'dask[array]' distributed zarr"


def train_dask(
    model,
    data,
    *,
    lr: float,
    epochs: int,
    scheduler=None,
    n_workers: int | None = None,
    threads_per_worker: int | None = None,
    chunk: int | None = None,
    timeout: float = 10.0,
    seed: int = 0,
    l2: float = 0.0,
    init=None,
    wrt: list[str] | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    file=None,
    log_every: int | None = None,
    callback=None,
    handle_signals: bool = False,
) -> TrainResult:
    """Fit the model's params (or `wrt`) to `data` by full-batch gradient descent on a Dask cluster.

    data: {name: array} (NumPy or Dask), an .npz path or a Zarr store's path. chunk: examples per
    chunk (default: a Zarr store's or Dask arrays' own chunks, else one chunk per worker thread).
    scheduler: an address, a Client or a cluster; None starts a LocalCluster of `n_workers`
    processes (`threads_per_worker` threads each). timeout: seconds to wait for a scheduler.
    seed, l2, init, progress, quiet, file, log_every, callback and handle_signals as in
    graphc.training.train (an interrupt lets the epoch on the cluster finish, then stops).
    """
    check_options(lr, epochs, None, "constant", None, None, None, l2, None, seed)
    _check_chunk(chunk)
    if n_workers is not None and (isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1):
        raise GraphcError(f"{option('n_workers')} must be a whole number >= 1, got {n_workers}", usage=True)
    da, distributed = _dask()
    wrt = _check_wrt(model, wrt)
    batched, whole, n = _inputs(model, open_data(data), chunk, da)
    file = file if file is not None else sys.stdout
    mode = "quiet" if quiet else ("bar" if progress or (progress is None and terminal(file)) else "log")
    bar = Progress(epochs, mode, file, log_every, Path(getattr(model.graph, "path", "") or "train").name)
    client, opened = _connect(scheduler, n_workers, threads_per_worker, timeout, distributed)
    try:
        sizes = _chunk_sizes(batched, n, chunk, sum(client.nthreads().values()))
        first = {**whole, **{k: _native(v[: sizes[0]]) for k, v in batched.items()}}
        params = initial_params(model, init, first, seed, list(model.params))
        placed, held = _place(client, batched, sizes)  # the chunks live while `held` does
        with interrupts(handle_signals) as signalled:
            return _descend(model, client, placed, whole, params, wrt, lr, epochs, l2, n, bar, callback, signalled)
    finally:
        for thing in opened:
            thing.close()


# ---- the data ---------------------------------------------------------------------------------
def open_data(data) -> dict:
    """The data's arrays: a dict as given, an .npz read into memory, a Zarr store opened lazily."""
    if isinstance(data, dict):
        return data
    path = Path(data)
    if not path.exists():
        raise GraphcError(
            f"no such data file or Zarr store: {path}", hint="give an .npz file or a Zarr store (a directory)"
        )
    return open_zarr(path) if path.is_dir() else load_npz(str(path))


def open_zarr(path) -> dict:
    """{name: dask array} of every array of the Zarr group at `path`, each in the store's chunks."""
    import zarr

    da, _ = _dask()
    try:
        group = zarr.open_group(str(path), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError, ValueError):
        raise GraphcError(
            f"{path} is not a Zarr store (no Zarr group there)",
            hint="write one with graphc.training.distributed.save_zarr(path, {name: array}), one array per input",
        ) from None
    return {name: da.from_zarr(array) for name, array in group.arrays()}


def save_zarr(path, arrays: dict, chunk: int | None = None) -> None:
    """Write {name: array} as a Zarr group at `path`, each array in chunks of `chunk` examples along
    axis 0 (default: one chunk). Dask arrays are written chunk by chunk, never all in memory."""
    import zarr

    da, _ = _dask()
    group = zarr.open_group(str(path), mode="w")
    for name, a in arrays.items():
        rows = (min(chunk, a.shape[0]) if chunk else a.shape[0]) if a.ndim else None
        chunks = (rows, *a.shape[1:]) if a.ndim else ()
        target = group.create_array(name, shape=a.shape, dtype=a.dtype, chunks=chunks or None)
        if isinstance(a, da.Array):
            da.store(a.rechunk(chunks or a.chunks), target, lock=False)
        else:
            target[...] = np.asarray(a)


def _inputs(model, data: dict, chunk, da) -> tuple[dict, dict, int]:
    """(the inputs with an example axis, as NumPy or Dask arrays; the 0-d ones as NumPy; N)."""
    missing = [name for name in model.inputs if name not in data]
    if missing:
        raise GraphcError(
            f"the training data has no `{missing[0]}`",
            hint=f"the model's inputs: {', '.join(model.inputs)}; the data: {', '.join(sorted(data)) or 'nothing'}",
        )
    batched, whole = {}, {}
    for name in model.inputs:
        a = data[name]
        if not isinstance(a, da.Array):
            a = as_float(name, a)
        elif a.dtype.kind not in "biuf":
            raise GraphcError(f"`{name}` in the training data holds {a.dtype} values, not numbers")
        if a.ndim == 0:
            whole[name] = _native(as_float(name, np.asarray(a)))
        else:
            batched[name] = a.astype(np.float64) if a.dtype != np.float64 else a
    if not batched:
        raise GraphcError(
            "the data have no example axis: every input is 0-d, so there is nothing to spread over the workers",
            hint="data-parallel training cuts the inputs' rows (axis 0) into chunks; train on one machine instead",
        )
    sizes = {name: a.shape[0] for name, a in batched.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"`{k}` has {s}" for k, s in sizes.items())
        raise GraphcError(f"the training data's arrays disagree on the number of examples (axis 0): {desc}")
    n = next(iter(sizes.values()))
    if n == 0:
        raise GraphcError("the training data has no examples (axis 0 has length 0)")
    lazy = {name: a.chunks[0] for name, a in batched.items() if isinstance(a, da.Array)}
    if chunk is None and len(set(lazy.values())) > 1:
        desc = "; ".join(f"`{k}` in chunks of {_rows(c)}" for k, c in lazy.items())
        raise GraphcError(
            f"the training data's chunks disagree on the examples they hold: {desc}",
            hint=f"chunk i of every input must hold the same examples: pass {option('chunk')} (examples per chunk) "
            "to rechunk them alike, or write every array with the same chunks along axis 0",
        )
    return batched, whole, n


def _native(a) -> np.ndarray:
    """A float64 NumPy array whose dtype is NumPy's own float64 object: Zarr's is an equal but distinct
    one (dtype('<f8')), which the NumPy plans, testing the dtype by identity, do not take."""
    return np.asarray(a, dtype=np.float64)


def _rows(chunks: tuple[int, ...]) -> str:
    return f"{chunks[0]} rows" if len(set(chunks[:-1])) <= 1 else "rows " + ", ".join(map(str, chunks))


def _chunk_sizes(batched: dict, n: int, chunk, threads: int) -> tuple[int, ...]:
    """The examples in each chunk: `chunk` each, else the Dask arrays' own, else one chunk per thread."""
    if chunk is not None:
        return (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())
    own = next((a.chunks[0] for a in batched.values() if hasattr(a, "chunks")), None)
    if own is not None:
        return own
    parts = max(1, min(n, threads))
    return tuple(len(part) for part in np.array_split(np.arange(n), parts))


def _place(client, batched: dict, sizes) -> tuple[dict, list]:
    """The inputs as Dask arrays whose chunks are held by the workers, chunk i of every input on one
    worker (round robin): NumPy chunks scattered from here, Dask chunks computed (read) there. And
    the futures of the chunks: the arrays refer to them by key only, so the cluster keeps the chunks
    while these futures live."""
    da, distributed = _dask()
    try:  # (a cluster just started, or a worker just restarted, may have none registered yet)
        client.wait_for_workers(1, timeout=60)
    except TimeoutError:
        raise GraphcError(
            "the Dask cluster has no workers", hint="start some: `dask worker ADDRESS` on each machine"
        ) from None
    workers = sorted(client.scheduler_info()["workers"])
    names = list(batched)
    blocks: dict[str, list] = {name: [] for name in names}
    held, start = [], 0
    for i, rows in enumerate(sizes):
        where = [workers[i % len(workers)]]
        parts = [batched[name][start : start + rows] for name in names]
        if any(isinstance(p, da.Array) for p in parts):
            parts = [p if isinstance(p, da.Array) else da.from_array(p) for p in parts]
            futures = client.compute(parts, workers=where)
        else:
            futures = client.scatter(parts, workers=where, hash=False)
        held += futures
        for name, part, future in zip(names, parts, futures, strict=True):
            blocks[name].append(da.from_delayed(future, shape=part.shape, dtype=np.float64))
        start += rows
    distributed.wait(held)
    return {name: da.concatenate(bs, axis=0) for name, bs in blocks.items()}, held


# ---- the cluster ------------------------------------------------------------------------------
def _connect(scheduler, n_workers, threads_per_worker, timeout, distributed):
    """(a Client, what we opened and must close at the end: the client first, then its cluster)."""
    if scheduler is None:
        cluster = distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=threads_per_worker, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
        return client, [client, cluster]
    if isinstance(scheduler, distributed.Client):
        return scheduler, []
    address = getattr(scheduler, "scheduler_address", scheduler)  # a cluster object, or its address
    try:
        client = distributed.Client(address, timeout=timeout)
        return client, [client]
    except (OSError, TimeoutError, ValueError, TypeError) as e:
        raise GraphcError(
            f"no Dask scheduler reachable at {address!r} ({type(e).__name__}: {e})",
            hint="start one with `dask scheduler` (it prints its address, tcp://HOST:8786) and workers with "
            f"`dask worker tcp://HOST:8786`; or leave out {option('scheduler')} for a cluster on this machine",
        ) from None


def _dask():
    try:
        import dask.array as da
        import distributed
    except ImportError:
        raise GraphcError("training on a Dask cluster needs dask[array] and distributed", hint=INSTALL) from None
    return da, distributed


def _check_chunk(chunk) -> None:
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise GraphcError(
            f"{option('chunk')} (examples per chunk) must be a whole number >= 1, got {chunk}", usage=True
        )


def _check_wrt(model, wrt) -> list[str]:
    wrt = list(wrt) if wrt else list(model.params)
    if not wrt:
        raise GraphcError(
            "nothing to train: the model has no params",
            hint="declare the weights to learn with `param w` (e.g. `param w: [3] = 0`)",
        )
    unknown = [w for w in wrt if w not in model.params]
    if unknown:
        raise GraphcError(f"`{unknown[0]}` is not a param of the model", hint=f"params: {', '.join(model.params)}")
    return wrt


def _module(model, wrt):
    """The array-api module's loss_and_grad and forward, taking model names (a Python keyword gets `_`)."""
    import inspect

    module = model.compiled(wrt, target="array-api")
    accepted = set(inspect.signature(module.loss_and_grad).parameters)
    rename = {n: n + "_" for n in model.names if n not in accepted and n + "_" in accepted}

    def call(fn):
        return lambda values: fn(**{rename.get(k, k): v for k, v in values.items()})

    return call(module.loss_and_grad), call(module.forward)


# ---- the loop ---------------------------------------------------------------------------------
def _descend(model, client, data, whole, params, wrt, lr, epochs, l2, n, bar, callback, signalled):
    """`epochs` steps of gradient descent, each gradient summed on the cluster; the TrainResult."""
    loss_and_grad, forward = _module(model, wrt)
    fixed = {p: v for p, v in params.items() if p not in wrt}
    # as in graphc.training.train: one vector of the learnt params, `learn` its views in their shapes
    theta = np.concatenate([params[p].reshape(-1) for p in wrt])
    learn, at = {}, 0
    for p in wrt:
        learn[p] = theta[at : at + params[p].size].reshape(params[p].shape)
        at += params[p].size
    inputs = {**data, **whole, **fixed}

    def objective_and_gradient() -> tuple[float, np.ndarray]:
        """On the cluster: the loss and gradients of every chunk, summed there; only they come back."""
        loss, grads = loss_and_grad({**inputs, **learn})
        loss, *gs = client.compute([loss, *(grads[p] for p in wrt)], sync=True)
        g = np.concatenate([np.asarray(x, dtype=np.float64).reshape(-1) for x in gs])
        if l2:
            return float(loss) + 0.5 * l2 * float(theta @ theta), g + l2 * theta
        return float(loss), g

    history: dict[str, list[float]] = {"loss": [], "lr": []}
    stopped, start = "epochs", None
    try:
        with np.errstate(all="ignore"):
            for epoch in range(1, epochs + 1):
                loss, g = objective_and_gradient()
                start = loss if start is None else start
                if not math.isfinite(loss) or loss > EXPLODE * max(abs(start), 1.0):
                    raise _diverged(loss, start, epoch, lr)
                theta -= lr * g
                history["loss"].append(loss)
                history["lr"].append(lr)
                rec = {"epoch": epoch, "loss": loss, "lr": lr}
                if callback is not None and callback(dict(rec)):
                    stopped = "callback"
                bar.epoch(rec, last=stopped != "epochs" or epoch == epochs or bool(signalled))
                if signalled and stopped == "epochs" and epoch < epochs:
                    stopped = "interrupted"
                    bar.note(f"{signalled[0]}: stopped after epoch {epoch} of {epochs}")
                if stopped != "epochs":
                    break
    finally:
        bar.close()
    final = client.compute(forward({**inputs, **learn})[model.loss_name], sync=True)
    return TrainResult(
        params={p: (learn[p].copy() if p in learn else fixed[p]) for p in model.params},
        history=history,
        epochs=len(history["loss"]),
        steps=len(history["loss"]),
        stopped=stopped,
        method="gradient descent",
        batch_size=n,
        n_examples=n,
        lr=lr,
        loss=float(final),
        engine="dask",
        notes=[f"{len(next(iter(data.values())).chunks[0])} chunks on {len(client.nthreads())} workers"],
    )


def _diverged(loss, start, epoch, lr) -> GraphcError:
    if epoch == 1:
        return GraphcError(
            f"the loss is {loss} at the initial params: there is nothing to descend",
            hint=f"check the data and the params' initial values ({option('init')}, {option('seed')})",
        )
    grew = f"grew to {loss:.4g}, from {start:.4g} at the start," if math.isfinite(loss) else f"is {loss}"
    return GraphcError(
        f"training diverged: the loss {grew} at epoch {epoch} (lr {lr:g})",
        hint=f"use a smaller learning rate (e.g. {option('lr', lr / 10)})",
    )
