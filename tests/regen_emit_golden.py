"""Regenerate the golden emitted modules: python tests/regen_emit_golden.py (never edit them by hand).

The cases and how each module is made are in tests/goldens.py; tests/backends/test_emit.py checks that
emitting each example again gives exactly its golden file.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # this checkout's graphc, and tests/goldens.py
from goldens import EMIT_GOLDEN, emit_cases, emitted  # noqa: E402


def main():
    EMIT_GOLDEN.mkdir(parents=True, exist_ok=True)
    for example in emit_cases():
        (EMIT_GOLDEN / f"{example.stem}.py").write_text(emitted(example), encoding="utf-8")
        print(f"wrote {EMIT_GOLDEN / example.stem}.py")


if __name__ == "__main__":
    main()
