"""Regenerate the golden emitted modules: python tests/regen_emit_golden.py (never edit them by hand)."""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import graphc  # noqa: E402

GOLDEN = REPO / "tests" / "golden" / "emit"


def emitted(example: Path) -> str:
    """The module `graphc emit examples/NAME.gc` writes, with the path as the CLI sees it from the repo."""
    model = graphc.compile(example.read_text(encoding="utf-8"), f"examples/{example.name}")
    return model.emit(module_name=example.stem)


def main():
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for example in sorted((REPO / "examples").glob("*.gc")):
        (GOLDEN / f"{example.stem}.py").write_text(emitted(example), encoding="utf-8")
        print(f"wrote {GOLDEN / example.stem}.py")


if __name__ == "__main__":
    main()
