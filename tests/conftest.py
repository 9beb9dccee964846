"""Shared test setup.

Hypothesis runs derandomized (the same examples every run: CI judges the code, not the draw) and
without an example database; `HYPOTHESIS_PROFILE=explore` draws new examples each run, for bug hunts.
"""

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
