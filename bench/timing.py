"""How the step benchmarks time their candidates."""

import random
import statistics
import time


def median_times(steps, repeat):
    """Median seconds of each (name, function) candidate. Interleaved, so that a slow moment of the machine
    hits them all alike, in a new order each round: the one that runs just after PyTorch finds the caches
    cold, and no candidate should always be that one."""
    times = {name: [] for name, _ in steps}
    rng = random.Random(0)
    for _ in range(repeat):
        for name, fn in rng.sample(steps, len(steps)):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}
