"""Per-step overhead of `graphc train` over calling its gradient step directly, on the digits model.

    python bench/train_overhead.py [--epochs 30] [--repeat 11] [--backend numpy|numba]

Both sides run the same gradient step (`graphc.training.step.gradient_step`: the emitted `loss_and_grad`
loaded in memory when the API offers `Model.compiled`, else the interpreter; with --backend numba, the
numba target's, and train's update compiled too: training/fused.py) on mini-batches of 32
of the 1437 training images (45 steps an epoch):

- direct: a bare loop calling the step on batches sliced beforehand, nothing else;
- train:  `graphc.training.train(..., quiet=True)`: its epochs (reshuffling, slicing, parameter
          updates, bookkeeping), each timed against a direct epoch run right after it from train's
          epoch callback; and its whole runs (with setup and the final evaluation) against whole
          direct runs made back to back.

A third figure times train's loop alone, with a step that returns zero gradients at once: what is
left is the reshuffling, the batch gathers, the parameter updates and the bookkeeping (NumPy only:
the numba backend compiles the epoch whole, its step inside).

The per-step overhead is measured for every optimizer (--optimizer sgd, momentum, nesterov, adam, adamw).

Single-threaded BLAS; prints medians of the ratios (target < 20%) and quartiles, since a machine
busy with other work makes single timings noisy.
The last line shows the cost of `--metric accuracy --val` (a full pass over both sets each
epoch), which is extra work rather than overhead.
"""

import os
import sys

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import graphc  # noqa: E402
import graphc.training.loop as trainmod  # noqa: E402
from graphc.data import load_npz  # noqa: E402
from graphc.training.optimizers import OPTIMIZERS  # noqa: E402
from graphc.training.step import gradient_step  # noqa: E402

BATCH, LR = 32, 0.5


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=30, help="epochs of the timed runs (default 30, as in the README)")
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--backend", choices=("numpy", "numba"), default="numpy")
    a = ap.parse_args()

    m = graphc.load(REPO / "examples" / "digits_mlp.gc")
    data = load_npz(str(REPO / "examples" / "digits_train.npz"))
    val = load_npz(str(REPO / "examples" / "digits_test.npz"))
    X, T = data["X"], data["T"]
    n = len(X)
    params = {k: v for k, v in m.evaluate({"X": X[:1], "T": T[:1]}).items() if k in m.params}
    step = gradient_step(m, list(m.params), a.backend)
    steps = -(-n // BATCH)
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(a.epochs):
        perm = rng.permutation(n)
        batches += [{"X": X[perm[s : s + BATCH]], "T": T[perm[s : s + BATCH]]} for s in range(0, n, BATCH)]

    def direct(epochs):
        t = time.perf_counter()
        for b in batches[: epochs * steps]:
            step({**b, **params})
        return time.perf_counter() - t

    def trained(epochs, **kw):
        t = time.perf_counter()
        r = train(m, data, lr=LR, epochs=epochs, batch_size=BATCH, quiet=True, **kw)
        assert r.steps == epochs * steps
        return time.perf_counter() - t

    train = functools.partial(trainmod.train, backend=a.backend)
    direct(1), trained(1)  # warm up: compile, caches
    E = a.epochs

    # per epoch: train's callback times one direct epoch right after each of train's own epochs, so
    # each pair runs within milliseconds of each other and a busy machine slows both alike
    per_epoch, marks = [], []

    def interleave(rec):
        now = time.perf_counter()
        d = direct(1)
        if marks:  # the first epoch also holds train's setup
            per_epoch.append((now - marks[-1]) / d)
        marks.append(time.perf_counter())

    ratio, extra, per_step = [], [], []
    for _ in range(a.repeat):
        marks.clear()
        train(m, data, lr=LR, epochs=E, batch_size=BATCH, quiet=True, callback=interleave)
        d, t = direct(E), trained(E)  # whole runs, back to back
        tm = trained(E, val=val, metric="accuracy")
        ratio.append(t / d)
        extra.append(tm / d)
        per_step.append(d / (E * steps))
    # every optimizer: the same interleaved per-epoch measurement (lr suited to each)
    by_optimizer = {}
    for name in OPTIMIZERS:
        per_epoch.clear()
        for _ in range(max(3, a.repeat // 2)):
            marks.clear()
            lr = 0.003 if name.startswith("adam") else LR / 5 if name != "sgd" else LR
            train(m, data, lr=lr, epochs=E, batch_size=BATCH, quiet=True, callback=interleave, optimizer=name)
        by_optimizer[name] = list(per_epoch)
    per_epoch[:] = by_optimizer["sgd"]
    # the loop alone: train with a step that returns at once (zero gradients), so what is left is the
    # reshuffling, the batch gathers, the parameter updates and the bookkeeping
    grads0 = {k: np.zeros_like(v) for k, v in step({**batches[0], **params})[1].items()}
    loop_marks, loop_epochs = [], []

    def loop_time(rec):
        now = time.perf_counter()
        if loop_marks:
            loop_epochs.append((now - loop_marks[-1]) / steps)
        loop_marks.append(time.perf_counter())

    def no_op_step(model, wrt, target="numpy"):
        f = lambda values: (1.0, grads0)  # noqa: E731
        f.engine = "none"
        return f

    if a.backend == "numpy":  # (numba compiles the epoch whole, its step inside: no loop to time alone)
        real_step, trainmod.gradient_step = trainmod.gradient_step, no_op_step
        try:
            for _ in range(a.repeat):
                loop_marks.clear()
                train(m, data, lr=LR, epochs=E, batch_size=BATCH, quiet=True, callback=loop_time)
        finally:
            trainmod.gradient_step = real_step

    med = statistics.median
    q = statistics.quantiles(per_epoch, n=4)
    print(
        f"digits_mlp.gc, mini-batches of {BATCH} ({steps} steps an epoch), {step.engine} gradient step, "
        f"{a.repeat} runs of {E} epochs"
    )
    print(f"  the gradient step alone             {med(per_step) * 1e6:7.1f} us/step (median)")
    print(
        f"  graphc train, per step              {100 * (med(per_epoch) - 1):+6.1f}% overhead (median of "
        f"{len(per_epoch)} epochs, quartiles {100 * (q[0] - 1):+.1f}%, {100 * (q[2] - 1):+.1f}%); target < 20%"
    )
    for name, ratios in by_optimizer.items():
        qo = statistics.quantiles(ratios, n=4)
        print(
            f"  --optimizer {name:<9}               {100 * (med(ratios) - 1):+6.1f}% overhead per step (median of "
            f"{len(ratios)} epochs, quartiles {100 * (qo[0] - 1):+.1f}%, {100 * (qo[2] - 1):+.1f}%)"
        )
    if loop_epochs:
        print(
            f"  the training loop alone             {med(loop_epochs) * 1e6:7.1f} us/step = "
            f"{100 * med(loop_epochs) / med(per_step):.1f}% of a step (a no-op step: reshuffling, gathers, updates)"
        )
    print(
        f"  graphc train, whole run             {100 * (med(ratio) - 1):+6.1f}% (median of {a.repeat}; "
        "with setup and the final evaluation)"
    )
    print(
        f"  whole run, --val --metric accuracy  {100 * (med(extra) - 1):+6.1f}% (extra work, not overhead: "
        "a full pass over both sets each epoch)"
    )


if __name__ == "__main__":
    main()
