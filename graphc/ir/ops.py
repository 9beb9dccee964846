"""Every operation, each defined once: arity, keywords, shape rule, NumPy code, derivative, label.

``code`` is a NumPy expression template (``{0}``, ``{1}`` are the arguments, ``{kw}`` the
keyword attributes). The interpreter compiles it into its kernel and ``graphc emit`` writes
it out, so the two can never disagree. ``grad(y, g, *args)`` gets handles to the node's
output ``y``, its error signal ``g = ȳ`` and its arguments, and returns one contribution per
argument (``None`` for none), built from ordinary ops so that the backward graph can be run,
emitted, drawn and differentiated again. Contributions may be broadcast-shaped: autodiff
sums them back to the argument's shape with the one ``unbroadcast`` op.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from . import shapes as S

# shapes, attrs, dims -> shape
ShapeRule = Callable[[list, dict, S.Dims], tuple | None]


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    code: str
    shape: ShapeRule
    grad: Callable | None = None  # None: the op has no derivative (zero everywhere)
    label: str = ""
    kwargs: dict = field(default_factory=dict)  # user-visible keyword -> default
    infix: tuple[str, int] | None = None  # (symbol, precedence) for equations
    helpers: tuple[str, ...] = ()  # runtime helpers the code calls
    user: bool = True  # callable from a model (False: made only by graphc itself)

    def render(self, args: list[str], attrs: dict, rename: Callable[[str], str] | None = None) -> str:
        """The NumPy expression for this op applied to argument expressions; `rename` maps the template's
        own names (np, helpers) to the module's, before the arguments go in."""
        kw = "".join(f", {k}={attrs[k]!r}" for k in self.kwargs if attrs.get(k, self.kwargs[k]) != self.kwargs[k])
        return (rename(self.code) if rename else self.code).format(*args, kw=kw, **attrs)


OPS: dict[str, Op] = {}
ALIASES = {"logistic": "sigmoid", "softrelu": "softplus"}


def _op(name, arity, code, shape, grad=None, **kw) -> Op:
    kw.setdefault("label", name)
    OPS[name] = Op(name, arity, code, shape, grad, **kw)
    return OPS[name]


def _call(name):
    """A graph-building function for op `name`, for use in derivative rules."""
    return lambda *args, **attrs: args[0].graph.op(name, *args, **attrs)


exp, log, sin, cos, sign, sigmoid, transpose, mT, expand_dims = map(
    _call, ["exp", "log", "sin", "cos", "sign", "sigmoid", "transpose", "mT", "expand_dims"]
)
broadcast, unbroadcast, size_ratio, max_mask, where = map(
    _call, ["broadcast", "unbroadcast", "size_ratio", "max_mask", "where"]
)
gt, ge, eq = map(_call, ["gt", "ge", "eq"])
rsum = _call("sum")

# ---- shape rules -------------------------------------------------------------------------


def same(shapes, attrs, dims):
    return shapes[0]


def scalar(shapes, attrs, dims):
    return ()


def bcast(shapes, attrs, dims):
    return S.broadcast(shapes[0], shapes[1], dims)


def where_shape(shapes, attrs, dims):
    return S.broadcast(S.broadcast(shapes[0], shapes[1], dims), shapes[2], dims)


def like_second(shapes, attrs, dims):
    return shapes[1]


def along_axis(name: str) -> ShapeRule:
    """The rule of an op that works along one axis (default -1) and keeps the shape: softmax, log_softmax."""

    def rule(shapes, attrs, dims):
        if shapes[0] == ():  # NumPy too: softmax over axis -1 of a 0-d array is an AxisError
            raise S.ShapeError(
                f"{name} needs at least 1 dimension, got a scalar ({name} works along an axis of a vector or matrix)"
            )
        S.axis_index(shapes[0], attrs.get("axis", OPS[name].kwargs["axis"]))
        return shapes[0]

    return rule


def reduction(shapes, attrs, dims):
    return S.reduce(shapes[0], attrs.get("axis"), attrs.get("keepdims", False))


def matmul_shape(shapes, attrs, dims):
    return S.matmul(shapes[0], shapes[1], dims)


def transpose_shape(shapes, attrs, dims):
    return None if shapes[0] is None else tuple(reversed(shapes[0]))


def mT_shape(shapes, attrs, dims):
    s = shapes[0]
    if s is not None and len(s) < 2:
        raise S.ShapeError(f"swapping the last two axes needs 2+ dims, got {S.fmt(s)}")
    return None if s is None else s[:-2] + (s[-1], s[-2])


def expand_dims_shape(shapes, attrs, dims):
    s = shapes[0]
    if s is None:
        return None
    k = S.axis_index(s + (1,), attrs["axis"])
    return s[:k] + (1,) + s[k:]


# ---- derivative rules --------------------------------------------------------------------


def _rank(v):
    if v.shape is None:
        raise v.error(
            "cannot differentiate `@` through a value of unknown shape", "declare its shape, e.g. `input x: [3]`"
        )
    return len(v.shape)


def matmul_grad(y, g, a, b):
    ra, rb = _rank(a), _rank(b)
    if ra == 1 and rb == 1:
        return g * b, g * a
    if rb == 1:  # ā = ḡ bᵀ (an outer product), b̄ = aᵀ ḡ
        b_bar = g @ a if ra == 2 else rsum(expand_dims(g, axis=-2) @ a, axis=-2)
        return expand_dims(g, axis=-1) * expand_dims(b, axis=-2), b_bar
    if ra == 1:
        a_bar = b @ g if rb == 2 else rsum(b @ expand_dims(g, axis=-1), axis=-1)
        return a_bar, expand_dims(a, axis=-1) * expand_dims(g, axis=-2)
    return g @ mT(b), mT(a) @ g


def reduction_axis(y):
    """The axis a reduction's gradient must be re-expanded along (None when kept)."""
    return None if y.attrs.get("keepdims") else y.attrs.get("axis")


def softmax_grad(y, g, x):
    axis = y.attrs.get("axis", -1)
    return (y * (g - rsum(g * y, axis=axis, keepdims=True)),)


def log_softmax_grad(y, g, x):
    axis = y.attrs.get("axis", -1)
    return (g - exp(y) * rsum(g, axis=axis, keepdims=True),)


def _const(v) -> float | None:
    n = v.graph[v.id]
    return n["attrs"]["value"] if n["op"] == "const" else None


def pow_grad(y, g, x, p):
    """PyTorch's rules: d(x^p)/dx is 0 where p = 0 (not 0 * x^-1, nan at x = 0), and d(x^p)/dp is 0 where
    x = 0 and p >= 0 (not 0 * log 0). Selected with `where`, never multiplied by a mask: 0 * inf is nan."""
    cp, cx = _const(p), _const(x)  # (a constant needs no gradient)
    if cx is not None or cp == 0.0:
        x_bar = None
    elif cp is not None:
        x_bar = g * p * x ** (p - 1)
    else:
        x_bar = where(eq(p, 0.0), 0.0, g * p * x ** (p - 1))
    if cp is not None:
        p_bar = None
    elif cx is not None and cx != 0.0:
        p_bar = g * y * log(x)
    else:
        p_bar = g * where(eq(x, 0.0) * ge(p, 0.0), 0.0, y * log(x))
    return x_bar, p_bar


def split_grad(g, a, b):
    """The share of maximum(a, b)'s signal g that goes to a: all where a > b, half at a tie (as PyTorch),
    selected, not multiplied (an infinite g where b wins still gives a 0)."""
    return where(gt(a, b), g, where(eq(a, b), 0.5 * g, 0.0))


def where_grad(y, g, c, a, b):
    return None, where(c, g, 0.0), where(c, 0.0, g)


def _broadcast_grad(y, g, gin, x):
    ax = y.attrs.get("axis")
    return (unbroadcast(g, gin) if ax is None else rsum(g, axis=ax)), None


# ---- the table ---------------------------------------------------------------------------

# leaves: their values come from outside (inputs, params) or from attrs (constants)
_op("input", 0, "{name}", same, user=False)
_op("param", 0, "{name}", same, user=False)
_op("const", 0, "{value!r}", scalar, user=False)

_op("add", 2, "{0} + {1}", bcast, lambda y, g, a, b: (g, g), label="+", infix=("+", 1), user=False)
_op("sub", 2, "{0} - {1}", bcast, lambda y, g, a, b: (g, -g), label="-", infix=("-", 1), user=False)
_op("mul", 2, "{0} * {1}", bcast, lambda y, g, a, b: (g * b, g * a), label="×", infix=("*", 2), user=False)
_op("div", 2, "{0} / {1}", bcast, lambda y, g, a, b: (g / b, -(g * y / b)), label="÷", infix=("/", 2), user=False)
_op("matmul", 2, "{0} @ {1}", matmul_shape, matmul_grad, label="@", infix=("@", 2), user=False)
_op("neg", 1, "-{0}", same, lambda y, g, x: (-g,), label="−", infix=("-", 3), user=False)
_op("pow", 2, "{0} ** {1}", bcast, pow_grad, label="^", infix=("**", 4), user=False)

_op("exp", 1, "np.exp({0})", same, lambda y, g, x: (g * y,))
_op("log", 1, "np.log({0})", same, lambda y, g, x: (g / x,))
_op("sqrt", 1, "np.sqrt({0})", same, lambda y, g, x: (g / (2.0 * y),), label="√")
_op("abs", 1, "np.abs({0})", same, lambda y, g, x: (g * sign(x),))
_op("sin", 1, "np.sin({0})", same, lambda y, g, x: (g * cos(x),))
_op("cos", 1, "np.cos({0})", same, lambda y, g, x: (-(g * sin(x)),))
_op("tanh", 1, "np.tanh({0})", same, lambda y, g, x: (g * (1.0 - y * y),))
_op("sigmoid", 1, "_sigmoid({0})", same, lambda y, g, x: (g * (y * (1.0 - y)),), label="σ", helpers=("_sigmoid",))
_op("relu", 1, "np.maximum({0}, 0.0)", same, lambda y, g, x: (where(gt(x, 0.0), g, 0.0),))
_op("softplus", 1, "np.logaddexp(0.0, {0})", same, lambda y, g, x: (g * sigmoid(x),))
_op("step", 1, "np.heaviside({0}, 0.0)", same, None)
_op("identity", 1, "{0}", same, lambda y, g, x: (g,))
_op("square", 1, "np.square({0})", same, lambda y, g, x: (g * (2.0 * x),))
_op("maximum", 2, "np.maximum({0}, {1})", bcast, lambda y, g, a, b: (split_grad(g, a, b), split_grad(g, b, a)))
_op("minimum", 2, "np.minimum({0}, {1})", bcast, lambda y, g, a, b: (split_grad(g, b, a), split_grad(g, a, b)))

_red = {"axis": None, "keepdims": False}
_op(
    "sum",
    1,
    "np.sum({0}{kw})",
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)),),
    label="Σ",
    kwargs=_red,
)
_op(
    "mean",
    1,
    "np.mean({0}{kw})",
    reduction,
    lambda y, g, x: (broadcast(g * size_ratio(y, x), x, axis=reduction_axis(y)),),
    kwargs=_red,
)
_op(
    "max",
    1,
    "np.max({0}{kw})",
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)) * max_mask(x, y, **y.attrs),),
    kwargs=_red,
)
_op(
    "logsumexp",
    1,
    "_logsumexp({0}{kw})",
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)) * exp(x - broadcast(y, x, axis=reduction_axis(y))),),
    kwargs=_red,
    helpers=("_logsumexp",),
)
_op("softmax", 1, "_softmax({0}{kw})", along_axis("softmax"), softmax_grad, kwargs={"axis": -1}, helpers=("_softmax",))
_op(
    "log_softmax",
    1,
    "_log_softmax({0}{kw})",
    along_axis("log_softmax"),
    log_softmax_grad,
    kwargs={"axis": -1},
    helpers=("_log_softmax",),
)
_op("transpose", 1, "{0}.T", transpose_shape, lambda y, g, x: (transpose(g),), label="ᵀ")

# made only by graphc: derivative building blocks, themselves differentiable where needed
_op("sign", 1, "np.sign({0})", same, None, user=False)
# comparisons: the conditions of `where` (NumPy bools, 0 and 1 in arithmetic); they have no gradient
for _name, _sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("eq", "=="), ("ne", "!=")):
    _op(_name, 2, f"{{0}} {_sym} {{1}}", bcast, None, label=_sym, infix=(_sym, 0), user=False)
_op("where", 3, "np.where({0}, {1}, {2})", where_shape, where_grad, user=False)
_op("mT", 1, "np.swapaxes({0}, -1, -2)", mT_shape, lambda y, g, x: (mT(g),), label="ᵀ", user=False)
_op(
    "expand_dims",
    1,
    "np.expand_dims({0}, {axis})",
    expand_dims_shape,
    lambda y, g, x: (rsum(g, axis=y.attrs["axis"]),),
    label="expand",
    user=False,
)
_op(
    "broadcast",
    2,
    "_broadcast({0}, {1}{kw})",
    like_second,
    lambda y, g, gin, x: _broadcast_grad(y, g, gin, x),
    kwargs={"axis": None},
    helpers=("_broadcast",),
    user=False,
)
_op(
    "unbroadcast",
    2,
    "_unbroadcast({0}, {1})",
    like_second,
    lambda y, g, gin, x: (broadcast(g, gin), None),
    helpers=("_unbroadcast",),
    label="Σ↓",
    user=False,
)
_op("size_ratio", 2, "(np.size({0}) / np.size({1}))", scalar, None, label="÷size", user=False)
_op("max_mask", 2, "_max_mask({0}, {1}{kw})", same, None, kwargs=_red, helpers=("_max_mask",), user=False)
_op("zeros_like", 1, "np.zeros_like({0})", same, None, label="0", user=False)

FUNCTIONS = {n: op for n, op in OPS.items() if op.user} | {a: OPS[n] for a, n in ALIASES.items()}
