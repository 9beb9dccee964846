"""The NumPy dialect: each op's NumPy expression, and the forms that read better or run faster when the
shapes are known when emitting (a bias's gradient as `.sum(axis=0)`, ā = ḡ bᵀ as np.outer).

A dialect is what the shared printer (backends/printer.py) asks of a target: ALIAS, CODE, LOWERED, number,
call, lower and helpers. The emitted module and the interpreter's kernels both print through this one, so
they compute the same numbers.
"""

from __future__ import annotations

import re
from functools import cache

from ...ir import ops as O
from ...ir import shapes as S
from ...ir.ops import ATOM, MUL, UNARY
from ..printer import fill, number_text

ALIAS = "np"  # what the templates call NumPy (the emitted module may import it under another name)

# {0}, {1}, ... are the arguments' texts, {kw} the keywords that differ from their defaults (", axis=0"),
# {axis} (and any attr) the attr's value; a name called with a leading `_` is a helper of runtime.py
CODE = {
    "input": "{name}",
    "param": "{name}",
    "const": "{value!r}",
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "{0} / {1}",
    "matmul": "{0} @ {1}",
    "neg": "-{0}",
    "pow": "{0} ** {1}",
    "exp": "np.exp({0})",
    "log": "np.log({0})",
    "sqrt": "np.sqrt({0})",
    "abs": "np.abs({0})",
    "sin": "np.sin({0})",
    "cos": "np.cos({0})",
    "tanh": "np.tanh({0})",
    "sigmoid": "_sigmoid({0})",
    "relu": "np.maximum({0}, 0.0)",
    "softplus": "np.logaddexp(0.0, {0})",
    "step": "np.heaviside({0}, 0.0)",
    "identity": "{0}",
    "square": "np.square({0})",
    "maximum": "np.maximum({0}, {1})",
    "minimum": "np.minimum({0}, {1})",
    "sum": "np.sum({0}{kw})",
    "mean": "np.mean({0}{kw})",
    "max": "np.max({0}{kw})",
    "logsumexp": "_logsumexp({0}{kw})",
    "softmax": "_softmax({0}{kw})",
    "log_softmax": "_log_softmax({0}{kw})",
    "transpose": "np.transpose({0})",
    "sign": "np.sign({0})",
    "gt": "{0} > {1}",
    "ge": "{0} >= {1}",
    "lt": "{0} < {1}",
    "le": "{0} <= {1}",
    "eq": "{0} == {1}",
    "ne": "{0} != {1}",
    "where": "np.where({0}, {1}, {2})",
    "mT": "np.swapaxes({0}, -1, -2)",
    "expand_dims": "np.expand_dims({0}, {axis})",
    "outer": "np.expand_dims({0}, -1) * np.expand_dims({1}, -2)",
    "broadcast": "_broadcast({0}, {1}{kw})",
    "unbroadcast": "_unbroadcast({0}, {1})",
    "size_ratio": "(np.size({0}) / np.size({1}))",
    "max_mask": "_max_mask({0}, {1}{kw})",
    "zeros_like": "np.zeros_like({0})",
    # more elementwise ops and reductions
    "log1p": "np.log1p({0})",
    "expm1": "np.expm1({0})",
    "tan": "np.tan({0})",
    "clip": "np.clip({0}, {1}, {2})",
    "leaky_relu": "_leaky_relu({0}{kw})",
    "elu": "_elu({0}{kw})",
    "min": "np.min({0}{kw})",
    "prod": "np.prod({0}{kw})",
    "var": "np.var({0}{kw})",
    "std": "np.std({0}{kw})",
    "norm": "np.linalg.norm({0}{kw})",
    "prod_others": "_prod_others({0}{kw})",
    # indexing, gathering and shapes: {key} (as Python writes it), {dtype} and {arrays} are filled by _written
    "index": "{0}[{key}]",
    "unindex": "_unindex({0}, {1}, {key})",
    "take": "_take({0}, {1}{kw})",
    "untake": "_untake({0}, {1}, {2}{kw})",
    "one_hot": "_one_hot({0}, {K}, {dtype})",
    "concat": "np.concatenate([{arrays}]{kw})",
    "stack": "np.stack([{arrays}]{kw})",
    "unconcat": "_unconcat({arrays}, part={part}{kw})",
    # convolution and pooling
    "reshape": "np.reshape({0}, {shape})",  # (lowered: the shape in the module's names)
    "reshape_like": "np.reshape({0}, np.shape({1}))",
    "conv2d": "_conv({0}, {1}{kw})",
    "conv2d_input_grad": "_conv_input_grad({0}, {1}, np.shape({2}){kw})",
    "conv2d_weight_grad": "_conv_weight_grad({0}, {1}, np.shape({2}){kw})",
    "max_pool2d": "_max_pool({0}{kw})",
    "max_pool2d_grad": "_max_pool_grad({0}, {1}, {2}{kw})",
    "max_pool2d_select": "_max_pool_select({0}, {1}, {2}{kw})",
    "avg_pool2d": "_avg_pool({0}{kw})",
    "avg_pool2d_grad": "_avg_pool_grad({0}, np.shape({1}){kw})",
}
# indexing, gathering and shapes: written by _written (a key, the module's dtype, any number of arrays)
_WRITTEN = frozenset(("index", "unindex", "one_hot", "concat", "stack", "unconcat"))
_METHODS = frozenset(("min", "prod", "var", "std"))  # more reductions: array methods too (see lower)
LOWERED = (
    frozenset(("unbroadcast", "outer", "neg", "sum", "mean", "max", "size_ratio", "mT", "transpose"))
    | _WRITTEN
    | _METHODS
    | {"reshape"}
)  # see lower
_HELPER = re.compile(r"(?<![\w.])(_[a-z_]+)\(")


@cache
def helpers(op: str) -> tuple[str, ...]:
    """The runtime helpers op's code calls."""
    return tuple(_HELPER.findall(CODE[op]))


def number(p, v: float) -> str:
    """A constant's text: a float of the printer's dtype."""
    text = number_text(v, p.lib)
    return text if p.dtype == "float64" else f"{p.lib}.{p.dtype}({text})"


def call(p, op: str, args: list[tuple[str, int]], attrs: dict) -> str:
    """op's NumPy expression applied to argument (text, precedence) pairs, in the module's names."""
    return fill(p, CODE[op], op, args, attrs)


def _keywords(op: str, attrs: dict) -> str:
    """The keyword arguments a reduction's method call takes: "axis=1, keepdims=True"."""
    defaults = O.OPS[op].kwargs
    return ", ".join(f"{k}={attrs[k]!r}" for k in defaults if attrs.get(k, defaults[k]) != defaults[k])


def lower(p, i: int):
    """The specialised expression of node i (an op in LOWERED) when its shapes allow one, else None."""
    g, n = p.g, p.g[i]
    if n["op"] in _WRITTEN:
        return _written(p, i)
    if n["op"] == "reshape":
        return p.reshape(i)
    if n["op"] == "unbroadcast":
        src, ref = n["args"]
        gs, xs = g[src]["shape"], g[ref]["shape"]
        if gs is None or xs is None:
            return None
        lead = len(gs) - len(xs)
        axes = list(range(lead)) + [lead + k for k, d in enumerate(xs) if d == 1 and gs[lead + k] != 1]
        inner = p.wrap(p.expr(src), ATOM)
        if not axes:
            return p.expr(src)
        if not xs:
            return f"{p.lib}.sum({p.expr(src)[0]})", ATOM
        ax = axes[0] if len(axes) == 1 else tuple(axes)
        kept = [k for k in axes if k >= lead]
        text = f"{inner}.sum(axis={ax!r})"  # gs is known and not scalar: an array
        if kept:
            text += f".reshape({p.lib}.shape({p.expr(ref)[0]}))"
        return text, ATOM
    if n["op"] == "outer" and all(g[a]["shape"] is not None and len(g[a]["shape"]) == 1 for a in n["args"]):
        u, v = (p.expr(a)[0] for a in n["args"])
        return f"{p.lib}.outer({u}, {v})", ATOM  # ā = ḡ bᵀ, as on the slide
    if n["op"] == "neg" and g[n["args"][0]]["op"] == "mul" and n["args"][0] not in p.names:
        # -(c * x) with a scalar c as (-c) * x: negating the scalar, not the array, saves an array op
        args = g[n["args"][0]]["args"]
        shapes = [g[a]["shape"] for a in args]
        if shapes[0] == () and shapes[1]:
            c, x = p.expr(args[0]), p.expr(args[1])
            return f"-{p.wrap(c, UNARY, strict=True)} * {p.wrap(x, MUL, strict=True)}", MUL
    if n["op"] in ("sum", "mean") and n["shape"] == () and not p.local:
        s = n["args"][0]
        if g[s]["op"] == "sum" and s not in p.names and g[g[s]["args"][0]]["shape"]:
            # the total of a partial sum (inlined: used only here) is its argument's total: one pass
            total = f"{p.wrap(p.expr(g[s]['args'][0]), ATOM)}.sum()"
            if n["op"] == "sum":
                return total, ATOM
            count = p.size_ratio(g[s]["shape"], ())
            if count is not None:
                return f"{total} / {p.wrap(count, MUL, strict=True)}", MUL
    if n["op"] == "mean" and g[n["args"][0]]["shape"]:  # x.sum() / count: np.mean's own arithmetic, 2x faster
        count = p.size_ratio(g[n["args"][0]]["shape"], n["shape"])
        if count is not None:
            kw = _keywords("sum", n["attrs"])
            return (
                f"{p.wrap(p.expr(n['args'][0]), ATOM)}.sum({kw}) / {p.wrap(count, MUL, strict=True)}",
                MUL,
            )
    if n["op"] in ("sum", "mean", "max") and g[n["args"][0]]["shape"]:  # an array: its method is faster
        kw = _keywords(n["op"], n["attrs"])
        return f"{p.wrap(p.expr(n['args'][0]), ATOM)}.{n['op']}({kw})", ATOM
    if n["op"] in _METHODS and g[n["args"][0]]["shape"]:  # more reductions, as the ones above
        return f"{p.wrap(p.expr(n['args'][0]), ATOM)}.{n['op']}({_keywords(n['op'], n['attrs'])})", ATOM
    if n["op"] == "size_ratio":
        ratio = p.size_ratio(*(g[a]["shape"] for a in n["args"]))
        if p.dtype == "float64":
            return ratio
        if ratio is None:  # the shapes are known only at run time
            ratio = (call(p, "size_ratio", [p.expr(a) for a in n["args"]], {}), ATOM)
        return f"{p.lib}.{p.dtype}({ratio[0]})", ATOM  # a Python float spread by _broadcast is float64
    if n["op"] == "mT" and g[n["args"][0]]["shape"] is not None and len(g[n["args"][0]]["shape"]) == 2:
        return f"{p.wrap(p.expr(n['args'][0]), ATOM)}.T", ATOM
    if n["op"] == "transpose":  # .T of a scalar or a vector is itself; of an unknown shape, maybe a float's
        shape = g[n["args"][0]]["shape"]
        if shape is not None:
            return p.expr(n["args"][0]) if len(shape) < 2 else (f"{p.wrap(p.expr(n['args'][0]), ATOM)}.T", ATOM)
    return None


# indexing, gathering and shapes: ops whose template needs texts that its attrs are not


def _written(p, i: int) -> tuple[str, int]:
    """Node i by its CODE template, given the key as Python writes it (x[1:, ::2]; np.s_[1:, ::2] as a
    helper's argument), the dtype of the module's floats, and the arguments of an op of any number of them."""
    n = p.g[i]
    op, attrs = n["op"], dict(n["attrs"])
    if "key" in attrs:
        key = S.key_text(attrs["key"])
        attrs["key"] = key if op == "index" else f"{p.lib}.s_[{key}]"
    attrs["dtype"] = f"{p.lib}.{p.dtype}"
    args = [p.expr(a) for a in n["args"]]
    attrs["arrays"] = ", ".join(text for text, _ in args)
    p.helpers.update(helpers(op))
    return call(p, op, args, attrs), ATOM
