"""Training: full-batch gradient descent and mini-batch SGD on a model's params.

    result = graphc.training.train(model, data, lr=0.5, epochs=30, batch_size=32, metric="accuracy")
    result.params          # {name: array}, ready for Model.evaluate or data.save_npz
    result.history         # per epoch: "loss", "lr", and "accuracy", "val_loss", ... when asked for

The data's arrays are the model's inputs with the examples along axis 0 (0-d arrays are passed
whole to every step; keys the model does not use are ignored). The mean over a batch is the
model's business: its loss is usually a `mean`, and the trainer takes the loss as it comes.

What each number means:
- `history["loss"]`: the batch-size-weighted mean of the batch losses seen during the epoch (for
  full-batch gradient descent, the loss at the start of the epoch), plus the L2 penalty
  (l2/2)·Σ‖p‖² when `l2` is set: the objective that is being minimised.
- `history["accuracy"]` (or another metric), `history["val_loss"]`, `history["val_accuracy"]`:
  on the whole training / validation data at the end of the epoch.
- `result.loss`, `result.metric`, `result.val_loss`, `result.val_metric`: the model's loss (no
  penalty) and metric at the returned params, on all the training / validation data.

The gradient step sits behind one function, `_gradient_step`, so the loop runs whichever step is
fastest: the compiled (emitted) `loss_and_grad` when the API offers one, else the interpreter.
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends.numpy.values import as_array
from ..data import check_numeric, check_output, load_npz, option
from ..errors import GraphcError
from .metrics import METRICS, accuracy, target_name
from .plot import check_format, plot_history, require_matplotlib
from .progress import Progress, terminal

SCHEDULES = ("constant", "halve")
MAX_HALVINGS = 1100  # 2^-1100 takes any finite step below the smallest float64
EXPLODE = 1e6  # a loss above this many times its start (or 1, when larger) has diverged, finite or not


@dataclass
class TrainResult:
    """What `train` returns: the params and how training went."""

    params: dict[str, np.ndarray]
    history: dict[str, list[float]]
    epochs: int  # epochs run (fewer than asked when stopped early)
    steps: int  # parameter updates made
    stopped: str  # "epochs", "tol" (gradient norm below tol), "patience" (no val improvement), "callback"
    method: str  # "gradient descent" (full batch) or "mini-batch SGD"
    batch_size: int
    n_examples: int
    lr: float  # the step size at the end (the halve schedule may have lowered it)
    loss: float  # the model's loss on all the training data at the returned params
    metric: float | None = None
    val_loss: float | None = None
    val_metric: float | None = None
    best_epoch: int | None = None  # the epoch with the lowest val loss (1-based)
    grad_norm: float | None = None  # the last full-data gradient norm, when tol is set
    engine: str = "interpreter"  # which gradient step ran: "compiled" (emitted code) or "interpreter"
    notes: list[str] = field(default_factory=list)  # e.g. "lr halved to 0.25 at epoch 7"


# ---- the gradient step -------------------------------------------------------------------------
def _compiled(model, wrt: list[str]):
    """The model's emitted module loaded in memory (`Model.compiled`), and a function that maps
    model names to its keyword arguments; (None, None) when there is none to be had."""
    compiled = getattr(model, "compiled", None)
    if compiled is None:
        return None, None
    try:
        module = compiled(wrt)
    except (GraphcError, NotImplementedError, SyntaxError):  # an op the code generator lacks: interpret
        return None, None
    # the module's keyword arguments are the model's names; a Python keyword gets a trailing `_`
    accepted = set(inspect.signature(module.loss_and_grad).parameters)
    rename = {n: n + "_" for n in model.names if n not in accepted and n + "_" in accepted}
    if not rename:
        return module, None
    return module, lambda values: {rename.get(k, k): v for k, v in values.items()}


def _gradient_step(model, wrt: list[str]):
    """f(values) -> (loss, {name: grad}) for the names in `wrt`; f.engine says which code runs.

    The compiled step (the emitted module's `loss_and_grad`, loaded in memory by
    `Model.compiled`) when the model offers one, else the interpreter's `Model.loss_and_grad`.
    """
    module, rename = _compiled(model, wrt)
    if module is None:

        def step(values):
            return model.loss_and_grad(values, wrt)

        step.engine = "interpreter"
        return step
    fn = module.loss_and_grad
    if rename is None:

        def step(values):
            loss, grads = fn(**values)
            return float(loss), grads

    else:

        def step(values):
            loss, grads = fn(**rename(values))
            return float(loss), grads

    step.engine = "compiled"
    return step


def _forward(model, wrt: list[str], seed: int):
    """f(values) -> {name: value}: the compiled forward pass when there is one, else Model.evaluate."""
    module, rename = _compiled(model, wrt)
    if module is None or not hasattr(module, "forward"):
        return lambda values: model.evaluate(values, seed=seed)
    fn = module.forward
    return (lambda values: fn(**values)) if rename is None else (lambda values: fn(**rename(values)))


# ---- data --------------------------------------------------------------------------------------
def _as_float(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    check_numeric(name, a, "the data")
    return as_array(name, a, "the data for")


def _split(model, data: dict, what: str) -> tuple[dict, dict, int]:
    """The model's inputs from `data`: (batched arrays, 0-d arrays passed whole, N examples)."""
    missing = [n for n in model.inputs if n not in data]
    if missing:
        raise GraphcError(
            f"the {what} has no `{missing[0]}`" + (f" (nor {', '.join(missing[1:])})" if missing[1:] else ""),
            hint=f"the model's inputs: {', '.join(model.inputs)}; the {what} holds: "
            f"{', '.join(sorted(data)) or 'nothing'}",
        )
    batched, whole = {}, {}
    for name in model.inputs:
        a = _as_float(name, data[name])
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


def _same_examples(model, batched, whole, vbatched, vwhole) -> None:
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


def _initial_params(model, init, first: dict, seed: int, params: list[str]) -> dict[str, np.ndarray]:
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
        given = {k: _as_float(k, v) for k, v in given.items()}
    values = model.evaluate({**first, **given}, seed=seed)  # checks shapes of given params too
    return {p: np.array(values[p], dtype=np.float64) for p in params}


def _check_options(lr, epochs, batch_size, schedule, tol, val, patience, l2, metric, seed) -> None:
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


# ---- the loop ----------------------------------------------------------------------------------
def train(
    model,
    data: dict,
    lr: float = 0.1,
    epochs: int = 10,
    batch_size: int | None = None,
    seed: int = 0,
    schedule: str = "constant",
    tol: float | None = None,
    val: dict | None = None,
    patience: int | None = None,
    l2: float = 0.0,
    metric: str | None = None,
    init=None,
    progress: bool | None = None,
    quiet: bool = False,
    plot: str | None = None,
    metric_target: str | None = None,
    wrt: list[str] | None = None,
    file=None,
    log_every: int | None = None,
    protect=(),
    callback=None,
) -> TrainResult:
    """Fit the model's params (or `wrt`) to `data` by gradient descent; see the module's docstring.

    batch_size None or >= N: full-batch gradient descent; else mini-batch SGD, reshuffled each
    epoch from `seed` (which also seeds the params' initialisers). schedule "halve" halves the
    step when the epoch loss goes up (and retries an epoch whose loss is not finite). tol: stop
    when the norm of the full-data gradient falls below it. val: data to watch each epoch;
    with patience, stop after that many epochs without a lower val loss and return the best
    params. l2: add (l2/2)·Σ‖p‖² to the objective (l2·p to each gradient). metric "accuracy":
    from the model's first output against `metric_target` (default: the input the loss uses and
    the output does not). init: starting params (dict or .npz path). progress: True a tqdm bar,
    False plain log lines, None a bar when `file` (default stdout) is a terminal. plot: a picture
    of the loss per epoch (needs matplotlib), never written over a path in `protect`.
    callback(record): called after each epoch with its numbers ({"epoch", "loss", "lr", ...});
    returning True stops training there.
    """
    _check_options(lr, epochs, batch_size, schedule, tol, val, patience, l2, metric, seed)
    file = file if file is not None else sys.stdout
    wrt = list(wrt) if wrt else list(model.params)
    if not wrt:
        raise GraphcError(
            "nothing to train: the model has no params",
            hint="declare the weights to learn with `param w` (e.g. `param w: [3] = 0`)",
        )
    unknown = [w for w in wrt if w not in model.params]
    if unknown:
        raise GraphcError(f"`{unknown[0]}` is not a param of the model", hint=f"params: {', '.join(model.params)}")
    if plot is not None:
        check_format(plot)
        require_matplotlib()  # fail before training, not after
        check_output(plot, protect)
    if metric is not None and not model.output_names:
        raise GraphcError(
            f"{option('metric', metric)} needs the model's predictions, but it declares no output",
            hint="add a line like `output y` naming the predictions",
        )

    batched, whole, n = _split(model, data, "training data")
    bs = n if batch_size is None or batch_size >= n or not batched else batch_size
    full = bs >= n
    target = target_name(model, metric_target, data) if metric else None
    targets = _as_float(target, data[target]) if target else None
    if val is not None:
        vbatched, vwhole, _ = _split(model, val, "validation data")
        val_inputs = {**vbatched, **vwhole}
        if metric and target not in val:
            raise GraphcError(f"the validation data has no `{target}` for the metric's targets")
        val_targets = _as_float(target, val[target]) if metric else None

    first = {**whole, **{k: v[: min(bs, n)] for k, v in batched.items()}}
    try:
        params = _initial_params(model, init, first, seed, list(model.params))
    except GraphcError as e:
        if full:
            raise
        _initial_params(model, init, {**batched, **whole}, seed, list(model.params))  # does all the data fit?
        raise GraphcError(
            f"mini-batches of {bs} take rows along axis 0 of every input, and the model does not fit one: {e.message}",
            e.span,
            "mini-batches need inputs with a leading example axis, e.g. `input X: [N, 2]` (N examples); "
            f"or leave out {option('batch_size')} for full-batch gradient descent",
        ) from None
    if val is not None:
        _same_examples(model, batched, whole, vbatched, vwhole)
        try:  # the interpreter reports a value that does not fit at its model line
            vout = model.evaluate({**val_inputs, **params}, seed=seed)
        except GraphcError as e:
            raise GraphcError(f"the validation data does not fit the model: {e.message}", e.span, e.hint) from None
        if metric:
            accuracy(vout[model.output_names[0]], val_targets, f"`{target}` in the validation data")
    fixed = {p: v for p, v in params.items() if p not in wrt}
    # the params being learnt live in one vector, `learn` holding views of it in their shapes: an update
    # is then two NumPy calls, theta -= lr * gradient, whatever the number of params
    # (the gradient too, in gbuf: `slots` pairs each param's name with its view there)
    theta = np.concatenate([params[p].reshape(-1) for p in wrt])
    gbuf = np.empty_like(theta)
    learn, slots, at = {}, [], 0
    for p in wrt:
        learn[p] = theta[at : at + params[p].size].reshape(params[p].shape)
        slots.append((p, gbuf[at : at + params[p].size].reshape(params[p].shape)))
        at += params[p].size
    step = _gradient_step(model, wrt)
    rng = np.random.default_rng(seed)
    all_inputs = {**batched, **whole}

    forward = _forward(model, wrt, seed)

    def full_eval(inputs):
        return forward({**inputs, **fixed, **learn})

    def penalty() -> float:
        return 0.5 * l2 * float(theta @ theta)

    def flat(grads) -> np.ndarray:
        """The gradient as one vector like theta (in gbuf), with the L2 term."""
        for p, g in slots:  # (assigning slices: np.concatenate costs a training step 5% more)
            g[...] = grads[p]
        if l2:
            np.add(gbuf, l2 * theta, out=gbuf)
        return gbuf

    def full_grad_norm() -> float:
        _, grads = step({**all_inputs, **fixed, **learn})
        return math.sqrt(float(np.dot(flat(grads), gbuf)))

    history: dict[str, list[float]] = {"loss": [], "lr": []}
    if tol is not None:
        history["grad_norm"] = []
    if metric:
        history[metric] = []
    if val is not None:
        history["val_loss"] = []
        if metric:
            history["val_" + metric] = []

    mode = "quiet" if quiet else ("bar" if progress or (progress is None and terminal(file)) else "log")
    desc = Path(getattr(model.graph, "path", "") or "train").name
    bar = Progress(epochs, mode, file, log_every, desc)
    notes: list[str] = []
    steps, stopped, epoch, grad_norm = 0, "epochs", 0, None
    best = (math.inf, None, None)  # (val loss, epoch, params)
    wait = 0
    prev_loss = math.inf
    halvings = 0

    def full_step():
        """(objective, its gradient as a vector: a copy, kept for a redone step) on all the data."""
        loss, grads = step({**all_inputs, **fixed, **learn})
        return (loss + penalty() if l2 else loss), flat(grads).copy()

    def sgd_epoch() -> tuple[float, int]:
        """One pass over the reshuffled data; (epoch loss, batches run), stopping at a non-finite loss.
        The hot loop: the gradient step, then as few NumPy calls as can be (see bench/train_overhead.py)."""
        perm = rng.permutation(n)
        values = {**whole, **fixed, **learn}  # learn's arrays are updated in place
        total, b = 0.0, 0
        inputs = list(batched.items())
        descend, scale = theta.__isub__, gbuf.__imul__
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            for k, v in inputs:  # gathered batch by batch: cache-friendly, no copy of all the data
                values[k] = v.take(idx, axis=0)
            loss, grads = step(values)
            b += 1
            if l2:
                loss += penalty()
            flat(grads)
            descend(scale(lr))  # theta -= lr * gradient, in place
            if exploded(loss):
                return loss, b
            total += loss * min(bs, n - s)
        return total / n, b

    outs = full_eval(all_inputs)
    start = float(outs[model.loss_name]) + (penalty() if l2 else 0.0)  # the objective at the initial params
    if metric:  # refused before training when the targets are not labels
        accuracy(outs[model.output_names[0]], targets, f"`{target}`")

    def exploded(loss) -> bool:
        """The one test of divergence, with or without a schedule: a loss not finite, or far above its start."""
        return not math.isfinite(loss) or loss > EXPLODE * max(abs(start), 1.0)

    def diverged(loss, where):
        hint = f"use a smaller learning rate (e.g. {option('lr', lr / 10)})" + (
            "" if schedule == "halve" else f" or {option('schedule', 'halve')}"
        )
        if where == "start":
            return GraphcError(
                f"the loss is {loss} at the initial params: there is nothing to descend",
                hint=f"check the data and the params' initial values ({option('init')}, {option('seed')})",
            )
        grew = f"grew to {loss:.4g}, from {start:.4g} at the start," if math.isfinite(loss) else f"is {loss}"
        return GraphcError(f"training diverged: the loss {grew} at epoch {epoch} (lr {lr:g})", hint=hint)

    if not math.isfinite(start):
        raise diverged(start, "start")
    prev = None  # full batch with --schedule halve: (params before the last step, its gradient)
    try:
        with np.errstate(all="ignore"):
            epoch = 0
            while epoch < epochs:
                epoch += 1
                converged = False
                if full:
                    loss, grads = full_step()
                    if exploded(loss) and prev is not None:
                        # the last step overshot to a non-finite loss: redo it with half the step until it is finite
                        bad = loss
                        while exploded(loss) and halvings < MAX_HALVINGS:
                            lr /= 2
                            halvings += 1
                            np.subtract(prev[0], lr * prev[1], out=theta)
                            loss, grads = full_step()
                        history["lr"][-1] = lr
                        notes.append(f"epoch {epoch - 1}: its step made the loss {bad}; redone with lr {lr:g}")
                        bar.note(notes[-1])
                    if exploded(loss):
                        raise diverged(loss, "start" if epoch == 1 else "")
                    if schedule == "halve" and _went_up(loss, prev_loss):
                        lr /= 2
                        notes.append(f"epoch {epoch}: the loss went up; lr halved to {lr:g}")
                    if tol is not None:
                        grad_norm = math.sqrt(float(grads @ grads))
                        converged = grad_norm < tol
                    if not converged:
                        if schedule == "halve":
                            prev = (theta.copy(), grads)
                        theta -= lr * grads
                        steps += 1
                    epoch_loss = loss
                else:
                    snapshot = theta.copy() if schedule == "halve" else None
                    retried, bad = False, math.nan
                    while True:
                        epoch_loss, b = sgd_epoch()
                        steps += b
                        ok = not exploded(epoch_loss)
                        if ok and snapshot is not None:  # the epoch's last steps may have overshot too
                            ok = not exploded(float(full_eval(all_inputs)[model.loss_name]))
                        if ok or snapshot is None or b == 1 or halvings >= MAX_HALVINGS:
                            break
                        bad = epoch_loss if math.isfinite(epoch_loss) else bad
                        theta[...] = snapshot  # back to the start of the epoch, with half the step
                        lr /= 2
                        halvings += 1
                        retried = True
                    if not ok:
                        raise diverged(epoch_loss, "start" if epoch == 1 and b == 1 else "")
                    if retried:
                        how = "was not finite" if math.isnan(bad) else f"exploded to {bad:.3g}"
                        notes.append(f"epoch {epoch}: the loss {how}; redone with lr {lr:g}")
                        bar.note(notes[-1])
                    if tol is not None:
                        grad_norm = full_grad_norm()
                        converged = grad_norm < tol

                rec = {"epoch": epoch, "loss": epoch_loss, "lr": lr}
                history["loss"].append(epoch_loss)
                history["lr"].append(lr)
                if tol is not None:
                    history["grad_norm"].append(grad_norm)
                if metric:
                    outs = full_eval(all_inputs)
                    rec[metric] = accuracy(outs[model.output_names[0]], targets, f"`{target}`")
                    history[metric].append(rec[metric])
                if val is not None:
                    vout = full_eval(val_inputs)
                    vloss = float(vout[model.loss_name])
                    rec["val_loss"] = vloss
                    history["val_loss"].append(vloss)
                    if metric:
                        rec["val_" + metric] = accuracy(vout[model.output_names[0]], val_targets)
                        history["val_" + metric].append(rec["val_" + metric])
                    if vloss < best[0]:
                        best = (vloss, epoch, {k: v.copy() for k, v in learn.items()})
                        wait = 0
                    else:
                        wait += 1

                if converged:
                    stopped = "tol"
                elif patience is not None and wait >= patience:
                    stopped = "patience"
                elif callback is not None and callback(dict(rec)):
                    stopped = "callback"
                bar.epoch(rec, last=stopped != "epochs" or epoch == epochs)
                if stopped != "epochs":
                    break
                if schedule == "halve" and not full and _went_up(epoch_loss, prev_loss):
                    lr /= 2  # known only at the end of an epoch of mini-batches: the next epoch takes smaller steps
                    notes.append(f"epoch {epoch}: the loss went up; lr halved to {lr:g}")
                prev_loss = epoch_loss
    finally:
        bar.close()

    if stopped == "tol":
        bar.note(f"stopped at epoch {epoch}: gradient norm {grad_norm:.3g} < tol {tol:g}")
    elif stopped == "patience":
        bar.note(f"stopped at epoch {epoch}: no lower val loss for {patience} epochs; kept epoch {best[1]}")
    if patience is not None and best[2] is not None:
        learn = best[2]

    final = full_eval(all_inputs)
    result = TrainResult(
        params={p: (learn[p].copy() if p in learn else fixed[p]) for p in model.params},
        history=history,
        epochs=len(history["loss"]),
        steps=steps,
        stopped=stopped,
        method="gradient descent" if full else "mini-batch SGD",
        batch_size=bs,
        n_examples=n,
        lr=lr,
        loss=float(final[model.loss_name]),
        best_epoch=best[1],
        grad_norm=grad_norm,
        engine=step.engine,
        notes=notes,
    )
    if metric:
        result.metric = accuracy(final[model.output_names[0]], targets)
    if val is not None:
        vout = full_eval(val_inputs)
        result.val_loss = float(vout[model.loss_name])
        if metric:
            result.val_metric = accuracy(vout[model.output_names[0]], val_targets)
    if plot is not None:
        plot_history(history, plot, title=f"{desc}: {result.method}, lr {history['lr'][0]:g}", protect=protect)
    return result


def _went_up(loss: float, before: float) -> bool:
    """Whether the loss went up by more than rounding (near a minimum it wobbles in the last digits)."""
    return loss > before + 1e-12 * abs(before)


# shared with graphc.training.distributed (full-batch gradient descent on a Dask cluster)
as_float, check_options, initial_params = _as_float, _check_options, _initial_params
