"""The metric log: one JSON object per epoch appended to a file (`--log metrics.jsonl`), and read back
for a plot after the fact (`graphc plot metrics.jsonl -o loss.png`)."""

from __future__ import annotations

import json
import math
import os

from ..data import option, output_target
from ..errors import GraphcError


def new_history(metric: str | None, val: bool, tol: bool = False, saved: dict | None = None) -> dict[str, list]:
    """A run's per-epoch lists: loss and lr, and grad_norm (tol), the metric, val_loss and val_<metric> when
    asked for; continuing `saved` (a checkpoint's history; a record asked for now and not then: nan before)."""
    keys = ["loss", "lr"] + (["grad_norm"] if tol else []) + ([metric] if metric else [])
    if val:
        keys += ["val_loss"] + (["val_" + metric] if metric else [])
    done = len(saved["loss"]) if saved else 0
    return {k: list(saved.get(k, [math.nan] * done)) if saved else [] for k in keys}


def check(path: str, protect=()) -> None:
    """Refuse, before training, a log that could not be appended to, or must not be: an input (`protect`),
    or anything but a regular file (a FIFO would block the run; data.output_target)."""
    if os.path.isdir(path):
        raise GraphcError(f"{option('log', path)}: it is a folder", hint="give a file name, e.g. metrics.jsonl")
    output_target(path, protect)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GraphcError(f"cannot write {path}: there is no folder {folder}", hint="create it first (mkdir -p)")
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        raise GraphcError(f"cannot write {path}: {e.strerror}") from None


class MetricLog:
    """Appends a record per epoch, each line flushed: the log is whole up to the last finished epoch."""

    def __init__(self, path: str, protect=()):
        check(path, protect)
        self.path = path
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, record: dict) -> None:
        self.file.write(json.dumps({k: _number(v) for k, v in record.items()}) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()


def _number(v):
    """JSON has no nan or inf: they are written as null (a diverged epoch's loss)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def read(path: str) -> dict[str, list[float]]:
    """A log's records as a history ({"loss": [...], "val_loss": [...], ...}), in the file's order."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise GraphcError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise GraphcError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    history: dict[str, list[float]] = {}
    rows = 0
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise GraphcError(
                f"{path}:{i}: not a JSON object ({e.msg})",
                hint="a metric log holds one JSON object per line, as `graphc train --log` writes",
            ) from None
        if not isinstance(rec, dict) or "loss" not in rec:
            raise GraphcError(f"{path}:{i}: a record without a `loss`", hint="is this a `graphc train --log` file?")
        for k, v in rec.items():
            if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
                raise GraphcError(
                    f"{path}:{i}: its {k} is {json.dumps(v)}, not a number",
                    hint="a metric log's values are numbers (null for one that was not finite)",
                )
            history.setdefault(k, [math.nan] * rows).append(math.nan if v is None else v)
        rows += 1
        for v in history.values():
            if len(v) < rows:
                v.append(math.nan)
    if not rows:
        raise GraphcError(f"{path} holds no records", hint="`graphc train --log FILE` appends one per epoch")
    return history
