"""The Numba dialect: each op as Numba's nopython NumPy writes it, for code compiled whole.

Elementwise ops are array expressions of operators, NumPy ufuncs and runtime.py's own ufuncs
(`_sigmoid`, `_where`, ...), so that Numba fuses a chain of them into one loop. Numba's NumPy
reduces along one axis with `sum` only, and without keepdims; the other reductions are runtime.py's
loops, and keepdims an np.expand_dims. Shapes known when emitting are written out (the axes a
gradient sums over, a reduction of a vector as a scalar, a shape in the module's dims); a value whose
shape the model leaves unknown gets the helper that works for any number of dims.

A step of a 1- or 2-d value whose shape is known when emitting (an elementwise chain, a sum) is a loop nest
instead, written by statement() (see "loops" below): at small sizes a loop beats Numba's array expressions,
which make an array of each step they do not fuse.

In a float32 module every number is a float32 (np.float32(0.5)): Numba, unlike NumPy, lets a Python
float make float64 of a float32 array.
"""

from __future__ import annotations

import re
from functools import cache
from typing import NamedTuple

from ...ir import ops as O
from ...ir import shapes as S
from ...ir.ops import ADD, ATOM, MUL, POW, UNARY
from ..numpy import dialect as numpy_dialect
from ..numpy.dialect import number
from ..printer import PYTHON_OPERATORS

ALIAS = "np"

# {0}, {1}, ... are the arguments' texts, {zero} the dtype's 0; a name called with a leading `_` is a
# helper of runtime.py. The ops in LOWERED are written by lower() (which always answers for them): their
# templates here are their forms for shapes unknown when emitting.
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
    "exp": "_exp({0})",
    "log": "np.log({0})",
    "sqrt": "np.sqrt({0})",
    "abs": "np.abs({0})",
    "sin": "np.sin({0})",
    "cos": "np.cos({0})",
    "tanh": "np.tanh({0})",
    "sigmoid": "_sigmoid({0})",
    "relu": "np.maximum({0}, {zero})",
    "softplus": "_softplus({0})",
    "step": "_step({0})",
    "identity": "{0}",
    "square": "np.square({0})",
    "maximum": "np.maximum({0}, {1})",
    "minimum": "np.minimum({0}, {1})",
    "sum": "np.asarray({0}).sum()",
    "mean": "_mean_all({0})",
    "max": "np.asarray({0}).max()",
    "logsumexp": "_logsumexp_all({0})",
    "softmax": "_softmax({0}, {axis})",
    "log_softmax": "_log_softmax({0}, {axis})",
    "transpose": "np.transpose(np.asarray({0}))",
    "sign": "np.sign({0})",
    "gt": "{0} > {1}",
    "ge": "{0} >= {1}",
    "lt": "{0} < {1}",
    "le": "{0} <= {1}",
    "eq": "{0} == {1}",
    "ne": "{0} != {1}",
    "where": "_where({0}, {1}, {2})",
    "mT": "np.swapaxes({0}, -1, -2)",
    "expand_dims": "np.expand_dims(np.asarray({0}), {axis})",
    "outer": "np.expand_dims({0}, -1) * np.expand_dims({1}, -2)",
    "broadcast": "np.broadcast_to({0}, np.shape({1}))",
    "unbroadcast": "_unbroadcast({0}, {1})",
    "size_ratio": "(np.size({0}) / np.size({1}))",
    "max_mask": "_max_mask_all({0}, {1})",
    "zeros_like": "np.zeros_like({0})",
    # more elementwise ops and reductions
    "log1p": "np.log1p({0})",
    "expm1": "np.expm1({0})",
    "tan": "np.tan({0})",
    "clip": "np.minimum(np.maximum({0}, {1}), {2})",
    "leaky_relu": "_leaky_relu({0}, {alpha})",
    "elu": "_elu({0}, {alpha})",
    "min": "np.asarray({0}).min()",
    "prod": "np.asarray({0}).prod()",
    "var": "_var_all({0})",
    "std": "np.sqrt(_var_all({0}))",
    "norm": "_norm_all({0})",
    "prod_others": "_prod_others_all({0})",
    # indexing, gathering and shapes
    "index": "{0}[{key}]",
    "unindex": "_unindex({0}, np.zeros(np.shape({1}), {dtype}), {key})",
    "take": "_take({0}, {1}, {axis}, {shape})",
    "untake": "_untake({0}, {1}, {2}, {axis})",
    "one_hot": "_one_hot({0}, {K}, {dtype})",
    "concat": "np.concatenate(({arrays}){kw})",
    "stack": "np.stack(({arrays}){kw})",
    "unconcat": "_part({0}, {start}, {size}, {axis})",
    # convolution and pooling
    "reshape": "np.reshape(np.ascontiguousarray({0}), {shape})",
    "reshape_like": "np.reshape(np.ascontiguousarray({0}), {shape})",
    "conv2d": "_conv({0}, {1}, {stride}, {padding})",
    "conv2d_input_grad": "_conv_input_grad({0}, {1}, {shape}, {stride}, {padding})",
    "conv2d_weight_grad": "_conv_weight_grad({0}, {1}, {shape}, {stride}, {padding})",
    "max_pool2d": "_max_pool({0}, {k}, {stride})",
    "max_pool2d_grad": "_max_pool_grad({0}, {1}, {2}, {k}, {stride})",
    "max_pool2d_select": "_max_pool_select({0}, {1}, {2}, {k}, {stride})",
    "avg_pool2d": "_avg_pool({0}, {k}, {stride})",
    "avg_pool2d_grad": "_avg_pool_grad({0}, {shape}, {k}, {stride})",
}
_HELPER = re.compile(r"(?<![\w.])(_[a-z_]+)\(")


@cache
def helpers(op: str) -> tuple[str, ...]:
    """The runtime helpers op's template calls."""
    return tuple(_HELPER.findall(CODE[op]))


def call(p, op: str, args: list[tuple[str, int]], attrs: dict) -> str:
    """op's template applied to argument (text, precedence) pairs, in the module's names."""
    code = CODE[op]
    texts = [p.wrap(a, ATOM) if f"{{{k}}}." in code or f"{{{k}}}[" in code else a[0] for k, a in enumerate(args)]
    return _written(p, code, *texts, **attrs)


def _written(p, template: str, *args: str, **fields) -> str:
    """A template in the module's names (its helpers and library renamed, not the arguments' texts)."""
    p.helpers.update(_HELPER.findall(template))
    code = p.rename(template) if p.rename else template
    return code.format(*args, zero=number(p, 0.0), dtype=f"{p.lib}.{p.dtype}", **fields)


def _rank(p, a: int) -> int | None:
    shape = p.g[a]["shape"]
    return None if shape is None else len(shape)


def _atom(p, a: int) -> str:
    return p.wrap(p.expr(a), ATOM)


def _array(p, a: int) -> str:
    """Node a's text where an array is needed (a method called on it): a scalar's, or an unknown
    shape's, through np.asarray."""
    if _rank(p, a):
        return _atom(p, a)
    return _written(p, "np.asarray({0})", p.expr(a)[0])


def _dims(p, shape) -> str | None:
    """A shape as a tuple's text in the module's dims ((N, 3)), or None if a dim is not one of them."""
    if shape is None:
        return None
    dims = [p.g.dims.resolve(d) for d in shape]
    if not all(isinstance(d, int) or d in p.dims for d in dims):
        return None
    p.used_dims.update(d for d in dims if isinstance(d, str))
    texts = [str(d) if isinstance(d, int) else p.dims[d] for d in dims]
    return f"({', '.join(texts)}{',' * (len(texts) == 1)})"


def _shape(p, a: int) -> str:
    """Node a's shape as a tuple's text in the module's dims, else read when running."""
    return _dims(p, p.g[a]["shape"]) or _written(p, "np.shape({0})", p.expr(a)[0])


def _around(p, x: int, axis: int, middle: str = "") -> str:
    """x's shape with its axis dropped (or replaced by the tuple `middle`), read when running."""
    after = "()" if axis == -1 else f"np.shape({{0}})[{axis + 1}:]"
    return _written(p, f"np.shape({{0}})[:{axis}] + {middle}{' + ' * bool(middle)}{after}", p.expr(x)[0])


def _without(p, x: int, axis: int) -> str:
    """The shape of a reduction of x along axis."""
    shape = p.g[x]["shape"]
    dropped = None if shape is None else tuple(d for k, d in enumerate(shape) if k != axis % len(shape))
    return _dims(p, dropped) or _around(p, x, axis)


def _size(p, a: int, axis: int) -> str:
    """The size of node a along axis: a number or a dim's name when emitting, else read when running."""
    shape = p.g[a]["shape"]
    if shape is not None and -len(shape) <= axis < len(shape):
        d = p.g.dims.resolve(shape[axis])
        if isinstance(d, int):
            return str(d)
        if d in p.dims:
            p.used_dims.add(d)
            return p.dims[d]
    return _written(p, "np.shape({0})[{1}]", p.expr(a)[0], axis)


def _typed(p, text: str, prec: int = ATOM) -> tuple[str, int]:
    """A count (an int or a ratio's float) as a number of the module's dtype."""
    if p.dtype == "float64":
        return text, prec
    return f"{p.lib}.{p.dtype}({text})", ATOM


def _axis(p, i: int) -> int | None:
    """Node i's axis, made non-negative where its argument's rank is known."""
    axis, rank = p.g[i]["attrs"].get("axis", O.OPS[p.g[i]["op"]].kwargs.get("axis")), _rank(p, p.g[i]["args"][0])
    return axis % rank if axis is not None and rank else axis


# ---- reductions -------------------------------------------------------------------------------

_ALL = {  # a reduction over every axis, of an array's text {0} (or the node's argument's text {x})
    "sum": "{0}.sum()",
    "max": "{0}.max()",
    "min": "{0}.min()",
    "prod": "{0}.prod()",
    "mean": "_mean_all({x})",
    "var": "_var_all({x})",
    "std": "np.sqrt(_var_all({x}))",
    "norm": "_norm_all({x})",
    "logsumexp": "_logsumexp_all({x})",
}
_ONE = {  # along one axis
    "sum": "_sum_axis({x}, {axis}, {shape})",
    "max": "_max_axis({x}, {axis}, {shape})",
    "min": "_min_axis({x}, {axis}, {shape})",
    "prod": "_prod_axis({x}, {axis}, {shape})",
    "mean": "_sum_axis({x}, {axis}, {shape})",  # / the size along the axis
    "var": "_var_axis({x}, {axis}, {shape})",
    "std": "np.sqrt(_var_axis({x}, {axis}, {shape}))",
    "norm": "_norm_axis({x}, {axis}, {shape})",
    "logsumexp": "_logsumexp_axis({x}, {axis}, {shape})",
}


def _reduction(p, i: int):
    n = p.g[i]
    op, x, keep = n["op"], n["args"][0], n["attrs"].get("keepdims", False)
    axis, rank = _axis(p, i), _rank(p, x)
    if rank == 0:  # a scalar's own value (its var and std: 0, or NaN where it is not finite)
        if op in ("var", "std"):
            return f"{number(p, 0.0)} * {p.wrap(p.expr(x), MUL)}", MUL
        return (_written(p, "np.abs({0})", p.expr(x)[0]), ATOM) if op == "norm" else p.expr(x)
    if rank == 1:
        axis = None  # (a vector's reduction along its axis is its whole one)
    fields = {"x": p.expr(x)[0], "axis": axis}
    inner = p.g[x]
    if axis is None and not keep and op in ("sum", "mean") and inner["op"] == "sum" and x not in p.names:
        # the total of a partial sum used only here is its argument's total: one pass (as the NumPy target)
        total = f"{_array(p, inner['args'][0])}.sum()"
        count = p.size_ratio(inner["shape"], ()) if op == "mean" else None
        if op == "sum" or count is not None:
            return (total, ATOM) if op == "sum" else (f"{total} / {p.wrap(_typed(p, *count), MUL, strict=True)}", MUL)
    if axis is None:
        count = p.size_ratio(p.g[x]["shape"], n["shape"]) if op == "mean" and rank else None
        if count is not None:  # x.sum() / its size, as the NumPy target: np.mean's own arithmetic
            text = f"{_array(p, x)}.sum() / {p.wrap(_typed(p, *count), MUL, strict=True)}"
            return _keep_all(p, (text, MUL), x, keep)
        return _keep_all(p, (_written(p, _ALL[op], _array(p, x), **fields), ATOM), x, keep)
    if op in ("sum", "mean") and rank == 2:  # (Numba's own sum along an axis: slow to compile above 2 dims)
        e = f"{_atom(p, x)}.sum(axis={axis})", ATOM
    else:
        e = _written(p, _ONE[op], shape=_without(p, x, axis), **fields), ATOM
    if op == "mean":
        e = f"{e[0]} / {p.wrap(_typed(p, _size(p, x, axis)), MUL, strict=True)}", MUL
    return (_written(p, "np.expand_dims({0}, {1})", e[0], axis), ATOM) if keep else e


def _keep_all(p, e: tuple[str, int], x: int, keep: bool):
    """A full reduction's value shaped as keepdims leaves it ([1, 1] for a matrix)."""
    if not keep:
        return e
    rank = _rank(p, x)
    if rank is None:
        return _written(p, "_keep_all({0}, {1})", e[0], p.expr(x)[0]), ATOM
    return _written(p, "np.full(({0}), {1})", ", ".join(["1"] * rank) + "," * (rank == 1), e[0]), ATOM


def _along(p, i: int):
    """softmax and log_softmax: runtime.py's loops along the axis."""
    n = p.g[i]
    return _written(p, CODE[n["op"]], p.expr(n["args"][0])[0], axis=_axis(p, i)), ATOM


def _max_mask(p, i: int):
    n = p.g[i]
    x, y = n["args"]
    axis, rank = _axis(p, i), _rank(p, x)
    if axis is None or rank in (0, 1):
        return _written(p, "_max_mask_all({0}, {1})", p.expr(x)[0], p.expr(y)[0]), ATOM
    kept = p.expr(y)[0]
    if not n["attrs"].get("keepdims", False):
        kept = _written(p, "np.expand_dims({0}, {1})", _array(p, y), axis)
    return _written(p, "_max_mask({0}, {1}, {2})", p.expr(x)[0], kept, axis), ATOM


def _prod_others(p, i: int):
    n = p.g[i]
    axis = _axis(p, i)
    if axis is None or _rank(p, n["args"][0]) == 1:
        return _written(p, "_prod_others_all({0})", p.expr(n["args"][0])[0]), ATOM
    return _written(p, "_prod_others({0}, {1})", p.expr(n["args"][0])[0], axis), ATOM


# ---- broadcasting ------------------------------------------------------------------------------


def _broadcast(p, i: int):
    """g spread over x's shape (re-expanded along a reduction's axis first): a read-only view."""
    n = p.g[i]
    g, x = n["args"]
    gs, xs = p.g[g]["shape"], p.g[x]["shape"]
    axis = n["attrs"].get("axis")
    if xs == () or (axis is None and gs is not None and xs is not None and p.g.dims.shape(gs) == p.g.dims.shape(xs)):
        return p.expr(g)
    spread = p.expr(g)
    if axis is not None:
        spread = _written(p, "np.expand_dims({0}, {1})", _array(p, g), axis % len(xs) if xs else axis), ATOM
    if xs is None:  # (maybe a scalar when running, whose shape () Numba's broadcast_to cannot take)
        return f"{p.wrap(spread, ADD)} + {_written(p, 'np.zeros_like({0})', p.expr(x)[0])}", ADD
    return _written(p, "np.broadcast_to({0}, {1})", spread[0], _shape(p, x)), ATOM


def _unbroadcast(p, i: int):
    """g summed down to x's shape: the axes broadcasting added, then those where x has size 1."""
    n = p.g[i]
    g, x = n["args"]
    gs, xs = p.g[g]["shape"], p.g[x]["shape"]
    if gs is None or xs is None:
        return _written(p, "_unbroadcast({0}, {1})", p.expr(g)[0], p.expr(x)[0]), ATOM
    lead = len(gs) - len(xs)
    axes = list(range(lead)) + [lead + k for k, d in enumerate(xs) if d == 1 and gs[lead + k] != 1]
    if not axes:
        return p.expr(g)
    if not xs:
        return f"{_atom(p, g)}.sum()", ATOM
    if len(gs) <= 2 and len(axes) == 1:  # Numba's own sum (slow to compile above 2 dims)
        text = f"{_atom(p, g)}.sum(axis={axes[0]})"
        return (f"{text}.reshape({_shape(p, x)})" if axes[0] >= lead else text), ATOM
    kept = [k for k in range(len(gs)) if k not in axes]
    if kept and kept != list(range(kept[0], kept[-1] + 1)):  # summed axes between kept ones: the loop for any
        return _written(p, "_unbroadcast({0}, {1})", p.expr(g)[0], p.expr(x)[0]), ATOM
    first, last = (kept[0], kept[-1] + 1) if kept else (0, 0)
    return _written(p, "_sum_to({0}, {1}, {2}, {3})", p.expr(g)[0], first, last, _shape(p, x)), ATOM


def _size_ratio(p, i: int):
    ratio = p.size_ratio(*(p.g[a]["shape"] for a in p.g[i]["args"]))
    if ratio is None:
        ratio = (call(p, "size_ratio", [p.expr(a) for a in p.g[i]["args"]], {}), ATOM)
    return _typed(p, *ratio)


# ---- shapes -------------------------------------------------------------------------------------


def _transposed(p, i: int):
    """mT and transpose: .T for a matrix, itself for a vector (transpose), np.swapaxes above."""
    n = p.g[i]
    x, rank = n["args"][0], _rank(p, n["args"][0])
    if rank == 2:
        return f"{_atom(p, x)}.T", ATOM
    if n["op"] == "transpose" and rank is not None and rank < 2:
        return p.expr(x)
    return None


def _outer(p, i: int):
    u, v = p.g[i]["args"]
    if _rank(p, u) == 1 and _rank(p, v) == 1:
        return _written(p, "np.outer({0}, {1})", p.expr(u)[0], p.expr(v)[0]), ATOM
    return None


def _zeros_like(p, i: int):
    return (number(p, 0.0), ATOM) if p.g[i]["shape"] == () else None


def _expanded(key, rank: int | None) -> list:
    """An index key's items, `...` spelt as the full slices it stands for where the rank is known (Numba
    cannot index by `...` alone)."""
    items = list(key)
    if Ellipsis in items and rank is not None:
        k = items.index(Ellipsis)
        items[k : k + 1] = [(None, None, None)] * (rank - len(items) + 1)
    return items


def _index(p, i: int):
    n = p.g[i]
    if n["op"] == "index":
        x = n["args"][0]
        items = _expanded(n["attrs"]["key"], _rank(p, x))
        return (f"{_atom(p, x)}[{S.key_text(items)}]", ATOM) if items else p.expr(x)
    g, x = n["args"]
    items = _expanded(n["attrs"]["key"], _rank(p, x))
    texts = ["Ellipsis" if k is Ellipsis else str(k) if type(k) is int else f"slice{tuple(k)!r}" for k in items]
    key = f"({', '.join(texts)}{',' * (len(texts) == 1)})"
    return _written(p, "_unindex({0}, np.zeros({1}, {dtype}), {2})", p.expr(g)[0], _shape(p, x), key), ATOM


def _gather(p, i: int):
    """take, untake and one_hot: runtime.py's loops, their axis non-negative where it can be."""
    n = p.g[i]
    args = [p.expr(a)[0] for a in n["args"]]
    axis = n["attrs"].get("axis", 0)
    rank = _rank(p, n["args"][0] if n["op"] == "take" else n["args"][-1])
    fields = {"axis": axis % rank if rank else axis, "K": n["attrs"].get("K")}
    if n["op"] == "take":
        fields["shape"] = _taken(p, i, fields["axis"])
    return _written(p, CODE[n["op"]], *args, **fields), ATOM


def _taken(p, i: int, axis: int) -> str:
    """The shape of take(x, idx, axis): x's before the axis, idx's, x's after it."""
    x, idx = p.g[i]["args"]
    return _dims(p, p.g[i]["shape"]) or _around(p, x, axis, _written(p, "np.shape({0})", p.expr(idx)[0]))


def refuses(g, i: int) -> str | None:
    """What of node i Numba's nopython NumPy cannot compute (its op being one CODE has), else None."""
    n = g[i]
    if n["op"] == "matmul" and any(len(g[a]["shape"] or ()) > 2 for a in n["args"]):
        return "`@` of arrays of more than 2 dims (Numba's is of vectors and matrices)"
    return None


def _joined(p, i: int):
    """concat and stack of arrays; a stack of scalars as an array of them."""
    n = p.g[i]
    arrays = [p.expr(a)[0] for a in n["args"]]
    axis = n["attrs"].get("axis", 0)
    if n["op"] == "stack" and all(p.g[a]["shape"] == () for a in n["args"]):  # (a 0-d array or a float each)
        return _written(p, "np.array([{0}])", ", ".join(f"np.asarray({a}).item()" for a in arrays)), ATOM
    fields = {"arrays": ", ".join(arrays) + "," * (len(arrays) == 1), "kw": f", axis={axis}" if axis else ""}
    return _written(p, CODE[n["op"]], **fields), ATOM


def _unconcat(p, i: int):
    """Part `part` of g along the axis: a slice at the sizes of the arrays before it."""
    n = p.g[i]
    g, *xs = n["args"]
    part, axis, rank = n["attrs"]["part"], n["attrs"].get("axis", 0), _rank(p, g)
    sizes = [_size(p, x, axis) for x in xs[: part + 1]]
    ints = all(s.isdigit() for s in sizes)
    start = str(sum(map(int, sizes[:-1]))) if ints else " + ".join(sizes[:-1]) or "0"
    stop = str(int(start) + int(sizes[-1])) if ints else " + ".join(sizes)
    if rank is None:
        return _written(p, CODE["unconcat"], p.expr(g)[0], start=start, size=sizes[-1], axis=axis), ATOM
    simple = all(re.fullmatch(r"\w+", s) for s in (start, stop))
    lo = "" if start == "0" else start
    cut = f"{lo}:{stop}" if simple else f"{lo} : {stop}".lstrip()
    return f"{_atom(p, g)}[{':, ' * (axis % rank)}{cut}]", ATOM


def _reshape(p, i: int):
    """reshape (its shape in the module's dims, as the NumPy target writes it) and reshape_like, of a
    contiguous array: Numba reshapes no other."""
    n = p.g[i]
    x = p.expr(n["args"][0])[0]
    if n["op"] == "reshape_like":
        return _written(p, CODE["reshape_like"], x, shape=_shape(p, n["args"][1])), ATOM
    text = numpy_dialect.lower(p, i)[0]
    head = f"{p.lib}.reshape({x}, "
    assert text.startswith(head), text
    return _written(p, CODE["reshape"], x, shape=text[len(head) : -1]), ATOM


# ---- elementwise ops with a keyword, convolution and pooling: every argument by position ------


def _alpha(p, i: int, x: tuple[str, int] | None = None):
    n = p.g[i]
    alpha = n["attrs"].get("alpha", O.OPS[n["op"]].kwargs["alpha"])
    return _written(p, CODE[n["op"]], (x or p.expr(n["args"][0]))[0], alpha=number(p, alpha)), ATOM


# ---- elementwise ops of arrays of 3+ dims: on their flattened views ------------------------------
# Numba's loop for an array expression over 3+ dims takes LLVM seconds to compile, more the more ops it
# fuses (tens of seconds for relu's gradient of a feature map); over 1 dim, a fraction of a second.

_ELEMENTWISE = frozenset(name for name, op in O.OPS.items() if op.elementwise and name != "identity")


def _flat(p, i: int):
    """An elementwise op of arrays of 3+ dims, all of its shape (or scalars), as the same op of their
    flattened views (`.ravel()`: a view of a contiguous array), reshaped; an op of such an op (inlined)
    reads its flat expression, so that the chain stays one fused 1-d loop."""
    n = p.g[i]
    full = n["shape"] and len(n["shape"]) >= 3 and p.g.dims.shape(n["shape"])
    shapes = [p.g[a]["shape"] for a in n["args"]]
    if not full or any(s is None or (s != () and p.g.dims.shape(s) != full) for s in shapes):
        return None
    flat = vars(p).setdefault("numba_flat", {})  # node -> its flat expression
    args = []
    for a, shape in zip(n["args"], shapes):
        if shape == ():
            args.append(p.expr(a))
        elif a in flat and a not in p.names:
            args.append(flat[a])
        else:
            args.append((f"{_atom(p, a)}.ravel()", ATOM))
    flat[i] = e = _applied(p, i, args)
    like = next(a for a, shape in zip(n["args"], shapes) if shape != ())
    return f"{p.wrap(e, ATOM)}.reshape({_dims(p, n['shape']) or _shape(p, like)})", ATOM


def _applied(p, i: int, args: list[tuple[str, int]]) -> tuple[str, int]:
    """Elementwise node i's expression of the given arguments' (text, precedence)."""
    op = p.g[i]["op"]
    infix = O.OPS[op].infix
    if infix and len(args) == 2:
        sym, prec = PYTHON_OPERATORS.get(op, infix[0]), infix[1]
        a, b = p.wrap(args[0], prec, strict=op == "pow"), p.wrap(args[1], prec, strict=op != "pow")
        if op == "pow" and all(re.fullmatch(r"[\w.]+", t) for t in (a, b)):
            return f"{a}**{b}", POW  # (simple operands hug `**`, as ruff formats them)
        return f"{a} {sym} {b}", prec
    if op == "neg":
        return f"-{p.wrap(args[0], UNARY)}", UNARY
    if op in ("leaky_relu", "elu"):
        return _alpha(p, i, args[0])
    return call(p, op, args, p.g[i]["attrs"]), ATOM


def _window(p, i: int):
    n = p.g[i]
    op, attrs, args = n["op"], {**O.OPS[n["op"]].kwargs, **n["attrs"]}, n["args"]
    if "k" in attrs and attrs["stride"] is None:
        attrs["stride"] = attrs["k"]
    texts = [p.expr(a)[0] for a in args]
    if op in ("conv2d_input_grad", "conv2d_weight_grad", "avg_pool2d_grad"):
        attrs["shape"] = _shape(p, args[-1])
        texts = texts[:-1]
    return _written(p, CODE[op], *texts, **attrs), ATOM


_LOWER = {
    **dict.fromkeys(_ALL, _reduction),
    **dict.fromkeys(("softmax", "log_softmax"), _along),
    "max_mask": _max_mask,
    "prod_others": _prod_others,
    "broadcast": _broadcast,
    "unbroadcast": _unbroadcast,
    "size_ratio": _size_ratio,
    **dict.fromkeys(("mT", "transpose"), _transposed),
    "outer": _outer,
    "zeros_like": _zeros_like,
    **dict.fromkeys(("index", "unindex"), _index),
    **dict.fromkeys(("take", "untake", "one_hot"), _gather),
    **dict.fromkeys(("concat", "stack"), _joined),
    "unconcat": _unconcat,
    **dict.fromkeys(("reshape", "reshape_like"), _reshape),
    **dict.fromkeys(("leaky_relu", "elu"), _alpha),
    **dict.fromkeys(
        (
            "conv2d",
            "conv2d_input_grad",
            "conv2d_weight_grad",
            "max_pool2d",
            "max_pool2d_grad",
            "max_pool2d_select",
            "avg_pool2d",
            "avg_pool2d_grad",
        ),
        _window,
    ),
}
LOWERED = frozenset(_LOWER) | _ELEMENTWISE


def lower(p, i: int):
    """The expression of node i (an op in LOWERED) for the shapes known when emitting; None: its template."""
    op = p.g[i]["op"]
    e = _flat(p, i) if op in _ELEMENTWISE else None
    return e or (_LOWER[op](p, i) if op in _LOWER else None)


# ---- loops: the steps of 1- and 2-d values whose shapes are known when emitting ------------------------
# Numba's array expression of a small array costs more than its arithmetic: a new array for each step that
# is not fused (a bias added to a product, an axis's sum), and a sum that reads what a loop just wrote. So a
# step of such a value is a loop nest written out, as one writes it by hand: an elementwise chain's entry at
# the loop's indices (an operand broadcast along the leading axes read at the trailing ones), stored in
# place into the product it starts from (`A = X @ W1`, then `A[i, j] = _sigmoid(A[i, j] + b1[j])`: a product
# inlined has no other user), and the sums of its value that come later accumulated in the same loop. A sum
# of an inlined chain is a loop of its own, with no array of the chain. Shapes unknown keep array expressions.

_COMPARISON = frozenset(("gt", "ge", "lt", "le", "eq", "ne"))  # (their values are booleans)
_SUMS = frozenset(("sum", "mean", "unbroadcast"))
WIDTH = 88  # (layout.WIDTH: ruff's line length)


def _extent(p, shape) -> list[str] | None:
    """A 1- or 2-d shape's dims as texts in the module's dims (a number or a dim's name), else None."""
    if shape is None or not 1 <= len(shape) <= 2:
        return None
    dims = [p.g.dims.resolve(d) for d in shape]
    if not all(isinstance(d, int) or d in p.dims for d in dims):
        return None
    return [str(d) if isinstance(d, int) else p.dims[d] for d in dims]


def _loop_names(p) -> list[str]:
    """The loops' index names, picked around the model's (i and j, unless a model name is one)."""
    names = vars(p).setdefault("numba_loop_names", [])
    if not names:
        names += [p.ns.fresh("i"), p.ns.fresh("j")]
    return names


def _integer(p, a: int) -> bool:
    """Is node a an integer input (indices, labels)?"""
    integers = vars(p).get("numba_integers")
    if integers is None:
        integers = p.numba_integers = {p.g.names[n] for n in O.integer_inputs(p.g)}
    return a in integers


class _Entries:
    """Nodes' entries at a loop nest's indices, as text. An array read that is not named yet (a product, a
    view) stands as a mark until the loop is kept, then gets a line before it."""

    def __init__(self, p, out: list[str], into: str | None):
        self.p, self.out, self.idx = p, out, _loop_names(p)[: len(out)]
        self.into = into  # the loop's value's name: a product of its shape read here may be stored in it
        self.before: list[tuple[str, str]] = []  # (mark, text) of the arrays that get a line before the loop
        self.in_place = None  # the mark of the product stored into, if any

    def entry(self, a: int) -> tuple[str, int] | None:
        """Node a's entry (an inlined elementwise node of the loop's shape: its op of its arguments' entries;
        a number: itself), or None if it cannot be read at the loop's indices."""
        p = self.p
        n = p.g[a]
        shape = n["shape"]
        if shape is None or _integer(p, a):
            return None
        if shape == ():
            e = p.expr(a)
            return e if a in p.names or n["op"] == "const" or "(" not in e[0] else self._mark(e[0])
        same = _extent(p, shape) == self.out
        if same and a not in p.names and n["op"] in _ELEMENTWISE:
            args = [self.entry(b) for b in n["args"]]
            return None if None in args else _applied(p, a, args)
        if same and a not in p.names and n["op"] == "broadcast":  # its argument's entry, read where it spreads
            return self._spread(a)
        index = self._index(shape)
        if index is None:
            return None
        if a in p.names:
            return f"{p.names[a]}[{index}]", ATOM
        if same and n["op"] == "matmul" and self.into and self.in_place is None:
            self.in_place = self._mark(p.expr(a)[0])[0]
            return f"{self.in_place}[{index}]", ATOM
        return f"{self._mark(p.expr(a)[0])[0]}[{index}]", ATOM

    def _spread(self, b: int) -> tuple[str, int] | None:
        """A broadcast's entry: its argument's (a number: itself), re-expanded along the axis it has not."""
        p = self.p
        g, axis = p.g[b]["args"][0], p.g[b]["attrs"].get("axis")
        gs = p.g[g]["shape"]
        if axis is None or gs == ():
            return self.entry(g)
        if gs is None or len(gs) + 1 != len(self.out) or _integer(p, g):
            return None
        keys = [k for n, k in enumerate(self.idx) if n != axis % len(self.out)]
        if [_extent(p, (d,)) for d in gs] != [[self.out[n]] for n in range(len(self.out)) if n != axis % len(self.out)]:
            return None
        base = p.names[g] if g in p.names else self._mark(p.expr(g)[0])[0]
        return f"{base}[{', '.join(keys)}]", ATOM

    def _mark(self, text: str) -> tuple[str, int]:
        mark = f"\0{len(self.before)}\0"
        self.before.append((mark, text))
        return mark, ATOM

    def _index(self, shape) -> str | None:
        """The index of an operand broadcast to the loop's shape: the loops' names (0 on its dims of 1)."""
        lead = len(self.out) - len(shape)
        if lead < 0:
            return None
        keys = []
        for k, d in enumerate(shape):
            if _extent(self.p, (d,)) == [self.out[lead + k]]:
                keys.append(self.idx[lead + k])
            elif self.p.g.dims.resolve(d) == 1:
                keys.append("0")
            else:
                return None
        return ", ".join(keys)

    def lines(self, nest: list[str]) -> list[str]:
        """The lines before the loop (the product stored into named as the loop's value), then the loop
        nest, marks replaced by names."""
        p, names = self.p, {}
        for mark, _ in self.before:
            names[mark] = self.into if mark == self.in_place else p.temp()
        out = [f"{names[mark]} = {text}" for mark, text in self.before] + nest
        for mark, name in names.items():
            out = [line.replace(mark, name) for line in out]
        return out


def _nest(out: list[str], idx: list[str], body: list[str]) -> list[str]:
    """`for i in range(N):` around `for j in range(32):` around the body."""
    lines = body
    for k in reversed(range(len(out))):
        lines = [f"for {idx[k]} in range({out[k]}):", *("    " + line for line in lines)]
    return lines


class _Sum(NamedTuple):
    """A sum (sum, mean, unbroadcast) as a loop over its argument's entries."""

    x: int  # the node whose entries it adds up
    out: list[str]  # x's extent: the loop's
    key: str | None  # the index of the sum's entry each of x's adds to (None: the sum is a number)
    shape: tuple  # the sum's
    count: tuple[str, int] | None  # what a mean divides by


def _sum_plan(p, r: int) -> _Sum | None:
    n = p.g[r]
    op, x = n["op"], n["args"][0]
    xs = p.g[x]["shape"]
    out = _extent(p, xs)
    if out is None or n["shape"] is None or _integer(p, x) or (n["shape"] and _dims(p, n["shape"]) is None):
        return None
    idx, rank, count = _loop_names(p)[: len(out)], len(out), None
    if op == "unbroadcast":
        ts = p.g[n["args"][1]]["shape"]
        if ts is None or len(ts) > rank:
            return None
        lead = rank - len(ts)
        axes = set(range(lead)) | {lead + k for k, d in enumerate(ts) if d == 1 and xs[lead + k] != 1}
        if not axes:
            return None
        keys = ["0" if lead + k in axes else idx[lead + k] for k in range(len(ts))]
    else:
        axis, keep = n["attrs"].get("axis"), n["attrs"].get("keepdims", False)
        if axis is not None and not isinstance(axis, int):
            return None
        axes = set(range(rank)) if axis is None or rank == 1 else {axis % rank}
        keys = ["0" if k in axes else idx[k] for k in range(rank) if keep or k not in axes]
        inner = p.g[x]
        if not keys and x not in p.names and inner["op"] == "sum" and not inner["attrs"].get("keepdims", False):
            # the total of a partial sum used only here is its argument's total: one loop over that
            whole = _extent(p, p.g[inner["args"][0]]["shape"])
            if whole is not None and not _integer(p, inner["args"][0]):
                x, out, xs = inner["args"][0], whole, inner["shape"]
        if op == "mean":
            count = p.size_ratio(xs, n["shape"])
            if count is None:
                return None
    if bool(keys) != bool(n["shape"]):
        return None
    return _Sum(x, out, ", ".join(keys) or None, n["shape"], count)


def _accumulator(p, name: str, s: _Sum) -> tuple[str, str, list[str]]:
    """A sum's first line, the start of its line in the loop (the entry added follows) and its last lines
    (a mean's division)."""
    if s.key is None:
        first, add = f"{name} = {number(p, 0.0)}", f"{name} += "
    else:
        first, add = f"{name} = {_written(p, 'np.zeros({0}, {dtype})', _dims(p, s.shape))}", f"{name}[{s.key}] += "
    last = [] if s.count is None else [f"{name} /= {_typed(p, *s.count)[0]}"]
    return first, add, last


def _shadowed(p) -> bool:
    """Does a model name (a value's or a dim's) hide the builtin `range` the loops call?"""
    shadowed = vars(p).get("numba_shadowed")
    if shadowed is None:
        shadowed = p.numba_shadowed = "range" in {*p.ns.py.values(), *p.ns.dim.values()}
    return shadowed


def own_line(p, i: int) -> bool:
    """A sum written as a loop is a step of its own, not inlined into its user's expression (but a partial
    sum whose one user totals it: that user's loop adds up its argument)."""
    n = p.g[i]
    if p.ns is None or n["op"] not in _SUMS or _shadowed(p) or _sum_plan(p, i) is None:
        return False
    users = [u for u in p.g._succ[i] if p.g[u]["op"] != "size_ratio"]
    if n["op"] == "sum" and len(users) == 1 and p.g[users[0]]["op"] in ("sum", "mean"):
        plan = _sum_plan(p, users[0])
        return plan is None or plan.key is not None
    return True


def statement(p, i: int, name: str, later: set[int]) -> list[str] | None:
    """Node i's step as a loop nest that names its value `name`, if its shape is known when emitting (and
    the loop's lines fit in 88 columns); None: its line."""
    op = p.g[i]["op"]
    if p.ns is None or (op not in _SUMS and (op not in _ELEMENTWISE or op in _COMPARISON)) or _shadowed(p):
        return None
    temps = p.temps  # (a loop given up gives back the temporaries it named)
    lines, sums = _sum_loop(p, i, name) if op in _SUMS else _loop(p, i, name, later)
    if lines is None or not all(4 + len(line) <= WIDTH for line in lines):
        p.temps = temps
        return None
    p.names.update(sums)
    for s in (p.g[i]["shape"], p.g[_sum_plan(p, i).x]["shape"] if op in _SUMS else ()):
        _dims(p, s)  # (the dims its loops run over are read)
    return lines


def _loop(p, i: int, name: str, later: set[int]):
    """An elementwise node's loop: its entries stored, and the sums of it that come later added up."""
    out = _extent(p, p.g[i]["shape"])
    if out is None or _integer(p, i):
        return None, {}
    entries = _Entries(p, out, name)
    args = [entries.entry(a) for a in p.g[i]["args"]]
    if None in args:
        return None, {}
    at = f"{name}[{', '.join(entries.idx)}]"
    body, firsts, lasts, sums = [f"{at} = {_applied(p, i, args)[0]}"], [], [], {}
    for u in sorted(p.g._succ[i]):  # the sums of it that come later: in the same loop
        plan = _sum_plan(p, u) if u in later and u not in p.names and p.g[u]["op"] in _SUMS else None
        if plan is None or plan.x != i:
            continue
        user = p.g[u]
        sums[u] = p.ns.py[user["name"]] if user["name"] else p.temp()
        first, add, last = _accumulator(p, sums[u], plan)
        firsts.append(first)
        body.append(add + at)
        lasts += last
    made = [] if entries.in_place else [f"{name} = {_written(p, 'np.empty({0}, {dtype})', _dims(p, p.g[i]['shape']))}"]
    return entries.lines(made + firsts + _nest(out, entries.idx, body) + lasts), sums


def _sum_loop(p, r: int, name: str):
    """A sum's own loop over its argument's entries (an inlined chain's: no array of them)."""
    s = _sum_plan(p, r)
    entries = _Entries(p, s.out, None) if s else None
    e = entries.entry(s.x) if s else None
    if e is None:
        return None, {}
    first, add, last = _accumulator(p, name, s)
    return entries.lines([first, *_nest(s.out, entries.idx, [add + e[0]]), *last]), {}
