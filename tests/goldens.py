"""The golden files: what the tests compare emitted modules and DOT pictures against, and how each is
made. tests/regen_emit_golden.py and tests/regen_render_golden.py write them from here (never edit them
by hand); tests/backends/test_emit.py and tests/views/test_render.py draw them again and compare.
A helper module, not a test module: tests import it, it imports no test."""

from __future__ import annotations

from pathlib import Path

import graphc
from graphc import data

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EMIT_GOLDEN = REPO / "tests" / "golden" / "emit"
RENDER_GOLDEN = REPO / "tests" / "golden" / "render"


LIBRARIES = frozenset({"layers.gc"})  # files of functions that models `use`: no model of their own


def example_models() -> list[Path]:
    """The shipped models, examples/*.gc but the files of functions."""
    return sorted(p for p in EXAMPLES.glob("*.gc") if p.name not in LIBRARIES)


# ---- emitted modules: one per example ---------------------------------------------------------------


def emit_cases() -> list[Path]:
    """The examples whose emitted module has a golden file: every model."""
    return example_models()


def emitted(example: Path) -> str:
    """The module `graphc emit examples/NAME.gc` writes, with the path as the CLI sees it from the repo."""
    model = graphc.compile(example.read_text(encoding="utf-8"), f"examples/{example.name}")
    return model.emit(module_name=example.stem)


# ---- DOT pictures ---------------------------------------------------------------------------------

# name -> (model, values file or None, to_digraph options)
RENDER_CASES = {
    "two_layer_forward": ("two_layer.gc", None, {}),
    "two_layer_forward_values": ("two_layer.gc", "two_layer.npz", {"rankdir": "TB"}),
    "two_layer_backward_values": ("two_layer.gc", "two_layer.npz", {"backward": True, "rankdir": "TB"}),
    "two_layer_backward_collapsed": ("two_layer.gc", "two_layer.npz", {"backward": True, "collapse": True}),
    "logistic_l2_backward_values": (
        "logistic_least_squares_l2.gc",
        "logistic_least_squares.npz",
        {"backward": True},
    ),
    "digits_backward_by_line": ("digits_mlp.gc", None, {"backward": True, "group_by_line": True}),
    "softmax_regression_backward": ("softmax_regression.gc", None, {"backward": True, "wrt": ["W"]}),
}


def drawn(name: str) -> str:
    """The DOT source of a case, with the model's path as the CLI sees it from the repo."""
    model_file, values_file, options = RENDER_CASES[name]
    path = EXAMPLES / model_file
    model = graphc.compile(path.read_text(encoding="utf-8"), f"examples/{model_file}")
    values = None
    if values_file:
        values = {k: v for k, v in data.load_npz(str(EXAMPLES / values_file)).items() if k in model.names}
    return model.to_digraph(values=values, **options).source
