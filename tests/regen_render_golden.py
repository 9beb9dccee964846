"""Regenerate the golden DOT pictures: python tests/regen_render_golden.py (never edit them by hand).

Each case is a model, its values (an .npz from examples/, or none) and to_digraph's options;
tests/test_render.py checks that drawing the case again gives exactly the golden file.
After a deliberate change to the pictures, rerun this and review the diff of tests/golden/render/.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import graphc  # noqa: E402
from graphc import data  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "render"

# name -> (model, values file or None, to_digraph options)
CASES = {
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
    model_file, values_file, options = CASES[name]
    path = REPO / "examples" / model_file
    model = graphc.compile(path.read_text(encoding="utf-8"), f"examples/{model_file}")
    values = None
    if values_file:
        values = {k: v for k, v in data.load_npz(str(REPO / "examples" / values_file)).items() if k in model.names}
    return model.to_digraph(values=values, **options).source


def main():
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in CASES:
        (GOLDEN / f"{name}.dot").write_text(drawn(name), encoding="utf-8")
        print(f"wrote {GOLDEN / name}.dot")


if __name__ == "__main__":
    main()
