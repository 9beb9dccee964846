"""The helper every emitted module copies in, whatever its target: plain Python (it reads only
shapes), so one text serves them all; the layout finds it beside each target's runtime.py
helpers (88 columns, as ruff formats emitted modules).

An emitted function tests its arguments' shapes in one condition (layout._Prologue.check);
only when that fails does it call this, to say which argument differs from the model, and how.
"""


def _wrong_shape(declared, *shapes):
    """The error for arguments whose shapes (in the order of `declared`: name -> dims, each a
    number or a symbolic dim's name) are not the model's: the first that differs, with the
    sizes its dims were given by the arguments before it."""
    bound = {}  # a symbolic dim -> (its size, the argument it was read from)
    for (name, dims), shape in zip(declared.items(), shapes):
        shape = tuple(shape)
        fits = len(dims) == len(shape)
        for d, n in zip(dims, shape) if fits else ():
            want = bound.setdefault(d, (n, name))[0] if isinstance(d, str) else d
            fits = fits and want == n
        if not fits:
            named = ", ".join(map(str, dims))
            other = {d: bound[d] for d in dims if d in bound and bound[d][1] != name}
            where = "".join(f"; {d} = {n}, from `{a}`" for d, (n, a) in other.items())
            got = ", ".join(map(str, shape))
            message = f"`{name}` is declared with shape [{named}] but its value has shape [{got}]"
            return ValueError(message + where)
    return ValueError(f"the arguments' shapes {shapes} are not the model's: {declared}")
