"""Shapes: NumPy broadcasting and matmul rules over integer and symbolic dims.

A shape is a tuple of dims, each an int or a str (a symbolic dim such as ``N``);
``None`` stands for a shape not known yet (an undeclared input before values arrive).
``Dims`` unifies symbolic dims across the whole model: a ``D`` is the same ``D`` everywhere.
"""

from __future__ import annotations


class ShapeError(Exception):
    """A shape mismatch; the caller attaches the span of the offending expression."""


def fmt(shape) -> str:
    return "unknown" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


class Dims:
    """Union-find over symbolic dims, each class optionally bound to an integer."""

    def __init__(self):
        self.parent: dict[str, str] = {}
        self.value: dict[str, int] = {}

    def copy(self) -> Dims:
        d = Dims()
        d.parent, d.value = dict(self.parent), dict(self.value)
        return d

    def _root(self, s: str) -> str:
        while self.parent.get(s, s) != s:
            s = self.parent[s]
        return s

    def resolve(self, d):
        if isinstance(d, int):
            return d
        r = self._root(d)
        return self.value.get(r, r)

    def unify(self, a, b):
        """Make two dims equal, or raise ShapeError; returns the unified dim."""
        a, b = self.resolve(a), self.resolve(b)
        if a == b:
            return a
        if isinstance(a, int) and isinstance(b, int):
            raise ShapeError(f"{a} != {b}")
        if isinstance(a, int):
            a, b = b, a
        # a is a free symbol (root); bind it to b (an int or another root)
        if isinstance(b, int):
            self.value[a] = b
        else:
            self.parent[a] = b
        return b

    def shape(self, shape):
        if shape is None:
            return None
        if not self.parent and not self.value:  # nothing unified yet: every dim is itself
            return tuple(shape)
        return tuple(self.resolve(d) for d in shape)


def broadcast(a, b, dims: Dims):
    """NumPy broadcasting of two shapes."""
    if a is None or b is None:
        return None
    if a == b or not b:  # the common cases, equal shapes and a scalar, need no dim-by-dim walk
        return dims.shape(a)
    if not a:
        return dims.shape(b)
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = dims.resolve(a[-i]) if i <= len(a) else 1
        y = dims.resolve(b[-i]) if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            try:
                out.append(dims.unify(x, y))
            except ShapeError:
                raise ShapeError(f"shapes {fmt(a)} and {fmt(b)} do not broadcast") from None
    return tuple(reversed(out))


def matmul(a, b, dims: Dims):
    """numpy.matmul: vector·vector, matrix·vector, vector·matrix, (batched) matrix·matrix."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError(f"`@` needs vectors or matrices, got shapes {fmt(a)} and {fmt(b)}; use `*` for scalars")
    k1 = a[-1]
    k2 = b[-2] if len(b) >= 2 else b[0]
    try:
        dims.unify(k1, k2)
    except ShapeError:
        raise ShapeError(f"shapes {fmt(a)} and {fmt(b)} do not match for `@` (inner dims {k1} and {k2})") from None
    if len(a) == 1 and len(b) == 1:
        return ()
    if len(b) == 1:
        return dims.shape(a[:-1])
    if len(a) == 1:
        return dims.shape(b[:-2] + b[-1:])
    batch = broadcast(a[:-2], b[:-2], dims)
    return batch + (dims.resolve(a[-2]), dims.resolve(b[-1]))


def axis_index(shape, axis) -> int | None:
    """A normalised (non-negative) axis for shape, or ShapeError when out of range."""
    if axis is None or shape is None:
        return axis
    n = len(shape)
    if not -n <= axis < n:
        raise ShapeError(f"axis {axis} is out of range for shape {fmt(shape)} ({n} dims)")
    return axis % n


def reduce(shape, axis, keepdims: bool):
    if axis is None and not keepdims:
        return ()  # a full reduction is a scalar, whatever it reduces
    if shape is None:
        return None
    if axis is None:
        return tuple(1 for _ in shape) if keepdims else ()
    if shape == ():
        raise ShapeError(f"axis {axis} is out of range for a scalar, which has no axes: drop `axis={axis}`")
    k = axis_index(shape, axis)
    return shape[:k] + ((1,) if keepdims else ()) + shape[k + 1 :]


# ---- indexing, gathering and shapes --------------------------------------------------------


def key_text(key) -> str:
    """An index key (items: an int, a slice as (start, stop, step), or Ellipsis) as Python writes it
    between the brackets: `1:, ::2`, `..., -1`."""

    def item(k):
        if k is Ellipsis:
            return "..."
        if type(k) is int:
            return str(k)
        start, stop, step = ("" if b is None else b for b in k)
        return f"{start}:{stop}" + ("" if step == "" else f":{step}")

    return ", ".join(item(k) for k in key)


def index(shape, key, dims: Dims):
    """NumPy's basic indexing: an integer drops its axis, a slice keeps it (with its length: exact for a
    known size, a derived symbolic dim such as `N-1` for `1:` of an unknown one), `...` stands for the axes
    the key does not name."""
    if shape is None:
        return None
    at = f"[{key_text(key)}]"
    named = sum(k is not Ellipsis for k in key)
    if named and not shape:
        raise ShapeError(f"cannot index a scalar (shape []) with {at}: it has no axes")
    if named > len(shape):
        raise ShapeError(f"too many indices: {at} indexes {named} axes, but shape {fmt(shape)} has {len(shape)}")
    items = list(key)
    if Ellipsis in items:
        k = items.index(Ellipsis)
        items[k : k + 1] = [(None, None, None)] * (len(shape) - named)
    items += [(None, None, None)] * (len(shape) - len(items))
    out = []
    for axis, (d, k) in enumerate(zip(shape, items)):
        n = dims.resolve(d)
        if type(k) is int:
            if isinstance(n, int) and not -n <= k < n:
                raise ShapeError(f"index {k} is out of range for axis {axis} of size {n} ({at} of shape {fmt(shape)})")
        else:
            out.append(len(range(*slice(*k).indices(n))) if isinstance(n, int) else _sliced(n, k))
    return tuple(out)


def _sliced(n: str, k) -> str:
    """The length of slice k of a symbolic dim n: n itself, n-a for `a:` or `:-a` (so `1:` of N is N-1,
    and of N-1 is N-2), or else a name that says what it is, `len(N[::2])`."""
    start, stop, step = k
    if step in (None, 1) and (start is None or start >= 0) and (stop is None or stop < 0):
        cut = (start or 0) - (stop or 0)
        if not cut:
            return n
        base, _, minus = n.rpartition("-")
        return f"{base}-{int(minus) + cut}" if base and minus.isdigit() else f"{n}-{cut}"
    if step == -1 and start is None and stop is None:
        return n
    return f"len({n}[{key_text([k])}])"


def add(ds, dims: Dims):
    """The sum of dims: an int when all are known, else a symbolic dim that spells it, `N+M+3`."""
    ds = [dims.resolve(d) for d in ds]
    known = sum(d for d in ds if isinstance(d, int))
    names = [d for d in ds if not isinstance(d, int)]
    return "+".join(names + [str(known)] * bool(known)) if names else known


def concat(shapes, axis: int, dims: Dims):
    """numpy.concatenate: arrays of one rank, equal but along `axis`, where their sizes add up."""
    if any(s is None for s in shapes):
        return None
    first = shapes[0]
    if not first:
        raise ShapeError("concat joins arrays along an axis, and a scalar (shape []) has none: stack joins scalars")
    k = axis_index(first, axis)
    for s in shapes[1:]:
        if len(s) != len(first):
            raise ShapeError(f"concat needs arrays of one number of dims, got {fmt(first)} and {fmt(s)}")
        for j, (a, b) in enumerate(zip(first, s)):
            try:
                if j != k:
                    dims.unify(a, b)
            except ShapeError:
                raise ShapeError(
                    f"shapes {fmt(first)} and {fmt(s)} do not match for concat along axis {axis}: "
                    f"axis {j} has {dims.resolve(a)} and {dims.resolve(b)}"
                ) from None
    out = dims.shape(first)
    return out[:k] + (add([s[k] for s in shapes], dims),) + out[k + 1 :]


def stack(shapes, axis: int, dims: Dims):
    """numpy.stack: arrays of one shape, joined along a new axis of their number."""
    if any(s is None for s in shapes):
        return None
    first = shapes[0]
    for s in shapes[1:]:
        try:
            if len(s) != len(first):
                raise ShapeError
            for a, b in zip(first, s):
                dims.unify(a, b)
        except ShapeError:
            raise ShapeError(
                f"stack needs arrays of one shape, got {_sized(first, dims)} and {_sized(s, dims)}"
            ) from None
    n = len(first) + 1
    if not -n <= axis < n:
        raise ShapeError(
            f"axis {axis} is out of range for stacking arrays of shape {fmt(first)} (the result has {n} dims)"
        )
    out, k = dims.shape(first), axis % n
    return out[:k] + (len(shapes),) + out[k:]


def _sized(shape, dims: Dims) -> str:
    """A shape and, when known, its number of elements: `[2, 3] (6 elements)`."""
    known = [dims.resolve(d) for d in shape]
    if not all(isinstance(d, int) for d in known):
        return fmt(shape)
    count = 1
    for d in known:
        count *= d
    return f"{fmt(shape)} ({count} element{'s' * (count != 1)})"


# ---- convolution and pooling (and reshape) --------------------------------------------------


def _size(shape) -> tuple[int, list]:
    """A shape's element count as (the product of its int dims, its symbolic dims)."""
    k, symbols = 1, []
    for d in shape:
        if isinstance(d, int):
            k *= d
        else:
            symbols.append(d)
    return k, symbols


def _count_text(k: int, symbols: list) -> str:
    return " * ".join(([str(k)] if k != 1 or not symbols else []) + symbols) if k else "0"


def reshape(shape, target, dims: Dims):
    """numpy.reshape's shape rule over symbolic dims: target may hold one -1, the dim to infer. Where the
    element counts are known, they must agree; with symbolic dims, whatever the counts fix is inferred
    ([N, 64] -> [-1, 8, 8] makes -1 N; [N, 64] -> [M, 64] makes M N). None where the result cannot be named."""
    target = tuple(dims.resolve(d) for d in target)
    for d in target:
        if isinstance(d, int) and d < -1:
            raise ShapeError(f"reshape to {fmt(target)}: dim {d} is negative (a dim is a size, or -1 to infer one)")
    if target.count(-1) > 1:
        raise ShapeError(f"reshape to {fmt(target)}: only one dim can be -1 (the one inferred from the others)")
    if shape is None:
        return None if -1 in target else target
    shape = dims.shape(shape)
    (ka, sa), (kb, sb) = _size(shape), _size(d for d in target if d != -1)
    for s in list(sa):  # the symbols both sides have cancel
        if s in sb:
            sa.remove(s)
            sb.remove(s)
    have = f"{fmt(shape)} ({_count_text(*_size(shape))} elements)"
    if -1 in target:
        if sb:  # the inferred dim would be a quotient of symbols
            return None
        if kb == 0:
            raise ShapeError(f"cannot reshape {have} into {fmt(target)}: the other dims are 0, so -1 is undefined")
        if ka % kb and not sa:
            raise ShapeError(
                f"cannot reshape {have} into {fmt(target)}: {ka} elements are not a multiple of {kb}, "
                "the product of the other dims"
            )
        inferred = ka // kb if not sa else sa[0] if len(sa) == 1 and ka == kb else None
        return None if inferred is None else dims.shape(tuple(inferred if d == -1 else d for d in target))
    want = f"{fmt(target)} ({_count_text(*_size(target))} elements)"
    mismatch = ShapeError(f"cannot reshape {have} into {want}: the element counts must agree")
    if not sa and not sb:
        if ka != kb:
            raise mismatch
    elif len(sa) + len(sb) == 1:  # one symbol left: the counts fix it (or cannot be equal)
        k_sym, k_other = (ka, kb) if sa else (kb, ka)
        if k_sym == 0:
            if k_other != 0:
                raise mismatch
        elif k_other % k_sym:
            raise mismatch
        else:
            dims.unify((sa or sb)[0], k_other // k_sym)
    elif len(sa) == len(sb) == 1 and ka == kb and ka:
        dims.unify(sb[0], sa[0])  # (the new name joins the input's)
    return dims.shape(target)


def _check_window(what: str, kind: str, value: int, least: int) -> None:
    if value < least:
        raise ShapeError(f"{what}: {kind} must be at least {least}, got {value}")


def _window_out(size, k: int, stride: int, padding: int):
    """Positions of a k-wide window stepping by stride over size + 2 padding (None: a symbolic size)."""
    if not isinstance(size, int):
        return None if (k, stride, padding) != (1, 1, 0) else size
    return (size + 2 * padding - k) // stride + 1


def conv2d(x, w, stride: int, padding: int, dims: Dims):
    """torch.nn.functional.conv2d's shape rule: x [N, C, H, W], w [F, C, kh, kw] -> [N, F, H', W'],
    H' = (H + 2 padding - kh) // stride + 1."""
    _check_window("conv2d", "stride", stride, 1)
    _check_window("conv2d", "padding", padding, 0)
    for name, s, dims_text in (("x", x, "[N, C, H, W]"), ("w", w, "[F, C, kh, kw]")):
        if s is not None and len(s) != 4:
            raise ShapeError(f"conv2d needs {name} of shape {dims_text} (4 dims), got {fmt(s)}")
    if x is None or w is None:
        return None
    x, w = dims.shape(x), dims.shape(w)
    try:
        dims.unify(x[1], w[1])
    except ShapeError:
        raise ShapeError(
            f"conv2d: x {fmt(x)} has {x[1]} channels but the kernels w {fmt(w)} have {w[1]} "
            "(x is [N, C, H, W], w is [F, C, kh, kw])"
        ) from None
    for k in w[2:]:
        if isinstance(k, int) and k < 1:
            raise ShapeError(f"conv2d: the kernels w {fmt(w)} are empty ({fmt(w[2:])}): a kernel is at least 1x1")
    out = []
    for size, k in ((x[2], w[2]), (x[3], w[3])):
        if isinstance(size, int) and isinstance(k, int) and size + 2 * padding < k:
            raise ShapeError(
                f"conv2d: the kernel {fmt(w[2:])} of w {fmt(w)} is larger than the input {fmt(x[2:])} of x {fmt(x)}"
                + (f" padded by {padding}" if padding else "")
            )
        out.append(_window_out(size, k, stride, padding) if isinstance(k, int) else None)
    return None if None in out else dims.shape((x[0], w[0], *out))


def pool2d(what: str, x, k: int, stride: int):
    """A k x k window stepping by stride over the last two axes: [..., H, W] -> [..., H', W']."""
    _check_window(what, "k", k, 1)
    _check_window(what, "stride", stride, 1)
    if x is None:
        return None
    if len(x) < 2:
        raise ShapeError(f"{what} pools over the last two axes, [..., H, W]: x has shape {fmt(x)}")
    for size in x[-2:]:
        if isinstance(size, int) and size < k:
            raise ShapeError(f"{what}: the window {k}x{k} is larger than the input {fmt(x[-2:])} of x {fmt(x)}")
    out = [_window_out(size, k, stride, 0) for size in x[-2:]]
    return None if None in out else x[:-2] + tuple(out)
