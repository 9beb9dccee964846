"""Symbolic gradients against central finite differences."""

from __future__ import annotations

import numbers

import numpy as np

from .data import option
from .errors import GraphcError
from .ir.ops import integer_inputs, integer_role


def gradcheck(model, values: dict, wrt=None, seed: int = 0, max_checks: int = 1000, h: float = 1e-6):
    """{name: (max relative error, entries checked, entries total)}.

    The error of an entry is |analytic - numeric| / max(1, |analytic|, |numeric|): relative for
    large gradients, absolute for small ones, so zeros do not divide.
    """
    if not isinstance(max_checks, numbers.Integral) or max_checks < 1:
        raise GraphcError(f"{option('max_checks')} must be a whole number >= 1, got {max_checks!r}", usage=True)
    integers = integer_inputs(model.graph)  # indices and labels: a step of 1e-6 leaves their domain
    if wrt is None:
        wrt = model.default_wrt()  # (never an input of integers)
    _check_perturbable(model, wrt, integers)
    if not wrt:
        raise GraphcError("nothing to check: the model has no params, and its inputs hold integers", usage=True)
    _loss, grads = model.loss_and_grad(values, wrt, seed=seed)
    full = model.evaluate(values, seed=seed)  # the params' initial values, fixed for every probe
    base = {n: np.array(full[n], dtype=np.float64) for n in model.inputs + model.params if n in full}
    rng = np.random.default_rng(seed)
    report = {}
    for name, g in grads.items():
        x = base[name]
        idx = np.arange(x.size)
        if x.size > max_checks:
            idx = rng.choice(x.size, max_checks, replace=False)
        worst = 0.0
        for k in idx:
            step = h * max(1.0, abs(x.flat[k]))
            fx = []
            for s in (step, -step):
                probe = x.copy()
                probe.flat[k] += s
                fx.append(float(model.evaluate({**base, name: probe}, seed=seed)[model.loss_name]))
            numeric = (fx[0] - fx[1]) / (2 * step)
            a = float(np.asarray(g).flat[k])
            worst = max(worst, abs(a - numeric) / max(1.0, abs(a), abs(numeric)))
        report[name] = (worst, len(idx), x.size)
    return report


def _check_perturbable(model, wrt, integers: dict) -> None:
    """Finite differences perturb a value the caller gives: an input or a param, not a computed one, nor
    integers."""
    g = model.graph
    leaves = set(model.inputs) | set(model.params)
    for name in wrt:
        if name in integers:
            use = g[integers[name]]
            raise GraphcError(
                f"`{name}` holds integers (the {integer_role(use['op'])} of "
                f"{use['op']}, line {use['span'].line}): it has no gradient to check",
                g[g.names[name]]["span"],
                "check the params or the float inputs",
                usage=True,
            )
        if name in g.names and name not in leaves:
            i = g.names[name]
            needs = sorted(n for n, j in g.names.items() if n in leaves and j in g.upstream([i]))
            raise GraphcError(
                f"gradcheck perturbs inputs and params, and `{name}` is computed by the model (line "
                f"{g[i]['span'].model_line})",
                g[i]["span"],
                f"check the inputs and params it depends on: {', '.join(needs) or 'none'}",
                usage=True,
            )
