"""Shared helpers for derivative tests: finite differences, a PyTorch mirror of a graph, random values and
random models (hypothesis)."""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import strategies as st

import graphc


def numeric_grad(model: graphc.Model, values: dict, name: str, h: float = 1e-6) -> np.ndarray:
    """Finite differences of the model's loss w.r.t. values[name], entry by entry: the five-point central
    stencil, whose error is O(h^4) (the three-point one's O(h^2) misjudged sin(b^4) at b = 2)."""
    x = np.array(values[name], dtype=np.float64)
    out = np.zeros_like(x)
    for k in range(x.size):
        step = h * max(1.0, abs(x.flat[k]))
        f = []
        for s in (2 * step, step, -step, -2 * step):
            probe = x.copy()
            probe.flat[k] += s
            f.append(float(model.evaluate({**values, name: probe})[model.loss_name]))
        out.flat[k] = (-f[0] + 8 * f[1] - 8 * f[2] + f[3]) / (12 * step)
    return out


def finite_differences_can_judge(model: graphc.Model, values: dict, bound: float = 1e3) -> bool:
    """Whether central differences are a meaningful reference here: every named value of the forward pass
    is finite and at most `bound` in size. Beyond that (exp(exp(x)) of a normal draw reaches 1e12), float64
    differences are rounding noise or miss a saturated softmax entirely (seen: 0 where graphc and PyTorch
    agree on 4.0 to 4e-16), and only an exact reference (PyTorch) can judge."""
    return all(np.all(np.isfinite(v)) and np.all(np.abs(v) <= bound) for v in model.evaluate(values).values())


def assert_matches_finite_differences(model, values: dict, name: str, grad, rtol: float = 1e-5):
    """grad agrees with central differences wherever those are trustworthy: where two step sizes
    (1e-5 and 1e-6) agree with each other. On wildly oscillating functions (sin(exp(exp(x))) at large
    x) differences are noise, and only exact references (PyTorch) can judge."""
    coarse, fine = numeric_grad(model, values, name, h=1e-5), numeric_grad(model, values, name, h=1e-6)
    scale = np.maximum(1.0, np.maximum(np.abs(coarse), np.abs(fine)))
    reliable = np.abs(coarse - fine) / scale <= rtol / 10
    assert reliable.mean() >= 0.5, f"finite differences are unreliable here: {coarse} vs {fine}"
    g = np.broadcast_to(np.asarray(grad, dtype=np.float64), fine.shape)
    assert_close(g[reliable], fine[reliable], rtol=rtol, what=f"d/d{name} vs finite differences")


def assert_close(a, b, rtol=1e-6, atol=1e-7, what=""):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} != {b.shape}"
    err = np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
    assert np.all(err <= rtol) or np.allclose(a, b, rtol=rtol, atol=atol), (
        f"{what}: max error {err.max():.3e}\n{a}\n{b}"
    )


def torch_loss_and_grad(model: graphc.Model, values: dict, wrt: list[str]):
    """Evaluate the model's forward graph op by op with PyTorch (float64) and take autograd gradients.

    An independent check of every derivative rule: it shares only the graph's structure."""
    import torch

    g = model.graph
    fn = torch_ops(torch)
    env = {}
    for i in g.order():
        n = g[i]
        if n["op"] == "const":
            env[i] = torch.tensor(n["attrs"]["value"], dtype=torch.float64)
        elif n["op"] in ("input", "param"):
            env[i] = torch.tensor(np.asarray(values[n["name"]], dtype=np.float64), requires_grad=n["name"] in wrt)
        else:
            env[i] = fn[n["op"]](*[env[a] for a in n["args"]], **n["attrs"])
    loss = env[g.loss]
    leaves = [env[g.names[w]] for w in wrt]
    if not loss.requires_grad:  # e.g. through step: no path has a derivative
        return loss.item(), {w: np.zeros(np.shape(values[w])) for w in wrt}
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    return loss.item(), {
        w: (np.zeros(np.shape(values[w])) if gr is None else gr.detach().numpy()) for w, gr in zip(wrt, grads)
    }


@functools.cache  # (one table, however often the tests ask)
def torch_ops(torch):
    F = torch.nn.functional

    def red(f):
        def go(x, axis=None, keepdims=False):
            return (
                f(x)
                if axis is None and not keepdims
                else f(x, dim=tuple(range(x.ndim)) if axis is None else axis, keepdim=keepdims)
            )

        return go

    def prod(x, axis=None, keepdims=False):  # (torch.prod takes one dim, or none)
        if axis is None:
            out = torch.prod(x)
            return out.reshape([1] * x.ndim) if keepdims else out
        return torch.prod(x, dim=axis, keepdim=keepdims)

    def index(x, key):
        """x[key] as a gather of the entries NumPy's indexing picks (torch's own slicing has no negative
        steps): PyTorch's gradient of a gather, not graphc's unindex, is the reference."""
        np_key = tuple(slice(*k) if type(k) is tuple else k for k in key)
        picked = np.arange(x.numel()).reshape(tuple(x.shape))[np_key]
        return x.reshape(-1)[torch.as_tensor(picked.copy())]

    def take(x, idx, axis=0):
        """np.take: advanced indexing of the axis moved to the front (whose backward accumulates repeated
        indices, as index_put(accumulate=True)), the picked axes moved back into its place."""
        idx = torch.as_tensor(idx.detach().numpy().astype(np.int64))  # (the mirror gives every input as floats)
        axis %= x.ndim
        y = torch.movedim(x, axis, 0)[idx]
        s = idx.ndim
        return y.permute((*range(s, s + axis), *range(s), *range(s + axis, y.ndim)))

    def lse(x, axis=None, keepdims=False):
        if axis is None:
            out = torch.logsumexp(x.reshape(-1), dim=0)
            return out.reshape([1] * x.ndim) if keepdims else out
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)

    return {
        "add": torch.add,
        "sub": torch.sub,
        "mul": torch.mul,
        "div": torch.div,
        "pow": torch.pow,
        "matmul": torch.matmul,
        "neg": torch.neg,
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "abs": torch.abs,
        "sin": torch.sin,
        "cos": torch.cos,
        "tanh": torch.tanh,
        "sigmoid": torch.sigmoid,
        "relu": torch.relu,
        "softplus": F.softplus,
        "step": lambda x: (x > 0).to(x.dtype),  # no derivative, as in graphc
        "identity": lambda x: x,
        "square": torch.square,
        "maximum": torch.maximum,
        "minimum": torch.minimum,
        "sum": red(torch.sum),
        "mean": red(torch.mean),
        "max": red(torch.amax),
        "logsumexp": lse,
        "softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
        "log_softmax": lambda x, axis=-1: torch.log_softmax(x, dim=axis),
        "transpose": lambda x: x.permute(*reversed(range(x.ndim))),
        # comparisons (no gradient) and where: c a NumPy-style condition, non-zero true
        "gt": torch.gt,
        "ge": torch.ge,
        "lt": torch.lt,
        "le": torch.le,
        "eq": torch.eq,
        "ne": torch.ne,
        "where": lambda c, a, b: torch.where(c != 0, a, b),
        # more elementwise ops and reductions
        "log1p": torch.log1p,
        "expm1": torch.expm1,
        "tan": torch.tan,
        "clip": lambda x, lo, hi: torch.clamp(x, *torch.broadcast_tensors(torch.as_tensor(lo), torch.as_tensor(hi))),
        "leaky_relu": lambda x, alpha=0.01: F.leaky_relu(x, alpha),
        "elu": lambda x, alpha=1.0: F.elu(x, alpha),
        "min": red(torch.amin),  # ties share the gradient evenly, as amax
        "prod": prod,
        "var": lambda x, axis=None, keepdims=False: torch.var(x, dim=axis, correction=0, keepdim=keepdims),
        "std": lambda x, axis=None, keepdims=False: torch.std(x, dim=axis, correction=0, keepdim=keepdims),
        "norm": lambda x, axis=None, keepdims=False: torch.linalg.vector_norm(x, dim=axis, keepdim=keepdims),
        # indexing, gathering and shapes
        "index": index,
        "take": take,
        "one_hot": lambda labels, K: F.one_hot(labels.detach().long(), K).to(torch.float64),
        "concat": lambda *xs, axis=0: torch.cat(xs, dim=axis),
        "stack": lambda *xs, axis=0: torch.stack(xs, dim=axis),
        # convolution and pooling (and reshape)
        "reshape": lambda x, shape: x.reshape(shape),
        "conv2d": lambda x, w, stride=1, padding=0: F.conv2d(x, w, stride=stride, padding=padding),
        "max_pool2d": lambda x, k, stride=None: F.max_pool2d(x, k, stride=stride or k),
        "avg_pool2d": lambda x, k, stride=None: F.avg_pool2d(x, k, stride=stride or k),
    }


# ---- random values and random models -----------------------------------------------------------

POS = "pos"  # marks an input that must be positive (log, sqrt, a base of ^, a divisor)


def make_values(spec: dict, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, s in spec.items():
        if s and s[0] == POS:
            out[name] = rng.uniform(0.5, 2.0, s[1])
        else:
            out[name] = rng.normal(size=s)
    return out


UNARY = ["exp", "sin", "cos", "tanh", "sigmoid", "softplus", "square", "abs", "relu", "identity", "-"]
REDUCE = ["sum", "mean", "max", "logsumexp"]


@st.composite
def random_models(draw):
    """A random composition of ops over inputs of random shapes, built statement by statement."""
    shapes = {"a": draw(st.sampled_from([(3,), (2, 3), (4, 2, 3)])), "b": draw(st.sampled_from([(), (3,), (2, 1)]))}
    exprs = {"a": shapes["a"], "b": shapes["b"]}
    lines = []
    for k in range(draw(st.integers(2, 6))):
        names = sorted(exprs)
        x = draw(st.sampled_from(names))
        kind = draw(st.sampled_from(["unary", "binary", "reduce", "norm"]))
        sx = exprs[x]
        if kind == "unary":
            f = draw(st.sampled_from(UNARY))
            e, s = (f"-{x}", sx) if f == "-" else (f"{f}({x})", sx)
        elif kind == "binary":
            y = draw(st.sampled_from(names))
            try:
                s = np.broadcast_shapes(sx, exprs[y])
            except ValueError:
                continue
            op = draw(st.sampled_from(["+", "-", "*", "maximum", "minimum"]))
            e = f"{op}({x}, {y})" if op[0].isalpha() else f"{x} {op} {y}"
        elif kind == "reduce" and sx:
            f = draw(st.sampled_from(REDUCE))
            axis = draw(st.integers(-len(sx), len(sx) - 1))
            keep = draw(st.booleans())
            e = f"{f}({x}, axis={axis}, keepdims={'true' if keep else 'false'})"
            s = (
                tuple(1 if i == axis % len(sx) else d for i, d in enumerate(sx))
                if keep
                else tuple(d for i, d in enumerate(sx) if i != axis % len(sx))
            )
        elif kind == "norm" and sx:
            e, s = f"{draw(st.sampled_from(['softmax', 'log_softmax']))}({x})", sx
        else:
            continue
        exprs[f"v{k}"] = s
        lines.append(f"v{k} = {e}")
    last = list(exprs)[-1]
    lines.append(f"L = sum(sin({last}))")
    return "\n".join(lines), shapes


def ops_tested_in_files() -> set[str]:
    """The ops that tests/ir/test_ops_*.py files test, forward and backward, each listing them in OPS_TESTED
    (read from the file's text, not imported: a file that needs PyTorch still counts where it is missing)."""
    import ast
    from pathlib import Path

    out: set[str] = set()
    for path in sorted((Path(__file__).parent / "ir").glob("test_ops_*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["OPS_TESTED"]:
                out |= set(ast.literal_eval(node.value))
    return out


def shapes_of(model: graphc.Model) -> dict[str, str]:
    """Each named value's shape as `graphc check` writes it: "[N, 3]", "unknown"."""
    return {name: shape for name, _, shape, _ in model.summary()}


def error_of(src: str, **values):
    """The GraphcError compiling src raises, or evaluating it on values."""
    import pytest

    with pytest.raises(graphc.GraphcError) as e:
        m = graphc.compile(src)
        if values:
            m.evaluate(values)
    return e.value
