"""The grammar is found from an installed wheel, not only from the checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_carries_the_grammar_and_runs_check(tmp_path):
    pip = [sys.executable, "-m", "pip"]
    wheel_args = ["wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)]
    built = subprocess.run([*pip, *wheel_args], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("graphc-*.whl")
    assert "graphc/frontend/graphc.lark" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    inst = subprocess.run(
        [*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], capture_output=True, text=True
    )
    assert inst.returncode == 0, inst.stderr
    # run from elsewhere with only the wheel's graphc first on the path (its dependencies from this environment)
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import graphc.frontend.lalr as p; print(p.grammar_path())"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(site)
    r = subprocess.run(
        [sys.executable, "-m", "graphc", "check", str(REPO / "examples" / "two_layer.gc")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and "W1" in r.stdout, r.stderr
