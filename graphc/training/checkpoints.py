"""Checkpoints: a training run's whole state in a folder, written atomically, and read back.

    DIR/state.npz    the checkpoint: every param ("param/NAME"), the optimizer's buffers ("opt/NAME"),
                     the loop's other arrays, and "meta" (JSON as bytes: the epoch and step counters,
                     the schedule's position, the shuffling generator's state, the history)
    DIR/params.npz   the same epoch's params keyed by name, for `graphc eval -i`, `--init`

Each file is written to a temporary file in DIR, flushed to disk (fsync), then renamed over the old
one (os.replace), and the folder is synced: a crash at any moment leaves the previous state.npz
whole. state.npz is written first and is what `--resume` reads, so a crash between the two renames
costs only params.npz's freshness, never a torn checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data import option, output_target, write_atomic
from ..errors import GraphcError
from .optimizers import HYPER

STATE, PARAMS = "state.npz", "params.npz"
FORMAT = 1


def files(folder: str | None) -> dict[str, str]:
    """The files a checkpoint folder holds, by what they are (for data.distinct_outputs): none for None."""
    if not folder:
        return {}
    return {f"the checkpoint's {name} in": str(Path(folder) / name) for name in (STATE, PARAMS)}


def prepare(folder: str, protect=()) -> Path:
    """The checkpoint folder, made if missing; refused (before training) when it cannot hold one."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise GraphcError(
            f"{option('checkpoint', folder)}: {folder} is a file, not a folder",
            hint="give a folder for the checkpoint's files (made if missing), e.g. runs/digits",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GraphcError(
            f"cannot make the checkpoint folder {folder}: {e.strerror}", hint="choose another folder"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise GraphcError(
            f"cannot write the checkpoint folder {folder}: permission denied",
            hint="choose a folder you can write to",
        )
    for name in (STATE, PARAMS):  # each replaceable: not an input, nor a folder, a FIFO, ...
        output_target(str(path / name), protect)
    return path


def _synced(write):
    """write(f), then the bytes flushed to the disk before the rename makes them the file."""

    def run(f):
        write(f)
        f.flush()
        os.fsync(f.fileno())

    return run


def _sync_folder(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot sync a folder; the renames are atomic regardless
        pass
    finally:
        os.close(fd)


def settings(
    *, optimizer, hyper, lr, batch_size, schedule, warmup, step_size, gamma, clip_norm, l2, tol, patience, wrt
) -> dict:
    """What a run trains with that resuming it must keep, to continue it as it was: its hyper-parameters
    with their defaults filled in (leaving one out and giving its default are one setting). The seed is
    not one (the generator's state is saved), nor the number of epochs (a resumed run may go on longer)."""
    stepped = schedule == "step"
    return {
        "optimizer": optimizer, **HYPER[optimizer], **{k: v for k, v in hyper.items() if v is not None},
        "lr": lr, "batch_size": batch_size, "schedule": schedule, "warmup": warmup,
        "step_size": (step_size or 1) if stepped else None,
        "gamma": (0.1 if gamma is None else gamma) if stepped else None,
        "clip_norm": clip_norm, "l2": l2, "tol": tol, "patience": patience, "wrt": list(wrt),
    }  # fmt: skip


def same_settings(folder: str, meta: dict, now: dict) -> None:
    """Refuse to resume the checkpoint's run (meta) with settings other than its own."""
    was = meta.get("settings") or {"optimizer": meta["optimizer"]}  # (a checkpoint of graphc 0.x: its optimizer)
    for key, value in was.items():
        if now.get(key) != value:
            raise GraphcError(
                f"the checkpoint in {folder} was written {_with(key, value)}, not {_with(key, now.get(key))}",
                hint=f"resume it {_with(key, value)}; to train on from its params with other settings, start a new "
                f"run with {option('init', str(Path(folder) / PARAMS))}",
            )


def _with(key: str, value) -> str:
    return f"with {option(key, value)}" if value is not None else f"without {option(key)}"


def meta(
    *, settings, optimizer, epoch, steps, lr, start, opt_t, rng, history, stopped="epochs", prev_loss=math.inf,
    halvings=0, grad_norm=None, wait=0, best_loss=math.inf, best_epoch=None, prev_t=None, prev_factor=None, notes=(),
) -> dict:  # fmt: skip
    """The loop's numbers a checkpoint holds (both loops write them, either resumes them): the defaults
    are a run with no halving, no patience, no tol and no val that a loop without them has made."""
    return {
        "settings": settings, "optimizer": optimizer, "epoch": epoch, "steps": steps, "lr": lr, "halvings": halvings,
        "prev_loss": prev_loss, "start": start, "grad_norm": grad_norm, "wait": wait, "stopped": stopped,
        "best_loss": best_loss, "best_epoch": best_epoch, "opt_t": opt_t, "prev_t": prev_t,
        "prev_factor": prev_factor, "rng": rng.bit_generator.state, "history": history, "notes": list(notes),
    }  # fmt: skip


def save(folder: Path, params: dict, arrays: dict, meta: dict) -> None:
    """The checkpoint: state.npz (everything), then params.npz; each atomic, each synced."""
    blob = np.frombuffer(json.dumps({"format": FORMAT, **meta}).encode(), dtype=np.uint8)
    state = {**{f"param/{k}": v for k, v in params.items()}, **arrays, "meta": blob}
    write_atomic(str(folder / STATE), _synced(lambda f: np.savez(f, **state)))
    write_atomic(str(folder / PARAMS), _synced(lambda f: np.savez(f, **params)))
    _sync_folder(folder)


def find(folder: str) -> Path:
    """The checkpoint file in `folder`, or an error saying why there is none."""
    path = Path(folder)
    state = path / STATE
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise GraphcError(
            f"{option('resume', folder)}: {folder} {what}",
            hint=f"give the folder a run wrote with {option('checkpoint')}",
        )
    if not state.is_file():
        raise GraphcError(
            f"{option('resume', folder)}: {folder} holds no checkpoint ({STATE})",
            hint=f"a run with {option('checkpoint', folder)} writes one after each epoch",
        )
    return state


def load(folder: str, shapes: dict[str, tuple]) -> tuple[dict, dict, dict]:
    """(params, other arrays, meta) of the checkpoint in `folder`, checked to be one of this model's
    (`shapes`: each param's shape)."""
    state = find(folder)
    try:
        with np.load(state, allow_pickle=False) as f:
            arrays = {k: np.array(f[k]) for k in f.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as e:
        raise GraphcError(f"cannot read the checkpoint {state} ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise GraphcError(f"{state} is not a checkpoint graphc can read (format {got!r})")
    _check_meta(state, meta, arrays)
    params = {k[len("param/") :]: arrays.pop(k) for k in list(arrays) if k.startswith("param/")}
    saved = {k: tuple(v.shape) for k, v in params.items()}
    if saved != {k: tuple(s) for k, s in shapes.items()}:
        desc = lambda d: ", ".join(f"{k} {list(s)}" for k, s in d.items()) or "none"
        raise GraphcError(
            f"the checkpoint in {folder} is of another model: its params are {desc(saved)}; this model's are "
            f"{desc(shapes)}",
            hint=f"resume with the model that wrote it, or start afresh with another {option('checkpoint')} folder",
        )
    return params, arrays, meta


def _check_meta(state: Path, meta: dict, arrays: dict) -> None:
    """What resuming reads of a checkpoint, of the kinds meta() writes (a damaged file: an error naming
    what is wrong, not a traceback from deep in the loop)."""
    counts = ("epoch", "steps", "opt_t", "halvings", "wait")
    kinds = {
        **dict.fromkeys(counts, int), "lr": (int, float), "start": (int, float), "prev_loss": (int, float),
        "best_loss": (int, float), "history": dict, "notes": list, "rng": dict, "optimizer": str, "stopped": str,
    }  # fmt: skip
    for key, kind in kinds.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or (key in counts and value < 0):
            raise GraphcError(f"the checkpoint {state} is damaged: its {key} is {value!r}")
    if not all(isinstance(v, list) for v in meta["history"].values()):
        raise GraphcError(f"the checkpoint {state} is damaged: its history is not lists of numbers")
    for k, v in arrays.items():
        if k.startswith(("param/", "opt/", "best/", "prev/")) and v.dtype.kind not in "fiu":
            raise GraphcError(f"the checkpoint {state} is damaged: {k} holds {v.dtype} values, not numbers")


def restored(folder: str, restore) -> None:
    """restore() (the loop's own: the optimizer's state and the generator's from the checkpoint), with a
    part missing or of the wrong form an error naming the checkpoint."""
    try:
        restore()
    except (KeyError, TypeError, ValueError) as e:
        what = f"it has no {e.args[0]}" if isinstance(e, KeyError) else str(e)
        raise GraphcError(f"the checkpoint in {folder} is damaged: {what}") from None


@contextmanager
def interrupts(enabled: bool):
    """Within it, SIGINT and SIGTERM only note themselves (in the list it yields: the signal's name) for
    the loop to stop after the epoch in progress and its checkpoint; a second one acts as usual
    (Ctrl-C raises KeyboardInterrupt: an atomic write interrupted leaves the last checkpoint whole)."""
    seen: list[str] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield seen
        return
    kinds = (signal.SIGINT, signal.SIGTERM)
    before = {k: signal.getsignal(k) for k in kinds}

    def note(signum, frame):
        seen.append(signal.Signals(signum).name)
        for k in kinds:
            signal.signal(k, before[k])

    for k in kinds:
        signal.signal(k, note)
    try:
        yield seen
    finally:
        for k in kinds:
            signal.signal(k, before[k])
