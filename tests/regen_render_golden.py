"""Regenerate the golden DOT pictures: python tests/regen_render_golden.py (never edit them by hand).

Each case (tests/goldens.py) is a model, its values (an .npz from examples/, or none) and to_digraph's
options; tests/views/test_render.py checks that drawing the case again gives exactly the golden file.
After a deliberate change to the pictures, rerun this and review the diff of tests/golden/render/.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's graphc, and tests/goldens.py
from goldens import RENDER_CASES, RENDER_GOLDEN, drawn  # noqa: E402


def main():
    RENDER_GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in RENDER_CASES:
        (RENDER_GOLDEN / f"{name}.dot").write_text(drawn(name), encoding="utf-8")
        print(f"wrote {RENDER_GOLDEN / name}.dot")


if __name__ == "__main__":
    main()
