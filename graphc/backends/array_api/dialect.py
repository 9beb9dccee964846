"""The array-API dialect: each op written against the Python array API standard, with the library `xp`
the function took from its arguments. Helpers (runtime.py) take `xp` first; ops the standard lacks are
helpers written against it (see runtime.py), and so are the few forms one library refuses (a slice of
negative step, which PyTorch cannot take)."""

from __future__ import annotations

import re
from functools import cache

from ...ir import ops as O
from ...ir import shapes as S
from ...ir.ops import ATOM
from ..printer import fill, number_text

ALIAS = "xp"  # a local of each function: the namespace of its arguments

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
    "exp": "xp.exp({0})",
    "log": "xp.log({0})",
    "sqrt": "xp.sqrt({0})",
    "abs": "xp.abs({0})",
    "sin": "xp.sin({0})",
    "cos": "xp.cos({0})",
    "tanh": "xp.tanh({0})",
    "sigmoid": "_sigmoid(xp, {0})",
    "relu": "xp.maximum({0}, 0.0)",
    "softplus": "xp.logaddexp({0}, 0.0)",
    "step": "_step(xp, {0})",
    "identity": "{0}",
    "square": "xp.square({0})",
    "maximum": "xp.maximum({0}, {1})",
    "minimum": "xp.minimum({0}, {1})",
    "sum": "xp.sum({0}{kw})",
    "mean": "xp.mean({0}{kw})",
    "max": "xp.max({0}{kw})",
    "logsumexp": "_logsumexp(xp, {0}{kw})",
    "softmax": "_softmax(xp, {0}{kw})",
    "log_softmax": "_log_softmax(xp, {0}{kw})",
    "transpose": "_transpose(xp, {0})",
    "sign": "xp.sign({0})",
    "gt": "{0} > {1}",
    "ge": "{0} >= {1}",
    "lt": "{0} < {1}",
    "le": "{0} <= {1}",
    "eq": "{0} == {1}",
    "ne": "{0} != {1}",
    "where": "xp.where({0}, {1}, {2})",  # (lowered: the standard's condition is a bool array)
    "mT": "xp.matrix_transpose({0})",
    "expand_dims": "xp.expand_dims({0}, axis={axis})",
    "outer": "xp.expand_dims({0}, axis=-1) * xp.expand_dims({1}, axis=-2)",
    "broadcast": "_broadcast(xp, {0}, {1}{kw})",
    "unbroadcast": "_unbroadcast(xp, {0}, {1})",
    "size_ratio": "_size_ratio({0}, {1})",
    "max_mask": "_max_mask(xp, {0}, {1}{kw})",
    "zeros_like": "_zeros_like(xp, {0})",
    # more elementwise ops and reductions
    "log1p": "xp.log1p({0})",
    "expm1": "xp.expm1({0})",
    "tan": "xp.tan({0})",
    "clip": "xp.minimum(xp.maximum({0}, {1}), {2})",  # np.clip's definition, bounds that cross included
    "leaky_relu": "_leaky_relu(xp, {0}{kw})",
    "elu": "_elu(xp, {0}{kw})",
    "min": "xp.min({0}{kw})",
    "prod": "xp.prod({0}{kw})",
    "var": "xp.var({0}{kw})",
    "std": "xp.std({0}{kw})",
    "norm": "xp.linalg.vector_norm({0}{kw})",
    "prod_others": "_prod_others(xp, {0}{kw})",
    # indexing, gathering and shapes: {key} (as Python writes it, or as a tuple of slices for a helper),
    # {dtype} and {arrays} are filled by _written
    "index": "{0}[{key}]",
    "unindex": "_unindex(xp, {0}, {1}, {key})",
    "take": "_take(xp, {0}, {1}{kw})",
    "untake": "_untake(xp, {0}, {1}, {2}{kw})",
    "one_hot": "_one_hot(xp, {0}, {K}, {dtype})",
    "concat": "xp.concat([{arrays}]{kw})",
    "stack": "xp.stack([{arrays}]{kw})",
    "unconcat": "_unconcat(xp, {arrays}, part={part}{kw})",
    # convolution and pooling
    "reshape": "xp.reshape({0}, {shape})",  # (lowered: the shape in the module's names)
    "reshape_like": "xp.reshape({0}, {1}.shape)",
    "conv2d": "_conv(xp, {0}, {1}{kw})",
    "conv2d_input_grad": "_conv_input_grad(xp, {0}, {1}, {2}.shape{kw})",
    "conv2d_weight_grad": "_conv_weight_grad(xp, {0}, {1}, {2}.shape{kw})",
    "max_pool2d": "_max_pool(xp, {0}{kw})",
    "max_pool2d_grad": "_max_pool_grad(xp, {0}, {1}, {2}{kw})",
    "max_pool2d_select": "_max_pool_select(xp, {0}, {1}, {2}{kw})",
    "avg_pool2d": "_avg_pool(xp, {0}{kw})",
    "avg_pool2d_grad": "_avg_pool_grad(xp, {0}, {1}.shape{kw})",
}
_WRITTEN = frozenset(("index", "unindex", "one_hot", "concat", "stack", "unconcat"))
LOWERED = _WRITTEN | {"unbroadcast", "size_ratio", "transpose", "where", "reshape", "mul"}
# ops that take a Python number as well as an array: the operators, and those the dialect writes so
_TAKES_NUMBERS = frozenset(
    {op for op in CODE if O.OPS[op].infix} | {"neg", "identity", "where", "broadcast", "transpose", "zeros_like"}
)
_NUMBERS_IN_NUMBERS_OUT = frozenset({"add", "sub", "mul", "div", "pow", "neg", "identity"})  # Python's arithmetic
_HELPER = re.compile(r"(?<![\w.])(_[a-z_]+)\(")
_COMPARISONS = frozenset(("gt", "ge", "lt", "le", "eq", "ne"))


@cache
def helpers(op: str) -> tuple[str, ...]:
    """The runtime helpers op's code calls."""
    return tuple(_HELPER.findall(CODE[op]))


def number(p, v: float) -> str:
    """A constant's text: a Python float, which takes the dtype of the array it meets (the standard's
    scalars are weak), so float32 code stays float32."""
    return number_text(v, p.lib)


def call(p, op: str, args: list[tuple[str, int]], attrs: dict) -> str:
    return fill(p, CODE[op], op, args, attrs)


def arguments(p, i: int, args: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The arguments' expressions, with a number made a 0-d array of the function's dtype and device where
    the op gives it to a function: the standard's functions take arrays (a loss that is w[0, 0] itself
    sends its gradient seed, 1.0, to _unindex)."""
    n = p.g[i]
    if n["op"] in _TAKES_NUMBERS:
        return args
    device = p.ns.module["device"] if p.ns else "device"
    return [
        (f"{p.lib}.asarray({e[0]}, dtype={p.lib}.{p.dtype}, device={device})", ATOM) if _is_number(p, a) else e
        for a, e in zip(n["args"], args)
    ]


def lower(p, i: int):
    """The specialised expression of node i (an op in LOWERED) when its shapes allow one, else None."""
    g, n = p.g, p.g[i]
    op = n["op"]
    if op in _WRITTEN:
        return _written(p, i)
    if op == "reshape":
        return p.reshape(i)
    if op == "where":
        return _where(p, i)
    if op == "mul" and _is_test(g, i):  # tests both true (the standard has no arithmetic of bools)
        a, b = (p.wrap(p.expr(a), ATOM) for a in n["args"])
        return f"{a} & {b}", 1
    if op == "unbroadcast":
        src, ref = n["args"]
        gs, xs = g[src]["shape"], g[ref]["shape"]
        if gs is None or xs is None:
            return None
        lead = len(gs) - len(xs)
        axes = list(range(lead)) + [lead + k for k, d in enumerate(xs) if d == 1 and gs[lead + k] != 1]
        if not axes:
            return p.expr(src)
        total = f"{p.lib}.sum({p.expr(src)[0]}, axis={axes[0] if len(axes) == 1 else tuple(axes)!r})"
        if not any(k >= lead for k in axes):
            return total, ATOM
        return f"{p.lib}.reshape({total}, {p.wrap(p.expr(ref), ATOM)}.shape)", ATOM
    if op == "size_ratio":
        return p.size_ratio(*(g[a]["shape"] for a in n["args"]))  # a Python float: weak, as any number
    if op == "transpose":
        shape = g[n["args"][0]]["shape"]
        if shape is not None and len(shape) < 2:
            return p.expr(n["args"][0])
        if shape is not None and len(shape) == 2:
            return f"{p.wrap(p.expr(n['args'][0]), ATOM)}.T", ATOM
    return None


def _where(p, i: int):
    """where(c, a, b) with c as the standard wants it, a bool array (a comparison as it is, a number as
    c != 0), and a branch of the dtype when both are numbers (which the standard refuses)."""
    g, n = p.g, p.g[i]
    c, a, b = n["args"]
    test = p.expr(c)
    if not _is_test(g, c):
        test = f"{p.wrap(test, 1, strict=True)} != 0", 1
    dtype = f"{p.lib}.{p.dtype}"
    if _is_number(p, a) and _is_number(p, b):
        values = [g[k]["attrs"]["value"] if g[k]["op"] == "const" else None for k in (a, b)]
        if values == [1.0, 0.0]:  # a comparison's value: its bools as numbers
            return f"{p.lib}.astype({test[0]}, {dtype})", ATOM
        a_text = f"{p.lib}.full_like({p.wrap(test, ATOM)}, {p.expr(a)[0]}, dtype={dtype})"
        return f"{p.lib}.where({test[0]}, {a_text}, {p.expr(b)[0]})", ATOM
    return f"{p.lib}.where({test[0]}, {p.expr(a)[0]}, {p.expr(b)[0]})", ATOM


def _is_number(p, i: int) -> bool:
    """Is node i's value a Python number: a constant but the model's named values (the function's arrays:
    `const c = 2`, `c = 2`), or an operator's of numbers (`y_bar = 1.0 + 1.0`: a fan-out's seeds summed)?"""
    todo = [i]
    while todo:
        n = p.g[todo.pop()]
        if n["name"] is not None and not n.get("signal"):
            return False
        if n["op"] == "const":
            continue
        if n["op"] in _NUMBERS_IN_NUMBERS_OUT:
            todo.extend(n["args"])
        else:
            return False
    return True


def _is_test(g, i: int) -> bool:
    """Is node i a bool array: a comparison, or a product of them (tests that must all hold)?"""
    n = g[i]
    return n["op"] in _COMPARISONS or n["op"] == "mul" and all(g[a]["op"] in _COMPARISONS for a in n["args"])


def _key(key) -> str:
    """An index key as a tuple a helper takes: (slice(1, None, None), Ellipsis, -1)."""

    def item(k):
        if k is Ellipsis:
            return "..."
        return str(k) if type(k) is int else f"slice({', '.join(map(repr, k))})"

    items = [item(k) for k in key]
    return f"({', '.join(items)}{',' * (len(items) == 1)})"


def _in_bounds(key: tuple, shape) -> tuple:
    """The key with each slice of a known axis (positive step) clamped to [-n, n], which selects what
    Python's slicing does: the standard leaves a start or stop out of bounds unspecified (Z[-10:2] of 4
    rows is Z[-4:2])."""
    out = list(key)
    for axis, k in enumerate(key):
        if k is Ellipsis:
            break
        n = shape[axis] if shape is not None and axis < len(shape) else None
        if type(k) is tuple and type(n) is int and (k[2] is None or k[2] > 0):
            out[axis] = (*(None if b is None else min(max(b, -n), n) for b in k[:2]), k[2])
    return tuple(out)


def _written(p, i: int) -> tuple[str, int]:
    """Node i by its CODE template, given the key, the dtype of the module's floats, and the arguments of
    an op of any number of them. A key with a negative step is the helper _index's."""
    n = p.g[i]
    op, attrs, args = n["op"], dict(n["attrs"]), p.args(i)
    if "key" in attrs:
        attrs["key"] = _in_bounds(attrs["key"], p.g[n["args"][-1] if op == "unindex" else n["args"][0]]["shape"])
        if Ellipsis not in attrs["key"]:  # the standard wants every axis named: x[0] of a matrix is x[0, ...]
            attrs["key"] = (*attrs["key"], Ellipsis)
        flips = any(type(k) is tuple and k[2] is not None and k[2] < 0 for k in attrs["key"])
        if op == "index" and flips:
            p.helpers.add("_index")
            return fill(
                p,
                "_index(xp, {0}, {key})",
                op,
                args,
                {"key": _key(attrs["key"])},
            ), ATOM
        attrs["key"] = S.key_text(attrs["key"]) if op == "index" else _key(attrs["key"])
    attrs["dtype"] = f"{p.lib}.{p.dtype}"
    attrs["arrays"] = ", ".join(text for text, _ in args)
    p.helpers.update(helpers(op))
    return call(p, op, args, attrs), ATOM
