"""The gradient step the loop runs: the compiled (emitted) `loss_and_grad` when the API offers one
(`Model.compiled`), else the interpreter's `Model.loss_and_grad`; and the forward pass likewise."""

from __future__ import annotations

import inspect

from ..errors import GraphcError


def compiled_module(model, wrt: list[str], target: str = "numpy"):
    """The model's emitted module for `target` loaded (`Model.compiled`), and a function that maps
    model names to its keyword arguments; (None, None) when the NumPy module is not to be had (the
    interpreter then runs). Another target is asked for by name: an op it lacks is an error."""
    compiled = getattr(model, "compiled", None)
    if compiled is None:
        return None, None
    try:
        module = compiled(wrt, target=target)
    except (GraphcError, NotImplementedError, SyntaxError):  # an op the code generator lacks: interpret
        if target != "numpy":
            raise
        return None, None
    # the module's keyword arguments are the model's names; a Python keyword gets a trailing `_`
    accepted = set(inspect.signature(module.loss_and_grad).parameters)
    rename = {n: n + "_" for n in model.names if n not in accepted and n + "_" in accepted}
    if not rename:
        return module, None
    return module, lambda values: {rename.get(k, k): v for k, v in values.items()}


def gradient_step(model, wrt: list[str], target: str = "numpy"):
    """f(values) -> (loss, {name: grad}) for the names in `wrt`; f.engine says which code runs.

    The compiled step (the emitted module's `loss_and_grad` for `target`, loaded by
    `Model.compiled`) when the model offers one, else the interpreter's `Model.loss_and_grad`.
    """
    module, rename = compiled_module(model, wrt, target)
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

    step.engine = "compiled" if target == "numpy" else f"compiled {target}"
    return step


def forward_step(model, wrt: list[str], seed: int, target: str = "numpy"):
    """f(values) -> {name: value}: the compiled forward pass when there is one, else Model.evaluate."""
    module, rename = compiled_module(model, wrt, target)
    if module is None or not hasattr(module, "forward"):
        return lambda values: model.evaluate(values, seed=seed)
    fn = module.forward
    return (lambda values: fn(**values)) if rename is None else (lambda values: fn(**rename(values)))
