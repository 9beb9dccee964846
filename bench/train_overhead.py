"""Per-step overhead of `graphc train` over calling its gradient step directly, on the digits model.

    python bench/train_overhead.py [--epochs 30] [--repeat 7]

Both sides run the same gradient step (`graphc.train._gradient_step`: the emitted `loss_and_grad`
loaded in memory when the API offers `Model.compiled`, else the interpreter) on mini-batches of 32
of the 1437 training images (45 steps an epoch):

- direct: a bare loop calling the step on batches sliced beforehand, nothing else;
- train:  `graphc.train.train(..., quiet=True)`. Per step: the extra time a run of 2E epochs takes
          over a run of E epochs, divided by the extra steps (reshuffling, slicing, parameter
          updates, the step itself). Whole run: a run's wall time divided by its steps, with the
          once-per-run setup and final evaluation included.

Runs interleaved, single-threaded BLAS; prints medians and the overhead (target < 20%).
A second line shows the cost of `--metric accuracy --val` (a full pass over both sets each epoch),
which is extra work rather than overhead.
"""

import os
import sys

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import graphc  # noqa: E402
from graphc.data import load_npz  # noqa: E402
from graphc.train import _gradient_step, train  # noqa: E402

BATCH, LR = 32, 0.5


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="epochs of the timed runs (default 30, as in the README)")
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()

    m = graphc.load(REPO / "examples" / "digits_mlp.gc")
    data = load_npz(str(REPO / "examples" / "digits_train.npz"))
    val = load_npz(str(REPO / "examples" / "digits_test.npz"))
    X, T = data["X"], data["T"]
    n = len(X)
    params = {k: v for k, v in m.evaluate({"X": X[:1], "T": T[:1]}).items() if k in m.params}
    step = _gradient_step(m, list(m.params))
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(a.epochs):
        perm = rng.permutation(n)
        batches += [{"X": X[perm[s : s + BATCH]], "T": T[perm[s : s + BATCH]]} for s in range(0, n, BATCH)]

    def direct():
        t = time.perf_counter()
        for b in batches:
            step({**b, **params})
        return (time.perf_counter() - t) / len(batches)

    def trained(epochs, **kw):
        t = time.perf_counter()
        r = train(m, data, lr=LR, epochs=epochs, batch_size=BATCH, quiet=True, **kw)
        return time.perf_counter() - t, r.steps

    direct(), trained(1)  # warm up: compile, caches
    d, whole, marginal, fixed, extra = [], [], [], [], []
    for _ in range(a.repeat):
        d.append(direct())
        t1, s1 = trained(a.epochs)
        t2, s2 = trained(2 * a.epochs)
        whole.append(t1 / s1)
        marginal.append((t2 - t1) / (s2 - s1))
        fixed.append(t1 - s1 * (t2 - t1) / (s2 - s1))
        t3, s3 = trained(a.epochs, val=val, metric="accuracy")
        extra.append(t3 / s3)
    d, whole, marginal = statistics.median(d), statistics.median(whole), statistics.median(marginal)
    fixed, extra = statistics.median(fixed), statistics.median(extra)
    steps = -(-n // BATCH)
    print(f"digits_mlp.gc, batch {BATCH} ({steps} steps an epoch), {step.engine} gradient step, median of {a.repeat}:")
    print(f"  direct step                {d * 1e6:8.1f} us/step")
    print(f"  graphc train, per step     {marginal * 1e6:8.1f} us/step   overhead {100 * (marginal / d - 1):+5.1f}%"
          f"  (target < 20%; from {a.epochs} vs {2 * a.epochs} epochs)")
    print(f"  graphc train, whole run    {whole * 1e6:8.1f} us/step   overhead {100 * (whole / d - 1):+5.1f}%"
          f"  ({a.epochs} epochs, incl. {fixed * 1e3:.1f} ms once per run: setup, final evaluation)")
    print(f"  + --val, --metric accuracy {extra * 1e6:8.1f} us/step   {100 * (extra / d - 1):+5.1f}%"
          f"  (extra work: a full pass over both sets each epoch)")

if __name__ == "__main__":
    main()
