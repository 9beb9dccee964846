"""Running the command line the way a user does, for the CLI tests."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_graphc(*args, cwd=None, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m graphc ARGS` with this checkout's graphc, capturing output (no tracebacks forced on)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRAPHC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "graphc", *map(str, args)],
        check=False,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
