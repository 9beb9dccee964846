"""The example-to-data table of tests/conftest.py against examples/: every model has its data."""

from pathlib import Path

from goldens import example_models

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_every_example_has_data_listed(example_data):
    models = {p.name for p in example_models()}
    assert set(example_data) >= models, "map new examples to their data in EXAMPLE_DATA (tests/conftest.py)"
    assert set(example_data) == models, "EXAMPLE_DATA (tests/conftest.py) lists a model examples/ lacks"
    for name, npz in example_data.items():
        assert npz.is_file(), f"{name}: no {npz}"
