"""One loss-and-gradient step of the batched MLP: graphc's targets (the NumPy and Numba modules it emits) and
its interpreter against expert hand-written NumPy and every peer that is installed (PyTorch eager, JAX jit, HIPS
autograd, PyTensor), in one process, single-threaded.

    python bench/mlp_step.py [--repeat 1000] [--block 20] [--size N,D,H,K ...]

Prints, per size (N, D, H, K), the median time of one step (hot caches: each candidate runs in blocks of
consecutive calls, the candidates in a new order each round) and its ratio to hand-written NumPy; and the numba
target's compile time: its first call in a new process with an empty cache, and in the next process, which loads
the cached kernels.
"""

import os
import sys

# single-threaded BLAS for every library: set before any of them is imported
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS"):
    os.environ.setdefault(var, "1" if var != "XLA_FLAGS" else "--xla_cpu_multi_thread_eigen=false")

import argparse  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
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


# ---- the candidates: each a function (model, values) -> a step, or None (or ImportError) where it cannot run


def graphc_target(target):
    def step(model, values):
        module = model.compiled(target=target)
        return lambda: module.loss_and_grad(**values)

    return step


def array_api_on(library):
    """The array-api module fed the library's arrays: PyTorch's eagerly, JAX's through jax.jit (its functions are
    pure)."""

    def step(model, values):
        module = model.compiled(target="array-api")
        if library == "torch":
            import torch

            torch.set_num_threads(1)
            tv = {k: torch.asarray(v) for k, v in values.items()}
            return lambda: module.loss_and_grad(**tv)
        import jax

        jax.config.update("jax_enable_x64", True)
        jv = {k: jax.numpy.asarray(v) for k, v in values.items()}
        jstep = jax.jit(module.loss_and_grad)

        def run():
            loss, g = jstep(**jv)
            return float(loss), {k: np.asarray(v) for k, v in g.items()}

        return run

    return step


def interpreter(model, values):
    return lambda: model.loss_and_grad(values)


def torch_eager(model, values):
    import torch

    torch.set_num_threads(1)
    tv = {k: torch.tensor(v) for k, v in values.items()}

    def step():
        ps = {k: tv[k].detach().requires_grad_(True) for k in ("W1", "b1", "W2", "b2")}
        A = torch.sigmoid(tv["X"] @ ps["W1"] + ps["b1"])
        Z = A @ ps["W2"] + ps["b2"]
        L = -(tv["T"] * torch.log_softmax(Z, dim=1)).sum(dim=1).mean()
        L.backward()
        return L.item(), {k: p.grad.numpy() for k, p in ps.items()}

    return step


def jax_jit(model, values):
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

    def step():
        loss, g = jstep(jp, jX, jT)
        return float(loss), {k: np.asarray(v) for k, v in g.items()}

    return step


def hips_autograd(model, values):
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
    return lambda: ag(ap)


def pytensor_function(model, values):
    import pytensor
    import pytensor.tensor as pt

    sym = {k: pt.dmatrix(k) if np.ndim(v) == 2 else pt.dvector(k) for k, v in values.items()}
    A = pt.sigmoid(sym["X"] @ sym["W1"] + sym["b1"])
    Z = A @ sym["W2"] + sym["b2"]
    L = -pt.mean(pt.sum(sym["T"] * pt.special.log_softmax(Z, axis=1), axis=1))
    names = ["W1", "b1", "W2", "b2"]
    f = pytensor.function([sym[k] for k in values], [L, *pt.grad(L, [sym[k] for k in names])])
    args = [values[k] for k in values]
    return lambda: f(*args)


def has_numba():
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


# (name, make, checked against hand-written NumPy): graphc's rows, then the peers
CANDIDATES = [
    ("hand-written NumPy", lambda model, values: lambda: hand(**values), False),
    ("graphc numpy", graphc_target("numpy"), True),
    ("graphc numba", graphc_target("numba") if has_numba() else None, True),
    ("graphc interpreter", interpreter, True),
    ("graphc array-api, torch", array_api_on("torch"), True),
    ("graphc array-api, JAX jit", array_api_on("jax"), True),
    ("PyTorch eager", torch_eager, False),
    ("JAX jit", jax_jit, False),
    ("HIPS autograd", hips_autograd, False),
    ("PyTensor", pytensor_function, False),
]


def steps_for(model, values):
    """(name, step) of every candidate that can run here; graphc's checked against hand-written NumPy."""
    ref_loss, ref = hand(**values)
    out, missing = [], []
    for name, make, check in CANDIDATES:
        try:
            step = make and make(model, values)
        except ImportError:
            step = None
        if step is None:
            missing.append(name)
            continue
        if check:
            loss, grads = step()
            assert abs(loss - ref_loss) <= 1e-12 * max(1, abs(ref_loss)), (name, loss, ref_loss)
            for k in ref:
                np.testing.assert_allclose(grads[k], ref[k], rtol=1e-9, atol=1e-12, err_msg=f"{name} {k}")
        out.append((name, step))
    if missing:  # a peer that is not installed is said so, not silently left out of the table
        print(f"not installed here, not timed: {', '.join(missing)}", file=sys.stderr)
    return out


# ---- the numba target's compile time, each in a new process


COMPILE = """
import sys, time
sys.path[:0] = [{repo!r}, {bench!r}]
t = time.perf_counter()
import graphc
from models import MLP, mlp_values
model = graphc.compile(MLP.format(D={D}, H={H}, K={K}), "mlp.gc")
values = mlp_values({N}, {D}, {H}, {K})
module = model.compiled(target="numba")
loaded = time.perf_counter()
module.loss_and_grad(**values)
done = time.perf_counter()
stats = module._loss_and_grad.stats
print(loaded - t, done - loaded, sum(stats.cache_hits.values()), sum(stats.cache_misses.values()))
"""


def numba_compile_times(size) -> str:
    """The first call's time in a process with an empty cache folder, and in the next process (loading the cache)."""
    N, D, H, K = size
    code = COMPILE.format(repo=str(REPO), bench=str(REPO / "bench"), N=N, D=D, H=H, K=K)
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            runs.append(out.stdout.split())
    (load1, call1, _, miss1), (load2, call2, hits2, _) = runs
    return (
        f"numba target: a new process with an empty cache, import {float(load1):.2f} s + first call "
        f"{float(call1):.2f} s (compiles: {miss1} cache misses); the next process, import {float(load2):.2f} s "
        f"+ first call {float(call2):.3f} s ({hits2} cache hit, no compile)"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=1000, help="timed calls of each candidate")
    ap.add_argument("--block", type=int, default=20, help="consecutive calls of a candidate")
    ap.add_argument("--size", action="append", help="N,D,H,K (default: the three of SIZES)")
    args = ap.parse_args()
    sizes = [tuple(int(n) for n in size.split(",")) for size in args.size] if args.size else SIZES
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"NumPy {np.__version__}; single-threaded; median of {args.repeat} calls, in blocks of {args.block}"
    )
    for N, D, H, K in sizes:
        model = graphc.compile(MLP.format(D=D, H=H, K=K), "mlp.gc")
        values = mlp_values(N, D, H, K)
        med = median_times(steps_for(model, values), args.repeat, args.block)
        base = med["hand-written NumPy"]
        print(f"\n(N, D, H, K) = {(N, D, H, K)}")
        for name, t in med.items():
            print(f"  {name:<26} {t * 1e6:10.1f} µs   {t / base:6.2f}x")
        print(f"  interpreter / numpy module: {med['graphc interpreter'] / med['graphc numpy']:.2f}")
        if "graphc numba" in med:
            print(f"  {numba_compile_times((N, D, H, K))}")


if __name__ == "__main__":
    main()
