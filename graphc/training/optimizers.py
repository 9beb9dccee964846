"""Optimizers: each an update of ONE flat parameter buffer, in place, as torch.optim computes it.

    opt = make("adam", theta, xp=np, beta1=0.9)   # theta: the flat buffer the params are views of
    opt.step(g, lr)                               # g: the gradient, a buffer like theta (only read)

Every buffer (state and scratch) is made once, here; a step writes only into them and theta, with
`out=`, so it allocates nothing. The math goes through the namespace `xp` and only its `add`,
`subtract`, `multiply`, `divide`, `sqrt` (each with `out=`), `zeros_like` and `vdot`: NumPy, or
another library whose functions take `out=` (PyTorch's do), on that library's flat buffer. Every
result is also bound to its name again (`m = xp.add(m, s, out=m)`), so that a library whose arrays
are immutable (JAX) runs the same code with a namespace that ignores `out=`; and a step is
`update(g, *coefficients(lr))`: the numbers that depend on the step count, worked out in Python,
then array math only, which jax.jit traces once (devices.py).

Each optimizer's math is written once, as a rule (`sgd_rule`, `adam_rule`) that reads the namespace
as its global `xp`, bound per library by `bound`; the numba backend compiles its source over
operations on one float, into one loop over the buffer (fused.py), which gives the same bits.

The formulas are torch.optim's (torch 2.x, single-tensor path):
- sgd, momentum, nesterov (torch.optim.SGD, dampening 0): d = g + wd·θ; b = μ·b + d (b = d at the
  first step: b starts at 0); nesterov: d = d + μ·b, else d = b; θ = θ - lr·d.
- adam (torch.optim.Adam): d = g + wd·θ; m = m + (1-β1)(d - m); v = β2·v + (1-β2)·d²;
  θ = θ - lr/(1-β1ᵗ) · m / (√v / √(1-β2ᵗ) + ε).
- adamw (torch.optim.AdamW): θ = θ·(1 - lr·wd) first (decoupled decay), then adam with d = g.
"""

from __future__ import annotations

import math
import types

import numpy as np

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
# each optimizer's hyper-parameters and their defaults (torch.optim's, momentum's 0.9 aside)
HYPER = {
    "sgd": {"weight_decay": 0.0},
    "momentum": {"momentum": 0.9, "weight_decay": 0.0},
    "nesterov": {"momentum": 0.9, "weight_decay": 0.0},
    "adam": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
}


xp = np  # the rules' namespace: NumPy, unless `bound` gives them another


def sgd_rule(theta, g, b, _, s1, s2, lr, momentum, nesterov, wd):
    """torch.optim.SGD's step (dampening 0); b is the momentum buffer, _ unused. Returns (theta, b, _)."""
    if wd:  # d = g + wd·θ, coupled
        s1 = xp.multiply(theta, wd, out=s1)
        g = xp.add(g, s1, out=s1)
    d = g
    if momentum:
        b = xp.multiply(b, momentum, out=b)
        b = xp.add(b, d, out=b)
        if nesterov:
            s2 = xp.multiply(b, momentum, out=s2)
            d = s2 = xp.add(d, s2, out=s2)
        else:
            d = b
    # θ - (lr·d): the lecture's update, to the bit (two rounded operations, as `theta -= lr * g`)
    s2 = xp.multiply(d, lr, out=s2)
    theta = xp.subtract(theta, s2, out=theta)
    return theta, b, _


def adam_rule(theta, g, m, v, s1, s2, lr, step_size, root, b1, b2, eps, wd, decoupled):
    """torch.optim.Adam's step (AdamW's when decoupled); m, v its moments. Returns (theta, m, v)."""
    if decoupled:
        if wd:
            theta = xp.multiply(theta, 1 - lr * wd, out=theta)
    elif wd:  # d = g + wd·θ, coupled
        s1 = xp.multiply(theta, wd, out=s1)
        g = xp.add(g, s1, out=s1)
    s2 = xp.subtract(g, m, out=s2)  # m.lerp_(g, 1 - β1)
    s2 = xp.multiply(s2, 1 - b1, out=s2)
    m = xp.add(m, s2, out=m)
    v = xp.multiply(v, b2, out=v)  # v.mul_(β2).addcmul_(g, g, value=1 - β2)
    s2 = xp.multiply(g, g, out=s2)
    s2 = xp.multiply(s2, 1 - b2, out=s2)
    v = xp.add(v, s2, out=v)
    # θ.addcdiv_(m, √v / √(1 - β2ᵗ) + ε, value=-step_size), as θ - (step_size·√(1 - β2ᵗ))·m / (√v + ε·√(1 - β2ᵗ)):
    # one pass fewer, the same to a rounding
    s2 = xp.sqrt(v, out=s2)
    s2 = xp.add(s2, eps * root, out=s2)
    s2 = xp.divide(m, s2, out=s2)
    s2 = xp.multiply(s2, step_size * root, out=s2)
    theta = xp.subtract(theta, s2, out=theta)
    return theta, m, v


def bound(rule, namespace):
    """The rule with its global `xp` bound to `namespace` (a module, or an object with its functions)."""
    return types.FunctionType(rule.__code__, {**rule.__globals__, "xp": namespace}, rule.__name__)


class Optimizer:
    """The update's state: `t` (steps made) and the named buffers in `state` (saved by checkpoints);
    `rule` its math, `hyper` the rule's hyper-parameters after the coefficients."""

    name = ""
    buffers: tuple[str, ...] = ()
    rule = None

    def __init__(self, theta, xp, hyper: tuple):
        self.theta, self.xp, self.hyper = theta, xp, hyper
        self.t = 0
        self.state = {k: xp.zeros_like(theta) for k in self.buffers}
        self.s1, self.s2 = xp.zeros_like(theta), xp.zeros_like(theta)  # scratch
        self.apply = bound(type(self).rule, xp)

    def step(self, g, lr: float) -> None:
        """One update of theta (in place) by the gradient g (only read) at learning rate lr."""
        self.t += 1
        self.update(g, *self.coefficients(lr))

    def slots(self, spare=None) -> list:
        """The rule's two state arguments: the buffers, then `spare` for each the optimizer lacks."""
        return [self.state[k] for k in self.buffers] + [spare] * (2 - len(self.buffers))

    def update(self, g, *coefficients) -> None:
        """The rule on theta and the state: in place, and bound again (a library with immutable arrays
        gives new ones)."""
        self.theta, *ab = self.apply(self.theta, g, *self.slots(), self.s1, self.s2, *coefficients, *self.hyper)
        self.state.update(zip(self.buffers, ab))

    def snapshot(self) -> dict:
        """A copy of the state, for `restore` (redoing a step) or a checkpoint."""
        return {"t": self.t, **{k: self.xp.zeros_like(v) + v for k, v in self.state.items()}}

    def restore(self, snap: dict) -> None:
        self.t = int(snap["t"])
        for k, v in self.state.items():
            v[...] = snap[k]


class SGD(Optimizer):
    rule = staticmethod(sgd_rule)

    def __init__(self, theta, xp=np, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        self.buffers = ("momentum_buffer",) if momentum else ()
        super().__init__(theta, xp, (momentum, nesterov, weight_decay))
        self.name = "nesterov" if nesterov else "momentum" if momentum else "sgd"

    def coefficients(self, lr: float, t: int | None = None) -> tuple:
        return (lr,)


class Adam(Optimizer):
    buffers = ("exp_avg", "exp_avg_sq")
    rule = staticmethod(adam_rule)

    def __init__(self, theta, xp=np, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(theta, xp, (beta1, beta2, eps, weight_decay, decoupled))
        self.b1, self.b2 = beta1, beta2
        self.name = "adamw" if decoupled else "adam"

    def coefficients(self, lr: float, t: int | None = None) -> tuple:
        """(lr, lr / (1 - β1ᵗ), √(1 - β2ᵗ)): the rate and the bias corrections at step t (default: self.t)."""
        t = self.t if t is None else t
        return lr, lr / (1 - self.b1**t), math.sqrt(1 - self.b2**t)


def make(name: str, theta, xp=np, **hyper) -> Optimizer:
    """The optimizer `name` over the flat buffer theta; `hyper` holds (some of) HYPER[name]'s keys."""
    h = {**HYPER[name], **{k: v for k, v in hyper.items() if v is not None}}
    if name in ("sgd", "momentum", "nesterov"):
        return SGD(theta, xp, h.get("momentum", 0.0), name == "nesterov", h["weight_decay"])
    return Adam(theta, xp, h["beta1"], h["beta2"], h["eps"], h["weight_decay"], decoupled=name == "adamw")


def clip_norm(g, max_norm: float, xp=np):
    """g scaled to global norm at most max_norm, as torch.nn.utils.clip_grad_norm_ does (coefficient
    max_norm / (norm + 1e-6), clamped at 1, and multiplied in: by 1, exactly, when g is within): in
    place, and returned (a library with immutable arrays gives a new one)."""
    norm = xp.sqrt(xp.vdot(g, g))
    return xp.multiply(g, xp.clip(max_norm / (norm + 1e-6), max=1.0), out=g)
