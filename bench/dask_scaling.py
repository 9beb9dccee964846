"""Time per epoch of full-batch gradient descent on a Dask cluster, for 1, 2 and 4 workers.

    python bench/dask_scaling.py [--n 1000000] [--d 20] [--chunk 62500] [--epochs 6] [--workers 1,2,4]

The problem: least squares (examples/least_squares.gc) on N generated examples of D float64 features,
written chunk by chunk to a Zarr store in a temporary directory (never all in memory on the client).
For each worker count: a LocalCluster of that many worker processes (one thread each, single-threaded
BLAS), `graphc.training.distributed.train_dask` on the store, each epoch timed from its callback;
the first epoch is a warm-up (reading the store onto the workers, compiling), the figure is the
median of the others. For scale, the same epochs of graphc's NumPy gradient descent in this process
(`graphc.training.train`, the data in memory). Prints a table with the machine and the date.
"""

import os
import sys

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")  # the workers inherit it

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import dask.array as da  # noqa: E402
import distributed  # noqa: E402

import graphc  # noqa: E402
from graphc.training import train  # noqa: E402
from graphc.training.distributed import open_zarr, save_zarr, train_dask  # noqa: E402


def make_store(path: Path, n: int, d: int, chunk: int) -> None:
    """X ~ N(0, 1), t = X w + noise, generated and written chunk by chunk."""
    rs = da.random.RandomState(0)
    X = rs.normal(size=(n, d), chunks=(chunk, d))
    w = np.linspace(-1, 1, d)
    save_zarr(path, {"X": X, "t": X @ w + 0.1 * rs.normal(size=n, chunks=chunk)}, chunk=chunk)


def epoch_times(run, epochs: int) -> list[float]:
    """Seconds of each epoch of `run(callback)` after the first, from the epoch callback's clock."""
    stamps = []

    def tick(_record):
        stamps.append(time.perf_counter())

    start = time.perf_counter()
    run(tick)
    laps = np.diff([start, *stamps])
    assert len(laps) == epochs
    return list(laps[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=62_500)
    ap.add_argument("--epochs", type=int, default=6, help="including the warm-up epoch")
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    model = graphc.load(REPO / "examples" / "least_squares.gc")
    lr = 0.1
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "train.zarr"
        make_store(store, args.n, args.d, args.chunk)
        mb = sum(a.nbytes for a in open_zarr(store).values()) / 2**20
        for k in map(int, args.workers.split(",")):
            with distributed.LocalCluster(
                n_workers=k, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster:
                times = epoch_times(
                    lambda cb, c=cluster: train_dask(
                        model, store, lr=lr, epochs=args.epochs, scheduler=c, quiet=True, callback=cb
                    ),
                    args.epochs,
                )
            rows.append((f"dask, {k} worker{'s' * (k > 1)}", times))
        # (as NumPy's own float64: graphc's NumPy plans refuse Zarr's equal dtype('<f8'), see the report)
        data = {name: np.asarray(a.compute(), dtype=np.float64) for name, a in open_zarr(store).items()}
    rows.append(
        (
            "numpy (one process)",
            epoch_times(lambda cb: train(model, data, lr=lr, epochs=args.epochs, quiet=True, callback=cb), args.epochs),
        )
    )

    cores = os.cpu_count()
    print(
        f"# {platform.node()}: {platform.processor() or platform.machine()}, {cores} cores, "
        f"Python {platform.python_version()}, dask {distributed.__version__}; "
        f"{datetime.date.today().isoformat()}"
    )
    print(
        f"# least squares, N={args.n:,}, D={args.d}, float64 ({mb:.0f} MiB in a Zarr store, "
        f"chunks of {args.chunk:,} rows: {-(-args.n // args.chunk)} chunks); median of {args.epochs - 1} "
        "epochs after a warm-up"
    )
    print(f"| {'run':<22} | s / epoch (median) | min    | max    |")
    print(f"| {'-' * 22} | ------------------ | ------ | ------ |")
    for name, times in rows:
        note = (
            f"  ({cores} cores: oversubscribed)" if name.startswith("dask, ") and int(name.split()[1]) > cores else ""
        )
        print(f"| {name:<22} | {statistics.median(times):18.4f} | {min(times):.4f} | {max(times):.4f} |{note}")


if __name__ == "__main__":
    main()
