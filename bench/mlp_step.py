"""One loss-and-gradient step of the batched MLP: graphc's emitted code and interpreter against
expert hand-written NumPy and every peer that is installed (PyTorch eager, JAX jit, HIPS autograd,
PyTensor), interleaved in one process, single-threaded.

    python bench/mlp_step.py [--repeat 200]

Prints, per size (N, D, H, K), the median time of one step and its ratio to hand-written NumPy,
and the ratio of graphc's interpreter to its emitted code.
"""

import os
import sys

# single-threaded BLAS for every library: set before any of them is imported
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS"):
    os.environ.setdefault(var, "1" if var != "XLA_FLAGS" else "--xla_cpu_multi_thread_eigen=false")

import argparse  # noqa: E402
import platform  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import MLP, mlp_values  # noqa: E402
from timing import median_times  # noqa: E402

import graphc  # noqa: E402

SIZES = [(4, 2, 8, 1), (32, 64, 32, 10), (128, 784, 256, 10)]


def hand(X, T, W1, b1, W2, b2):
    """The lecture's vectorised backward pass, as an expert writes it, with a stable softmax."""
    n = X.shape[0]
    A = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
    Z = A @ W2 + b2
    S = Z - Z.max(axis=1, keepdims=True)
    logY = S - np.log(np.exp(S).sum(axis=1, keepdims=True))
    L = -np.sum(T * logY) / n
    dZ = (np.exp(logY) - T) / n
    dA = dZ @ W2.T
    dH = dA * A * (1.0 - A)
    return L, {"W1": X.T @ dH, "b1": dH.sum(axis=0), "W2": A.T @ dZ, "b2": dZ.sum(axis=0)}


def peers(values):
    """(name, step function) for each peer library that is installed."""
    out = []
    try:
        import torch

        torch.set_num_threads(1)
        tv = {k: torch.tensor(v) for k, v in values.items()}

        def torch_step():
            ps = {k: tv[k].detach().requires_grad_(True) for k in ("W1", "b1", "W2", "b2")}
            A = torch.sigmoid(tv["X"] @ ps["W1"] + ps["b1"])
            Z = A @ ps["W2"] + ps["b2"]
            L = -(tv["T"] * torch.log_softmax(Z, dim=1)).sum(dim=1).mean()
            L.backward()
            return L.item(), {k: p.grad.numpy() for k, p in ps.items()}

        out.append(("PyTorch eager", torch_step))
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        jnp = jax.numpy

        def jloss(p, X, T):
            A = jax.nn.sigmoid(X @ p["W1"] + p["b1"])
            Z = A @ p["W2"] + p["b2"]
            return -jnp.mean(jnp.sum(T * jax.nn.log_softmax(Z, axis=1), axis=1))

        jstep = jax.jit(jax.value_and_grad(jloss))
        jp = {k: jnp.asarray(values[k]) for k in ("W1", "b1", "W2", "b2")}
        jX, jT = jnp.asarray(values["X"]), jnp.asarray(values["T"])

        def jax_step():
            loss, g = jstep(jp, jX, jT)
            return float(loss), {k: np.asarray(v) for k, v in g.items()}

        out.append(("JAX jit", jax_step))
    except ImportError:
        pass
    try:
        import autograd
        import autograd.numpy as anp

        def aloss(p):
            A = 1.0 / (1.0 + anp.exp(-(values["X"] @ p["W1"] + p["b1"])))
            Z = A @ p["W2"] + p["b2"]
            S = Z - anp.max(Z, axis=1, keepdims=True)
            logY = S - anp.log(anp.sum(anp.exp(S), axis=1, keepdims=True))
            return -anp.mean(anp.sum(values["T"] * logY, axis=1))

        ag = autograd.value_and_grad(aloss)
        ap = {k: values[k] for k in ("W1", "b1", "W2", "b2")}
        out.append(("HIPS autograd", lambda: ag(ap)))
    except ImportError:
        pass
    try:
        import pytensor
        import pytensor.tensor as pt

        sym = {k: pt.dmatrix(k) if np.ndim(v) == 2 else pt.dvector(k) for k, v in values.items()}
        A = pt.sigmoid(sym["X"] @ sym["W1"] + sym["b1"])
        Z = A @ sym["W2"] + sym["b2"]
        L = -pt.mean(pt.sum(sym["T"] * pt.special.log_softmax(Z, axis=1), axis=1))
        names = ["W1", "b1", "W2", "b2"]
        f = pytensor.function([sym[k] for k in values], [L, *pt.grad(L, [sym[k] for k in names])])
        args = [values[k] for k in values]
        out.append(("PyTensor", lambda: f(*args)))
    except ImportError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; single-threaded; median of {args.repeat} interleaved runs"
    )
    for N, D, H, K in SIZES:
        model = graphc.compile(MLP.format(D=D, H=H, K=K), "mlp.gc")
        values = mlp_values(N, D, H, K)
        emitted = model.compiled()
        ref_loss, ref = hand(**values)
        loss, grads = emitted.loss_and_grad(**values)
        assert abs(loss - ref_loss) <= 1e-12 * max(1, abs(ref_loss)), (loss, ref_loss)
        for k in ref:
            np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-12)
        steps = [
            ("hand-written NumPy", lambda v=values: hand(**v)),
            ("graphc emitted", lambda e=emitted, v=values: e.loss_and_grad(**v)),
            ("graphc interpreter", lambda m=model, v=values: m.loss_and_grad(v)),
        ]
        steps += peers(values)
        med = median_times(steps, args.repeat)
        base = med["hand-written NumPy"]
        print(f"\n(N, D, H, K) = {(N, D, H, K)}")
        for name, t in med.items():
            print(f"  {name:<20} {t * 1e6:10.1f} µs   {t / base:6.2f}x")
        print(f"  interpreter / emitted: {med['graphc interpreter'] / med['graphc emitted']:.2f}")


if __name__ == "__main__":
    main()
