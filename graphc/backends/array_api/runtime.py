"""Helpers that array-api op templates call, written against the array API standard.

Each takes the namespace `xp` first (the function found it once, from its arguments).
None writes into an array, so they run on JAX's immutable arrays, and none asks for a
value, so Dask's stay lazy (an index is checked where its values are at hand). `graphc
emit --target array-api` copies the ones a model uses into the module.
"""

import importlib

import array_api_compat


def _namespace(*args):
    """(xp, device) of the arguments: the array library of the ones that are arrays.
    NumPy arrays and Python numbers beside one other library's arrays (Dask data, NumPy
    params) are taken into that library; with no array at all, NumPy's."""
    arrays = [a for a in args if array_api_compat.is_array_api_obj(a)]
    others = [a for a in arrays if not array_api_compat.is_numpy_array(a)]
    if not arrays:  # lists and numbers only: NumPy's
        return importlib.import_module("array_api_compat.numpy"), None
    xp = array_api_compat.array_namespace(*(others or arrays))
    return xp, array_api_compat.device((others or arrays)[0])


# PyTorch's tensors have one kernel for what the standard writes in several ops: the helpers
# below use it (a method of the tensor: no import), the rest of the libraries the standard.


def _sigmoid(xp, x):
    if array_api_compat.is_torch_array(x):
        return x.sigmoid()
    # e^min(x, 0) / (1 + e^-|x|): 1 / (1 + e^-x) or e^x / (1 + e^x), neither overflowing
    return xp.exp(xp.minimum(x, 0.0)) / (1.0 + xp.exp(-xp.abs(x)))


def _step(xp, x):
    """np.heaviside(x, 0): 1 where x > 0, 0 where x <= 0, nan at nan."""
    return xp.where(x > 0, 1.0, xp.where(xp.isnan(x), x, 0.0))


def _logsumexp(xp, x, axis=None, keepdims=False):
    if array_api_compat.is_torch_array(x) and x.ndim:
        return x.logsumexp(_axes(x, axis), keepdims)
    m = xp.max(x, axis=axis, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0.0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else xp.squeeze(out, axis=_axes(x, axis))


def _axes(x, axis):
    """axis as a tuple of axes (None: all of x's)."""
    if axis is None:
        return tuple(range(x.ndim))
    return tuple(axis) if isinstance(axis, tuple) else (axis,)


def _softmax(xp, x, axis=-1):
    if array_api_compat.is_torch_array(x) and x.ndim:
        return x.softmax(axis)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _log_softmax(xp, x, axis=-1):
    if array_api_compat.is_torch_array(x) and x.ndim:
        return x.log_softmax(axis)
    s = x - xp.max(x, axis=axis, keepdims=True)
    return s - xp.log(xp.sum(xp.exp(s), axis=axis, keepdims=True))


def _broadcast(xp, g, x, axis=None):
    """Spread a reduction's gradient g back over the shape of x."""
    if not hasattr(g, "shape"):  # a number (1 / N): x's dtype and device
        return xp.full_like(x, g)
    if axis is not None:
        g = xp.expand_dims(g, axis=axis)
    return xp.broadcast_to(g, x.shape)


def _transpose(xp, x):
    """x with its axes reversed (NumPy's transpose; a number as it is)."""
    if not hasattr(x, "ndim") or x.ndim < 2:
        return x
    return xp.permute_dims(x, tuple(range(x.ndim))[::-1])


def _size_ratio(x, y):
    """size(x) / size(y), from the shapes."""
    return array_api_compat.size(x) / array_api_compat.size(y)


def _zeros_like(xp, x):
    return xp.zeros_like(x) if hasattr(x, "shape") else 0.0


def _unbroadcast(xp, g, x):
    """Sum g down to the shape of x: the adjoint of broadcasting."""
    shape, gshape = x.shape, g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    kept = [lead + i for i, n in enumerate(shape) if n == 1 and gshape[lead + i] != 1]
    return xp.reshape(xp.sum(g, axis=tuple(range(lead)) + tuple(kept)), shape)


def _max_mask(xp, x, y, axis=None, keepdims=False):
    """Where x attains its max y (over axis), ties sharing equally."""
    if axis is not None and not keepdims:
        y = xp.expand_dims(y, axis=axis)
    hit = xp.astype(x == y, x.dtype)
    return hit / xp.sum(hit, axis=axis, keepdims=True)


def _leaky_relu(xp, x, alpha=0.01):
    return xp.where(x > 0, x, alpha * x)


def _elu(xp, x, alpha=1.0):
    # expm1 of min(x, 0): the branch where x > 0 is not taken, and must not overflow
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0.0)))


def _norm(xp, x, axis=None, keepdims=False):
    return xp.linalg.vector_norm(x, axis=axis, keepdims=keepdims)


def _prod_others(xp, x, axis=None):
    """Each element's product of the others along axis (all others, for None): the
    products before it times those after it, exact where x has zeros."""
    if axis is None:
        return xp.reshape(_prod_others(xp, xp.reshape(x, (-1,)), 0), x.shape)
    before = xp.cumulative_prod(x, axis=axis, include_initial=True)
    after = xp.cumulative_prod(xp.flip(x, axis=axis), axis=axis, include_initial=True)
    after = xp.flip(after, axis=axis)
    n = x.shape[axis]
    return _slice(before, axis, 0, n) * _slice(after, axis, 1, n + 1)


def _slice(x, axis, start, stop, step=1):
    """x[start:stop:step] along axis."""
    axis %= x.ndim
    return x[(slice(None),) * axis + (slice(start, stop, step), ...)]


# ---- indexing, gathering and shapes ----------------------------------------------


def _index(xp, x, key):
    """x[key] with slices of negative step (which PyTorch refuses) as flips."""
    axis, out = 0, []
    for k in key:
        if k is Ellipsis:
            axis = x.ndim - (len(key) - len(out) - 1)
            out.append(k)
            continue
        if isinstance(k, slice) and k.step is not None and k.step < 0:
            first, stop, step = k.indices(x.shape[axis])
            count = len(range(first, stop, step))
            last = first + step * (count - 1)
            start, stop = (last, first + 1) if count else (0, 0)
            x = xp.flip(_slice(x, axis, start, stop, -step), axis=axis)
            k = slice(None)
        out.append(k)
        axis += 1
    return x[tuple(out)]


def _spread(xp, g, axis, start, step, n):
    """Zeros of size n along axis with g's entries at start, start + step, ...: the
    adjoint of x[start::step] along axis, made by stacking and padding (no writes)."""
    axis %= g.ndim
    count = g.shape[axis]
    if step < 0:  # the same entries, visited from the other end
        g, start, step = xp.flip(g, axis=axis), start + step * (count - 1), -step
    if step > 1 and count:  # g's entries with step - 1 zeros after each
        zeros = xp.zeros_like(g)
        g = xp.stack([g] + [zeros] * (step - 1), axis=axis + 1)
        shape = g.shape[:axis] + (count * step,) + g.shape[axis + 2 :]
        g = _slice(xp.reshape(g, shape), axis, 0, (count - 1) * step + 1)
    before, after = start, n - start - g.shape[axis]
    if not before and not after:
        return g
    # (no empty parts: Dask cannot chunk them)
    parts = [_zeros(xp, g, axis, before)] if before else []
    parts += [g] + ([_zeros(xp, g, axis, after)] if after else [])
    return xp.concat(parts, axis=axis)


def _zeros(xp, like, axis, size):
    shape = like.shape[:axis] + (size,) + like.shape[axis + 1 :]
    return xp.zeros(shape, dtype=like.dtype, device=array_api_compat.device(like))


def _unindex(xp, g, x, key):
    """Zeros shaped like x with g at x[key]: the adjoint of basic indexing."""
    axis, at = 0, []  # (axis of x, how) for each entry of the key
    for k in key:
        if k is Ellipsis:
            axis = x.ndim - (len(key) - len(at) - 1)
            at.append(None)
            continue
        at.append((axis, k))
        axis += 1
    dropped = [a for a in at if a and not isinstance(a[1], slice)]  # integers: axes g lacks
    for a, _ in dropped:
        g = xp.expand_dims(g, axis=a)
    for a, k in (a for a in at if a):
        n = x.shape[a]
        if isinstance(k, slice):
            first, stop, step = k.indices(n)
        else:
            first, step = k % n, 1
        g = _spread(xp, g, a, first, step, n)
    return g


def _integers(xp, a, what):
    """a as integers: an integer array as it is, bools as 0 and 1, and floats (as data
    files give them) if they are whole numbers (checked where values are at hand)."""
    if xp.isdtype(a.dtype, "integral"):
        return a
    if a.dtype == xp.bool:
        return xp.astype(a, xp.int64)
    if not array_api_compat.is_lazy_array(a):
        whole = xp.isfinite(a) & (a == xp.round(a))
        if not bool(xp.all(whole)):
            first = xp.argmin(xp.astype(xp.reshape(whole, (-1,)), xp.int8))
            bad = xp.reshape(a, (-1,))[first]
            raise ValueError(f"{what} must be integers, got {float(bad)}")
    return xp.astype(a, xp.int64)


def _check_range(xp, idx, lo, hi, message):
    """Raise IndexError(message(bad)) for an entry of idx outside lo..hi (where values
    are at hand: not inside jax.jit, not before a Dask compute)."""
    if array_api_compat.is_lazy_array(idx) or not idx.size:
        return
    if bool(xp.any((idx < lo) | (idx > hi))):
        flat = xp.reshape(idx, (-1,))
        bad = flat[xp.argmax(xp.astype((flat < lo) | (flat > hi), xp.int8))]
        raise IndexError(message(int(bad)))


def _take(xp, x, idx, axis=0):
    """take with its indices checked: integers in -n..n-1 (n the size of x along axis),
    of any shape (the standard's take wants one axis of them)."""
    idx = _integers(xp, idx, "take's indices")
    axis %= x.ndim
    n = x.shape[axis]
    msg = f"out of range for axis {axis} of size {n} (take's indices are {-n}..{n - 1})"
    _check_range(xp, idx, -n, n - 1, lambda bad: f"index {bad} is {msg}")
    flat = xp.reshape(idx, (-1,))
    out = xp.take(x, xp.where(flat < 0, flat + n, flat), axis=axis)
    return xp.reshape(out, x.shape[:axis] + idx.shape + x.shape[axis + 1 :])


def _untake(xp, g, idx, x, axis=0):
    """Zeros shaped like x with g's entries added at idx along axis, repeated indices
    summing: the adjoint of take, as a product with the indices' one-hot rows (no
    scatter in the standard, and none needed)."""
    axis %= x.ndim
    n = x.shape[axis]
    idx = xp.reshape(_integers(xp, idx, "take's indices"), (-1,))
    rows = xp.arange(n, device=array_api_compat.device(g))
    hot = xp.astype(xp.where(idx < 0, idx + n, idx)[:, None] == rows, g.dtype)
    pre, post = x.shape[:axis], x.shape[axis + 1 :]
    g = xp.reshape(g, pre + (idx.shape[0],) + post)  # the indices' axes as one
    out = xp.tensordot(g, hot, axes=([axis], [0]))  # pre + post + (n,)
    return xp.moveaxis(out, -1, axis)


def _one_hot(xp, labels, k, dtype):
    """Rows of the K x K identity picked by the labels, integers 0..K-1: [..., K]."""
    labels = _integers(xp, labels, "one_hot's labels")
    msg = f"is out of range for K = {k} classes (one_hot's labels are 0..{k - 1})"
    _check_range(xp, labels, 0, k - 1, lambda bad: f"label {bad} {msg}")
    classes = xp.arange(k, device=array_api_compat.device(labels))
    return xp.astype(labels[..., None] == classes, dtype)


def _unconcat(xp, g, *xs, part, axis=0):
    """Part `part` of g split along axis at the sizes of xs (what concat joined)."""
    axis %= g.ndim
    start = sum(x.shape[axis] for x in xs[:part])
    return _slice(g, axis, start, start + xs[part].shape[axis])


# ---- convolution and pooling -----------------------------------------------------
# Entry (i, j) of every window is one strided slice of the (padded) image, and its
# adjoint one _spread of it: no strided views, no writes.


def _pad(xp, x, p):
    """x zero-padded by p on both sides of its last two axes."""
    if not p:
        return x
    h, w = x.shape[-2:]
    return _spread(xp, _spread(xp, x, -2, p, 1, h + 2 * p), -1, p, 1, w + 2 * p)


def _entry(x, i, j, oh, ow, s):
    """Entry (i, j) of every window (stride s) of x's last two axes: [..., oh, ow]."""
    return x[..., i : i + s * (oh - 1) + 1 : s, j : j + s * (ow - 1) + 1 : s]


def _out_size(n, k, s, p=0):
    return (n + 2 * p - k) // s + 1


def _fold(xp, cols, shape, kh, kw, s, p=0):
    """The adjoint of taking window entries: cols(i, j) ([..., H', W']) added back where
    entry (i, j) of each window came from, into zeros of `shape` (padding dropped)."""
    h, w = shape[-2] + 2 * p, shape[-1] + 2 * p
    if kh == kw == s:  # windows that tile (pooling's): entries interleaved, no sums
        rows = [xp.stack([cols(i, j) for j in range(kw)], axis=-1) for i in range(kh)]
        out = xp.stack(rows, axis=-3)  # [..., H', kh, W', kw]
        oh, ow = out.shape[-4], out.shape[-2]
        out = xp.reshape(out, out.shape[:-4] + (oh * kh, ow * kw))
        out = _spread(xp, _spread(xp, out, -2, 0, 1, h), -1, 0, 1, w)  # zeros after
    else:
        out = None
        for i in range(kh):
            for j in range(kw):
                part = _spread(xp, _spread(xp, cols(i, j), -2, i, s, h), -1, j, s, w)
                out = part if out is None else out + part
    return _slice(_slice(out, -2, p, p + shape[-2]), -1, p, p + shape[-1]) if p else out


def _cols(xp, x, kh, kw, s, p):
    """The windows of x [N, C, H, W] as columns: [N, C * kh * kw, H' * W'] (im2col)."""
    n, c, h, w = x.shape
    oh, ow = _out_size(h, kh, s, p), _out_size(w, kw, s, p)
    x = _pad(xp, x, p)
    entries = [_entry(x, i, j, oh, ow, s) for i in range(kh) for j in range(kw)]
    return xp.reshape(xp.stack(entries, axis=2), (n, c * kh * kw, oh * ow)), oh, ow


def _conv(xp, x, w, stride=1, padding=0):
    """torch.nn.functional.conv2d without bias: x [N, C, H, W], w [F, C, kh, kw] ->
    [N, F, H', W'], one matrix product over the windows' columns."""
    f, c, kh, kw = w.shape
    cols, oh, ow = _cols(xp, x, kh, kw, stride, padding)
    return xp.reshape(xp.reshape(w, (f, c * kh * kw)) @ cols, (x.shape[0], f, oh, ow))


def _conv_input_grad(xp, g, w, shape, stride=1, padding=0):
    """x̄ of y = conv2d(x, w), x of `shape`."""
    f, c, kh, kw = w.shape
    n, _, oh, ow = g.shape
    kernel = xp.reshape(w, (f, c * kh * kw))
    cols = xp.matrix_transpose(kernel) @ xp.reshape(g, (n, f, oh * ow))
    cols = xp.reshape(cols, (n, c, kh, kw, oh, ow))
    return _fold(xp, lambda i, j: cols[:, :, i, j], shape, kh, kw, stride, padding)


def _conv_weight_grad(xp, x, g, shape, stride=1, padding=0):
    """w̄ of y = conv2d(x, w), w of `shape`."""
    f, _, kh, kw = shape
    cols, oh, ow = _cols(xp, x, kh, kw, stride, padding)
    n = x.shape[0]
    w_bar = xp.sum(xp.reshape(g, (n, f, oh * ow)) @ xp.matrix_transpose(cols), axis=0)
    return xp.reshape(w_bar, shape)


def _first_max(xp, x, y, k, s):
    """{(i, j): hit} for each window entry: the windows whose max y is first met at
    entry (i, j) in row-major order (PyTorch's choice at a tie)."""
    oh, ow = y.shape[-2:]
    taken = xp.zeros(y.shape, dtype=xp.bool, device=array_api_compat.device(y))
    hits = {}
    for i in range(k):
        for j in range(k):
            hit = (_entry(x, i, j, oh, ow, s) == y) & ~taken
            taken = taken | hit
            hits[i, j] = hit
    return hits


def _max_pool(xp, x, k, stride=None):
    """torch's max_pool2d over x's last two axes: the max of each k x k window."""
    s = stride or k
    oh, ow = _out_size(x.shape[-2], k, s), _out_size(x.shape[-1], k, s)
    y = _entry(x, 0, 0, oh, ow, s)
    for i in range(k):
        for j in range(k):
            if i or j:
                y = xp.maximum(y, _entry(x, i, j, oh, ow, s))
    return y


def _max_pool_grad(xp, g, x, y, k, stride=None):
    """x̄ of y = max_pool2d(x): each window's signal to the entry holding its max."""
    s = stride or k
    hits = _first_max(xp, x, y, k, s)
    return _fold(xp, lambda i, j: xp.where(hits[i, j], g, 0.0), x.shape, k, k, s)


def _max_pool_select(xp, a, x, y, k, stride=None):
    """a at each window's entry holding x's max y: _max_pool_grad's adjoint in g."""
    s = stride or k
    oh, ow = y.shape[-2:]
    hits = _first_max(xp, x, y, k, s)
    return sum(xp.where(hit, _entry(a, i, j, oh, ow, s), 0.0) for (i, j), hit in hits.items())


def _avg_pool(xp, x, k, stride=None):
    """torch's avg_pool2d over x's last two axes: the mean of each k x k window."""
    s = stride or k
    oh, ow = _out_size(x.shape[-2], k, s), _out_size(x.shape[-1], k, s)
    return sum(_entry(x, i, j, oh, ow, s) for i in range(k) for j in range(k)) / (k * k)


def _avg_pool_grad(xp, g, shape, k, stride=None):
    """x̄ of y = avg_pool2d(x), x of `shape`: a window's signal shared by its entries."""
    return _fold(xp, lambda i, j: g / (k * k), shape, k, k, stride or k)
