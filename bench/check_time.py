"""Time `graphc check` on a generated 10,000-statement model (process start included).

    python bench/check_time.py [--statements 10000] [--repeat 5]

Prints the median wall time of `python -m graphc check` over the repeats.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import chain_model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--statements", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "big.gc"
        path.write_text(chain_model(a.statements))
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "graphc", "check", str(path)], check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t)
    print(
        f"graphc check, {a.statements} statements: median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, {a.repeat} runs, process start included)"
    )


if __name__ == "__main__":
    main()
