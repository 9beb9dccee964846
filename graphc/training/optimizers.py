"""Optimizers: each an update of ONE flat parameter buffer, in place, as torch.optim computes it.

    opt = make("adam", theta, xp=np, beta1=0.9)   # theta: the flat buffer the params are views of
    opt.step(g, lr)                               # g: the gradient, a buffer like theta (only read)

Every buffer (state and scratch) is made once, here; a step writes only into them and theta, with
`out=`, so it allocates nothing. The math goes through the namespace `xp` and only its `add`,
`subtract`, `multiply`, `divide`, `sqrt` (each with `out=`), `zeros_like` and `vdot`: NumPy, or
another library whose functions take `out=` (PyTorch's do), on that library's flat buffer.

The formulas are torch.optim's (torch 2.x, single-tensor path):
- sgd, momentum, nesterov (torch.optim.SGD, dampening 0): d = g + wd·θ; b = μ·b + d (b = d at the
  first step: b starts at 0); nesterov: d = d + μ·b, else d = b; θ = θ - lr·d.
- adam (torch.optim.Adam): d = g + wd·θ; m = m + (1-β1)(d - m); v = β2·v + (1-β2)·d²;
  θ = θ - lr/(1-β1ᵗ) · m / (√v / √(1-β2ᵗ) + ε).
- adamw (torch.optim.AdamW): θ = θ·(1 - lr·wd) first (decoupled decay), then adam with d = g.
"""

from __future__ import annotations

import math

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


class Optimizer:
    """The update's state: `t` (steps made) and the named buffers in `buffers` (saved by checkpoints)."""

    name = ""
    buffers: tuple[str, ...] = ()

    def __init__(self, theta, xp=np, weight_decay: float = 0.0):
        self.theta, self.xp, self.wd = theta, xp, weight_decay
        self.t = 0
        self.state = {k: xp.zeros_like(theta) for k in self.buffers}
        self.s1, self.s2 = xp.zeros_like(theta), xp.zeros_like(theta)  # scratch

    def decayed(self, g):
        """g + wd·θ (torch's coupled weight_decay), in scratch; g itself when wd is 0."""
        if not self.wd:
            return g
        xp, s = self.xp, self.s1
        xp.multiply(self.theta, self.wd, out=s)
        return xp.add(g, s, out=s)

    def snapshot(self) -> dict:
        """A copy of the state, for `restore` (redoing a step) or a checkpoint."""
        return {"t": self.t, **{k: self.xp.zeros_like(v) + v for k, v in self.state.items()}}

    def restore(self, snap: dict) -> None:
        self.t = int(snap["t"])
        for k, v in self.state.items():
            v[...] = snap[k]


class SGD(Optimizer):
    def __init__(self, theta, xp=np, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        self.momentum, self.nesterov = momentum, nesterov
        self.buffers = ("momentum_buffer",) if momentum else ()
        super().__init__(theta, xp, weight_decay)
        self.name = "nesterov" if nesterov else "momentum" if momentum else "sgd"

    def step(self, g, lr: float) -> None:
        xp, s2 = self.xp, self.s2
        self.t += 1
        d = self.decayed(g)
        if self.momentum:
            b = self.state["momentum_buffer"]
            xp.multiply(b, self.momentum, out=b)
            xp.add(b, d, out=b)
            if self.nesterov:
                xp.multiply(b, self.momentum, out=s2)
                d = xp.add(d, s2, out=s2)
            else:
                d = b
        # θ - (lr·d): the lecture's update, to the bit (two rounded operations, as `theta -= lr * g`)
        xp.multiply(d, lr, out=s2)
        xp.subtract(self.theta, s2, out=self.theta)


class Adam(Optimizer):
    buffers = ("exp_avg", "exp_avg_sq")

    def __init__(self, theta, xp=np, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(theta, xp, weight_decay)
        self.b1, self.b2, self.eps, self.decoupled = beta1, beta2, eps, decoupled
        self.name = "adamw" if decoupled else "adam"

    def step(self, g, lr: float) -> None:
        xp, th, s2 = self.xp, self.theta, self.s2
        m, v = self.state["exp_avg"], self.state["exp_avg_sq"]
        self.t += 1
        if self.decoupled:
            if self.wd:
                xp.multiply(th, 1 - lr * self.wd, out=th)
        else:
            g = self.decayed(g)
        xp.subtract(g, m, out=s2)  # m.lerp_(g, 1 - β1)
        xp.multiply(s2, 1 - self.b1, out=s2)
        xp.add(m, s2, out=m)
        xp.multiply(v, self.b2, out=v)  # v.mul_(β2).addcmul_(g, g, value=1 - β2)
        xp.multiply(g, g, out=s2)
        xp.multiply(s2, 1 - self.b2, out=s2)
        xp.add(v, s2, out=v)
        step_size = lr / (1 - self.b1**self.t)
        xp.sqrt(v, out=s2)  # denom = √v / √(1 - β2ᵗ) + ε
        xp.divide(s2, math.sqrt(1 - self.b2**self.t), out=s2)
        xp.add(s2, self.eps, out=s2)
        xp.divide(m, s2, out=s2)  # θ.addcdiv_(m, denom, value=-step_size)
        xp.multiply(s2, step_size, out=s2)
        xp.subtract(th, s2, out=th)


def make(name: str, theta, xp=np, **hyper) -> Optimizer:
    """The optimizer `name` over the flat buffer theta; `hyper` holds (some of) HYPER[name]'s keys."""
    h = {**HYPER[name], **{k: v for k, v in hyper.items() if v is not None}}
    if name in ("sgd", "momentum", "nesterov"):
        return SGD(theta, xp, h.get("momentum", 0.0), name == "nesterov", h["weight_decay"])
    return Adam(theta, xp, h["beta1"], h["beta2"], h["eps"], h["weight_decay"], decoupled=name == "adamw")


def clip_norm(g, max_norm: float, xp=np) -> float:
    """Scale g in place to global norm at most max_norm, as torch.nn.utils.clip_grad_norm_ does
    (coefficient max_norm / (norm + 1e-6), clamped at 1); the norm before clipping."""
    norm = math.sqrt(float(xp.vdot(g, g)))
    coef = max_norm / (norm + 1e-6)
    if coef < 1.0:
        xp.multiply(g, coef, out=g)
    return norm
