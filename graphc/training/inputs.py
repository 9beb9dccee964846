"""The training data and options checked, and the params' starting values."""

from __future__ import annotations

import math
import numbers
from pathlib import Path

import numpy as np

from ..backends.numpy.values import as_array
from ..data import check_numeric, load_npz, option
from ..errors import GraphcError
from .metrics import METRICS
from .optimizers import HYPER, OPTIMIZERS
from .schedules import SCHEDULES


def as_float(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    check_numeric(name, a, "the data")
    return as_array(name, a, "the data for")


def split(model, data: dict, what: str) -> tuple[dict, dict, int]:
    """The model's inputs from `data`: (batched arrays, 0-d arrays passed whole, N examples)."""
    missing = [n for n in model.inputs if n not in data]
    if missing:
        raise GraphcError(
            f"the {what} has no `{missing[0]}`" + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""),
            hint=f"the model's inputs: {', '.join(model.inputs)}; the {what} holds: "
            f"{', '.join(sorted([*data, *getattr(data, 'unread', ())])) or 'nothing'}",
        )
    batched, whole = {}, {}
    for name in model.inputs:
        a = as_float(name, data[name])
        if a.dtype.kind == "f" and not np.isfinite(a).all():  # (a nan in an input makes every loss nan)
            at = tuple(int(k) for k in np.argwhere(~np.isfinite(a))[0])
            raise GraphcError(
                f"the {what}'s `{name}` holds {a[at]} at {list(at)}",
                hint="training needs finite numbers: drop those examples, or fill them in",
            )
        (batched if a.ndim else whole)[name] = a
    sizes = {n: a.shape[0] for n, a in batched.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"`{n}` has {s}" for n, s in sizes.items())
        raise GraphcError(
            f"the {what}'s arrays disagree on the number of examples (axis 0): {desc}",
            hint="every input holds one row per example",
        )
    n = next(iter(sizes.values()), 1)
    if n == 0:
        raise GraphcError(f"the {what} has no examples (axis 0 has length 0)")
    return batched, whole, n


def same_examples(model, batched, whole, vbatched, vwhole) -> None:
    """Validation examples shaped like the training ones, else an error at the input's declaration."""
    for name in model.inputs:
        a, b = (batched | whole)[name], (vbatched | vwhole)[name]
        if (a.shape[1:] if a.ndim else a.shape) != (b.shape[1:] if b.ndim else b.shape) or a.ndim != b.ndim:
            raise GraphcError(
                f"`{name}` in the validation data has shape {list(b.shape)}, in the training data {list(a.shape)}: "
                "their examples (rows along axis 0) differ",
                model.graph[model.graph.names[name]]["span"],
                "validation data holds more examples of the same kind as the training data",
            )


def initial_params(model, init, first: dict, seed: int, params: list[str]) -> dict[str, np.ndarray]:
    """The params' starting values: from `init` (a dict or an .npz path) where given, else their
    initialisers (with `seed`). `first` is a small batch that fixes symbolic dims."""
    given: dict = {}
    if init is not None:
        if isinstance(init, (str, Path)):
            init = load_npz(str(init))
        given = {k: v for k, v in init.items() if k in params}
        if not given:
            raise GraphcError(
                "the init params hold none of the model's params",
                hint=f"the model's params: {', '.join(params)}; given: {', '.join(sorted(init)) or 'nothing'}",
            )
        given = {k: as_float(k, v) for k, v in given.items()}
    values = model.evaluate({**first, **given}, seed=seed)  # checks shapes of given params too
    return {p: np.array(values[p], dtype=np.float64) for p in params}


def check_options(lr, epochs, batch_size, schedule, tol, val, patience, l2, metric, seed) -> None:
    def bad(message, hint=None):
        raise GraphcError(message, hint=hint, usage=True)

    whole = lambda k: isinstance(k, numbers.Integral) and not isinstance(k, bool)
    if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr > 0):
        bad(f"{option('lr')}, the learning rate, must be a positive number, got {lr}")
    if not whole(epochs) or epochs < 1:
        bad(f"{option('epochs')} must be a whole number >= 1, got {epochs}")
    if batch_size is not None and (not whole(batch_size) or batch_size < 1):
        bad(
            f"{option('batch_size')}, the batch size, must be a whole number >= 1, got {batch_size}",
            f"leave out {option('batch_size')} for full-batch gradient descent",
        )
    if schedule not in SCHEDULES:
        bad(f"unknown {option('schedule')} {schedule!r}", f"choose one of: {', '.join(SCHEDULES)}")
    if tol is not None and not (isinstance(tol, numbers.Real) and math.isfinite(tol) and tol > 0):
        bad(f"{option('tol')} must be a positive number, got {tol}")
    if patience is not None:
        if not whole(patience) or patience < 1:
            bad(f"{option('patience')} must be a whole number >= 1, got {patience}")
        if val is None:
            bad(
                f"{option('patience')} needs validation data to watch",
                f"pass the validation data too ({option('val')})",
            )
    if not (isinstance(l2, numbers.Real) and math.isfinite(l2) and l2 >= 0):
        bad(f"{option('l2')} must be a number >= 0, got {l2}")
    if not whole(seed) or seed < 0:
        bad(f"{option('seed')} must be a whole number >= 0, got {seed}")
    if metric is not None and metric not in METRICS:
        bad(f"unknown {option('metric')} {metric!r}", f"choose one of: {', '.join(METRICS)}")


EXPLODE = 1e6  # a loss above this many times its start (or 1, when larger) has diverged, finite or not
BACKENDS = ("numpy", "numba", "torch", "jax")  # (dask: distributed.py's train_dask)
ON_DEVICE = ("torch", "jax")  # devices.py: the whole loop on the library's arrays


def check_backend(backend: str, device: str | None, **given) -> None:
    """The backend and device; for torch and jax, none of the loop's options the device loop lacks
    (`given`: their values, None or the default when not asked for)."""

    def bad(message, hint=None):
        raise GraphcError(message, hint=hint, usage=True)

    if backend not in BACKENDS:
        bad(f"unknown {option('backend', backend)}", f"choose one of: {', '.join(BACKENDS)}")
    if device is not None and backend not in ON_DEVICE:
        bad(f"{option('device', device)} is for {option('backend', 'torch')} or jax", "drop it, or pick one of those")
    if device not in (None, "cpu", "cuda"):
        bad(f"unknown {option('device', device)}", "choose cpu or cuda")
    if backend in ON_DEVICE:
        for key, value in given.items():
            if value is not None and (key != "schedule" or value == "halve"):
                bad(
                    f"{option('backend', backend)} trains without {option(key, value)}",
                    f"for it, train with {option('backend', 'numpy')}",
                )


def check_practice(optimizer: str, hyper: dict, schedule: str, warmup, step_size, gamma, clip_norm) -> None:
    """The optimizer's and schedule's options: known names, numbers in range, none that the choice ignores."""

    def bad(message, hint=None):
        raise GraphcError(message, hint=hint, usage=True)

    if optimizer not in OPTIMIZERS:
        bad(f"unknown {option('optimizer')} {optimizer!r}", f"choose one of: {', '.join(OPTIMIZERS)}")
    takes = HYPER[optimizer]
    for key, value in hyper.items():
        if value is None:
            continue
        if key not in takes:
            users = [o for o in OPTIMIZERS if key in HYPER[o]]
            bad(
                f"{option(key)} does not apply to {option('optimizer', optimizer)}",
                f"it is a hyper-parameter of {' and '.join(option('optimizer', o) for o in users)}",
            )
        real = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        if key in ("beta1", "beta2") and not (real and 0 <= value < 1):
            bad(f"{option(key)} must be a number in [0, 1), got {value}")
        if key == "momentum" and not (real and 0 < value < 1):
            bad(f"{option(key)} must be a number in (0, 1), got {value}", f"for none, {option('optimizer', 'sgd')}")
        if key == "eps" and not (real and value > 0):
            bad(f"{option(key)} must be a positive number, got {value}")
        if key == "weight_decay" and not (real and value >= 0):
            bad(f"{option(key)} must be a number >= 0, got {value}")
    whole = lambda k: isinstance(k, numbers.Integral) and not isinstance(k, bool)
    if not whole(warmup) or warmup < 0:
        bad(f"{option('warmup')} must be a whole number of epochs >= 0, got {warmup}")
    for key, value, used in (("step_size", step_size, "step"), ("gamma", gamma, "step")):
        if value is not None and schedule != used:
            bad(f"{option(key)} applies to {option('schedule', used)} only", f"add {option('schedule', used)}")
    if step_size is not None and (not whole(step_size) or step_size < 1):
        bad(f"{option('step_size')} must be a whole number of epochs >= 1, got {step_size}")
    if gamma is not None and not (isinstance(gamma, numbers.Real) and math.isfinite(gamma) and gamma > 0):
        bad(f"{option('gamma')} must be a positive number, got {gamma}")
    if clip_norm is not None and not (
        isinstance(clip_norm, numbers.Real) and math.isfinite(clip_norm) and clip_norm > 0
    ):
        bad(f"{option('clip_norm')} must be a positive number, got {clip_norm}")
