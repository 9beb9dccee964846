"""Numba helpers that the numba target's code calls; graphc copies the ones a module uses
into it (copied: 88 columns, as ruff formats emitted modules).

Elementwise functions are ufuncs (numba.vectorize), which Numba fuses into the one loop
of an array expression: `_sigmoid(X @ W1 + b1)` is a product and one pass. Reductions
along an axis (with keepdims, max, softmax, ...), the gradients of indexing, convolution
and pooling are loops, which Numba compiles as fast as a ufunc: its NumPy has them
without an axis, or not at all. A loop sees an array as [before, along, after] around
its axis (_along), so that one loop serves any number of dims.

This file is the helpers' source, never run by graphc: `numba` here is a stand-in whose
decorators leave the functions as they are, so that emitting a module needs neither
Numba nor its compile time. The emitted module imports Numba itself.
"""

import numpy as np


class SourceOnly:
    """Numba's decorators, as no-ops: `@numba.njit(...)`, `@numba.extending.intrinsic`."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda f: f


numba = SourceOnly()


# ---- elementwise: ufuncs, fused into array expressions -------------------------------------
# A loop for float32 (computed in float64, rounded once) and one for float64: float32's
# first, as the first loop that the arguments cast to safely is the one called.


@numba.extending.intrinsic
def _bits_float(typingctx, bits):
    """The float64 with the bits of an int64: a bitcast, which vectorises (.view does not)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(signature.return_type))

    return numba.float64(numba.int64), codegen


@numba.vectorize(
    ["float32(float32)", "float64(float64)"],
    cache=True,
    fastmath={"contract"},  # (Horner's steps as fused multiply-adds: fast and exact)
)
def _exp(x):
    """e^x to an ulp, in a form that vectorises (Numba's np.exp calls libm per entry, 3x
    slower): x = k ln 2 + r with |r| <= ln(2)/2, e^r by its Taylor series, times 2^k."""
    y = min(max(x, -746.0), 710.0)  # beyond these, e^x is 0 or inf
    k = np.floor(y * 1.4426950408889634 + 0.5)
    r = y - k * 0.6931471803691238 - k * 1.9082149292705877e-10  # ln 2 in two parts
    p = 1 / 6227020800  # 1 / 13!, then Horner's steps down to 1 / 0!
    for n in (479001600, 39916800, 3628800, 362880, 40320, 5040, 720):
        p = p * r + 1 / n
    for n in (120, 24, 6, 2, 1, 1):
        p = p * r + 1 / n
    n = np.int32(k)  # (AVX2 converts packed floats to int32, not to int64)
    h = n >> 1  # 2^k as 2^h 2^(k - h): both normal floats down to k = -1076
    e = p * _bits_float((np.int64(h) + 1023) << 52)
    e *= _bits_float((np.int64(n - h) + 1023) << 52)  # (two lines: 88 columns copied)
    return e if x == y else (x if np.isnan(x) else (np.inf if x > 0 else 0.0))


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _sigmoid(x):
    # below x = -745, e^-x is inf and 1 / inf is 0: exact
    return 1.0 / (1.0 + _exp(-x))


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _softplus(x):
    """log(1 + e^x), as np.logaddexp(0, x) computes it: it never overflows."""
    return np.maximum(x, 0.0) + np.log1p(_exp(-np.abs(x)))


@numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)
def _step(x):
    """np.heaviside(x, 0): 1 where x > 0, 0 where x <= 0, NaN where x is."""
    return 1.0 if x > 0 else (x if np.isnan(x) else 0.0)


@numba.vectorize(["float32(float32, float32)", "float64(float64, float64)"], cache=True)
def _leaky_relu(x, alpha):
    return x if x > 0 else alpha * x


@numba.vectorize(["float32(float32, float32)", "float64(float64, float64)"], cache=True)
def _elu(x, alpha):
    # expm1 of min(x, 0): the branch where x > 0 is not taken, and must not overflow
    return x if x > 0 else alpha * np.expm1(np.minimum(x, 0.0))


@numba.vectorize(
    [
        "float32(boolean, float32, float32)",
        "float64(boolean, float64, float64)",
        "float32(float32, float32, float32)",
        "float64(float64, float64, float64)",
    ],
    cache=True,
)
def _where(c, a, b):
    """np.where(c, a, b), fused: a where c is not 0."""
    return a if c else b


# ---- reductions along an axis --------------------------------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _along(x, axis):
    """x as a C-contiguous [before, along, after] array around axis (a view, if x is)."""
    c = np.ascontiguousarray(x)
    axis %= c.ndim
    before = after = 1
    for k in range(axis):
        before *= c.shape[k]
    for k in range(axis + 1, c.ndim):
        after *= c.shape[k]
    return c.reshape((before, c.shape[axis], after))


@numba.njit(cache=True, error_model="numpy")
def _sum_axis(x, axis, shape):
    """x.sum(axis=axis) (of `shape`: x's without the axis), as a loop: Numba's own is slow
    to compile above 2 dims."""
    a = _along(x, axis)
    out = np.zeros((a.shape[0], a.shape[2]), a.dtype)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            for k in range(a.shape[2]):
                out[i, k] += a[i, j, k]
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _sum_to(g, first, last, shape):
    """g summed over its axes before `first` and from `last` on, into `shape` (a bias's
    gradient: [N, F, H, W] -> [F, 1, 1] sums axes 0, 2 and 3)."""
    c = np.ascontiguousarray(g)
    before = along = after = 1
    for k in range(first):
        before *= c.shape[k]
    for k in range(first, last):
        along *= c.shape[k]
    for k in range(last, c.ndim):
        after *= c.shape[k]
    a = c.reshape((before, along, after))
    out = np.zeros(along, c.dtype)
    for i in range(before):
        for j in range(along):
            for k in range(after):
                out[j] += a[i, j, k]
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _max_axis(x, axis, shape):
    """x.max(axis=axis) (of `shape`: x's without the axis), NaN winning as in NumPy."""
    a = _along(x, axis)
    out = a[:, 0, :].copy()
    for i in range(a.shape[0]):
        for j in range(1, a.shape[1]):
            for k in range(a.shape[2]):
                v = a[i, j, k]
                if v > out[i, k] or np.isnan(v):
                    out[i, k] = v
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _min_axis(x, axis, shape):
    return -_max_axis(-x, axis, shape)


@numba.njit(cache=True, error_model="numpy")
def _prod_axis(x, axis, shape):
    a = _along(x, axis)
    out = np.ones((a.shape[0], a.shape[2]), a.dtype)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            for k in range(a.shape[2]):
                out[i, k] *= a[i, j, k]
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _mean_all(x):
    a = np.asarray(x)
    return a.dtype.type(a.sum() / a.size)


@numba.njit(cache=True, error_model="numpy")
def _var_axis(x, axis, shape):
    """x.var(axis=axis): the mean squared distance from the mean, in x's dtype."""
    a = _along(x, axis)
    out = np.empty((a.shape[0], a.shape[2]), a.dtype)
    for i in range(a.shape[0]):
        for k in range(a.shape[2]):
            m = 0.0
            for j in range(a.shape[1]):
                m += a[i, j, k]
            m /= a.shape[1]
            s = 0.0
            for j in range(a.shape[1]):
                s += (a[i, j, k] - m) ** 2
            out[i, k] = s / a.shape[1]
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _var_all(x):
    a = np.asarray(x)
    return a.dtype.type(np.var(a))


@numba.njit(cache=True, error_model="numpy")
def _norm_axis(x, axis, shape):
    return np.sqrt(_sum_axis(x * x, axis, shape))


@numba.njit(cache=True, error_model="numpy")
def _norm_all(x):
    a = np.asarray(x).ravel()
    return np.sqrt((a * a).sum())


@numba.njit(cache=True, error_model="numpy")
def _shifted_exp(x, axis, finite):
    """(d, e^d, m) for d = x - m as a [before, along, after] array, m the max along axis
    (NaN winning; 0 where it is not finite, if `finite`). The exps are one flat loop, which
    vectorises; in a loop along a short axis, adding each to a sum, they did not."""
    a = _along(x, axis)
    d = np.empty_like(a)
    m = np.empty((a.shape[0], a.shape[2]), a.dtype)
    for i in range(a.shape[0]):
        for k in range(a.shape[2]):
            top = a[i, 0, k]
            for j in range(1, a.shape[1]):
                if a[i, j, k] > top or np.isnan(a[i, j, k]):
                    top = a[i, j, k]
            if finite and not np.isfinite(top):
                top = a.dtype.type(0)
            m[i, k] = top
            for j in range(a.shape[1]):
                d[i, j, k] = a[i, j, k] - top
    e = np.empty_like(d)
    flat, into = d.reshape(d.size), e.reshape(e.size)
    for f in range(flat.size):
        into[f] = _exp(flat[f])
    return d, e, m


@numba.njit(cache=True, error_model="numpy")
def _logsumexp_axis(x, axis, shape):
    """log(sum(exp(x), axis)), shifted by the max (0 where it is not finite)."""
    _, e, m = _shifted_exp(x, axis, True)
    for i in range(e.shape[0]):
        for k in range(e.shape[2]):
            total = 0.0
            for j in range(e.shape[1]):
                total += e[i, j, k]
            m[i, k] += np.log(total)
    return m.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _logsumexp_all(x):
    a = np.asarray(x).ravel()
    m = a.max()
    if not np.isfinite(m):
        m = a.dtype.type(0)
    return np.log(_exp(a - m).sum()) + m


@numba.njit(cache=True, error_model="numpy")
def _softmax(x, axis):
    """exp(x) / sum(exp(x)) along axis, shifted by the max."""
    _, e, _ = _shifted_exp(x, axis, False)
    for i in range(e.shape[0]):
        for k in range(e.shape[2]):
            total = 0.0
            for j in range(e.shape[1]):
                total += e[i, j, k]
            for j in range(e.shape[1]):
                e[i, j, k] /= total
    return e.reshape(x.shape)


@numba.njit(cache=True, error_model="numpy")
def _log_softmax(x, axis):
    """x - logsumexp(x) along axis, shifted by the max."""
    d, e, _ = _shifted_exp(x, axis, False)
    for i in range(d.shape[0]):
        for k in range(d.shape[2]):
            total = 0.0
            for j in range(d.shape[1]):
                total += e[i, j, k]
            s = np.log(total)
            for j in range(d.shape[1]):
                d[i, j, k] -= s
    return d.reshape(x.shape)


@numba.njit(cache=True, error_model="numpy")
def _keep_all(v, x):
    """A full reduction's value v, shaped as keepdims leaves it: [1, 1, ...] for x."""
    y = np.full(x.shape, v)
    for _ in range(x.ndim):  # each axis cut to its first entry, then moved last
        y = np.moveaxis(y[:1], 0, -1)
    return y.copy()


@numba.njit(cache=True, error_model="numpy")
def _max_mask(x, y, axis):
    """Where x attains its max y (over axis; y with the axis kept), ties sharing equally."""
    a, top = _along(x, axis), _along(y, axis)
    out = np.zeros_like(a)
    for i in range(a.shape[0]):
        for k in range(a.shape[2]):
            count = 0
            for j in range(a.shape[1]):
                count += a[i, j, k] == top[i, 0, k]
            for j in range(a.shape[1]):
                if a[i, j, k] == top[i, 0, k]:
                    out[i, j, k] = 1 / count
    return out.reshape(x.shape)


@numba.njit(cache=True, error_model="numpy")
def _max_mask_all(x, y):
    a = np.asarray(x)
    hit = (a.ravel() == y).astype(a.dtype)
    return (hit / hit.sum()).reshape(a.shape)


@numba.njit(cache=True, error_model="numpy")
def _prod_others(x, axis):
    """Each element's product of the others along axis: the products before it times
    those after it, exact where x has zeros (where prod / x is 0/0)."""
    a = _along(x, axis)
    out = np.empty_like(a)
    for i in range(a.shape[0]):
        for k in range(a.shape[2]):
            p = a.dtype.type(1)
            for j in range(a.shape[1]):
                out[i, j, k] = p
                p *= a[i, j, k]
            p = a.dtype.type(1)
            for j in range(a.shape[1] - 1, -1, -1):
                out[i, j, k] *= p
                p *= a[i, j, k]
    return out.reshape(x.shape)


@numba.njit(cache=True, error_model="numpy")
def _prod_others_all(x):
    a = np.asarray(x)
    return _prod_others(a.reshape(a.size), 0).reshape(a.shape)


# ---- broadcasting's adjoint, for shapes known only when the code runs ----------------------


@numba.njit(cache=True, error_model="numpy")
def _unbroadcast(g, x):
    """g summed down to the shape of x: each entry of g added where it came from in x."""
    g = np.asarray(g)
    gs, xs = g.shape, np.shape(x)
    out = np.zeros(xs, g.dtype)
    into, flat = out.reshape(out.size), g.ravel()
    lead = len(gs) - len(xs)
    for i in range(flat.size):
        rest, at, step = i, 0, 1
        for k in range(len(gs) - 1, lead - 1, -1):
            n = xs[k - lead]
            if n != 1:
                at += rest % gs[k] * step
            rest //= gs[k]
            step *= n
        into[at] += flat[i]
    return out


# ---- indexing, gathering and shapes --------------------------------------------------------


def _integers(a, name):
    """Argument `name` as int64 indices or labels: integers as they are, bools as 0 and 1,
    floats (as data files give them) if they are whole numbers."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return np.asarray(a, dtype=np.int64, order="C")
    whole = np.isfinite(a) & (a == np.round(a))
    if not whole.all():
        raise ValueError(f"`{name}` must be integers, got {a[~whole].flat[0]}")
    return np.asarray(a, dtype=np.int64, order="C")


@numba.njit(cache=True, error_model="numpy")
def _unindex(g, out, key):
    """out (zeros shaped like x) with g at out[key]: the adjoint of basic indexing."""
    out[key] = g
    return out


@numba.njit(cache=True, error_model="numpy")
def _take(x, idx, axis, shape):
    """np.take(x, idx, axis) (of `shape`), its indices checked: integers in -n..n-1, n the
    size of x along axis. (Numba's np.take cannot take an array of indices along an axis.)"""
    a = _along(x, axis)
    at = np.asarray(idx).ravel()
    n = a.shape[1]
    out = np.empty((a.shape[0], at.size, a.shape[2]), a.dtype)
    for j in range(at.size):
        if not -n <= at[j] < n:
            raise IndexError("take's indices are out of range for the axis")
    for i in range(a.shape[0]):
        for j in range(at.size):
            out[i, j] = a[i, at[j] % n]
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _untake(g, idx, x, axis):
    """Zeros shaped like x with g's entries added at idx along axis, repeated indices
    summing: the adjoint of take (whose indices were checked)."""
    g = np.asarray(g)
    out = np.zeros(np.shape(x), g.dtype)
    where = _along(out, axis)  # (a view of out: out is contiguous)
    at = np.asarray(idx).ravel()
    n = where.shape[1]
    parts = np.ascontiguousarray(g).reshape((where.shape[0], at.size, where.shape[2]))
    for i in range(where.shape[0]):
        for j in range(at.size):
            for k in range(where.shape[2]):
                where[i, at[j] % n, k] += parts[i, j, k]
    return out


@numba.njit(cache=True, error_model="numpy")
def _one_hot(labels, k, dtype):
    """Rows of the K x K identity picked by the labels, integers 0..K-1: [..., K]."""
    lab = np.asarray(labels)
    out = np.zeros(lab.shape + (k,), dtype)
    rows = out.reshape((lab.size, k))
    for i, v in enumerate(lab.ravel()):
        if not 0 <= v < k:
            raise IndexError("one_hot's labels are out of range 0..K-1")
        rows[i, v] = 1
    return out


@numba.njit(cache=True, error_model="numpy")
def _part(g, start, size, axis):
    """g's entries start..start+size-1 along axis: the gradient of a part of a concat."""
    return np.moveaxis(np.moveaxis(g, axis, 0)[start : start + size], 0, axis)


# ---- convolution and pooling: loops over the windows ---------------------------------------


@numba.njit(cache=True, error_model="numpy")
def _columns(x, kh, kw, stride, padding):
    """x [N, C, H, W]'s kh x kw windows as columns (im2col): [N, C kh kw, H' W'], zero
    where a window covers the padding."""
    n, c, h, w = x.shape
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    out = np.zeros((n, c * kh * kw, oh * ow), x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    row = (ch * kh + i) * kw + j
                    for y in range(oh):
                        r = y * stride + i - padding
                        if 0 <= r < h:
                            for z in range(ow):
                                q = z * stride + j - padding
                                if 0 <= q < w:
                                    out[b, row, y * ow + z] = x[b, ch, r, q]
    return out


@numba.njit(cache=True, error_model="numpy")
def _conv(x, w, stride, padding):
    """torch.nn.functional.conv2d without bias (a cross-correlation): x [N, C, H, W] and
    w [F, C, kh, kw] -> [N, F, H', W'], one matrix product per image."""
    f, c, kh, kw = w.shape
    cols = _columns(x, kh, kw, stride, padding)
    n = x.shape[0]
    oh = (x.shape[2] + 2 * padding - kh) // stride + 1
    ow = (x.shape[3] + 2 * padding - kw) // stride + 1
    kernels = np.ascontiguousarray(w).reshape((f, c * kh * kw))
    out = np.empty((n, f, oh * ow), x.dtype)
    for b in range(n):
        out[b] = kernels @ cols[b]
    return out.reshape((n, f, oh, ow))


@numba.njit(cache=True, error_model="numpy")
def _conv_input_grad(g, w, shape, stride, padding):
    """x̄ of y = conv2d(x, w), x of `shape`: each output's signal spread back over its
    window, weighted by w (col2im)."""
    f, c, kh, kw = w.shape
    n, _, oh, ow = g.shape
    h, wd = shape[2], shape[3]
    kernels = np.ascontiguousarray(w).reshape((f, c * kh * kw)).T
    signals = np.ascontiguousarray(g).reshape((n, f, oh * ow))
    out = np.zeros(shape, g.dtype)
    for b in range(n):
        cols = kernels @ signals[b]
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    row = (ch * kh + i) * kw + j
                    for y in range(oh):
                        r = y * stride + i - padding
                        if 0 <= r < h:
                            for z in range(ow):
                                q = z * stride + j - padding
                                if 0 <= q < wd:
                                    out[b, ch, r, q] += cols[row, y * ow + z]
    return out


@numba.njit(cache=True, error_model="numpy")
def _conv_weight_grad(x, g, shape, stride, padding):
    """w̄ of y = conv2d(x, w), w of `shape`: each kernel entry's signal times the inputs
    it met, summed."""
    f, c, kh, kw = shape
    cols = _columns(x, kh, kw, stride, padding)
    n, _, m = cols.shape
    signals = np.ascontiguousarray(g).reshape((n, f, m))
    out = np.zeros((f, c * kh * kw), g.dtype)
    for b in range(n):
        out += signals[b] @ cols[b].T
    return out.reshape(shape)


@numba.njit(cache=True, error_model="numpy")
def _planes(x):
    """x [..., H, W] as a contiguous [M, H, W] array: the images pooling works on."""
    c = np.ascontiguousarray(x)
    h, w = c.shape[-2], c.shape[-1]
    return c.reshape((c.size // (h * w), h, w))


@numba.njit(cache=True, error_model="numpy")
def _max_pool(x, k, stride):
    """torch's max_pool2d over x's last two axes: the max of each k x k window, stepping
    by stride (NaN winning)."""
    a = _planes(x)
    oh = (a.shape[1] - k) // stride + 1
    ow = (a.shape[2] - k) // stride + 1
    out = np.empty((a.shape[0], oh, ow), a.dtype)
    for p in range(a.shape[0]):
        for y in range(oh):
            for z in range(ow):
                m = a[p, y * stride, z * stride]
                for i in range(k):
                    for j in range(k):
                        v = a[p, y * stride + i, z * stride + j]
                        if v > m or np.isnan(v):
                            m = v
                out[p, y, z] = m
    return out.reshape(x.shape[:-2] + (oh, ow))


@numba.njit(cache=True, error_model="numpy")
def _max_pool_grad(g, x, y, k, stride):
    """x̄ of y = max_pool2d(x): each window's signal goes to the entry holding its max
    (the first in row-major order, at a tie, as PyTorch)."""
    a, signal, top = _planes(x), _planes(g), _planes(y)
    out = np.zeros(a.shape, signal.dtype)
    for p in range(a.shape[0]):
        for r in range(top.shape[1]):
            for q in range(top.shape[2]):
                done = False
                for i in range(k):
                    for j in range(k):
                        at = (p, r * stride + i, q * stride + j)
                        if not done and a[at] == top[p, r, q]:
                            out[at] += signal[p, r, q]
                            done = True
    return out.reshape(x.shape)


@numba.njit(cache=True, error_model="numpy")
def _max_pool_select(b, x, y, k, stride):
    """b at each window's entry holding x's max y (the first, at a tie): the adjoint of
    _max_pool_grad in g."""
    a, picked, top = _planes(x), _planes(b), _planes(y)
    out = np.zeros(top.shape, picked.dtype)
    for p in range(a.shape[0]):
        for r in range(top.shape[1]):
            for q in range(top.shape[2]):
                done = False
                for i in range(k):
                    for j in range(k):
                        at = (p, r * stride + i, q * stride + j)
                        if not done and a[at] == top[p, r, q]:
                            out[p, r, q] = picked[at]
                            done = True
    return out.reshape(np.shape(y))


@numba.njit(cache=True, error_model="numpy")
def _avg_pool(x, k, stride):
    """torch's avg_pool2d over x's last two axes: the mean of each k x k window."""
    a = _planes(x)
    oh = (a.shape[1] - k) // stride + 1
    ow = (a.shape[2] - k) // stride + 1
    out = np.empty((a.shape[0], oh, ow), a.dtype)
    for p in range(a.shape[0]):
        for y in range(oh):
            for z in range(ow):
                s = 0.0
                for i in range(k):
                    for j in range(k):
                        s += a[p, y * stride + i, z * stride + j]
                out[p, y, z] = s / (k * k)
    return out.reshape(x.shape[:-2] + (oh, ow))


@numba.njit(cache=True, error_model="numpy")
def _avg_pool_grad(g, shape, k, stride):
    """x̄ of y = avg_pool2d(x), x of `shape`: each window's signal shared equally by its
    k * k entries."""
    signal = _planes(g)
    out = np.zeros(shape, signal.dtype)
    into = _planes(out)  # (a view of out: out is contiguous)
    for p in range(signal.shape[0]):
        for y in range(signal.shape[1]):
            for z in range(signal.shape[2]):
                share = signal[p, y, z] / (k * k)
                for i in range(k):
                    for j in range(k):
                        into[p, y * stride + i, z * stride + j] += share
    return out


def _float32(v):
    """A float32 module's result: Numba hands back float32 scalars as Python floats."""
    return np.float32(v) if type(v) is float else v
