"""Fixtures of the backend tests: each example with its data and its params' initial values."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def example_values(example_inputs):
    """(path of an example, its Model) -> its data's values for the model's names, plus every param at
    its initial value (seed 3): what the emitted module and the interpreter are both given."""

    def values_of(path, model) -> dict:
        values = {k: v for k, v in example_inputs(path).items() if k in model.graph.names}
        full = model.evaluate(values, seed=3)
        return {**values, **{p: full[p] for p in model.params}}

    return values_of
