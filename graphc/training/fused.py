"""The numba backend's training, compiled: an optimizer's rule (optimizers.py: the same function,
its source copied) compiled by Numba for one entry of the buffer and run in one loop over all of it;
and a whole epoch of mini-batches as one function around the model's kernel.

NumPy makes a pass over the buffer per operation, each a call from Python (Adam's twelve take
10-12 µs on the digits model's 2,410 params, a quarter of its step); the loop makes one (1.4 µs).
Each entry goes through the same IEEE operations in the same order, none fused or reordered (no
fastmath): the result is NumPy's to the bit. Each function is a module written beside the model's in
numba's cache folder (backends/numba/module.py's load), so a second process loads it compiled.

    update = fused.step(opt)    # opt: an optimizers.make(...) over a NumPy buffer
    update(g, lr)               # as opt.step(g, lr): opt.theta and opt.state updated in place
    run = fused.epoch(module, opt, wrt, batched, whole, fixed, learn)   # loop.py's sgd_epoch, compiled
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import math
import sys

import numba
import numpy as np

_JIT = numba.njit(error_model="numpy", inline="always")  # NumPy's arithmetic: 1/0 is inf, not an error

# the rules' namespace for one entry (this module, bound as their `xp`): each operation on floats, out= ignored
add = _JIT(lambda a, b, out=None: a + b)
subtract = _JIT(lambda a, b, out=None: a - b)
multiply = _JIT(lambda a, b, out=None: a * b)
divide = _JIT(lambda a, b, out=None: a / b)
sqrt = _JIT(lambda a, out=None: math.sqrt(a))


def _loop(rule):
    """The rule (a function of optimizers.py) compiled for one entry, run on every entry of theta, g and
    the state buffers a, b: each(theta, g, a, b, args), args its coefficients and hyper-parameters."""
    from ..backends.numba.module import load

    return load(_source("the compiled update", rule, [], _each("each", rule)), "<graphc train: compiled update>").each


def _each(name: str, rule) -> list[str]:
    """The source of `name(theta, g, a, b, args)`: the rule on every entry (args: its coefficients, then
    its hyper-parameters; the rule's scratch, unused on floats, 0.0)."""
    return [
        _JIT_SOURCE,
        f"def {name}(theta, g, a, b, args):",
        "    for i in range(theta.shape[0]):",
        f"        theta[i], a[i], b[i] = {rule.__name__}(theta[i], g[i], a[i], b[i], 0.0, 0.0, *args)",
    ]


def step(opt):
    """A function (g, lr) doing what opt.step does, compiled (once: Numba caches it beside the model's)."""
    each = _loop(type(opt).rule)
    spare = np.zeros_like(opt.theta)  # the buffer a rule with fewer than two is given, and ignores

    def update(g, lr: float) -> None:
        opt.t += 1
        each(opt.theta, g, *opt.slots(spare), (*opt.coefficients(lr), *opt.hyper))

    return update


# ---- a whole epoch of mini-batches compiled ------------------------------------------------------
def epoch(module, opt, wrt: list[str], batched: dict, whole: dict, fixed: dict, learn: dict):
    """The loop's mini-batch epoch (loop.py's sgd_epoch, without l2 and clip_norm) as one compiled
    function of the numba module's kernel and the optimizer's rule: f(perm, bs, rate, limit) ->
    (epoch loss, batches run), stopping after a batch whose loss is not finite or above limit. None
    when the module's loss_and_grad is not one kernel call (then the loop runs in Python)."""
    fn = next(
        (f for f in ast.parse(module.__source__).body if isinstance(f, ast.FunctionDef) and f.name == "loss_and_grad"),
        None,
    )
    call = _kernel_call(fn) if fn is not None else None
    if call is None:
        return None
    kernel, args, results, loss, grads = call
    accepted = {a.arg for a in fn.args.kwonlyargs}  # the model's names; a Python keyword has a trailing _
    rename = lambda k: k if k in accepted else k + "_"  # noqa: E731
    values = {rename(k): v for k, v in {**whole, **fixed, **learn}.items()}
    data = {rename(k): v for k, v in batched.items()}
    if set(args) - set(values) - set(data) or set(grads) != set(wrt):
        return None
    ints = _converted_to_integers(fn)  # as loss_and_grad converts them, once
    ready = lambda k, v: getattr(module, ints[k])(v, k) if k in ints else np.ascontiguousarray(v, np.float64)  # noqa: E731
    data = {k: ready(k, v) for k, v in data.items()}
    learnt = {rename(p) for p in learn}  # (views of theta: the kernel reads them as the update writes them)
    fixed_args = {k: (v if k in learnt else ready(k, v)) for k, v in values.items() if k in args}
    source = _driver(module.__name__, kernel, type(opt).rule, args, set(data), results, loss, grads,
                     [(p, learn[p].size) for p in wrt], len(opt.coefficients(1.0, 1)))  # fmt: skip
    from ..backends.numba.module import load

    run = load(source, "<graphc train: compiled epoch>").epoch
    spare = np.zeros_like(opt.theta)
    gbuf = np.empty_like(opt.theta)
    ordered = [data[k] if k in data else fixed_args[k] for k in args]

    def sgd_epoch(perm, bs: int, rate: float, limit: float):
        steps = -(-len(perm) // bs)
        table = np.array([opt.coefficients(rate, opt.t + 1 + k) for k in range(steps)], dtype=np.float64)
        total, made = run(perm, bs, limit, table, opt.hyper, opt.theta, gbuf, *opt.slots(spare), *ordered)
        opt.t += made
        return total, made

    return sgd_epoch


def _kernel_call(fn: ast.FunctionDef):
    """From the numba module's loss_and_grad (emitted code, so of a known form): (the kernel's name, its
    argument names, the names it returns, the loss's name, {param: its gradient's name})."""
    calls = [s for s in fn.body if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call)]
    unpack = [s for s in calls if isinstance(s.value.func, ast.Name) and s.value.func.id.startswith("_loss_and_grad")]
    ret = fn.body[-1]
    if len(unpack) != 1 or not isinstance(ret, ast.Return) or not isinstance(ret.value, ast.Tuple):
        return None
    call, (loss, grads) = unpack[0].value, ret.value.elts
    names = lambda nodes: [n.id if isinstance(n, ast.Name) else None for n in nodes]  # noqa: E731
    target = unpack[0].targets[0]
    results = names(target.elts if isinstance(target, ast.Tuple) else [target])
    if not isinstance(grads, ast.Dict) or None in names([loss, *grads.values]) + results + names(call.args):
        return None
    wanted = {k.value: v.id for k, v in zip(grads.keys, grads.values, strict=True)}
    return call.func.id, names(call.args), results, loss.id, wanted


def _converted_to_integers(fn: ast.FunctionDef) -> dict[str, str]:
    """The arguments loss_and_grad converts with the module's _integers (indices and labels): {name: the
    helper's name}."""
    return {
        s.targets[0].id: s.value.func.id
        for s in ast.walk(fn)
        if isinstance(s, ast.Assign) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Name)
        and s.value.func.id.startswith("_integers")
    }  # fmt: skip


def _driver(model_module, kernel, rule, args, batched, results, loss, grads, layout, coefficients) -> str:
    """The source of the compiled epoch: the rule (its source, as optimizers.py has it) and a loop over
    the batches calling the kernel, copying its gradients into the flat buffer and updating (_each).
    The model's names are the kernel's; every other name starts with a prefix none of them has (the
    batches' whole data: the name + "_rows", which none of the driver's own names ends in)."""
    model_names = {*args, *results, *grads.values()}
    local = "_g"
    while any(n.startswith(local) for n in model_names):
        local += "_"
    p = lambda name: local + name  # noqa: E731
    c = "".join(f"{p('table')}[{p('k')}, {j}], " for j in range(coefficients))  # (a tuple's items)
    lines = [
        f"def epoch({p('perm')}, {p('bs')}, {p('limit')}, {p('table')}, {p('hyper')}, {p('theta')}, {p('g')}, "
        f"{p('a')}, {p('b')}, {', '.join(p(a + '_rows') if a in batched else a for a in args)}):",
        f"    {p('n')} = {p('perm')}.shape[0]",
        f"    {p('total')} = 0.0",
        f"    {p('k')} = 0",
        f"    for {p('s')} in {p('range')}(0, {p('n')}, {p('bs')}):",
        f"        {p('idx')} = {p('perm')}[{p('s')} : {p('s')} + {p('bs')}]",
        *[f"        {a} = {p(a + '_rows')}[{p('idx')}]" for a in args if a in batched],
        f"        {', '.join(results)}, = {p('kernel')}({', '.join(args)})",
    ]
    at = 0
    for name, size in layout:
        lines.append(f"        {p('g')}[{at} : {at + size}] = {p('np')}.asarray({grads[name]}).ravel()")
        at += size
    lines += [
        f"        {p('each')}({p('theta')}, {p('g')}, {p('a')}, {p('b')}, ({c.rstrip()}) + {p('hyper')})",
        f"        {p('k')} += 1",
        f"        if not {p('np')}.isfinite({loss}) or {loss} > {p('limit')}:",
        f"            return {loss}, {p('k')}",
        f"        {p('total')} += {loss} * {p('min')}({p('bs')}, {p('n')} - {p('s')})",
        f"    return {p('total')} / {p('n')}, {p('k')}",
    ]
    body = [
        f"{p('np')}, {p('range')}, {p('min')} = np, range, min",
        "",
        "",
        *_each(p("each"), rule),
        "",
        "",
        _JIT_SOURCE,
    ]
    kernel_import = [f"from {model_module} import {kernel} as {p('kernel')}"]
    return _source("a compiled epoch", rule, kernel_import, [*body, *lines])


def _source(what: str, rule, imports: list[str], body: list[str]) -> str:
    """A module of `graphc train --backend numba`: the rule, as optimizers.py has it, over this module's
    operations on one float, then `body`."""
    return "\n".join([
        f'"""{what.capitalize()} of `graphc train --backend numba` (graphc/training/fused.py wrote it;'
        f" its source {_SELF}: a change there is one Numba's cache would not see).\"\"\"",
        "import numba",
        "import numpy as np",
        "",
        "from graphc.training import fused as xp  # the rule's namespace: operations on one float",
        *imports,
        "",
        "",
        _JIT_SOURCE,
        inspect.getsource(rule).rstrip(),
        "",
        "",
        *body,
        "",
    ])  # fmt: skip


_SELF = hashlib.sha256(inspect.getsource(sys.modules[__name__]).encode()).hexdigest()[:12]
_JIT_SOURCE = '@numba.njit(cache=True, error_model="numpy")'
