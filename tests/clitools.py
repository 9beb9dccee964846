"""Running the command line the way a user does, for the CLI tests."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_graphc(
    *args, cwd=None, stdin: str | None = None, timeout: float = 120, env_extra: dict | None = None
) -> subprocess.CompletedProcess:
    """`python -m graphc ARGS` with this checkout's graphc, capturing output (no tracebacks forced on);
    env_extra: environment variables to set on top (PATH=... to hide a program)."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("GRAPHC_DEBUG", None)
    env.update(env_extra or {})
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


def run_cleanly(*args, **options) -> subprocess.CompletedProcess:
    """run_graphc, asserting that graphc reported any failure as a user error (no traceback, no internal error)."""
    r = run_graphc(*args, **options)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert "internal error" not in r.stderr, r.stderr
    return r
