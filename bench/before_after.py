"""graphc now against graphc at an earlier commit, in one run: compile time (process start included, the
two trees' commands interleaved) and the emitted MLP step (both trees' modules loaded in this process,
timed in alternating blocks), so that a machine whose speed drifts under load moves both alike.

    python bench/before_after.py REV [--repeat 5]

REV is a git revision of this repository (e.g. the commit an issue started from); it is checked out
into a temporary folder with `git archive`.
"""

import os
import sys

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from compile_time import run  # noqa: E402
from models import MLP, chain_model, mixed_model, mlp_values  # noqa: E402

SIZES = [(4, 2, 8, 1), (32, 64, 32, 10), (128, 784, 256, 10)]


def graphc(tree: Path, *args) -> list[str]:
    """`python -m graphc ARGS` from tree, with a grammar cache of its own (two grammars sharing one cache
    would each rebuild it on every run)."""
    cache = Path(tempfile.gettempdir()) / f"graphc-bench-cache-{abs(hash(str(tree)))}"
    return ["env", f"PYTHONPATH={tree}", f"XDG_CACHE_HOME={cache}", sys.executable, "-m", "graphc", *map(str, args)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("rev")
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        before = d / "before"
        before.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", a.rev], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive, check=True)
        trees = {"before": before, "now": REPO}
        cases = []
        for label, make in (("chain", chain_model), ("mixed", mixed_model)):
            path = d / f"{label}.gc"
            path.write_text(make(10_000))
            for cmd in ("check", "emit"):
                cases += [((label, cmd, t), graphc(tree, cmd, path)) for t, tree in trees.items()]
        times = {key: [] for key, _ in cases}
        for _, cmd in cases[:2]:  # (each tree's grammar cache made before timing)
            run(cmd)
        for _ in range(a.repeat):
            for key, cmd in cases:
                times[key].append(run(cmd)[0])
        print(f"compile time, 10,000 statements, median of {a.repeat} (before = {a.rev}):")
        for label in ("chain", "mixed"):
            for cmd in ("check", "emit"):
                b, n = (statistics.median(times[label, cmd, t]) for t in ("before", "now"))
                print(f"  graphc {cmd} {label}: before {b:.2f} s, now {n:.2f} s, now/before {n / b:.3f}")

        print("emitted MLP step (loss_and_grad), median µs of blocks of consecutive calls:")
        for N, D, H, K in SIZES:
            model = d / "mlp.gc"
            model.write_text(MLP.format(D=D, H=H, K=K))
            mods = {}
            for t, tree in trees.items():
                out = d / f"mlp_{t}.py"
                subprocess.run(graphc(tree, "emit", model, "-o", out), check=True, capture_output=True)
                spec = importlib.util.spec_from_file_location(f"mlp_{t}", out)
                mods[t] = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mods[t])
            v = mlp_values(N, D, H, K)
            block = max(1, int(2e-2 / _once(mods["now"], v)))
            samples = {t: [] for t in trees}
            for k in range(60):
                for t in ("before", "now") if k % 2 else ("now", "before"):
                    f = mods[t].loss_and_grad
                    start = time.perf_counter()
                    for _ in range(block):
                        f(**v)
                    samples[t].append((time.perf_counter() - start) / block * 1e6)
            b, n = (statistics.median(samples[t]) for t in ("before", "now"))
            print(f"  ({N}, {D}, {H}, {K}): before {b:.1f} µs, now {n:.1f} µs, now/before {n / b:.3f}")


def _once(mod, v) -> float:
    mod.loss_and_grad(**v)
    start = time.perf_counter()
    mod.loss_and_grad(**v)
    return max(time.perf_counter() - start, 1e-6)


if __name__ == "__main__":
    main()
