"""How the step benchmarks time their candidates."""

import random
import statistics
import time


def median_times(steps, repeat, block=20):
    """Median seconds of one call of each (name, function) candidate, over `repeat` calls of each.

    Candidates run in blocks of `block` consecutive calls, as a training loop calls its step, so that a
    figure is the candidate's with its own data and code in the caches (one call after PyTorch's finds
    them cold; the median leaves out a block's first call or two). The blocks are interleaved, the
    candidates in a new order each round, so that a slow moment of the machine hits them all alike."""
    times = {name: [] for name, _ in steps}
    rng = random.Random(0)
    for _ in range(max(1, -(-repeat // block))):
        for name, fn in rng.sample(steps, len(steps)):
            for _ in range(block):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}
