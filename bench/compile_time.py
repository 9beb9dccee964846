"""Front-end and compiler speed, process start included (what a user waits for):

    python bench/compile_time.py [--repeat 5]

Two models (bench/models.py): a chain of elementwise ops, and a mixed model whose statements apply
tanh, sigmoid, exp or square to values picked at random among the last 50 (fan-out and joins, as in
a real model). For each, `graphc check` of 10,000 statements (issue target: under 1 s), and `graphc
emit` (parse, differentiate, simplify, emit) of 10,000 and 20,000 statements (targets: under 3 s,
and linear growth: the 20,000 under 2.3x the 10,000). Then, in process, differentiate + simplify of
both 10,000-statement models and of chains of 25k-100k nodes, per node of the forward graph.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from models import chain_model, mixed_model  # noqa: E402


def run(cmd) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of cmd."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if status:
        raise subprocess.CalledProcessError(status, cmd)
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    py = [sys.executable, "-m", "graphc"]
    with tempfile.TemporaryDirectory() as d:
        cases = []  # (label, command): every command runs once a round, rounds repeated, so that a machine
        # slowing down under sustained load (this one does, by a third and more) slows every command alike
        for label, make in (("chain", chain_model), ("mixed", mixed_model)):
            for n in (10_000, 20_000):
                path = Path(d) / f"{label}{n}.gc"
                path.write_text(make(n))
                if n == 10_000:
                    cases.append(((label, "check", n), [*py, "check", str(path)]))
                cases.append(((label, "emit", n), [*py, "emit", str(path)]))
        times = {key: [] for key, _ in cases}
        for _ in range(a.repeat):
            for key, cmd in cases:
                times[key].append(run(cmd))
        med = {
            key: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t)) for key, t in times.items()
        }
        for label in ("chain", "mixed"):
            (check, cpu), (e10, cpu10), (e20, cpu20) = (
                med[label, k, n] for k, n in (("check", 10_000), ("emit", 10_000), ("emit", 20_000))
            )
            print(
                f"graphc check, {label}, 10,000 statements: median {check:.2f} s, cpu {cpu:.2f} s "
                f"({verdict(check < 1, 'under 1 s')})"
            )
            print(
                f"graphc emit, {label}, 10,000 statements: median {e10:.2f} s, cpu {cpu10:.2f} s "
                f"({verdict(e10 < 3, 'under 3 s')})"
            )
            ratio = e20 / e10
            print(
                f"graphc emit, {label}, 20,000 statements: median {e20:.2f} s, cpu {cpu20:.2f} s, {ratio:.2f}x the "
                f"10,000 ({verdict(ratio < 2.3, 'under 2.3x')})"
            )
        mixed, chain = med["mixed", "emit", 10_000][0], med["chain", "emit", 10_000][0]
        print(f"mixed / chain emit, 10,000 statements: {mixed / chain:.2f}x (the same machine state for both)")

    import graphc
    from graphc.backends.numpy.kernels import evaluate
    from graphc.transforms import autodiff
    from graphc.transforms import simplify as passes
    from graphc.transforms.stabilise import stabilise

    print(f"\n(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print("\ndifferentiate + simplify (in process, median of 3):")
    models = [("the chain, 10,000 statements", chain_model(10_000), None)]
    models.append(("the mixed model, 10,000 statements", mixed_model(10_000), None))
    for n in (25_000, 50_000, 100_000):
        src = "param w = 0.5\nv0 = w\n" + "".join(f"v{k} = sin(v{k - 1})\n" for k in range(1, n)) + f"L = v{n - 1}"
        models.append((f"a chain of sin, {n:,}", src, ["w"]))
    for label, src, wrt in models:
        g = stabilise(graphc.compile(src).graph)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            passes.simplify(autodiff.differentiate(g, wrt), evaluate, inplace=True)
            times.append(time.perf_counter() - t)
        med = statistics.median(times)
        print(f"  {label}: {len(g):,} nodes, {med:.2f} s, {med / len(g) * 1e6:.1f} µs a node")


def verdict(met: bool, target: str) -> str:
    return f"target {target}: {'met' if met else 'NOT MET'}"


if __name__ == "__main__":
    main()
