"""Every operation, each defined once: arity, typed keywords, shape rule, derivative, properties, notation.

How an op is computed is each backend's table (graphc/backends/numpy/dialect.py: a NumPy expression
template per op); everything else about it is here. ``grad(y, g, *args)`` gets handles to the node's
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


# How tightly an expression binds, higher tighter: one scale for code, equations and pictures.
CMP, ADD, MUL, UNARY, POW, ATOM = 1, 2, 3, 4, 5, 6

REQUIRED = "<required>"  # the default of a keyword a call must give (`K` of one_hot(labels, K))
KWTYPES = (int, bool, float, tuple)  # a keyword's type; a tuple is a list of dims, `[N, -1, 8]`


@dataclass(frozen=True)
class Op:
    name: str
    arity: int | None  # how many array arguments; None: one or more (concat, stack)
    shape: ShapeRule
    grad: Callable | None = None  # None: the op has no derivative (zero everywhere)
    label: str = ""  # its name in pictures
    kwargs: dict = field(default_factory=dict)  # user-visible keyword -> default
    kwtypes: dict = field(default_factory=dict)  # keyword -> its type, one of KWTYPES
    positional: tuple = ()  # keywords a call may also give by position, after the arrays: max_pool2d(x, 2)
    infix: tuple[str, int] | None = None  # (symbol, precedence) of an operator, in the maths notation
    tex: str | None = None  # a function's LaTeX name (None: \operatorname{name})
    elementwise: bool = False  # each result element reads the arguments' elements at its place (broadcast)
    view: bool = False  # its value may share memory with its first argument (a view, or the argument)
    shape_only: frozenset = frozenset()  # positions of the arguments read only for their shape
    user: bool = True  # callable from a model (False: made only by graphc itself)

    def __post_init__(self):
        if set(self.kwargs) != set(self.kwtypes):
            raise TypeError(f"op {self.name}: every keyword needs a type, and only keywords have one")
        if not set(self.positional) <= set(self.kwargs):
            raise TypeError(f"op {self.name}: a positional keyword must be a keyword")


OPS: dict[str, Op] = {}
ALIASES = {"logistic": "sigmoid", "softrelu": "softplus"}


def _op(name, arity, shape, grad=None, **kw) -> Op:
    kw.setdefault("label", name)
    OPS[name] = Op(name, arity, shape, grad, **kw)
    return OPS[name]


def _call(name):
    """A graph-building function for op `name`, for use in derivative rules."""
    return lambda *args, **attrs: args[0].graph.op(name, *args, **attrs)


exp, log, sin, cos, sign, sigmoid, transpose, mT, expand_dims = map(
    _call, ["exp", "log", "sin", "cos", "sign", "sigmoid", "transpose", "mT", "expand_dims"]
)
broadcast, unbroadcast, size_ratio, max_mask, where, outer = map(
    _call, ["broadcast", "unbroadcast", "size_ratio", "max_mask", "where", "outer"]
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


def outer_shape(shapes, attrs, dims):
    """u vᵀ along the last axes, u: [..., m], v: [..., n] -> [..., m, n] (the leading axes broadcast)."""
    u, v = shapes
    if u is None or v is None:
        return None
    if not u or not v:
        raise S.ShapeError(f"an outer product needs two vectors, got {S.fmt(u)} and {S.fmt(v)}")
    return S.broadcast(u[:-1], v[:-1], dims) + (u[-1], v[-1])


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
        return outer(g, b), b_bar
    if ra == 1:
        a_bar = b @ g if rb == 2 else rsum(b @ expand_dims(g, axis=-1), axis=-1)
        return a_bar, outer(a, g)
    return g @ mT(b), mT(a) @ g


def outer_grad(y, g, u, v):
    """ū_i = Σ_j ḡ_ij v_j, v̄_j = Σ_i ḡ_ij u_i (batched over the leading axes)."""
    return rsum(g * expand_dims(v, axis=-2), axis=-1), rsum(g * expand_dims(u, axis=-1), axis=-2)


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
_op("input", 0, same, user=False)
_op("param", 0, same, user=False)
_op("const", 0, scalar, user=False)

# operators (written infix); `elementwise`: each result element reads its arguments' elements at its place
_ew = {"elementwise": True, "user": False}
_op("add", 2, bcast, lambda y, g, a, b: (g, g), label="+", infix=("+", ADD), **_ew)
_op("sub", 2, bcast, lambda y, g, a, b: (g, -g), label="-", infix=("-", ADD), **_ew)
_op("mul", 2, bcast, lambda y, g, a, b: (g * b, g * a), label="×", infix=("*", MUL), **_ew)
_op("div", 2, bcast, lambda y, g, a, b: (g / b, -(g * y / b)), label="÷", infix=("/", MUL), **_ew)
_op("matmul", 2, matmul_shape, matmul_grad, label="@", infix=("@", MUL), user=False)
_op("neg", 1, same, lambda y, g, x: (-g,), label="−", infix=("-", UNARY), **_ew)
_op("pow", 2, bcast, pow_grad, label="^", infix=("^", POW), **_ew)

_op("exp", 1, same, lambda y, g, x: (g * y,), tex=r"\exp", elementwise=True)
_op("log", 1, same, lambda y, g, x: (g / x,), tex=r"\log", elementwise=True)
_op("sqrt", 1, same, lambda y, g, x: (g / (2.0 * y),), label="√", elementwise=True)
_op("abs", 1, same, lambda y, g, x: (g * sign(x),), elementwise=True)
_op("sin", 1, same, lambda y, g, x: (g * cos(x),), tex=r"\sin", elementwise=True)
_op("cos", 1, same, lambda y, g, x: (-(g * sin(x)),), tex=r"\cos", elementwise=True)
_op("tanh", 1, same, lambda y, g, x: (g * (1.0 - y * y),), tex=r"\tanh", elementwise=True)
_op("sigmoid", 1, same, lambda y, g, x: (g * (y * (1.0 - y)),), label="σ", tex=r"\sigma", elementwise=True)
_op("relu", 1, same, lambda y, g, x: (where(gt(x, 0.0), g, 0.0),), elementwise=True)
_op("softplus", 1, same, lambda y, g, x: (g * sigmoid(x),), elementwise=True)
_op("step", 1, same, None, elementwise=True)
_op("identity", 1, same, lambda y, g, x: (g,), view=True, elementwise=True)
_op("square", 1, same, lambda y, g, x: (g * (2.0 * x),), elementwise=True)
_op("maximum", 2, bcast, lambda y, g, a, b: (split_grad(g, a, b), split_grad(g, b, a)), elementwise=True)
_op("minimum", 2, bcast, lambda y, g, a, b: (split_grad(g, b, a), split_grad(g, a, b)), elementwise=True)

_red = {"kwargs": {"axis": None, "keepdims": False}, "kwtypes": {"axis": int, "keepdims": bool}}
_along = {"kwargs": {"axis": -1}, "kwtypes": {"axis": int}}
_op("sum", 1, reduction, lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)),), label="Σ", **_red)
_op(
    "mean",
    1,
    reduction,
    lambda y, g, x: (broadcast(g * size_ratio(y, x), x, axis=reduction_axis(y)),),
    **_red,
)
_op(
    "max",
    1,
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)) * max_mask(x, y, **y.attrs),),
    tex=r"\max",
    **_red,
)
_op(
    "logsumexp",
    1,
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)) * exp(x - broadcast(y, x, axis=reduction_axis(y))),),
    **_red,
)
_op("softmax", 1, along_axis("softmax"), softmax_grad, **_along)
_op("log_softmax", 1, along_axis("log_softmax"), log_softmax_grad, **_along)
_op("transpose", 1, transpose_shape, lambda y, g, x: (transpose(g),), label="ᵀ", view=True)

# made only by graphc: derivative building blocks, themselves differentiable where needed
_op("sign", 1, same, None, elementwise=True, user=False)
# comparisons: the conditions of `where` (NumPy bools, 0 and 1 in arithmetic); they have no gradient
for _name, _sym, _tex in (
    ("gt", ">", ">"),
    ("ge", ">=", r"\geq"),
    ("lt", "<", "<"),
    ("le", "<=", r"\leq"),
    ("eq", "==", "="),
    ("ne", "!=", r"\neq"),
):
    _op(_name, 2, bcast, None, label=_sym, infix=(_sym, CMP), tex=_tex, **_ew)
_op("where", 3, where_shape, where_grad, elementwise=True)  # where(c, a, b): a where c is non-zero, else b
_op("outer", 2, outer_shape, outer_grad, label="outer", user=False)  # ā = ḡ bᵀ of a matrix-vector product
_op("mT", 1, mT_shape, lambda y, g, x: (mT(g),), label="ᵀ", view=True, user=False)
_op(
    "expand_dims",
    1,
    expand_dims_shape,
    lambda y, g, x: (rsum(g, axis=y.attrs["axis"]),),
    label="expand",
    view=True,
    user=False,
)
_op(
    "broadcast",
    2,
    like_second,
    lambda y, g, gin, x: _broadcast_grad(y, g, gin, x),
    kwargs={"axis": None},
    kwtypes={"axis": int},
    view=True,
    shape_only=frozenset({1}),
    user=False,
)
_op(
    "unbroadcast",
    2,
    like_second,
    lambda y, g, gin, x: (broadcast(g, gin), None),
    label="Σ↓",
    view=True,
    shape_only=frozenset({1}),
    user=False,
)
_op("size_ratio", 2, scalar, None, label="÷size", shape_only=frozenset({0, 1}), user=False)
_op("max_mask", 2, same, None, user=False, **_red)
_op("zeros_like", 1, same, None, label="0", shape_only=frozenset({0}), user=False)

# ---- more elementwise ops and reductions ---------------------------------------------------

rmean, prod_others, lt, le = map(_call, ["mean", "prod_others", "lt", "le"])


def clip_grad(y, g, x, lo, hi):
    """torch.clamp's with tensor bounds: x gets ḡ where lo <= x <= hi, lo where x is below it and lo < hi, hi
    where x is above it or hi < lo (where the bounds cross, the result is hi throughout)."""
    return (
        where(ge(x, lo) * le(x, hi), g, 0.0),
        where(lt(x, lo) * lt(lo, hi), g, 0.0),
        where(gt(x, hi), g, where(lt(hi, lo), g, 0.0)),
    )


def elu_grad(y, g, x):
    """1 where x > 0, α eˣ where x <= 0: α at 0 (as PyTorch, for any α). The exponent is x only where x < 0:
    the derivative it passes on is then 0 at x = 0 (PyTorch's elu'' there), and eˣ cannot overflow."""
    return (where(gt(x, 0.0), g, g * (y.attrs.get("alpha", 1.0) * exp(where(lt(x, 0.0), x, 0.0)))),)


def _centered(x, y):
    """x minus its mean over reduction y's axis (kept as a size-1 axis, so that it broadcasts against x)."""
    return x - rmean(x, axis=y.attrs.get("axis"), keepdims=True)


def _over(g, y):
    """g / y, but 0 where y is 0: PyTorch's gradient of std and norm where they are 0 (a kink, not 0/0). The
    division is by 1 there: no inf is made (and warned of) to be discarded, nor any 0 * inf in its derivative."""
    zero = eq(y, 0.0)
    return where(zero, 0.0, g / where(zero, 1.0, y))


def var_grad(y, g, x):
    """var = mean((x - m)²): x̄ = ḡ 2 (x - m) / N (the terms through m sum to 0)."""
    return (broadcast(g * size_ratio(y, x), x, axis=reduction_axis(y)) * (2.0 * _centered(x, y)),)


def std_grad(y, g, x):
    """std = √var: x̄ = (ḡ / std) (x - m) / N, 0 where std is 0."""
    return (broadcast(_over(g, y) * size_ratio(y, x), x, axis=reduction_axis(y)) * _centered(x, y),)


def prod_others_grad(y, g, x):
    raise y.error(
        "the second derivative of `prod` is not implemented",
        "take first derivatives of it only; for positive x, exp(sum(log(x))) is the same product and has one",
    )


_op("log1p", 1, same, lambda y, g, x: (g / (1.0 + x),), elementwise=True)
# expm1's derivative is eˣ, not y + 1: that loses eˣ's digits where y is near -1
_op("expm1", 1, same, lambda y, g, x: (g * exp(x),), elementwise=True)
_op("tan", 1, same, lambda y, g, x: (g * (1.0 + y * y),), tex=r"\tan", elementwise=True)
_op("clip", 3, where_shape, clip_grad, elementwise=True)
_alpha = {"kwtypes": {"alpha": float}, "positional": ("alpha",), "elementwise": True}
_op(
    "leaky_relu",
    1,
    same,
    lambda y, g, x: (where(gt(x, 0.0), g, y.attrs.get("alpha", 0.01) * g),),  # α at 0, as PyTorch
    kwargs={"alpha": 0.01},
    **_alpha,
)
_op("elu", 1, same, elu_grad, kwargs={"alpha": 1.0}, **_alpha)

# min's ties share the signal as max's do: max_mask marks where x attains y, whichever extreme y is
_op("min", 1, reduction, OPS["max"].grad, tex=r"\min", **_red)
_op(
    "prod",
    1,
    reduction,
    lambda y, g, x: (broadcast(g, x, axis=reduction_axis(y)) * prod_others(x, axis=y.attrs.get("axis")),),
    label="Π",
    **_red,
)
_op("var", 1, reduction, var_grad, **_red)
_op("std", 1, reduction, std_grad, **_red)
_op(
    "norm",
    1,
    reduction,
    lambda y, g, x: (broadcast(_over(g, y), x, axis=reduction_axis(y)) * x,),  # x / ‖x‖, 0 at x = 0
    label="‖·‖",
    **_red,
)
# prod's local derivative: each element's product of the others along the axis (exact where x has zeros,
# where y / x is 0 / 0)
_op(
    "prod_others",
    1,
    same,
    prod_others_grad,
    label="Π others",
    kwargs={"axis": None},
    kwtypes={"axis": int},
    user=False,
)


# ---- indexing, gathering and shapes --------------------------------------------------------

index, unindex, take, untake, concat, unconcat, zeros_like = map(
    _call, ["index", "unindex", "take", "untake", "concat", "unconcat", "zeros_like"]
)
WHOLE = (None, None, None)  # the slice `:` of an index key


def index_shape(shapes, attrs, dims):
    return S.index(shapes[0], attrs["key"], dims)


def take_shape(shapes, attrs, dims):
    """np.take: x's axis replaced by the indices' shape (rows of an embedding [V, D] by tokens [N]: [N, D])."""
    x, idx = shapes
    if x == ():
        raise S.ShapeError("take picks entries along an axis, and a scalar (shape []) has none")
    if x is None or idx is None:
        return None
    k = S.axis_index(x, attrs.get("axis", 0))
    x = dims.shape(x)
    return x[:k] + dims.shape(idx) + x[k + 1 :]


def one_hot_shape(shapes, attrs, dims):
    if attrs["K"] < 1:
        raise S.ShapeError(f"one_hot needs K >= 1 classes, got {attrs['K']}")
    return None if shapes[0] is None else dims.shape(shapes[0]) + (attrs["K"],)


def concat_shape(shapes, attrs, dims):
    return S.concat(shapes, attrs.get("axis", 0), dims)


def stack_shape(shapes, attrs, dims):
    return S.stack(shapes, attrs.get("axis", 0), dims)


def along(axis: int, item) -> tuple:
    """An index key applying item (an int or a slice) at axis, the other axes whole: for any rank when
    the axis counts from the end (`..., 2:5, :` for axis -2)."""
    return (WHOLE,) * axis + (item,) if axis >= 0 else (Ellipsis, item) + (WHOLE,) * (-axis - 1)


def _sizes(xs, axis: int) -> list[int] | None:
    """The arguments' sizes along axis, if all are known numbers."""
    out = []
    for x in xs:
        d = x.graph.dims.resolve(x.shape[axis]) if x.shape else None
        if not isinstance(d, int):
            return None
        out.append(d)
    return out


def concat_grad(y, g, *xs):
    """Each argument's slice of g: by `index` where the sizes are known (g[:, :3], g[:, 3:]), else by
    unconcat, which splits g by the arguments' sizes when it runs."""
    axis = y.attrs.get("axis", 0)
    sizes = _sizes(xs, axis)
    if sizes is None:
        return tuple(unconcat(g, *xs, part=k, axis=axis) for k in range(len(xs)))
    parts, start = [], 0
    for k, n in enumerate(sizes):  # (written g[:3], g[3:5], g[5:]: no 0 start, no stop at the end)
        parts.append(index(g, key=along(axis, (start or None, start + n if k < len(xs) - 1 else None, None))))
        start += n
    return tuple(parts)


def unconcat_grad(y, g, gin, *xs):
    """g back in its place among zeros shaped like the other parts: a concat again."""
    k = y.attrs["part"]
    parts = [g if j == k else zeros_like(x) for j, x in enumerate(xs)]
    return (concat(*parts, axis=y.attrs.get("axis", 0)),) + (None,) * len(xs)


# the argument of these ops that holds integers: take's indices, one_hot's labels
INTEGER_ARGS = {"take": 1, "untake": 1, "one_hot": 0}


def integer_role(op: str) -> str:
    """What the integers an op reads are, for errors: one_hot's labels, take's indices."""
    return "labels" if op == "one_hot" else "indices"


def integer_inputs(g) -> dict[str, int]:
    """The inputs a model uses only as integers (indices, labels): {name: the node of its first such use}.
    They keep their integer values (no cast to the model's float dtype) and have no gradient."""
    out = {}
    for name in g.inputs:
        i = g.names[name]
        uses = [(u, k) for u in g.users(i) for k, a in enumerate(g[u]["args"]) if a == i]
        if uses and all(INTEGER_ARGS.get(g[u]["op"]) == k for u, k in uses):
            out[name] = min(u for u, _ in uses)
    return out


_axis0 = {"kwargs": {"axis": 0}, "kwtypes": {"axis": int}}


# x[1:, ::2]: the key is a tuple of ints, slices as (start, stop, step) and Ellipsis (frontend/builder.py's index)
_op(
    "index",
    1,
    index_shape,
    lambda y, g, x: (unindex(g, x, key=y.attrs["key"]),),
    label="[…]",
    view=True,
    user=False,
)
_op(  # zeros shaped like x, with g at the key: the adjoint of index
    "unindex",
    2,
    like_second,
    lambda y, g, gin, x: (index(g, key=y.attrs["key"]), None),
    label="[…]↓",
    shape_only=frozenset({1}),
    user=False,
)
_op("take", 2, take_shape, lambda y, g, x, idx: (untake(g, idx, x, **y.attrs), None), **_axis0)
_op(  # zeros shaped like x, with g's entries added at the indices (np.add.at: repeats sum): take's adjoint
    "untake",
    3,
    lambda shapes, attrs, dims: shapes[2],
    lambda y, g, gin, idx, x: (take(g, idx, **y.attrs), None, None),
    label="take↓",
    shape_only=frozenset({2}),
    user=False,
    **_axis0,
)
_op("one_hot", 1, one_hot_shape, None, kwargs={"K": REQUIRED}, kwtypes={"K": int}, positional=("K",))
_op("concat", None, concat_shape, concat_grad, **_axis0)
_op(
    "stack",
    None,
    stack_shape,
    lambda y, g, *xs: tuple(index(g, key=along(y.attrs.get("axis", 0), k)) for k in range(len(xs))),
    **_axis0,
)
_op(  # part `part` of g split along axis at the sizes of the arguments after g (read for their shapes only;
    # shape_only lists positions, and these are any number)
    "unconcat",
    None,
    lambda shapes, attrs, dims: shapes[1 + attrs["part"]],
    unconcat_grad,
    label="split",
    user=False,
    **_axis0,
)


# ---- convolution and pooling ---------------------------------------------------------------

# reshape(x, [N, 1, 8, 8]): its gradient reshapes the signal back to x's shape (reshape_like, which reads
# its second argument only for the shape); reshape_like's own gradient is reshape_like again
reshape_like = _call("reshape_like")


def reshape_shape(shapes, attrs, dims):
    return S.reshape(shapes[0], attrs["shape"], dims)


_op(
    "reshape",
    1,
    reshape_shape,
    lambda y, g, x: (reshape_like(g, x),),
    kwargs={"shape": REQUIRED},
    kwtypes={"shape": tuple},
    positional=("shape",),
    view=True,
)
_op(
    "reshape_like",
    2,
    like_second,
    lambda y, g, a, x: (reshape_like(g, a), None),
    label="reshape",
    view=True,
    shape_only=frozenset({1}),
    user=False,
)

# conv2d(x, w) is bilinear: its gradients are its adjoints in x and in w applied to the signal, ops that read
# the argument they are the gradient of only for its shape; the adjoint of an adjoint is conv2d again, so the
# derivatives of every order are these three ops. Pooling likewise: max_pool2d's gradient sends each window's
# signal to the window's max (max_pool2d_grad(g, x, y), linear in g; it reads the pooled y = max_pool2d(x) not
# to find the maxima again), whose adjoint picks each window's max entry (max_pool2d_select), whose adjoint is
# max_pool2d_grad; avg_pool2d's gradient is its adjoint, whose adjoint is avg_pool2d.
conv2d, conv2d_input_grad, conv2d_weight_grad = map(_call, ["conv2d", "conv2d_input_grad", "conv2d_weight_grad"])
max_pool2d_grad, max_pool2d_select = map(_call, ["max_pool2d_grad", "max_pool2d_select"])
avg_pool2d, avg_pool2d_grad = map(_call, ["avg_pool2d", "avg_pool2d_grad"])


def conv2d_shape(shapes, attrs, dims):
    return S.conv2d(shapes[0], shapes[1], attrs.get("stride", 1), attrs.get("padding", 0), dims)


def pooled(name: str) -> ShapeRule:
    """The shape rule of a pooling op: x pooled by a k x k window (stride default k)."""

    def rule(shapes, attrs, dims):
        stride = attrs.get("stride")
        return S.pool2d(name, shapes[0], attrs["k"], attrs["k"] if stride is None else stride)

    return rule


def conv2d_grad(y, g, x, w):
    return conv2d_input_grad(g, w, x, **y.attrs), conv2d_weight_grad(x, g, w, **y.attrs)


def conv2d_input_grad_grad(y, a, g, w, x):
    """y = the adjoint in x at w applied to g, <y, a> = <g, conv2d(a, w)>: linear in g and in w."""
    return conv2d(a, w, **y.attrs), conv2d_weight_grad(a, g, w, **y.attrs), None


def conv2d_weight_grad_grad(y, b, x, g, w):
    """y = the adjoint in w at x applied to g, <y, b> = <g, conv2d(x, b)>: linear in x and in g."""
    return conv2d_input_grad(g, b, x, **y.attrs), conv2d(x, b, **y.attrs), None


_conv = {"kwargs": {"stride": 1, "padding": 0}, "kwtypes": {"stride": int, "padding": int}}
_pool = {"kwargs": {"k": REQUIRED, "stride": None}, "kwtypes": {"k": int, "stride": int}}
_op("conv2d", 2, conv2d_shape, conv2d_grad, **_conv)
_op(
    "conv2d_input_grad",
    3,
    lambda shapes, attrs, dims: shapes[2],
    conv2d_input_grad_grad,
    label="conv2dᵀ",
    shape_only=frozenset({2}),
    user=False,
    **_conv,
)
_op(
    "conv2d_weight_grad",
    3,
    lambda shapes, attrs, dims: shapes[2],
    conv2d_weight_grad_grad,
    label="conv2d w̄",
    shape_only=frozenset({2}),
    user=False,
    **_conv,
)
_op(
    "max_pool2d",
    1,
    pooled("max_pool2d"),
    lambda y, g, x: (max_pool2d_grad(g, x, y, **y.attrs),),
    positional=("k",),
    **_pool,
)
_op(  # x and y say where each window's max is, which is piecewise constant: no gradient flows to them
    "max_pool2d_grad",
    3,
    like_second,
    lambda r, a, g, x, y: (max_pool2d_select(a, x, y, **r.attrs), None, None),
    label="max_pool2dᵀ",
    user=False,
    **_pool,
)
_op(
    "max_pool2d_select",
    3,
    lambda shapes, attrs, dims: shapes[2],
    lambda r, b, a, x, y: (max_pool2d_grad(b, x, y, **r.attrs), None, None),
    label="at max",
    user=False,
    **_pool,
)
_op(
    "avg_pool2d",
    1,
    pooled("avg_pool2d"),
    lambda y, g, x: (avg_pool2d_grad(g, x, **y.attrs),),
    positional=("k",),
    **_pool,
)
_op(
    "avg_pool2d_grad",
    2,
    like_second,
    lambda y, a, g, x: (avg_pool2d(a, **y.attrs), None),
    label="avg_pool2dᵀ",
    shape_only=frozenset({1}),
    user=False,
    **_pool,
)


FUNCTIONS = {n: op for n, op in OPS.items() if op.user} | {a: OPS[n] for a, n in ALIASES.items()}
