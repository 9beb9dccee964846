"""Training on PyTorch or JAX arrays (`--backend torch|jax`, `--device cpu|cuda`): the array-api module's
`loss_and_grad` as the step, and the whole loop on the device.

The data and the params are sent to the device once. Each epoch's shuffle is the NumPy generator's
permutation, the NumPy loop's own (so the backends see the same batches and agree to rounding), sent
as one index array; the batches are gathered on the device, the update (optimizers.py, on the
library's flat buffer) runs there, and the epoch's loss is summed there and read once per epoch. With
JAX, whose arrays are immutable, the step and the update are one function under jax.jit (traced once
per batch size); PyTorch runs them eagerly, updating its buffer in place.

What the loop reports is what graphc.training.train reports for the NumPy backend. It tests for
divergence as that loop does (a loss not finite, or a batch's loss far above the initial one), but
once an epoch: the largest batch loss is kept on the device.
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..data import option
from ..errors import GraphcError
from . import checkpoints
from .inputs import EXPLODE
from .log import new_history
from .metrics import accuracy
from .optimizers import clip_norm as clip
from .optimizers import make
from .step import compiled_module


class Torch:
    """PyTorch's tensors on `device`; its functions take out=, so the optimizers update in place."""

    def __init__(self, device: str):
        torch = _library("torch", "pip install torch")
        if device == "cuda" and not torch.cuda.is_available():
            raise GraphcError(f"{option('device', device)}: PyTorch sees no CUDA device here", hint=_on_cpu())
        self.torch, self.device, self.xp = torch, torch.device(device), torch
        self.name = f"torch, {device}"

    def put(self, a):
        return self.torch.as_tensor(np.asarray(a), device=self.device)

    @staticmethod
    def host(a) -> np.ndarray:
        return a.detach().cpu().numpy()

    @staticmethod
    def take(a, idx):
        return a.index_select(0, idx)

    def concat(self, parts):
        return self.torch.cat(parts)

    @staticmethod
    def traced(f):
        return f


class Jax:
    """JAX's arrays on `device`, in float64 (jax_enable_x64); immutable, so the optimizers run through a
    namespace that ignores out= and the step is traced by jax.jit."""

    def __init__(self, device: str):
        jax = _library("jax", "pip install jax")
        jax.config.update("jax_enable_x64", True)  # graphc's numbers are float64; JAX's default is float32
        try:
            self.device = jax.devices("gpu" if device == "cuda" else "cpu")[0]
        except RuntimeError:
            raise GraphcError(f"{option('device', device)}: JAX sees no GPU here", hint=_on_cpu()) from None
        self.jax, self.jnp = jax, jax.numpy
        self.xp = Immutable(jax.numpy)
        self.name = f"jax, {device}"

    def put(self, a):
        return self.jax.device_put(np.asarray(a), self.device)

    @staticmethod
    def host(a) -> np.ndarray:
        return np.asarray(a)

    def take(self, a, idx):
        return self.jnp.take(a, idx, axis=0)

    def concat(self, parts):
        return self.jnp.concatenate(parts)

    def traced(self, f):
        return self.jax.jit(f)


class Immutable:
    """A namespace whose arithmetic takes out= and ignores it, returning the new array: optimizers.py's
    code on a library whose arrays cannot be written."""

    def __init__(self, xp):
        self._xp = xp

    def __getattr__(self, name):
        f = getattr(self._xp, name)
        if name not in ("add", "subtract", "multiply", "divide", "sqrt"):
            return f
        return lambda *args, out=None: f(*args)


def _on_cpu() -> str:
    return f"train on the CPU (leave out {option('device')})"


def library(backend: str, device: str | None):
    return (Torch if backend == "torch" else Jax)(device or "cpu")


def _library(name: str, install: str):
    try:
        return __import__(name)
    except ImportError:
        raise GraphcError(f"{option('backend', name)} needs {name}, which is not installed", hint=install) from None


def descend(
    model, lib, wrt, params, batched, whole, n, bs, *, rng, lr, epochs, rate_factor, optimizer, hyper,
    clip_norm, l2, metric, output, targets, val_inputs, val_targets, bar, metric_log, callback, signalled,
    folder=None, saved=None, settings=None,
):  # fmt: skip
    """The loop on the device: graphc.training.train's, whose checked data (NumPy arrays), starting params
    and options it takes; `folder` to checkpoint in after each epoch, `saved` a checkpoint to resume
    (checkpoints.load's), in the NumPy loop's format: a run may resume on either. Returns what its
    TrainResult holds: {"params" (NumPy arrays), "history", "steps", "stopped", "loss", "metric",
    "val_loss", "val_metric", "best_epoch", "resumed"}."""
    module, rename = compiled_module(model, wrt, "array-api")
    rename = rename or (lambda values: values)
    shapes = {p: params[p].shape for p in wrt}
    sizes = [params[p].size for p in wrt]
    fixed = {p: lib.put(v) for p, v in params.items() if p not in wrt}
    data = {k: lib.put(v) for k, v in batched.items()}
    every = {k: lib.put(v) for k, v in whole.items()}
    val = {k: lib.put(v) for k, v in val_inputs.items()} if val_inputs is not None else None
    theta = lib.put(np.concatenate([params[p].reshape(-1) for p in wrt]))
    opt = make(optimizer, theta, lib.xp, **hyper)
    xp = lib.xp

    def unflat(theta) -> dict:
        out, at = {}, 0
        for p, size in zip(wrt, sizes, strict=True):
            out[p] = xp.reshape(theta[at : at + size], shapes[p])
            at += size
        return out

    def train_step(theta, state, batch, coefficients):
        """(loss, theta, state) after one update: pure for JAX (traced), in place for PyTorch."""
        loss, grads = module.loss_and_grad(**rename({**batch, **fixed, **unflat(theta)}))
        g = lib.concat([xp.reshape(grads[p], (-1,)) for p in wrt])
        if l2:
            loss = loss + 0.5 * l2 * xp.vdot(theta, theta)
            g = g + l2 * theta
        if clip_norm is not None:
            g = clip(g, clip_norm, xp)
        opt.theta, opt.state = theta, state
        opt.update(g, *coefficients)
        return loss, opt.theta, opt.state

    step = lib.traced(train_step)

    def evaluate(inputs) -> dict:
        return module.forward(**rename({**inputs, **fixed, **unflat(opt.theta)}))

    def measured(inputs, targets):
        out = evaluate(inputs)
        loss = float(out[model.loss_name])
        return loss, (accuracy(lib.host(out[output]), targets) if targets is not None else None)

    history = new_history(metric, val is not None, saved=saved[2]["history"] if saved else None)
    steps, stopped, epoch, best = 0, "epochs", 0, (math.inf, None)
    if saved is None:  # the objective at the initial params, as the NumPy loop's
        start = measured({**data, **every}, None)[0] + (0.5 * l2 * float(xp.vdot(theta, theta)) if l2 else 0.0)
        if not math.isfinite(start):
            raise GraphcError(
                f"the loss is {start} at the initial params: there is nothing to descend",
                hint=f"check the data and the params' initial values ({option('init')}, {option('seed')})",
            )
    else:  # the run as its checkpoint left it; the params were loaded by the caller
        _, arrays, meta = saved

        def restore():
            opt.t, opt.state = int(meta["opt_t"]), {k: lib.put(arrays[f"opt/{k}"]) for k in opt.state}
            rng.bit_generator.state = meta["rng"]

        checkpoints.restored(folder, restore)
        steps, epoch, start = meta["steps"], meta["epoch"], meta["start"]
        if meta["best_epoch"] is not None:
            best = (meta["best_loss"], meta["best_epoch"])
    resumed = epoch if saved is not None else None

    def save_checkpoint():
        learnt = {p: lib.host(v) for p, v in unflat(opt.theta).items()}
        meta = checkpoints.meta(
            settings=settings, optimizer=optimizer, epoch=epoch, steps=steps, lr=lr, start=start, opt_t=opt.t, rng=rng,
            history=history, stopped=stopped, prev_loss=history["loss"][-1], best_loss=best[0], best_epoch=best[1],
        )  # fmt: skip
        arrays = {f"opt/{k}": lib.host(v) for k, v in opt.state.items()}
        checkpoints.save(folder, {p: learnt.get(p, params[p]) for p in params}, arrays, meta)

    while epoch < epochs and stopped == "epochs":
        epoch += 1
        began = time.perf_counter()
        rate = lr * rate_factor(epoch - 1)
        total, worst = 0.0, None
        if bs >= n:  # full batch: the loss at the start of the epoch, as the NumPy loop reports it
            batches = [(n, {**data, **every})]
        else:
            idx = lib.put(rng.permutation(n))
            batches = [(min(bs, n - s), {**every, **{k: lib.take(v, idx[s : s + bs]) for k, v in data.items()}})
                       for s in range(0, n, bs)]  # fmt: skip
        for size, batch in batches:
            opt.t += 1
            loss, opt.theta, opt.state = step(opt.theta, opt.state, batch, opt.coefficients(rate))
            total, worst = total + loss * size, loss if worst is None else xp.maximum(worst, loss)  # read once, below
            steps += 1
        epoch_loss, worst = float(total) / n, float(worst)
        if not math.isfinite(epoch_loss) or worst > EXPLODE * max(abs(start), 1.0):  # the NumPy loop's test
            grew = f"grew to {worst:.4g}, from {start:.4g} at the start," if math.isfinite(epoch_loss) else "is nan"
            raise GraphcError(f"training diverged: the loss {grew} at epoch {epoch} (lr {lr:g})",
                              hint=f"use a smaller learning rate (e.g. {option('lr', lr / 10)})")  # fmt: skip
        rec = {"epoch": epoch, "loss": epoch_loss, "lr": rate}
        history["loss"].append(epoch_loss)
        history["lr"].append(rate)
        if metric:
            rec[metric] = measured({**data, **every}, targets)[1]
            history[metric].append(rec[metric])
        if val is not None:
            rec["val_loss"], vmetric = measured(val, val_targets)
            history["val_loss"].append(rec["val_loss"])
            if rec["val_loss"] < best[0]:
                best = (rec["val_loss"], epoch)
            if metric:
                rec["val_" + metric] = vmetric
                history["val_" + metric].append(vmetric)
        if callback is not None and callback(dict(rec)):
            stopped = "callback"
        if folder is not None:
            save_checkpoint()
        if metric_log is not None:
            metric_log.write({"epoch": epoch, "step": steps, **rec, "seconds": time.perf_counter() - began})
        bar.epoch(rec, last=stopped != "epochs" or epoch == epochs or bool(signalled))
        if signalled and stopped == "epochs" and epoch < epochs:
            stopped = "interrupted"
            bar.note(f"{signalled[0]}: stopped after epoch {epoch} of {epochs}")

    learnt = {p: lib.host(v).copy() for p, v in unflat(opt.theta).items()}
    final = {p: (learnt[p] if p in learnt else params[p]) for p in params}
    loss, final_metric = measured({**data, **every}, targets)
    val_loss, val_metric = measured(val, val_targets) if val is not None else (None, None)
    return {
        "params": final, "history": history, "steps": steps, "stopped": stopped, "loss": loss,
        "metric": final_metric, "val_loss": val_loss, "val_metric": val_metric, "best_epoch": best[1],
        "resumed": resumed,
    }  # fmt: skip
