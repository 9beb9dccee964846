"""One loss-and-gradient step of examples/digits_cnn.gc (conv2d, relu, max_pool2d, a softmax layer): graphc's
emitted code and interpreter against the same step written by hand in NumPy with im2col, and PyTorch eager if
it is installed, interleaved in one process, single-threaded, on the shipped digits.

    python bench/cnn_step.py [--repeat 300]

Prints, per batch size N, the median time of one step and its ratio to hand-written NumPy, and the ratio of
graphc's interpreter to its emitted code.
"""

import os
import sys

# single-threaded BLAS for every library: set before any of them is imported
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import as_strided  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from timing import median_times  # noqa: E402

import graphc  # noqa: E402

MODEL = REPO / "examples" / "digits_cnn.gc"
SIZES = [32, 360, 1437]  # a training mini-batch, the held-out set, the whole training set


def hand(X, T, K, c, W, b):
    """The step as an expert writes it for this network: images and feature maps kept as [N, F, 64] rows, the
    3x3 windows of the padded images as the columns of one matrix product per image (im2col), 2x2 pooling
    through a [N, F, 4, 2, 4, 2] view, and its backward pass sending each window's signal to the window's first
    max (PyTorch's rule at a tie) only where that max is positive (elsewhere relu's derivative is 0 anyway)."""
    n, f = X.shape[0], K.shape[0]
    xp = np.zeros((n, 10, 10))
    xp[:, 1:-1, 1:-1] = X.reshape(n, 8, 8)
    s0, s1, s2 = xp.strides
    cols = as_strided(xp, (n, 3, 3, 8, 8), (s0, s1, s2, s1, s2)).reshape(n, 9, 64)  # [N, 9 taps, 64 pixels]
    H = np.maximum(K.reshape(f, 9) @ cols + c.reshape(f, 1), 0.0)  # [N, F, 64]
    blocks = H.reshape(n, f, 4, 2, 4, 2)
    taps = [blocks[:, :, :, i, :, j] for i in (0, 1) for j in (0, 1)]
    P = np.maximum(np.maximum(taps[0], taps[1]), np.maximum(taps[2], taps[3]))  # [N, F, 4, 4]
    Pf = P.reshape(n, -1)
    Z = Pf @ W + b
    S = Z - Z.max(axis=1, keepdims=True)
    logY = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
    L = -np.sum(T * logY) / n
    dZ = (np.exp(logY) - T) / n
    dP = np.where(P > 0.0, (dZ @ W.T).reshape(P.shape), 0.0)
    dH = np.zeros((n, f, 4, 2, 4, 2))
    taken = np.zeros(P.shape, bool)
    for k, tap in enumerate(taps):
        hit = (tap == P) & ~taken
        taken |= hit
        dH[:, :, :, k // 2, :, k % 2] = np.where(hit, dP, 0.0)
    dA = dH.reshape(n, f, 64)
    dK = (dA @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(K.shape)
    return L, {"K": dK, "c": dA.sum(axis=(0, 2)).reshape(c.shape), "W": Pf.T @ dZ, "b": dZ.sum(axis=0)}


def torch_step(values):
    """PyTorch eager, for reference (None if it is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)
    F = torch.nn.functional
    tv = {k: torch.tensor(v) for k, v in values.items()}

    def step():
        ps = {k: tv[k].detach().requires_grad_(True) for k in ("K", "c", "W", "b")}
        images = tv["X"].reshape(-1, 1, 8, 8)
        P = F.max_pool2d(torch.relu(F.conv2d(images, ps["K"], padding=1) + ps["c"]), 2)
        Z = P.reshape(P.shape[0], -1) @ ps["W"] + ps["b"]
        L = -(tv["T"] * torch.log_softmax(Z, dim=1)).sum(dim=1).mean()
        L.backward()
        return L.item(), {k: p.grad.numpy() for k, p in ps.items()}

    return step


def step_values(n: int) -> dict:
    """The first n training images and targets, and params drawn as a trained network's are spread."""
    data = np.load(REPO / "examples" / "digits_train.npz")
    rng = np.random.default_rng(0)
    return {
        "X": data["X"][:n],
        "T": data["T"][:n],
        "K": rng.normal(0.0, 0.5, (16, 1, 3, 3)),
        "c": rng.normal(0.0, 0.1, (16, 1, 1)),
        "W": rng.normal(0.0, 0.1, (256, 10)),
        "b": rng.normal(0.0, 0.1, 10),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=300)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; single-threaded; median of {args.repeat} interleaved runs"
    )
    model = graphc.load(MODEL)
    emitted = model.compiled()
    for n in SIZES:
        values = step_values(n)
        ref_loss, ref = hand(**values)
        for name, (loss, grads) in (
            ("emitted", emitted.loss_and_grad(**values)),
            ("interpreter", model.loss_and_grad(values)),
        ):
            assert abs(loss - ref_loss) <= 1e-12 * max(1, abs(ref_loss)), (name, loss, ref_loss)
            for k in ref:
                np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=f"{name} {k}")
        steps = [
            ("hand-written NumPy", lambda v=values: hand(**v)),
            ("graphc emitted", lambda v=values: emitted.loss_and_grad(**v)),
            ("graphc interpreter", lambda v=values: model.loss_and_grad(v)),
        ]
        peer = torch_step(values)
        if peer is not None:
            steps.append(("PyTorch eager", peer))
        med = median_times(steps, args.repeat)
        base = med["hand-written NumPy"]
        print(f"\nN = {n}")
        for name, t in med.items():
            print(f"  {name:<20} {t * 1e6:10.1f} µs   {t / base:6.2f}x")
        print(f"  interpreter / emitted: {med['graphc interpreter'] / med['graphc emitted']:.2f}")


if __name__ == "__main__":
    main()
