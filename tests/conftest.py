"""Shared test setup.

Hypothesis runs derandomized (the same examples every run: CI judges the code, not the draw) and
without an example database; `HYPOTHESIS_PROFILE=explore` draws new examples each run, for bug hunts.

The tests live in one folder per layer of the package (tests/ir, tests/frontend, ...); the helper
modules (gradtools, clitools) stay here in tests/, which goes on sys.path so every folder imports them.
"""

import os
import sys
from pathlib import Path

from hypothesis import settings

HERE = Path(__file__).resolve().parent
# the helpers' folder, plus (for now) the folders of test modules other tests still import
for folder in (HERE, HERE / "transforms", HERE / "backends"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
