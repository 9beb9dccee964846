"""NumPy helpers that op code templates call.

The interpreter runs them, and ``graphc emit`` copies the source of the ones a model
uses into the generated module, so both run exactly the same numerics.
"""

import numpy as np


@np.errstate(over="ignore")  # as a decorator: half the cost of a `with` block per call
def _sigmoid(x):
    # below x = -709, exp(-x) is inf and 1 / inf is 0: exact, and no warning
    return 1.0 / (1.0 + np.exp(-x))


# Reductions are array methods (x.max(...)), not np.max(x, ...): the functions' Python wrappers cost
# a microsecond a call, which is a tenth of a small model's step.


def _logsumexp(x, axis=None, keepdims=False):
    x = np.asarray(x)  # (a scalar or a list may come here, and neither has .max)
    m = x.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else out.squeeze(axis=axis)


def _softmax(x, axis=-1):
    x = np.asarray(x)  # (an input given as a list has no .max)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=-1):
    x = np.asarray(x)
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def _broadcast(g, x, axis=None):
    """Spread a reduction's gradient g back over the shape of x (read-only view)."""
    if axis is not None:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, np.shape(x))


def _unbroadcast(g, x):
    """Sum g down to the shape of x: the adjoint of NumPy broadcasting."""
    shape, gshape = np.shape(x), np.shape(g)
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    kept = [lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1]
    return np.reshape(np.sum(g, axis=tuple(range(lead)) + tuple(kept)), shape)


def _max_mask(x, y, axis=None, keepdims=False):
    """Where x attains its max y (over axis), ties sharing equally."""
    x = np.asarray(x)
    if axis is not None and not keepdims:
        y = np.expand_dims(y, axis)
    # (as x's dtype: bools over their count would be float64 for float32 x)
    hit = (x == y).astype(x.dtype)
    return hit / hit.sum(axis=axis, keepdims=True)


# ---- more elementwise ops and reductions ---------------------------------------------------


def _leaky_relu(x, alpha=0.01):
    return np.where(x > 0, x, alpha * x)


def _elu(x, alpha=1.0):
    # expm1 of min(x, 0): the branch where x > 0 is not taken, and must not overflow
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _prod_others(x, axis=None):
    """Each element's product of the others along axis (all others, for None): the
    products before it times those after it, exact where x has zeros (where prod / x
    is 0/0)."""
    x = np.asarray(x)
    if axis is None:
        return _prod_others(x.reshape(-1), 0).reshape(x.shape)
    x = np.moveaxis(x, axis, -1)
    one = np.ones_like(x[..., :1])
    before = np.concatenate([one, np.cumprod(x[..., :-1], axis=-1)], axis=-1)
    after = np.cumprod(x[..., :0:-1], axis=-1)[..., ::-1]  # x[k+1] ... x[n-1], k < n-1
    return np.moveaxis(before * np.concatenate([after, one], axis=-1), -1, axis)


# ---- indexing, gathering and shapes --------------------------------------------------------


def _unindex(g, x, key):
    """Zeros shaped like x with g at x[key]: the adjoint of basic indexing."""
    out = np.zeros(np.shape(x), dtype=np.result_type(g))
    out[key] = g
    return out


def _integers(a, what):
    """a as integers: an integer array as it is, bools as 0 and 1 (not NumPy's masks), and floats
    (as data files and the float dtype give them) if they are whole numbers."""
    a = np.asarray(a)
    if a.dtype.kind in "iub":
        return a.astype(np.int64) if a.dtype.kind == "b" else a
    whole = np.isfinite(a) & (a == np.round(a))
    if not whole.all():
        raise ValueError(f"{what} must be integers, got {a[~whole].flat[0]}")
    return a.astype(np.int64)


def _out_of_range(idx, lo, hi):
    """The first entry of idx outside lo..hi, or None."""
    bad = idx[(idx < lo) | (idx > hi)]
    return bad.flat[0] if bad.size else None


def _take(x, idx, axis=0):
    """np.take with its indices checked: integers in -n..n-1 (n the size of x along axis)."""
    x, idx = np.asarray(x), _integers(idx, "take's indices")
    n = x.shape[axis]
    bad = _out_of_range(idx, -n, n - 1)
    if bad is not None:
        msg = f"index {bad} is out of range for axis {axis} of size {n}"
        raise IndexError(f"{msg} (take's indices are {-n}..{n - 1})")
    return np.take(x, idx, axis=axis)


def _untake(g, idx, x, axis=0):
    """Zeros shaped like x with g's entries added at idx along axis, repeated indices
    summing (np.add.at): the adjoint of take (whose indices were checked)."""
    out = np.zeros(np.shape(x), dtype=np.result_type(g))
    at = (slice(None),) * (axis % out.ndim) + (_integers(idx, "take's indices"),)
    np.add.at(out, at, g)
    return out


def _one_hot(labels, k, dtype):
    """Rows of the K x K identity picked by the labels, integers 0..K-1: [..., K]."""
    labels = _integers(labels, "one_hot's labels")
    bad = _out_of_range(labels, 0, k - 1)
    if bad is not None:
        msg = f"label {bad} is out of range for K = {k} classes"
        raise IndexError(f"{msg} (one_hot's labels are 0..{k - 1})")
    return np.eye(k, dtype=dtype)[labels]


def _unconcat(g, *xs, part, axis=0):
    """Part `part` of g split along axis at the sizes of xs (the arrays concat joined): its gradient."""
    g = np.asarray(g)
    axis %= g.ndim
    start = sum(np.shape(x)[axis] for x in xs[:part])
    return g[(slice(None),) * axis + (slice(start, start + np.shape(xs[part])[axis]),)]


# ---- convolution and pooling ---------------------------------------------------------------
# (Copied into emitted modules: 88 columns, as ruff formats those.) The windows of an
# image are a strided view (_windows), worked one window entry at a time: entry (i, j)
# of all windows in one pass. NumPy's reductions over a 6-d view's two small trailing
# axes are ~10x slower.


def _windows(x, kh, kw, stride, padding=0):
    """A read-only view of the kh x kw windows of x's last two axes (zero-padded by
    padding) stepping by stride: [..., H', W', kh, kw]; [..., i, j] is entry (i, j) of
    every window."""
    x = np.asarray(x)
    if padding:
        p = padding
        *lead, h, w = x.shape
        padded = np.zeros((*lead, h + 2 * p, w + 2 * p), x.dtype)
        padded[..., p:-p, p:-p] = x
        x = padded
    *lead, h, w = x.shape
    *steps, sh, sw = x.strides
    shape = (*lead, (h - kh) // stride + 1, (w - kw) // stride + 1, kh, kw)
    steps = (*steps, sh * stride, sw * stride, sh, sw)
    return np.lib.stride_tricks.as_strided(x, shape, steps, writeable=False)


def _fold(cols, shape, stride, padding=0):
    """The adjoint of _windows: cols[i, j] ([..., H', W'], a value for entry (i, j) of
    every window) added back where each entry came from, into zeros of `shape`
    (overlapping windows add up; the padding is dropped)."""
    kh, kw, *_, oh, ow = cols.shape
    *lead, h, w = shape
    p, s = padding, stride
    out = np.zeros((*lead, h + 2 * p, w + 2 * p), cols.dtype)
    for i in range(kh):
        for j in range(kw):
            out[..., i : i + s * oh : s, j : j + s * ow : s] += cols[i, j]
    return out[..., p : p + h, p : p + w] if p else out


def _conv(x, w, stride=1, padding=0):
    """torch.nn.functional.conv2d without bias (a cross-correlation): x [N, C, H, W] and
    w [F, C, kh, kw] -> [N, F, H', W'], one matrix product per image, its windows as the
    columns (im2col)."""
    f, c, kh, kw = w.shape
    win = _windows(x, kh, kw, stride, padding)
    n, _, oh, ow = win.shape[:4]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)  # (a copy)
    return (w.reshape(f, c * kh * kw) @ cols).reshape(n, f, oh, ow)


def _conv_input_grad(g, w, shape, stride=1, padding=0):
    """x̄ of y = conv2d(x, w), x of `shape`: each output's signal spread back over its
    window, weighted by w."""
    f, c, kh, kw = w.shape
    n, _, oh, ow = g.shape
    cols = w.reshape(f, c * kh * kw).T @ g.reshape(n, f, oh * ow)
    cols = cols.reshape(n, c, kh, kw, oh, ow).transpose(2, 3, 0, 1, 4, 5)
    return _fold(cols, shape, stride, padding)


def _conv_weight_grad(x, g, shape, stride=1, padding=0):
    """w̄ of y = conv2d(x, w), w of `shape`: each kernel entry's signal times the inputs
    it met, summed."""
    f, c, kh, kw = shape
    win = _windows(x, kh, kw, stride, padding)
    n, _, oh, ow = win.shape[:4]
    cols = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)
    w_bar = (g.reshape(n, f, oh * ow) @ cols.transpose(0, 2, 1)).sum(axis=0)
    return w_bar.reshape(shape)


def _first_max(win, y):
    """(i, j, hit) for each window entry (i, j): hit marks the windows whose max y is
    first met at that entry, in row-major order (PyTorch's choice when entries tie: the
    whole signal goes to that one)."""
    taken = np.zeros(np.shape(y), bool)
    for i in range(win.shape[-2]):
        for j in range(win.shape[-1]):
            hit = win[..., i, j] == y
            hit &= ~taken
            taken |= hit
            yield i, j, hit


def _max_pool(x, k, stride=None):
    """torch's max_pool2d over x's last two axes: the max of each k x k window, stepping
    by stride (default k)."""
    win = _windows(x, k, k, stride or k)
    entries = [win[..., i, j] for i in range(k) for j in range(k)]
    y = np.maximum(entries[0], entries[-1])  # (k = 1: the one entry, copied)
    for e in entries[1:-1]:
        np.maximum(y, e, out=y)
    return y


def _max_pool_grad(g, x, y, k, stride=None):
    """x̄ of y = max_pool2d(x): each window's signal goes to the entry holding its max
    (the first, at a tie)."""
    s = stride or k
    out = np.zeros(np.shape(x), np.result_type(g, x))
    oh, ow = np.shape(y)[-2:]
    for i, j, hit in _first_max(_windows(x, k, k, s), y):
        entries = out[..., i : i + s * oh : s, j : j + s * ow : s]
        if s < k:  # overlapping windows share entries
            entries += np.where(hit, g, 0.0)
        else:  # a write, not a read and a write: strided passes are the cost
            entries[...] = np.where(hit, g, 0.0)
    return out


def _max_pool_select(a, x, y, k, stride=None):
    """a at each window's entry holding x's max y (the first, at a tie): the adjoint of
    _max_pool_grad in g."""
    picked = _windows(a, k, k, stride or k)
    hits = _first_max(_windows(x, k, k, stride or k), y)
    return sum(np.where(hit, picked[..., i, j], 0.0) for i, j, hit in hits)


def _avg_pool(x, k, stride=None):
    """torch's avg_pool2d over x's last two axes: the mean of each k x k window,
    stepping by stride (default k)."""
    win = _windows(x, k, k, stride or k)
    return sum(win[..., i, j] for i in range(k) for j in range(k)) / (k * k)


def _avg_pool_grad(g, shape, k, stride=None):
    """x̄ of y = avg_pool2d(x), x of `shape`: each window's signal shared equally by its
    k * k entries."""
    return _fold(np.broadcast_to(g / (k * k), (k, k, *np.shape(g))), shape, stride or k)
