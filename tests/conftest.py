"""Shared test setup.

Hypothesis runs derandomized (the same examples every run: CI judges the code, not the draw) and
without an example database; `HYPOTHESIS_PROFILE=explore` draws new examples each run, for bug hunts.

The tests live in one folder per layer of the package (tests/ir, tests/frontend, ...), the ones that
cross layers here at the top. pytest imports them with --import-mode=importlib (pyproject.toml), so two
folders may hold files of the same name; no test imports another. What tests share comes from the
fixtures below, or from the helper modules here in tests/ (gradtools, clitools, goldens), which this
file puts on sys.path for every folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLES = REPO / "examples"
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

settings.register_profile("deterministic", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


# The values each shipped model runs on: examples/NAME.gc -> examples/FILE.npz. The one copy of this
# table: tests get it through the fixtures below (and tests/test_examples.py holds it to examples/).
EXAMPLE_DATA = {
    "attention.gc": "attention.npz",
    "chain_rule.gc": "chain_rule.npz",
    "digits_cnn.gc": "digits_test.npz",
    "digits_mlp.gc": "digits_test.npz",
    "digits_mlp2.gc": "digits_test.npz",
    "embedding.gc": "embedding_test.npz",
    "least_squares.gc": "least_squares.npz",
    "logistic_least_squares.gc": "logistic_least_squares.npz",
    "logistic_least_squares_l2.gc": "logistic_least_squares.npz",
    "softmax_regression.gc": "softmax_regression.npz",
    "two_layer.gc": "two_layer.npz",
    "two_layer_layers.gc": "two_layer.npz",
    "xor_features.gc": "xor.npz",
    "xor_mlp.gc": "xor_mlp.npz",
    "xor_threshold.gc": "xor.npz",
}


def _example_name(example) -> str:
    """ "two_layer", "two_layer.gc" or a path to examples/two_layer.gc -> "two_layer.gc"."""
    return Path(example).stem + ".gc"


@pytest.fixture(scope="session")
def example_data() -> dict[str, Path]:
    """{"NAME.gc": path of the .npz its values come from}, for every model the table knows."""
    return {name: EXAMPLES / file for name, file in EXAMPLE_DATA.items()}


@pytest.fixture(scope="session")
def example_data_file(example_data):
    """example (its name, stem or path) -> the path of the .npz it goes with."""

    def file_of(example) -> Path:
        return example_data[_example_name(example)]

    return file_of


@pytest.fixture(scope="session")
def example_inputs(example_data_file):
    """example (its name, stem or path) -> {name: array} of its data, as graphc.data.load_npz reads them
    (read once; each call gets its own copies)."""
    from graphc import data

    loaded: dict[Path, dict] = {}

    def inputs(example) -> dict:
        path = example_data_file(example)
        if path not in loaded:
            loaded[path] = data.load_npz(str(path))
        return {k: v.copy() for k, v in loaded[path].items()}

    return inputs
