"""The numba backend's update: an optimizer's rule (optimizers.py: the same function) compiled by Numba
for one entry of the buffer, and run in one loop over all of it. NumPy makes a pass over the buffer
per operation, each a call from Python (Adam's twelve take 10-12 µs on the digits model's 2,410
params, a quarter of its step); the loop makes one (1.4 µs). Each entry goes through the same IEEE
operations in the same order, none fused or reordered (no fastmath): the result is NumPy's to the bit.

    update = fused.step(opt)    # needs numba; opt: an optimizers.make(...) over a NumPy buffer
    update(g, lr)               # as opt.step(g, lr): opt.theta and opt.state updated in place
"""

from __future__ import annotations

import functools
import math
import types

import numba
import numpy as np

from .optimizers import bound

_JIT = numba.njit(error_model="numpy", inline="always")  # NumPy's arithmetic: 1/0 is inf, not an error

# the rules' namespace for one entry: each operation on floats, out= ignored
entry = types.ModuleType("entry")
entry.add = _JIT(lambda a, b, out=None: a + b)
entry.subtract = _JIT(lambda a, b, out=None: a - b)
entry.multiply = _JIT(lambda a, b, out=None: a * b)
entry.divide = _JIT(lambda a, b, out=None: a / b)
entry.sqrt = _JIT(lambda a, out=None: math.sqrt(a))


@functools.cache
def _loop(rule):
    """The rule (a function of optimizers.py) compiled for one entry, run on every entry of theta, g and
    the state buffers a, b; args: its coefficients and hyper-parameters."""

    one = numba.njit(error_model="numpy")(bound(rule, entry))

    @numba.njit(error_model="numpy")
    def each(theta, g, a, b, args):
        for i in range(theta.shape[0]):
            theta[i], a[i], b[i] = one(theta[i], g[i], a[i], b[i], 0.0, 0.0, *args)

    return each


def step(opt):
    """A function (g, lr) doing what opt.step does, compiled (a process's first call of each rule compiles
    it: half a second; Numba cannot cache a function made at run time)."""
    each = _loop(type(opt).rule)
    spare = np.zeros_like(opt.theta)  # the buffer a rule with fewer than two is given, and ignores

    def update(g, lr: float) -> None:
        opt.t += 1
        a, b = [opt.state[k] for k in opt.buffers] + [spare] * (2 - len(opt.buffers))
        each(opt.theta, g, a, b, (*opt.coefficients(lr), *opt.hyper))

    return update
