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

The pieces: `step.py` (the gradient step: the compiled `loss_and_grad` when the API offers one, else
the interpreter), `inputs.py` (the data and options checked, the starting params), `optimizers.py`
(the update of the flat parameter buffer; `fused.py` compiles it for the numba backend),
`schedules.py` (the rate each epoch), `checkpoints.py` (the run's state saved and resumed,
interrupts), `log.py` (the metric log); this module is the loop.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import check_output, distinct_outputs, option
from ..errors import GraphcError
from . import checkpoints, devices
from .inputs import (
    EXPLODE,
    ON_DEVICE,
    as_float,
    check_backend,
    check_options,
    check_practice,
    initial_params,
    same_examples,
    split,
)
from .log import MetricLog, new_history
from .metrics import accuracy, target_name
from .optimizers import clip_norm as clip
from .optimizers import make
from .plot import check_format, plot_history, require_matplotlib
from .progress import Progress, terminal
from .schedules import factor
from .step import compiled_module, forward_step, gradient_step

MAX_HALVINGS = 1100  # 2^-1100 takes any finite step below the smallest float64


@dataclass
class TrainResult:
    """What `train` returns: the params and how training went."""

    params: dict[str, np.ndarray]
    history: dict[str, list[float]]
    epochs: int  # epochs run (fewer than asked when stopped early)
    steps: int  # parameter updates made
    stopped: str  # "epochs", "tol" (gradient norm below tol), "patience" (no val improvement), "callback",
    # "interrupted" (SIGINT or SIGTERM with handle_signals: the epoch in progress finished and saved)
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
    optimizer: str = "sgd"
    resumed: int | None = None  # the epochs the resumed checkpoint had trained
    checkpoint: str | None = None  # the folder the last epoch's checkpoint is in


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
    optimizer: str = "sgd",
    momentum: float | None = None,
    beta1: float | None = None,
    beta2: float | None = None,
    eps: float | None = None,
    weight_decay: float | None = None,
    warmup: int = 0,
    step_size: int | None = None,
    gamma: float | None = None,
    clip_norm: float | None = None,
    checkpoint: str | None = None,
    resume: str | None = None,
    log: str | None = None,
    handle_signals: bool = False,
    backend: str = "numpy",
    device: str | None = None,
) -> TrainResult:
    """Fit the model's params (or `wrt`) to `data` by gradient descent; see the module's docstring.

    batch_size None or >= N: full-batch gradient descent; else mini-batch SGD, reshuffled each
    epoch from `seed` (which also seeds the params' initialisers). schedule "halve" halves the
    step when the epoch loss goes up (and retries an epoch whose loss is not finite); "step"
    multiplies it by `gamma` (0.1) every `step_size` (1) epochs; "cosine" takes it to 0 over the
    run; `warmup` epochs first rise linearly to it (schedules.py). optimizer: sgd, momentum,
    nesterov, adam, adamw with their hyper-parameters (optimizers.py: torch.optim's formulas and
    defaults); weight_decay is the optimizer's (torch's), l2 the objective's. clip_norm: scale each
    gradient to that global norm at most. tol: stop when the norm of the full-data gradient falls
    below it. val: data to watch each epoch; with patience, stop after that many epochs without a
    lower val loss and return the best params. l2: add (l2/2)·Σ‖p‖² to the objective (l2·p to
    each gradient). metric "accuracy": from the model's first output against `metric_target`
    (default: the input the loss uses and the output does not). init: starting params (dict or
    .npz path). progress: True a tqdm bar, False plain log lines, None a bar when `file` (default
    stdout) is a terminal. plot: a picture of the loss per epoch (needs matplotlib), never written
    over a path in `protect`. checkpoint: a folder to save the run's whole state in after every
    epoch; resume: a folder to continue from, bit for bit (epochs counts the whole run; the
    checkpoint folder defaults to it). log: a file to append a JSON record to per epoch.
    handle_signals: SIGINT and SIGTERM finish the epoch in progress, save it, and stop
    ("interrupted"). callback(record): called after each epoch with its numbers ({"epoch", "loss",
    "lr", ...}); returning True stops training there. backend: the step's code: "numpy" (the emitted
    NumPy module, else the interpreter), "numba" (the numba target), "torch" or "jax" (the array-api
    module on that library's arrays, the whole loop on `device`, "cpu" or "cuda": devices.py).
    """
    check_options(lr, epochs, batch_size, schedule, tol, val, patience, l2, metric, seed)
    check_backend(backend, device, schedule=schedule, tol=tol, patience=patience)
    hyper = {"momentum": momentum, "beta1": beta1, "beta2": beta2, "eps": eps, "weight_decay": weight_decay}
    check_practice(optimizer, hyper, schedule, warmup, step_size, gamma, clip_norm)
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
    if resume:
        checkpoints.find(resume)  # before making any folder
    checkpoint = checkpoint or resume
    distinct_outputs({option("plot"): plot, option("log"): log, **checkpoints.files(checkpoint)})
    folder = checkpoints.prepare(checkpoint, protect) if checkpoint else None

    batched, whole, n = split(model, data, "training data")
    bs = n if batch_size is None or batch_size >= n or not batched else batch_size
    full = bs >= n
    target = target_name(model, metric_target, data) if metric else None
    targets = as_float(target, data[target]) if target else None
    val_inputs = val_targets = metric_log = None
    if val is not None:
        vbatched, vwhole, _ = split(model, val, "validation data")
        val_inputs = {**vbatched, **vwhole}
        if metric and target not in val:
            raise GraphcError(f"the validation data has no `{target}` for the metric's targets")
        val_targets = as_float(target, val[target]) if metric else None

    first = {**whole, **{k: v[: min(bs, n)] for k, v in batched.items()}}
    try:
        params = initial_params(model, init, first, seed, list(model.params))
    except GraphcError as e:
        if full:
            raise
        initial_params(model, init, {**batched, **whole}, seed, list(model.params))  # does all the data fit?
        raise GraphcError(
            f"mini-batches of {bs} take rows along axis 0 of every input, and the model does not fit one: {e.message}",
            e.span,
            "mini-batches need inputs with a leading example axis, e.g. `input X: [N, 2]` (N examples); "
            f"or leave out {option('batch_size')} for full-batch gradient descent",
        ) from None
    settings = checkpoints.settings(
        optimizer=optimizer, hyper=hyper, lr=lr, batch_size=bs, schedule=schedule, warmup=warmup, step_size=step_size,
        gamma=gamma, clip_norm=clip_norm, l2=l2, tol=tol, patience=patience, wrt=wrt,
    )  # fmt: skip
    saved = None
    if resume:
        saved = checkpoints.load(resume, {p: v.shape for p, v in params.items()})
        params = {p: saved[0][p].astype(np.float64) for p in params}
        checkpoints.same_settings(resume, saved[2], settings)
    if log is not None:
        metric_log = MetricLog(log, protect)  # checked (and opened) before training
    if val is not None:
        same_examples(model, batched, whole, vbatched, vwhole)
        try:  # the interpreter reports a value that does not fit at its model line
            vout = model.evaluate({**val_inputs, **params}, seed=seed)
        except GraphcError as e:
            raise GraphcError(f"the validation data does not fit the model: {e.message}", e.span, e.hint) from None
        if metric:
            accuracy(vout[model.output_names[0]], val_targets, f"`{target}` in the validation data")
    rng = np.random.default_rng(seed)
    rate_factor = lambda e: factor(schedule, e, epochs, warmup, step_size or 1, 0.1 if gamma is None else gamma)  # noqa: E731
    mode = "quiet" if quiet else ("bar" if progress or (progress is None and terminal(file)) else "log")
    desc = Path(getattr(model.graph, "path", "") or "train").name
    method = "gradient descent" if full else "mini-batch SGD"
    if backend in ON_DEVICE:
        lib = devices.library(backend, device)
        bar = Progress(epochs, mode, file, log_every, desc)
        try:
            with checkpoints.interrupts(handle_signals) as signalled:
                r = devices.descend(
                    model, lib, wrt, params, batched, whole, n, bs, rng=rng, lr=lr, epochs=epochs,
                    rate_factor=rate_factor, optimizer=optimizer, hyper=hyper, clip_norm=clip_norm, l2=l2,
                    metric=metric, output=model.output_names[0] if metric else None, targets=targets,
                    val_inputs=val_inputs, val_targets=val_targets, bar=bar, metric_log=metric_log,
                    callback=callback, signalled=signalled, folder=folder, saved=saved, settings=settings,
                )  # fmt: skip
                if r["resumed"] is not None:
                    bar.note(f"resumed from {resume} after epoch {r['resumed']}")
        finally:
            bar.close()
            if metric_log is not None:
                metric_log.close()
        history = r.pop("history")
        if plot is not None:
            plot_history(history, plot, title=f"{desc}: {method}, lr {history['lr'][0]:g}", protect=protect)
        return TrainResult(
            history=history, epochs=len(history["loss"]), method=method, batch_size=bs, n_examples=n,
            lr=history["lr"][-1] if history["lr"] else lr, engine=f"array-api ({lib.name})", optimizer=optimizer,
            checkpoint=checkpoint, **r,
        )  # fmt: skip
    fixed = {p: v for p, v in params.items() if p not in wrt}
    # the params being learnt live in one vector, `learn` holding views of it in their shapes: an update
    # is then a few NumPy calls on the whole vector (optimizers.py), whatever the number of params
    # (the gradient too, in gbuf: `slots` pairs each param's name with its view there)
    theta = np.concatenate([params[p].reshape(-1) for p in wrt])
    gbuf = np.empty_like(theta)
    learn, slots, at = {}, [], 0
    for p in wrt:
        learn[p] = theta[at : at + params[p].size].reshape(params[p].shape)
        slots.append((p, gbuf[at : at + params[p].size].reshape(params[p].shape)))
        at += params[p].size
    opt = make(optimizer, theta, **hyper)
    code = "numba" if backend == "numba" else "numpy"  # the emitted module's target
    step = gradient_step(model, wrt, code)  # (an error, when numba is asked for and missing)
    update = opt.step
    if code == "numba":  # the update compiled too: one loop over theta, not a NumPy call per operation
        from . import fused

        update = fused.step(opt)
    all_inputs = {**batched, **whole}
    forward = forward_step(model, wrt, seed, code)

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

    history = new_history(metric, val is not None, tol is not None)

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

    # numba: the whole epoch one compiled function (but for the options it lacks)
    module = compiled_module(model, wrt, code)[0] if code == "numba" and not (full or l2 or clip_norm) else None
    compiled_epoch = fused.epoch(module, opt, wrt, batched, whole, fixed, learn) if module is not None else None

    def sgd_epoch(rate: float) -> tuple[float, int]:
        """One pass over the reshuffled data; (epoch loss, batches run), stopping at a non-finite loss.
        The hot loop: the gradient step, then as few NumPy calls as can be (see bench/train_overhead.py);
        on numba, all of it one compiled call (fused.epoch: the same operations)."""
        perm = rng.permutation(n)
        if compiled_epoch is not None:
            return compiled_epoch(perm, bs, rate, EXPLODE * max(abs(start), 1.0))
        values = {**whole, **fixed, **learn}  # learn's arrays are updated in place
        total, b = 0.0, 0
        inputs = list(batched.items())
        for s in range(0, n, bs):
            idx = perm[s : s + bs]
            for k, v in inputs:  # gathered batch by batch: cache-friendly, no copy of all the data
                values[k] = v.take(idx, axis=0)
            loss, grads = step(values)
            b += 1
            if l2:
                loss += penalty()
            g = flat(grads)
            if clip_norm is not None:
                clip(g, clip_norm)
            update(g, rate)  # theta updated in place
            if exploded(loss):
                return loss, b
            total += loss * min(bs, n - s)
        return total / n, b

    outs = full_eval(all_inputs)
    start = float(outs[model.loss_name]) + (penalty() if l2 else 0.0)  # the objective at the initial params
    if metric:  # refused before training when the targets are not labels
        accuracy(outs[model.output_names[0]], targets, f"`{target}`")

    prev = None  # full batch with --schedule halve: (params before the last step, its gradient, opt state, factor)
    if saved is not None:  # the loop's state as the checkpoint left it (checkpoints.py)
        _, arrays, meta = saved

        def restore():
            opt.restore({"t": meta["opt_t"], **{k: arrays[f"opt/{k}"] for k in opt.state}})
            rng.bit_generator.state = meta["rng"]

        checkpoints.restored(resume, restore)
        history = new_history(metric, val is not None, tol is not None, meta["history"])
        notes, steps, epoch, wait, halvings = (
            meta["notes"],
            meta["steps"],
            meta["epoch"],
            meta["wait"],
            meta["halvings"],
        )
        prev_loss, start, grad_norm = meta["prev_loss"], meta["start"], meta["grad_norm"]
        lr = meta["lr"] if schedule == "halve" else lr
        stopped = meta["stopped"] if meta["stopped"] in ("tol", "patience") else "epochs"
        if meta["best_epoch"] is not None:
            best = (meta["best_loss"], meta["best_epoch"], {p: arrays[f"best/{p}"] for p in wrt})
        if "prev/theta" in arrays:
            snap = {"t": meta["prev_t"], **{k: arrays[f"prev/opt/{k}"] for k in opt.state}}
            prev = (arrays["prev/theta"], arrays["prev/grad"], snap, meta["prev_factor"])
    resumed = epoch if saved is not None else None

    def save_checkpoint():
        arrays = {f"opt/{k}": v for k, v in opt.state.items()}
        if best[2] is not None:
            arrays.update({f"best/{p}": v for p, v in best[2].items()})
        if prev is not None:
            arrays.update({"prev/theta": prev[0], "prev/grad": prev[1]})
            arrays.update({f"prev/opt/{k}": prev[2][k] for k in opt.state})
        meta = checkpoints.meta(
            settings=settings, optimizer=optimizer, epoch=epoch, steps=steps, lr=lr, start=start, opt_t=opt.t, rng=rng,
            history=history, stopped=stopped, prev_loss=prev_loss, halvings=halvings, grad_norm=grad_norm,
            wait=wait, best_loss=best[0], best_epoch=best[1], prev_t=prev[2]["t"] if prev is not None else None,
            prev_factor=prev[3] if prev is not None else None, notes=notes,
        )  # fmt: skip
        checkpoints.save(folder, {p: (learn[p] if p in learn else fixed[p]) for p in model.params}, arrays, meta)

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
    bar = Progress(epochs, mode, file, log_every, desc, initial=min(epoch, epochs))
    if resumed is not None:
        bar.note(f"resumed from {resume} after epoch {resumed}" + ("" if epoch < epochs else ": nothing left to train"))
    try:
        with checkpoints.interrupts(handle_signals) as signalled, np.errstate(all="ignore"):
            while epoch < epochs and stopped == "epochs":
                epoch += 1
                began = time.perf_counter()
                f = rate_factor(epoch - 1)
                converged = False
                if full:
                    loss, grads = full_step()
                    if exploded(loss) and prev is not None:
                        # the last step overshot to a non-finite loss: redo it with half the step until it is finite
                        bad = loss
                        while exploded(loss) and halvings < MAX_HALVINGS:
                            lr /= 2
                            halvings += 1
                            theta[...] = prev[0]
                            opt.restore(prev[2])
                            update(prev[1], lr * prev[3])
                            loss, grads = full_step()
                        history["lr"][-1] = lr * prev[3]
                        notes.append(f"epoch {epoch - 1}: its step made the loss {bad}; redone with lr {lr:g}")
                        bar.note(notes[-1])
                    if exploded(loss):
                        raise diverged(loss, "start" if epoch == 1 else "")
                    if schedule == "halve" and _went_up(loss, prev_loss):
                        lr /= 2
                        notes.append(f"epoch {epoch}: the loss went up; lr halved to {lr:g}")
                    rate = lr * f
                    if tol is not None:
                        grad_norm = math.sqrt(float(grads @ grads))
                        converged = grad_norm < tol
                    if not converged:
                        if clip_norm is not None:
                            clip(grads, clip_norm)
                        if schedule == "halve":
                            prev = (theta.copy(), grads, opt.snapshot(), f)
                        update(grads, rate)
                        steps += 1
                    epoch_loss = loss
                else:
                    snapshot = (theta.copy(), opt.snapshot()) if schedule == "halve" else None
                    retried, bad = False, math.nan
                    while True:
                        rate = lr * f
                        epoch_loss, b = sgd_epoch(rate)
                        steps += b
                        ok = not exploded(epoch_loss)
                        if ok and snapshot is not None:  # the epoch's last steps may have overshot too
                            ok = not exploded(float(full_eval(all_inputs)[model.loss_name]))
                        if ok or snapshot is None or b == 1 or halvings >= MAX_HALVINGS:
                            break
                        bad = epoch_loss if math.isfinite(epoch_loss) else bad
                        theta[...] = snapshot[0]  # back to the start of the epoch, with half the step
                        opt.restore(snapshot[1])
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

                rec = {"epoch": epoch, "loss": epoch_loss, "lr": rate}
                history["loss"].append(epoch_loss)
                history["lr"].append(rate)
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
                if stopped == "epochs":
                    if schedule == "halve" and not full and _went_up(epoch_loss, prev_loss):
                        lr /= 2  # known only at the end of an epoch of mini-batches: the next epoch takes smaller steps
                        notes.append(f"epoch {epoch}: the loss went up; lr halved to {lr:g}")
                    prev_loss = epoch_loss
                if folder is not None:
                    save_checkpoint()  # (an interrupt meanwhile waits for the loop's test below)
                if log is not None:
                    steps_rec = {"epoch": epoch, "step": steps}
                    metric_log.write({**steps_rec, **rec, "seconds": time.perf_counter() - began})
                bar.epoch(rec, last=stopped != "epochs" or epoch == epochs or bool(signalled))
                if signalled and stopped == "epochs" and epoch < epochs:
                    stopped = "interrupted"
                    bar.note(f"{signalled[0]}: stopped after epoch {epoch} of {epochs}")
    finally:
        bar.close()
        if log is not None:
            metric_log.close()

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
        method=method,
        batch_size=bs,
        n_examples=n,
        lr=lr if schedule == "halve" or not history["lr"] else history["lr"][-1],
        loss=float(final[model.loss_name]),
        best_epoch=best[1],
        grad_norm=grad_norm,
        engine=step.engine,
        notes=notes,
        optimizer=optimizer,
        resumed=resumed,
        checkpoint=checkpoint,
    )
    if metric:
        result.metric = accuracy(final[model.output_names[0]], targets)
    if val is not None:
        vout = full_eval(val_inputs)
        result.val_loss = float(vout[model.loss_name])
        if metric:
            result.val_metric = accuracy(vout[model.output_names[0]], val_targets)
    if plot is not None:
        plot_history(history, plot, title=f"{desc}: {method}, lr {history['lr'][0]:g}", protect=protect)
    return result


def _went_up(loss: float, before: float) -> bool:
    """Whether the loss went up by more than rounding (near a minimum it wobbles in the last digits)."""
    return loss > before + 1e-12 * abs(before)
