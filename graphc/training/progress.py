"""Progress while training: a tqdm bar on a terminal, log lines otherwise, or nothing."""

from __future__ import annotations

import math
import os


class Progress:
    """A tqdm bar on a terminal, plain log lines otherwise, or nothing (quiet)."""

    def __init__(self, epochs: int, mode: str, file, log_every: int | None, desc: str, initial: int = 0):
        self.mode, self.file, self.epochs = mode, file, epochs
        self.every = log_every or (1 if epochs <= 50 else math.ceil(epochs / 20))
        self.width = len(str(epochs))
        self.bar = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=epochs, initial=initial, desc=desc, unit="epoch", file=file, dynamic_ncols=True, leave=True
            )

    @staticmethod
    def _fields(rec: dict) -> list[tuple[str, str]]:
        out = []
        for key, value in rec.items():
            if key in ("epoch", "lr") or value is None:
                continue
            out.append((key, f"{value:.4f}" if "accuracy" in key else f"{value:.4g}"))
        return out

    def epoch(self, rec: dict, last: bool = False) -> None:
        if self.mode == "bar":
            self.bar.set_postfix({k.replace("accuracy", "acc"): v for k, v in self._fields(rec)}, refresh=False)
            self.bar.update(1)
        elif self.mode == "log":
            k = rec["epoch"]
            if k == 1 or k % self.every == 0 or last:
                parts = [f"epoch {k:>{self.width}}/{self.epochs}"]
                parts += [f"{key} {text}" for key, text in self._fields(rec)]
                parts.append(f"lr {rec['lr']:.4g}")
                print("  ".join(parts), file=self.file, flush=True)

    def note(self, text: str) -> None:
        if self.mode == "bar":
            self.bar.write(text, file=self.file)
        elif self.mode == "log":
            print(text, file=self.file, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def terminal(file) -> bool:
    """Whether `file` is a terminal a bar can be drawn on (one of size 0x0 would hide it)."""
    try:
        if not file.isatty():
            return False
        size = os.get_terminal_size(file.fileno())
    except (AttributeError, ValueError, OSError):
        return False
    return size.columns > 0 and size.lines > 0
