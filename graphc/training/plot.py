"""The loss curve of a training run, drawn with matplotlib (an optional extra)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import option, write_atomic
from ..errors import GraphcError

PLOT_FORMATS = ("png", "svg", "pdf", "jpg", "jpeg")


def require_matplotlib():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise GraphcError(
            f"the loss plot ({option('plot')}) needs matplotlib, which is not installed",
            hint="pip install 'graphc[plot]'  (or pip install matplotlib)",
        ) from None
    return plt


def check_format(path: str, flag: str | None = None) -> str:
    """The picture's format, from its extension; flag: the option that named it (default: plot's)."""
    ext = Path(path).suffix.lower().lstrip(".")
    named = f"{flag} {path}" if flag else option("plot", path)
    if ext not in PLOT_FORMATS:
        raise GraphcError(
            f"{named}: cannot tell the picture format from the extension `.{ext}`"
            if ext
            else f"{named}: the file name has no extension to tell the picture format",
            hint=f"end the name with one of: {', '.join('.' + e for e in PLOT_FORMATS)}",
            usage=True,
        )
    return ext


def plot_history(history: dict, path: str, title: str = "", protect=()) -> None:
    """Training and validation loss per epoch, written atomically to `path` (png, svg, pdf, jpg)."""
    fmt = check_format(path)
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    epochs = np.arange(1, len(history["loss"]) + 1)
    marker = "." if len(epochs) <= 50 else None
    ax.plot(epochs, history["loss"], marker=marker, label="training loss (mean over the epoch)")
    if history.get("val_loss"):
        ax.plot(epochs, history["val_loss"], marker=marker, label="validation loss (end of epoch)")
    losses = [v for key in ("loss", "val_loss") for v in history.get(key, []) if np.isfinite(v)]
    if losses and min(losses) > 0 and max(losses) / min(losses) > 100:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        write_atomic(path, lambda f: fig.savefig(f, format=fmt), protect)
    finally:
        plt.close(fig)
