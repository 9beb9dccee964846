"""Differential test (issue 11, item 18): every way graphc computes a model must agree.

Hypothesis writes random models -- alias lines (`net = z`), fan-out, every user op of graphc/ops.py and
every infix operator, broadcasting, reductions with axis/keepdims, kinks at exact zeros and ties (values
come from a grid of quarters, so relu/abs/step/max/maximum/minimum/pow meet 0 and ties often), names
that are Python keywords (`lambda`, `class`, `in`, `None`) or shadow what an emitted module uses (`np`,
`np_`, `_sigmoid`, `_softmax`, `tmp1`, symbolic dims named `tmp1` or `np`), params with and without
numeric defaults, symbolic dims bound only through params (`param W: [D, H]; param b: [H] = 0` with H in
no input), scalar inputs (`input x: []`), inputs of unknown shape -- and values passed as NumPy users
pass them (lists, Python floats, ints, bools). Each model is run through:

- two references written here, from the model *text* (not graphc's graph): a NumPy forward pass, and,
  where installed, PyTorch float64 autograd (PyTorch's conventions at kinks, which SPEC §1 adopts);
- the interpreter: Model.evaluate, Model.loss_and_grad, Model.hessian;
- the emitted module (Model.compiled): forward and loss_and_grad with every param passed and with the
  numeric defaults omitted, in float64 (tight) and float32 (every returned array float32, loose), and
  the order-2 module's loss_and_grad (the whole gradient), hvp and hessian against Model.hessian;
- the array-api module on every array library installed (tests/arraylibs.py), against the NumPy module.

The examples are derandomized and bounded; `-m slow` runs a larger batch. The regression cases at the
end are issue 11's own models (items 1-8).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import math
import operator
import re
from dataclasses import dataclass, field

import arraylibs
import numpy as np
import pytest
from gradtools import torch_ops
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import graphc
from graphc.frontend import builder
from graphc.ir import ops

try:
    import torch
except ImportError:  # the comparisons with PyTorch are skipped; everything else runs
    torch = None
try:
    import array_api_compat
except ImportError:  # the array-api module is not run; everything else is
    array_api_compat = None

QUICK = settings(
    max_examples=45,
    report_multiple_bugs=False,  # (against a broken tree: one shrunk example, in bounded time)
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
SLOW = settings(QUICK, max_examples=400, report_multiple_bugs=True)

TIGHT = 1e-9  # interpreter vs emitted float64, and vs the NumPy reference
TORCH = 1e-8  # vs PyTorch float64
LOOSE = 2e-3  # float32 vs float64
ARRAY_API = 1e-10  # the array-api module, on each array library, vs the NumPy module


# ==== the references: model text -> NumPy / PyTorch, independently of graphc ==========================

NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _pyname(name: str) -> str:
    """A model name as an identifier the reference's Python parser accepts."""
    return "kw_" + name if keyword.iskeyword(name) else name


def _pytext(expr: str) -> str:
    expr = re.sub(r"\w+", lambda m: _pyname(m.group(0)) if not m.group(0)[0].isdigit() else m.group(0), expr)
    return expr.replace("^", "**")


@dataclass
class Parsed:
    inputs: dict = field(default_factory=dict)  # name -> declared dims (None: no shape given)
    params: dict = field(default_factory=dict)  # name -> (dims, numeric default or None)
    consts: dict = field(default_factory=dict)
    stmts: dict = field(default_factory=dict)  # name -> ast expression (in file order)
    loss: str | None = None
    free: list = field(default_factory=list)  # inputs and params, declared or not
    integer: set = field(default_factory=set)  # inputs read as indices (take's) or labels (one_hot's)

    def dims_of(self, text):
        return None if text is None else [d.strip() for d in text.split(",") if d.strip()]


def parse_model(src: str) -> Parsed:
    """The subset of the language the generator writes (and the regression cases use)."""
    p = Parsed()
    for stmt in re.split(r"[;\n]", src):
        stmt = stmt.split("#")[0].strip()
        if not stmt:
            continue
        if m := re.fullmatch(r"input\s+(\w+)\s*(?::\s*\[(.*)\])?", stmt):
            p.inputs[m[1]] = p.dims_of(m[2])
        elif m := re.fullmatch(r"param\s+(\w+)\s*(?::\s*\[(.*?)\])?\s*(?:=\s*(.+))?", stmt):
            init = m[3].strip() if m[3] else None
            p.params[m[1]] = (p.dims_of(m[2]) or [], float(init) if init and NUMBER.match(init) else None)
        elif m := re.fullmatch(r"const\s+(\w+)\s*=\s*(.+)", stmt):
            p.consts[m[1]] = float(m[2])
        elif m := re.fullmatch(r"loss\s+(\w+)", stmt):
            p.loss = m[1]
        elif re.fullmatch(r"output\s+.*", stmt):
            pass
        elif m := re.fullmatch(r"(\w+)\s*=\s*(.+)", stmt):
            p.stmts[m[1]] = ast.parse(_pytext(m[2]), mode="eval").body
        else:
            raise AssertionError(f"the reference cannot read `{stmt}`")
    used = {}
    for name, e in p.stmts.items():
        for n in _names(e):
            used.setdefault(_model_name(n), name)
        for c in ast.walk(e):
            if isinstance(c, ast.Call) and c.func.id in ("take", "one_hot"):
                p.integer.add(_model_name(c.args[1 if c.func.id == "take" else 0].id))
    known = {*p.stmts, *p.inputs, *p.params, *p.consts}
    for n in used:
        if n not in known:
            p.inputs[n] = None  # used, never declared nor assigned: an input of unknown shape
    p.free = [*p.inputs, *p.params]
    if p.loss is None:
        p.loss = [n for n in p.stmts if n not in used][-1]
    return p


def _model_name(py: str) -> str:
    return py[3:] if py.startswith("kw_") and keyword.iskeyword(py[3:]) else py


def _names(e) -> list[str]:
    """The value names an expression reads (not the functions it calls, nor true/false)."""
    funcs = {id(n.func) for n in ast.walk(e) if isinstance(n, ast.Call)}
    funcs |= {id(d) for n in ast.walk(e) if isinstance(n, ast.List) for d in n.elts}  # reshape's dims: no values
    return [
        n.id for n in ast.walk(e) if isinstance(n, ast.Name) and id(n) not in funcs and n.id not in ("true", "false")
    ]


class NumpyLib:
    name = "numpy"

    @staticmethod
    def leaf(value, grad):
        return np.asarray(value, dtype=np.float64)

    exp, log, sqrt, abs, sin, cos, tanh, square = np.exp, np.log, np.sqrt, np.abs, np.sin, np.cos, np.tanh, np.square
    maximum, minimum = np.maximum, np.minimum

    @staticmethod
    def sigmoid(x):
        return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))

    @staticmethod
    def relu(x):
        return np.maximum(x, 0.0)

    @staticmethod
    def softplus(x):
        return np.logaddexp(0.0, x)

    @staticmethod
    def step(x):
        return np.where(np.asarray(x) > 0, 1.0, 0.0)

    @staticmethod
    def identity(x):
        return x

    @staticmethod
    def sum(x, axis=None, keepdims=False):
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def mean(x, axis=None, keepdims=False):
        return np.mean(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def max(x, axis=None, keepdims=False):
        return np.max(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def logsumexp(x, axis=None, keepdims=False):
        x = np.asarray(x, dtype=np.float64)
        m = np.max(x, axis=axis, keepdims=True)
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
        return out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis=axis))

    @staticmethod
    def softmax(x, axis=-1):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)

    @classmethod
    def log_softmax(cls, x, axis=-1):
        s = x - np.max(x, axis=axis, keepdims=True)
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))

    @staticmethod
    def transpose(x):
        return np.transpose(x)

    @staticmethod
    def matmul(a, b):
        return np.matmul(a, b)

    @staticmethod
    def power(a, b):
        return np.power(a, b)

    @staticmethod
    def compare(test, a, b):
        return np.where(test(a, b), 1.0, 0.0)

    log1p, expm1, tan, clip = np.log1p, np.expm1, np.tan, np.clip

    @staticmethod
    def index(x, key):
        return np.asarray(x)[tuple(slice(*k) if type(k) is tuple else k for k in key)]

    @staticmethod
    def take(x, idx, axis=0):
        return np.take(x, np.asarray(idx).astype(np.int64), axis=axis)

    @staticmethod
    def one_hot(labels, K):
        return np.eye(int(K))[np.asarray(labels).astype(np.int64)]

    @staticmethod
    def concat(*xs, axis=0):
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def reshape(x, shape):
        return np.reshape(x, shape)

    @staticmethod
    def _windows(x, kh, kw, stride, padding=0):
        """(u, v, x's window-offset view) for each offset in a kh x kw window: a loop over the window only."""
        x = np.pad(np.asarray(x, dtype=np.float64), [(0, 0), (0, 0), (padding, padding), (padding, padding)])
        h, w = (x.shape[2] - kh) // stride + 1, (x.shape[3] - kw) // stride + 1
        for u in range(kh):
            for v in range(kw):
                yield u, v, x[:, :, u : u + stride * (h - 1) + 1 : stride, v : v + stride * (w - 1) + 1 : stride]

    @classmethod
    def conv2d(cls, x, w, stride=1, padding=0):
        w = np.asarray(w, dtype=np.float64)
        return sum(
            np.einsum("nchw,fc->nfhw", view, w[:, :, u, v])
            for u, v, view in cls._windows(x, *w.shape[2:], stride, padding)
        )

    @classmethod
    def max_pool2d(cls, x, k, stride=None):
        k = int(k)  # (a number in the model's text: a float to the reference's reader)
        return np.max([view for _, _, view in cls._windows(x, k, k, stride or k)], axis=0)

    @classmethod
    def avg_pool2d(cls, x, k, stride=None):
        k = int(k)
        return np.mean([view for _, _, view in cls._windows(x, k, k, stride or k)], axis=0)

    @staticmethod
    def stack(*xs, axis=0):
        return np.stack(xs, axis=axis)

    @staticmethod
    def leaky_relu(x, alpha=0.01):
        return np.where(np.asarray(x) > 0, x, alpha * np.asarray(x))

    @staticmethod
    def elu(x, alpha=1.0):
        x = np.asarray(x, dtype=np.float64)
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))

    @staticmethod
    def min(x, axis=None, keepdims=False):
        return np.min(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def prod(x, axis=None, keepdims=False):
        return np.prod(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def var(x, axis=None, keepdims=False):
        return np.var(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def std(x, axis=None, keepdims=False):
        return np.std(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def norm(x, axis=None, keepdims=False):
        return np.sqrt(np.sum(np.square(x), axis=axis, keepdims=keepdims))

    @staticmethod
    def where(c, a, b):
        return np.where(np.asarray(c) != 0, a, b)


class TorchLib:
    """PyTorch float64: its ops and its autograd conventions (relu'(0) = 0, abs'(0) = 0, torch.maximum
    and torch.amax split ties evenly, d(x^0)/dx = 0, masks that give 0 where a factor is infinite)."""

    name = "torch"

    @staticmethod
    def t(x):
        return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)

    @staticmethod
    def leaf(value, grad):
        return torch.tensor(np.asarray(value, dtype=np.float64), requires_grad=grad)

    def __getattr__(self, name):  # the elementwise functions: the table the derivative-rule tests use
        f = torch_ops(torch)[name]
        return lambda x: f(self.t(x))

    def step(self, x):
        return (self.t(x) > 0).to(torch.float64)  # no gradient, as SPEC says

    def identity(self, x):
        return x

    def maximum(self, a, b):
        a, b = self.t(a), self.t(b)
        return torch.maximum(a, b)

    def minimum(self, a, b):
        return torch.minimum(self.t(a), self.t(b))

    def _red(self, f, x, axis, keepdims):
        x = self.t(x)
        dim = tuple(range(x.ndim)) if axis is None else axis
        if x.ndim == 0:
            return f(x)
        return f(x, dim=dim, keepdim=keepdims)

    def sum(self, x, axis=None, keepdims=False):
        return self._red(torch.sum, x, axis, keepdims)

    def mean(self, x, axis=None, keepdims=False):
        return self._red(torch.mean, x, axis, keepdims)

    def max(self, x, axis=None, keepdims=False):
        return self._red(torch.amax, x, axis, keepdims)  # ties share the gradient evenly

    def logsumexp(self, x, axis=None, keepdims=False):
        x = self.t(x)
        if axis is None:
            out = torch.logsumexp(x.reshape(-1), dim=0)
            return out.reshape([1] * x.ndim) if keepdims else out
        return torch.logsumexp(x, dim=axis, keepdim=keepdims)

    def softmax(self, x, axis=-1):
        return torch.softmax(self.t(x), dim=axis)

    def log_softmax(self, x, axis=-1):
        return torch.log_softmax(self.t(x), dim=axis)

    def transpose(self, x):
        x = self.t(x)
        return x if x.ndim < 2 else x.permute(*reversed(range(x.ndim)))

    def matmul(self, a, b):
        return torch.matmul(a, b)

    def power(self, a, b):
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
            return a**b
        return torch.pow(a, b)  # scalar exponents: torch's pow(x, 0) has the 0 gradient

    def index(self, x, key):
        return torch_ops(torch)["index"](self.t(x), key)

    def take(self, x, idx, axis=0):
        return torch_ops(torch)["take"](self.t(x), self.t(idx), axis)

    def one_hot(self, labels, K):
        return torch_ops(torch)["one_hot"](self.t(labels), int(K))

    def concat(self, *xs, axis=0):
        return torch.cat([self.t(x) for x in xs], dim=axis)

    def reshape(self, x, shape):
        return self.t(x).reshape(shape)

    def conv2d(self, x, w, stride=1, padding=0):
        return torch_ops(torch)["conv2d"](self.t(x), self.t(w), stride, padding)

    def max_pool2d(self, x, k, stride=None):
        return torch_ops(torch)["max_pool2d"](self.t(x), int(k), stride)

    def avg_pool2d(self, x, k, stride=None):
        return torch_ops(torch)["avg_pool2d"](self.t(x), int(k), stride)

    def stack(self, *xs, axis=0):
        return torch.stack([self.t(x) for x in xs], dim=axis)

    def leaky_relu(self, x, alpha=0.01):
        return torch_ops(torch)["leaky_relu"](self.t(x), alpha)

    def elu(self, x, alpha=1.0):
        return torch_ops(torch)["elu"](self.t(x), alpha)

    def clip(self, x, lo, hi):
        return torch_ops(torch)["clip"](self.t(x), self.t(lo), self.t(hi))

    def min(self, x, axis=None, keepdims=False):
        return self._red(torch.amin, x, axis, keepdims)

    def prod(self, x, axis=None, keepdims=False):
        return torch_ops(torch)["prod"](self.t(x), axis, keepdims)

    def var(self, x, axis=None, keepdims=False):
        return torch_ops(torch)["var"](self.t(x), axis, keepdims)

    def std(self, x, axis=None, keepdims=False):
        return torch_ops(torch)["std"](self.t(x), axis, keepdims)

    def norm(self, x, axis=None, keepdims=False):
        return torch_ops(torch)["norm"](self.t(x), axis, keepdims)

    def compare(self, test, a, b):
        return test(self.t(a), self.t(b)).to(torch.float64)  # no gradient flows through a comparison

    def where(self, c, a, b):
        a, b = self.t(a), self.t(b)
        return torch.where(self.t(c) != 0, *torch.broadcast_tensors(a, b))


FN_ALIASES = {"logistic": "sigmoid", "softrelu": "softplus"}


_TESTS = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


def _run(lib, node, env):
    ev = lambda n: _run(lib, n, env)  # noqa: E731
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return {"true": True, "false": False}.get(node.id, env.get(node.id))
    if isinstance(node, ast.UnaryOp):
        return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
    if isinstance(node, ast.Attribute) and node.attr == "T":
        return lib.transpose(ev(node.value))
    if isinstance(node, ast.BinOp):
        a, b = ev(node.left), ev(node.right)
        op = type(node.op)
        if op is ast.Pow:
            return lib.power(a, b)
        if op is ast.MatMult:
            return lib.matmul(a, b)
        return {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b, ast.Div: lambda: a / b}[op]()
    if isinstance(node, ast.List):  # reshape's dims: [N, -1] (a symbolic dim's size from the case's dims)
        return tuple(int(env["__dims__"][e.id]) if isinstance(e, ast.Name) else int(ev(e)) for e in node.elts)
    if isinstance(node, ast.Subscript):  # x[1:, ::2, 0]: the key as graphc's attrs hold it
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]

        def bound(b):
            return None if b is None else int(ev(b))

        key = tuple(
            (bound(k.lower), bound(k.upper), bound(k.step))
            if isinstance(k, ast.Slice)
            else Ellipsis
            if isinstance(k, ast.Constant) and k.value is Ellipsis
            else int(ev(k))
            for k in items
        )
        return lib.index(ev(node.value), key)
    if isinstance(node, ast.Compare):
        (op,), (right,) = node.ops, node.comparators
        return lib.compare(_TESTS[type(op)], ev(node.left), ev(right))
    if isinstance(node, ast.Call):
        f = FN_ALIASES.get(node.func.id, node.func.id)
        kw = {k.arg: ev(k.value) for k in node.keywords}
        kw = {k: int(v) if k in ("stride", "padding") else v for k, v in kw.items()}
        if "axis" in kw:
            kw["axis"] = int(kw["axis"])
        return getattr(lib, f)(*[ev(a) for a in node.args], **kw)
    raise AssertionError(f"the reference cannot run {ast.dump(node)}")


def reference(p: Parsed, values: dict, dims: dict, lib, wrt=()):
    """Every named value (and the leaves) computed by lib; params not in values take their default."""
    env = {}
    for name in p.free:
        if name in values:
            v = values[name]
        else:
            shape, default = p.params[name]
            v = np.full([dims[d] if d in dims else int(d) for d in shape], default)
        env[_pyname(name)] = lib.leaf(v, name in wrt)
    for name, c in p.consts.items():
        env[_pyname(name)] = c
    env["__dims__"] = dims
    todo = dict(p.stmts)
    while todo:
        progress = False
        for name, e in list(todo.items()):
            if all(n in env for n in _names(e)):
                env[_pyname(name)] = _run(lib, e, env)
                del todo[name]
                progress = True
        assert progress, f"the reference found a cycle among {list(todo)}"
    return {n: env[_pyname(n)] for n in [*p.free, *p.consts, *p.stmts]}


def torch_loss_and_grad(p: Parsed, values: dict, dims: dict, wrt: list):
    lib = TorchLib()
    out = reference(p, values, dims, lib, wrt=set(wrt))
    loss = lib.t(out[p.loss])
    leaves = [out[w] for w in wrt]
    if loss.requires_grad:
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    else:
        grads = [None] * len(wrt)
    return (
        {k: np.asarray(lib.t(v).detach().numpy(), dtype=np.float64) for k, v in out.items()},
        {w: (np.zeros(tuple(x.shape)) if g is None else g.numpy()) for w, x, g in zip(wrt, leaves, grads)},
    )


# ==== comparing ===================================================================================


def agree(a, b, rtol: float, what: str):
    """Same shape; nan and infinities in the same places; finite entries within rtol of max(1, |a|, |b|)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} != {b.shape}"
    fa, fb = np.isfinite(a), np.isfinite(b)
    assert np.array_equal(fa, fb) and np.array_equal(a[~fa], b[~fb], equal_nan=True), f"{what}:\n{a}\nvs\n{b}"
    err = np.abs(a[fa] - b[fb]) / np.maximum(1.0, np.maximum(np.abs(a[fa]), np.abs(b[fb])))
    assert err.size == 0 or err.max() <= rtol, f"{what}: max error {err.max():.3e}\n{a}\nvs\n{b}"


def _numpy(lib, value):
    """A value an array-api module returned, as NumPy: a named constant is a Python float, and arguments
    that are all numbers and lists are NumPy's."""
    return np.asarray(value) if isinstance(value, float | int | np.ndarray | np.generic) else lib.back(value)


def arg(name: str) -> str:
    """SPEC §3: an emitted module's argument for a model name (a Python keyword gets a trailing `_`)."""
    return name + "_" if keyword.iskeyword(name) else name


def call_hvp(mod, direction, kw: dict):
    """The README's contract: `hvp(v=..., **values)`; once the direction is positional-only (the fix of
    issue 11 item 8), `hvp(direction, **values)`."""
    first = next(iter(inspect.signature(mod.hvp).parameters.values()))
    if first.kind in (first.POSITIONAL_ONLY, first.POSITIONAL_OR_KEYWORD):
        return mod.hvp(direction, **kw)
    return mod.hvp(v=direction, **kw)


@dataclass
class Case:
    src: str
    args: dict  # name -> value as a NumPy user passes it (array, list, float, int, bool)
    dims: dict  # symbolic dim -> size (for params the reference fills with their default)
    direction: object = None  # for hvp: shaped like the order-2 module's wrt (None: ones)

    def __repr__(self):
        return f"Case(src={self.src!r}, args={self.args!r}, dims={self.dims!r})"


def reasonable(values: dict) -> bool:
    return all(np.all(np.isfinite(v)) and np.all(np.abs(v) <= 1e6) for v in values.values())


def _float32_can_follow(src: str, passed: dict) -> bool:
    """Can float32 follow float64 on this model? Not where a value, anonymous or backward ones included,
    is beyond 1e3: its 7 digits cannot follow sin(e^e^e^x), and e^181 overflows to inf (whose 0 * inf
    is nan, in PyTorch's float32 too). No judge of the code there."""
    _, values = graphc.compile(src).trace(dict(passed))
    return all(np.all(np.abs(np.asarray(v, dtype=np.float64)) <= 1e3) for v in values.values())


def check(case: Case, reject=None, emitted: bool = True):
    """Run every path on the case and compare them. `reject(reason)` drops an example whose references
    cannot judge it (values overflowing, a reference gradient that is not finite). The paths are checked
    in stages, each for every mode (all params passed; numeric defaults omitted): the interpreter against
    the references, the emitted float64 module, the float32 one, the order-2 one; so a failure names the
    first path that goes wrong."""
    if currently_in_test_context():
        note(f"model:\n{case.src}\nargs: {case.args!r}\ndims: {case.dims!r}")
    p = parse_model(case.src)
    wrt = [n for n in p.params] or [n for n in p.inputs if n not in p.integer]
    optional = [n for n, (_, d) in p.params.items() if d is not None and n in case.args]
    # a param left out takes its number, made in the shape that the values passed give its dims (a dim
    # that nothing passed fixes is an error, tested on its own below)
    kept = [s for n, s in [*p.inputs.items(), *((n, s) for n, (s, _) in p.params.items())] if n not in optional]
    carried = {d for s in kept for d in s or () if isinstance(d, str)}
    optional = [n for n in optional if all(d in carried for d in p.params[n][0] if isinstance(d, str))]
    modes = [("all params passed", dict(case.args))]
    if optional:
        modes.append(("numeric defaults omitted", {k: v for k, v in case.args.items() if k not in optional}))
    runs = []  # (mode, passed, emitted-module keywords, values evaluate gave, loss, grads)
    # ---- the interpreter against the references (a new Model per entry point: a plan must not
    # depend on the call before it)
    for mode, passed in modes:
        vals = {k: np.asarray(v, dtype=np.float64) for k, v in passed.items()}
        ref = reference(p, vals, case.dims, NumpyLib)  # omitted params: their defaults
        if not reasonable(ref):
            if reject:
                return reject("the NumPy reference overflows")
            raise AssertionError(f"a regression case must have finite values: {ref}")
        tgrads = None
        if torch is not None:
            tvals, tgrads = torch_loss_and_grad(p, vals, case.dims, wrt)
            if not reasonable(tgrads) and reject:
                return reject("PyTorch's gradient is not finite")
            for k in ref:
                agree(tvals[k], ref[k], TORCH, f"{k}: PyTorch vs the NumPy reference (the test's own translation)")
        fwd = graphc.compile(case.src).evaluate(dict(passed))
        assert set(fwd) >= set(ref), f"[{mode}] evaluate lacks {set(ref) - set(fwd)}"
        for k in ref:
            agree(fwd[k], ref[k], TIGHT, f"[{mode}] Model.evaluate()[{k!r}] vs the NumPy reference")
        loss, grads = graphc.compile(case.src).loss_and_grad(dict(passed))
        agree(loss, ref[p.loss], TIGHT, f"[{mode}] Model.loss_and_grad loss vs the NumPy reference")
        assert set(grads) == set(wrt), f"[{mode}] Model.loss_and_grad gives {set(grads)}, expected {set(wrt)}"
        for w in wrt:
            assert np.shape(grads[w]) == np.shape(ref[w]), f"[{mode}] d/d{w}: shape {np.shape(grads[w])}"
            if tgrads is not None:
                agree(grads[w], tgrads[w], TORCH, f"[{mode}] Model.loss_and_grad d/d{w} vs PyTorch")
        runs.append((mode, passed, {arg(k): v for k, v in passed.items()}, fwd, loss, grads))
    if not emitted:
        return
    # ---- the emitted module: float64 with the interpreter's numbers, float32 loosely so; every returned
    # array of the module's dtype
    for dtype, tol in (("float64", TIGHT), ("float32", LOOSE)):
        for mode, passed, kw, fwd, loss, grads in runs:
            if dtype == "float32" and not _float32_can_follow(case.src, passed):
                continue
            mod = graphc.compile(case.src).compiled(dtype=dtype)
            where = f"[{mode}] emitted {dtype}"
            efwd = mod.forward(**kw)
            assert set(efwd) == set(fwd), f"{where} forward() keys {set(efwd)} != {set(fwd)}"
            for k, v in efwd.items():
                if k not in p.integer:  # (indices and labels stay integers)
                    assert np.asarray(v).dtype == dtype, f"{where} forward()[{k!r}] is {np.asarray(v).dtype}"
                agree(v, fwd[k], tol, f"{where} forward()[{k!r}] vs Model.evaluate")
            eloss, egrads = mod.loss_and_grad(**kw)
            assert np.asarray(eloss).dtype == dtype, f"{where} loss is {np.asarray(eloss).dtype}"
            agree(eloss, loss, tol, f"{where} loss_and_grad loss vs the interpreter")
            assert set(egrads) == set(grads), f"{where} gradients {set(egrads)} != {set(grads)}"
            for w in grads:
                assert np.asarray(egrads[w]).dtype == dtype, f"{where} d/d{w} is {np.asarray(egrads[w]).dtype}"
                agree(egrads[w], grads[w], tol, f"{where} d/d{w} vs the interpreter")
    # ---- the array-api module on every array library installed, against the NumPy module (float64)
    if array_api_compat is not None:
        model = graphc.compile(case.src)
        mod, ref = model.compiled(target="array-api"), model.compiled()
        for lib in arraylibs.installed():
            for mode, _, kw, *_ in runs:
                where = f"[{mode}] array-api on {lib}"
                given = {k: lib.to(np.asarray(v)) if isinstance(v, np.ndarray | list) else v for k, v in kw.items()}
                want_loss, want = ref.loss_and_grad(**kw)
                got_loss, got = mod.loss_and_grad(**given)
                agree(_numpy(lib, got_loss), want_loss, ARRAY_API, f"{where} loss vs the NumPy module")
                assert set(got) == set(want), f"{where} gradients {set(got)} != {set(want)}"
                for w in want:
                    agree(_numpy(lib, got[w]), want[w], ARRAY_API, f"{where} d/d{w} vs the NumPy module")
                efwd, want_fwd = mod.forward(**given), ref.forward(**kw)
                for k in want_fwd:
                    agree(_numpy(lib, efwd[k]), want_fwd[k], ARRAY_API, f"{where} forward()[{k!r}]")
    # ---- order 2: loss_and_grad still whole; H·v and the Hessian against the interpreter's Model.hessian
    # (not for a model with nothing to differentiate, nor one using prod, whose second derivative is a
    # located error: tests/ir/test_ops_elementwise_more.py)
    for mode, passed, kw, fwd, loss, grads in runs if wrt and "prod(" not in case.src else ():
        model = graphc.compile(case.src)
        w0 = (model.params or model.inputs)[0]  # the order-2 module's default
        mod2 = model.compiled(order=2)
        l2, g2 = mod2.loss_and_grad(**kw)
        agree(l2, loss, TIGHT, f"[{mode}] emit(order=2) loss vs the interpreter")
        assert set(g2) == set(grads), f"[{mode}] emit(order=2) loss_and_grad gives {set(g2)}, not {set(grads)}"
        for w in grads:
            agree(g2[w], grads[w], TIGHT, f"[{mode}] emit(order=2) d/d{w} vs the interpreter")
        H = graphc.compile(case.src).hessian(dict(passed), w0)
        shape = np.shape(fwd[w0])
        d = np.ones(shape) if case.direction is None else np.asarray(case.direction, dtype=np.float64)
        size = int(np.prod(shape, dtype=int))
        expected = (np.reshape(H, (size, size)) @ d.reshape(size)).reshape(shape)
        agree(call_hvp(mod2, d, kw), expected, TIGHT, f"[{mode}] emitted hvp(d) vs Model.hessian @ d (wrt {w0})")
        agree(mod2.hessian(**kw), H, TIGHT, f"[{mode}] emitted hessian() vs Model.hessian (wrt {w0})")


# ==== the generator ===============================================================================

DIM_POOL = ["N", "D", "H", "K", "tmp1", "np"]
NAME_POOL = [
    "x", "y", "z", "w", "b", "t", "v", "net", "h", "e", "lambda", "class", "in", "None", "np", "np_",
    "_sigmoid", "_softmax", "_broadcast", "tmp1", "tmp2", "λ", "x_bar", "forward", "values", "shape",
]  # fmt: skip
GRID = [k / 4 for k in range(-8, 9)]  # exact in float32 too: zeros and ties are common
ATOM, POW, UNARY, MUL, ADD, CMP = 6, 5, 4, 3, 2, 1

UNARY_FUNCS = ["exp", "sin", "cos", "tanh", "sigmoid", "logistic", "relu", "softplus", "softrelu", "step",
               "identity", "square", "abs", "tan", "expm1", "leaky_relu", "elu"]  # fmt: skip
POSITIVE_FUNCS = {"exp", "sigmoid", "logistic", "softplus", "softrelu"}
ALPHA_FUNCS = {"leaky_relu", "elu"}  # with a float keyword, by name or by position
DOMAIN_FUNCS = ["log", "sqrt", "log1p"]  # need a positive argument (sqrt: or a relu, whose mask makes the gradient 0)
REDUCTIONS = ["sum", "mean", "max", "logsumexp", "min", "prod", "var", "std", "norm"]
POSITIVE_REDUCTIONS = {"sum", "mean", "max", "min", "prod"}  # of positive values, positive
NORMALISERS = ["softmax", "log_softmax"]
TWO_ARG = ["maximum", "minimum"]
THREE_ARG = ["clip"]
COMPARISONS = ["<", "<=", ">", ">=", "==", "!="]
INFIX_SYNTAX = ["+", "-", "*", "/", "^", "**", "@", "unary -", ".T", *COMPARISONS]
GENERATED_FUNCS = (
    set(UNARY_FUNCS)
    | set(DOMAIN_FUNCS)
    | set(REDUCTIONS)
    | set(NORMALISERS)
    | set(TWO_ARG)
    | set(THREE_ARG)
    | {"transpose", "where", "take", "one_hot", "concat", "stack", "reshape", "conv2d", "max_pool2d", "avg_pool2d"}
)


@dataclass(frozen=True)
class E:
    """An expression being written: its text, precedence, symbolic shape and what is known of its sign
    ("pos": > 0; "relu": a relu's output, >= 0 with a masking gradient; "any")."""

    text: str
    prec: int
    shape: tuple | None  # dims: str (symbolic) or int; None: unknown until values arrive (an undeclared input)
    kind: str = "any"


def wrap(e: E, prec: int, strict: bool = False) -> str:
    return e.text if e.prec > prec or (e.prec == prec and not strict) else f"({e.text})"


def bshape(a, b):
    """Symbolic broadcasting: two dims agree if equal, or one is the literal 1. None: incompatible."""
    if a is None or b is None:
        return None
    out = []
    for k in range(max(len(a), len(b))):
        x = a[len(a) - 1 - k] if k < len(a) else 1
        y = b[len(b) - 1 - k] if k < len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


def compatible(a, b) -> bool:
    """May values of these shapes be combined elementwise? (A scalar goes with anything.)"""
    return a == () or b == () or bshape(a, b) is not None


def joint(a, b):
    return None if a is None or b is None else bshape(a, b)


def mshape(a, b):
    if a is None or b is None or not (1 <= len(a) <= 2 and 1 <= len(b) <= 2):
        return None
    if a[-1] != b[0]:
        return None
    return a[:-1] + b[1:]


@st.composite
def cases(draw):
    pool = draw(st.permutations(DIM_POOL))
    n_dims = draw(st.integers(0, 3))
    dim_names = pool[:n_dims]
    dims = dict(zip(dim_names, draw(st.permutations([2, 3, 4]))))
    optional_dims = pool[n_dims : n_dims + 2]  # for a layer's hidden size (bound by params only)
    taken = set(dim_names) | set(optional_dims)
    taken |= {"c", "lam", "len", "range", "forward", "hessian"}  # (the const pool's own names)
    fresh = iter([n for n in draw(st.permutations(NAME_POOL)) if n not in taken] + [f"v{k}" for k in range(40)])
    decls, stmts, env, leaves = [], [], [], {}  # leaves: name -> concrete shape
    integers = {}  # the inputs of indices and labels: name -> their values
    leaves_const = set()

    def sym_shape(symbolic=True):
        rank = draw(st.sampled_from([0, 1, 1, 2, 2]))
        choices = (dim_names if symbolic else []) + [1, 2, 3]
        return tuple(draw(st.sampled_from(choices)) for _ in range(rank))

    def fmt(shape):
        return "[" + ", ".join(str(d) for d in shape) + "]"

    def concrete(shape):
        return tuple(dims[d] if isinstance(d, str) else d for d in shape)

    # ---- leaves: inputs (declared with a shape, scalar, without a shape, or not at all) and params
    for _ in range(draw(st.integers(1, 3))):
        name = next(fresh)
        style = draw(st.sampled_from(["shape", "shape", "scalar", "noshape", "undeclared"]))
        if style == "scalar":
            shape, line = (), f"input {name}: []"
        elif style == "shape":
            shape = sym_shape()
            line = f"input {name}: {fmt(shape)}"
        else:
            shape = sym_shape(symbolic=False)
            line = f"input {name}" if style == "noshape" else None
        if line:
            decls.append(line)
        leaves[name] = concrete(shape)
        env.append(E(name, ATOM, shape if style in ("shape", "scalar") else None))
    params = []
    for _ in range(draw(st.integers(0, 3))):
        name = next(fresh)
        params.append(name)
        shape = sym_shape()
        init = draw(st.sampled_from([None, "0", "0.5", "-1", "2", "normal(0, 1)"]))
        text = f"param {name}" + ("" if shape == () and draw(st.booleans()) else f": {fmt(shape)}")
        decls.append(text + (f" = {init}" if init else ""))
        leaves[name] = concrete(shape)
        env.append(E(name, ATOM, shape))

    # ---- named consts: some named like a module function or a builtin, some fixing a dim of their name
    for _ in range(draw(st.integers(0, 2))):
        name = draw(st.sampled_from(["c", "lam", "len", "range", "forward", "hessian", *dim_names]))
        if name in leaves or any(d.startswith(f"const {name} ") for d in decls):
            continue
        value = dims[name] if name in dims else draw(st.sampled_from([0.5, 2.0, 3.0]))
        decls.append(f"const {name} = {value:g}")
        leaves_const.add(name)
        env.append(E(name, ATOM, ()))

    def pick(pred=lambda e: True, recent=True):
        cands = [e for e in env if pred(e)]
        if not cands:
            return None
        if recent and draw(st.booleans()):
            return cands[-1]
        return draw(st.sampled_from(cands))

    def const():
        c = draw(st.sampled_from(["2", "0.5", "1", "3", "1.5", "0"]))
        return E(c, ATOM, ())

    def operand(depth):
        """A value, or (depth permitting) a small expression of values."""
        if depth > 0 and draw(st.integers(0, 2)) == 0:
            return expression(depth - 1)
        return pick()

    def expression(depth):
        kind = draw(
            st.sampled_from(
                [
                    "unary",
                    "unary",
                    "domain",
                    "neg",
                    "infix",
                    "infix",
                    "infix",
                    "const",
                    "pow",
                    "two",
                    "reduce",
                    "reduce",
                    "norm",
                    "transpose",
                    "matmul",
                    "compare",
                    "where",
                    "clip",
                    "index",
                    "take",
                    "concat",
                    "reshape",
                ]  # fmt: skip
            )
        )
        x = operand(depth)
        if kind == "unary":
            f = draw(st.sampled_from(UNARY_FUNCS))
            k = "pos" if f in POSITIVE_FUNCS else "relu" if f == "relu" else x.kind if f == "identity" else "any"
            alpha = ""
            if f in ALPHA_FUNCS and draw(st.booleans()):
                alpha = ", " + draw(st.sampled_from(["alpha=", ""])) + draw(st.sampled_from(["0.2", "0.5", "2", "1"]))
            return E(f"{f}({x.text}{alpha})", ATOM, x.shape, k)
        if kind == "domain":
            f = draw(st.sampled_from(DOMAIN_FUNCS))
            ok = pick(lambda e: e.kind == "pos" or (f == "sqrt" and e.kind == "relu"))
            if ok is None:  # make an argument in the domain
                g = draw(st.sampled_from(["exp", "sigmoid", "softplus"] + (["relu"] if f == "sqrt" else [])))
                ok = E(f"{g}({x.text})", ATOM, x.shape, "relu" if g == "relu" else "pos")
            return E(f"{f}({ok.text})", ATOM, ok.shape, "pos" if ok.kind == "pos" and f == "sqrt" else "any")
        if kind == "neg":
            t = wrap(x, UNARY, strict=False)
            return E("-" + (" " if t.startswith("-") else "") + t, UNARY, x.shape)
        if kind == "const":
            c, op = const(), draw(st.sampled_from(["*", "+", "-", "/", "r-", "r*"]))
            if op == "/" and c.text == "0":
                c = E("2", ATOM, ())
            if op[0] == "r":
                return infix(c, op[1], x)
            return infix(x, op, c)
        if kind == "infix":
            op = draw(st.sampled_from(["+", "-", "*", "/"]))
            if op == "/":
                y = pick(lambda e: e.kind == "pos" and compatible(e.shape, x.shape))
            else:
                y = pick(lambda e: compatible(e.shape, x.shape))
            if y is None:
                return x if x.prec == ATOM else E(f"({x.text})", ATOM, x.shape, x.kind)
            return infix(x, op, y) if draw(st.booleans()) or op == "/" else infix(y, op, x)
        if kind == "pow":
            sym = draw(st.sampled_from(["^", "**"]))
            form = draw(st.sampled_from(["int", "int", "pos-real", "var", "base-const"]))
            if form == "int":  # at x = 0: d(x^p)/dx = 0 for p > 1 and for p = 0 (PyTorch)
                p = E(draw(st.sampled_from(["0", "1", "2", "3", "2.0"])), ATOM, ())
                return power(x, sym, p)
            base = pick(lambda e: e.kind == "pos")
            if base is None:
                base = E(f"exp({x.text})", ATOM, x.shape, "pos")
            if form == "pos-real":
                p = draw(st.sampled_from(["0.5", "1.5", "-1", "-0.5"]))
                return power(base, sym, E(p, ATOM if p[0] != "-" else UNARY, ()))
            if form == "var":
                y = pick(lambda e: compatible(e.shape, base.shape)) or const()
                return power(base, sym, y)
            return power(E(draw(st.sampled_from(["2", "0.5"])), ATOM, ()), sym, x)
        if kind == "two":
            f = draw(st.sampled_from(TWO_ARG))
            y = pick(lambda e: compatible(e.shape, x.shape))
            if y is None or draw(st.integers(0, 3)) == 0:
                y = const()
            a, b = (x, y) if draw(st.booleans()) else (y, x)
            k = "pos" if "pos" in (a.kind, b.kind) and f == "maximum" else "any"
            return E(f"{f}({a.text}, {b.text})", ATOM, joint(a.shape, b.shape), k)
        if kind == "reduce":
            f = draw(st.sampled_from(REDUCTIONS))
            kws, shape = [], ()
            rank = None if x.shape is None else len(x.shape)
            if rank and draw(st.integers(0, 2)):
                ax = draw(st.integers(-rank, rank - 1))
                keep = draw(st.booleans())
                kws.append(f"axis={ax}")
                if keep or draw(st.booleans()):
                    kws.append(f"keepdims={'true' if keep else 'false'}")
                shape = (
                    tuple(1 if i == ax % rank else d for i, d in enumerate(x.shape))
                    if keep
                    else tuple(d for i, d in enumerate(x.shape) if i != ax % rank)
                )
            elif draw(st.integers(0, 3)) == 0:
                kws.append("keepdims=true")
                shape = None if rank is None else (1,) * rank
            elif rank is None:
                shape = ()
            k = "pos" if x.kind == "pos" and f in POSITIVE_REDUCTIONS else "any"
            return E(f"{f}({', '.join([x.text, *kws])})", ATOM, shape, k)
        if kind == "norm":
            y = pick(lambda e: e.shape is not None and len(e.shape) >= 1) or x
            if not y.shape:  # a scalar, or a shape unknown when compiling (which may be anything)
                return E(f"sigmoid({y.text})", ATOM, y.shape, "pos")
            f = draw(st.sampled_from(NORMALISERS))
            kw = ""
            if y.shape and draw(st.booleans()):
                kw = f", axis={draw(st.integers(-len(y.shape), len(y.shape) - 1))}"
            return E(f"{f}({y.text}{kw})", ATOM, y.shape, "pos" if f == "softmax" else "any")
        if kind == "index":  # NumPy's basic indexing of a value whose shape is known
            y = pick(lambda e: e.shape is not None and len(e.shape) >= 1)
            if y is None:
                return x
            key, shape = [], []
            for d in y.shape:
                size = dims[d] if isinstance(d, str) else d
                form = draw(st.sampled_from(["all", "int", "slice", "slice"]))
                if form == "all":
                    key.append(":")
                    shape.append(d)
                elif form == "int":
                    key.append(str(draw(st.sampled_from([0, -1, size - 1]))))
                else:
                    sl = draw(st.sampled_from([(1, None, None), (None, -1, None), (None, None, 2), (None, None, -1)]))
                    start, stop, step = ("" if b is None else str(b) for b in sl)
                    key.append(f"{start}:{stop}" + (f":{step}" if step else ""))
                    n = len(range(size)[slice(*sl)])
                    if n == 0:  # (an empty slice: the references' max has no value for it)
                        key[-1] = ":"
                        n = size
                    shape.append(n if not isinstance(d, str) or n != size else d)
            if key and draw(st.booleans()):  # `...` for the leading full slices
                lead = next((k for k, t in enumerate(key) if t != ":"), len(key))
                if lead:
                    key = ["...", *key[lead:]]
            return E(f"{wrap(y, ATOM, strict=True)}[{', '.join(key)}]", ATOM, tuple(shape), y.kind)
        if kind == "reshape":  # flattened, or rows kept (by a symbolic dim's name, or -1)
            y = pick(lambda e: e.shape is not None and len(e.shape) >= 1)
            if y is None:
                return x
            size = math.prod(dims[d] if isinstance(d, str) else d for d in y.shape)
            if len(y.shape) >= 2 and draw(st.booleans()):
                d0 = y.shape[0]
                rest = size // (dims[d0] if isinstance(d0, str) else d0) if size else 0
                first = draw(st.sampled_from([str(d0), "-1"])) if isinstance(d0, str) else str(d0)
                second = "-1" if first != "-1" and draw(st.booleans()) else str(rest)
                return E(f"reshape({y.text}, [{first}, {second}])", ATOM, (d0, rest), y.kind)
            return E(f"reshape({y.text}, [{draw(st.sampled_from(['-1', str(size)]))}])", ATOM, (size,), y.kind)
        if kind == "take":  # rows (or entries along an axis) by an input of integers
            y = pick(lambda e: e.shape is not None and len(e.shape) >= 1)
            if y is None or not params:
                return x
            axis = draw(st.integers(-len(y.shape), len(y.shape) - 1))
            size = dims[y.shape[axis]] if isinstance(y.shape[axis], str) else y.shape[axis]
            name = next(fresh)
            n = draw(st.integers(1, 3))
            decls.append(f"input {name}: [{n}]")
            integers[name] = [draw(st.integers(-size, size - 1)) for _ in range(n)]  # repeats are common
            k = axis % len(y.shape)
            kw = f", axis={axis}" if axis or draw(st.booleans()) else ""
            return E(f"take({y.text}, {name}{kw})", ATOM, y.shape[:k] + (n,) + y.shape[k + 1 :], y.kind)
        if kind == "concat":  # of a value and another of its shape (or itself), along an axis, or stacked
            y = pick(lambda e: e.shape is not None and len(e.shape) >= 1)
            if y is None:
                return x
            z = pick(lambda e: e.shape == y.shape) or y
            axis = draw(st.integers(-len(y.shape), len(y.shape) - 1))
            k = axis % len(y.shape)
            if draw(st.booleans()):
                d = y.shape[k]
                both = 2 * d if isinstance(d, int) else f"{d}+{d}"
                return E(f"concat({y.text}, {z.text}, axis={axis})", ATOM, y.shape[:k] + (both,) + y.shape[k + 1 :])
            k = axis % (len(y.shape) + 1)
            return E(f"stack({y.text}, {z.text}, axis={axis})", ATOM, y.shape[:k] + (2,) + y.shape[k:])
        if kind == "clip":  # bounds: numbers or values (lo > hi happens: the result is hi, as NumPy and PyTorch)
            lo = pick(lambda e: compatible(e.shape, x.shape)) if draw(st.booleans()) else None
            hi = pick(lambda e: compatible(e.shape, x.shape) and (lo is None or compatible(e.shape, lo.shape)))
            lo = lo or E(draw(st.sampled_from(["-1", "-0.5", "0"])), UNARY, ())
            if hi is None or draw(st.booleans()):
                hi = E(draw(st.sampled_from(["0.5", "1", "0"])), ATOM, ())
            shape = joint(x.shape, joint(lo.shape, hi.shape))
            return E(f"clip({x.text}, {lo.text}, {hi.text})", ATOM, shape)
        if kind == "compare":  # 1.0 or 0.0, no gradient; ties are common on the grid
            y = pick(lambda e: compatible(e.shape, x.shape)) or const()
            sym = draw(st.sampled_from(COMPARISONS))
            return E(f"{wrap(x, CMP, strict=True)} {sym} {wrap(y, CMP, strict=True)}", CMP, joint(x.shape, y.shape))
        if kind == "where":  # the condition: a comparison, or any value (non-zero is true)
            a = pick(lambda e: compatible(e.shape, x.shape)) or const()
            c = pick(lambda e: compatible(e.shape, x.shape) and compatible(e.shape, a.shape))
            if c is None or draw(st.booleans()):
                c = E(f"{wrap(x, CMP, strict=True)} > {wrap(a, CMP, strict=True)}", CMP, joint(x.shape, a.shape))
            b, a = (x, a) if draw(st.booleans()) else (a, x)
            shape = joint(c.shape, joint(a.shape, b.shape))
            k = "pos" if a.kind == b.kind == "pos" else "any"
            return E(f"where({c.text}, {a.text}, {b.text})", ATOM, shape, k)
        if kind == "transpose":
            shape = None if x.shape is None else tuple(reversed(x.shape))
            if draw(st.booleans()):
                return E(f"{wrap(x, ATOM, strict=True)}.T", ATOM, shape, x.kind)
            return E(f"transpose({x.text})", ATOM, shape, x.kind)
        # matmul
        pairs = [(a, b) for a in env for b in env if mshape(a.shape, b.shape) is not None]
        if not pairs:
            return infix(x, "*", x)
        a, b = draw(st.sampled_from(pairs))
        return E(f"{wrap(a, MUL)} @ {wrap(b, MUL, strict=True)}", MUL, mshape(a.shape, b.shape))

    def infix(a, op, b):
        prec = ADD if op in "+-" else MUL
        shape = joint(a.shape, b.shape)
        kind = "pos" if a.kind == b.kind == "pos" and op in "+*/" else "any"
        if op == "+" and a.kind == "pos" and b.text in ("1", "2", "0.5", "3", "1.5"):
            kind = "pos"
        return E(f"{wrap(a, prec)} {op} {wrap(b, prec, strict=True)}", prec, shape, kind)

    def power(a, sym, p):
        shape = joint(a.shape, p.shape)
        return E(
            f"{wrap(a, POW, strict=True)} {sym} {wrap(p, UNARY)}", POW, shape, a.kind if a.kind == "pos" else "any"
        )

    # ---- statements
    for _ in range(draw(st.integers(2, 7))):
        kind = draw(st.sampled_from(["expr", "expr", "expr", "alias", "layer", "one_hot", "conv"]))
        name = next(fresh)
        if kind == "alias":
            x = pick()
            e = E(x.text, ATOM, x.shape, x.kind)
        elif kind == "one_hot":  # a classifier's targets: labels as one-hot rows, read by a value of K columns
            x = pick(lambda e: e.shape is not None and len(e.shape) >= 1 and isinstance(e.shape[-1], int))
            if x is None:
                e = expression(2)
            else:
                labels, K = next(fresh), x.shape[-1]
                n = x.shape[-2] if len(x.shape) >= 2 else 1
                decls.append(f"input {labels}: [{n}]" if len(x.shape) >= 2 else f"input {labels}: []")
                size = dims[n] if isinstance(n, str) else n
                integers[labels] = (
                    [draw(st.integers(0, K - 1)) for _ in range(size)]
                    if len(x.shape) >= 2
                    else draw(st.integers(0, K - 1))
                )
                e = E(f"{x.text} * one_hot({labels}, {K})", MUL, x.shape)
        elif kind == "conv":  # images [n, C, H, W]: conv2d (a stride, a padding), perhaps relu, perhaps pooled
            images, kernel = next(fresh), next(fresh)
            n = draw(st.sampled_from([*dim_names, 1, 2])) if dim_names else draw(st.sampled_from([1, 2]))
            c, h, w = draw(st.integers(1, 2)), draw(st.integers(3, 5)), draw(st.integers(3, 5))
            f, kh, kw = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
            stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
            decls += [f"input {images}: [{n}, {c}, {h}, {w}]", f"param {kernel}: [{f}, {c}, {kh}, {kw}]"]
            leaves[images] = (dims[n] if isinstance(n, str) else n, c, h, w)
            leaves[kernel] = (f, c, kh, kw)
            kws = "".join(
                [
                    f", stride={stride}" if stride > 1 or draw(st.booleans()) else "",
                    f", padding={padding}" * (padding > 0),
                ]
            )
            text = f"conv2d({images}, {kernel}{kws})"
            oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
            if draw(st.booleans()):
                text = f"relu({text})"
            pool = draw(st.sampled_from(["", "max_pool2d", "avg_pool2d"]))
            k = draw(st.integers(1, min(2, oh, ow)))
            if pool:
                ps = draw(st.sampled_from([None, 1]))
                text = f"{pool}({text}, {k}" + (f", stride={ps})" if ps else ")")
                oh, ow = ((oh - k) // (ps or k) + 1, (ow - k) // (ps or k) + 1)
            e = E(text, ATOM, (n, f, oh, ow))
        elif kind == "layer":  # x @ W + b with a hidden size H that only the params carry
            x = pick(lambda e: e.shape is not None and 1 <= len(e.shape) <= 2)
            if x is None or not optional_dims:
                e = expression(2)
            else:
                hid = optional_dims.pop(0)
                dims[hid] = draw(st.sampled_from([2, 3]))
                W, bias = next(fresh), next(fresh)
                decls.append(f"param {W}: [{x.shape[-1]}, {hid}]")
                decls.append(f"param {bias}: [{hid}]" + draw(st.sampled_from([" = 0", " = 0.5", ""])))
                leaves[W] = (dims[x.shape[-1]] if isinstance(x.shape[-1], str) else x.shape[-1], dims[hid])
                leaves[bias] = (dims[hid],)
                env.append(E(W, ATOM, (x.shape[-1], hid)))
                env.append(E(bias, ATOM, (hid,)))
                z = E(f"{x.text} @ {W} + {bias}", ADD, x.shape[:-1] + (hid,))
                act = draw(st.sampled_from(["", "sigmoid", "relu", "tanh"]))
                e = E(f"{act}({z.text})", ATOM, z.shape, "pos" if act == "sigmoid" else "any") if act else z
        else:
            e = expression(2)
        stmts.append(f"{name} = {e.text}")
        env.append(E(name, ATOM, e.shape, e.kind))

    # ---- the loss: a scalar from one or two values (often the last, so that everything feeds it)
    loss = draw(st.sampled_from(["L", "L", "L", "in", "tmp2"]))
    if any(s.startswith(f"{loss} =") for s in stmts) or loss in leaves or loss in integers or loss in dims:
        loss = "L"
    terms = []
    for _ in range(draw(st.integers(1, 2))):
        t = pick()
        red = draw(st.sampled_from(["sum", "mean"] + (["", "^2"] if t.shape == () else [])))
        terms.append(f"{red}({t.text})" if red in ("sum", "mean") else f"{t.text}^2" if red == "^2" else t.text)
    joiner = draw(st.sampled_from([" + ", " - ", " + 0.5 * "]))
    stmts.append(f"{loss} = {joiner.join(terms)}")
    explicit = draw(st.integers(0, 3)) == 0
    body = stmts
    if explicit:  # statements in any order when the loss is named
        body = draw(st.permutations(stmts)) + [f"loss {loss}"]
    src = "\n".join(decls + list(body))
    # ---- values, passed as NumPy users pass them
    args = {}
    for name, shape in leaves.items():
        size = math.prod(shape)
        elems = draw(
            st.lists(
                st.one_of(st.sampled_from(GRID), st.floats(-2, 2, width=32).map(float)), min_size=size, max_size=size
            )
        )
        a = np.array(elems, dtype=np.float64).reshape(shape)
        integral = bool(np.all(a == np.round(a)))
        forms = ["array", "array", "list"] + (["ints"] if integral else [])
        if shape == ():
            forms += ["float"] + (["int"] if integral else []) + (["bool"] if float(a) in (0.0, 1.0) else [])
        args[name] = _as_passed(a, draw(st.sampled_from(forms)))
    for name, v in integers.items():  # as a NumPy user passes them: a list, an int array, an int
        args[name] = draw(st.sampled_from([v, np.asarray(v)]))
    words = set(re.findall(r"[^\W\d]\w*", src))  # an undeclared input no statement uses is not in the model
    return Case(src, {k: v for k, v in args.items() if k in words}, dims)


def _as_passed(a: np.ndarray, form: str):
    """The value as a NumPy user may pass it."""
    if form == "list":
        return a.tolist()
    if form == "ints":
        return a.astype(int).tolist() if a.shape else int(a)
    if form in ("float", "int", "bool"):
        return {"float": float, "int": int, "bool": bool}[form](a)
    return a


def _reject(reason):
    assume(False)


@QUICK
@given(cases())
def test_every_path_agrees_on_random_models(case):
    check(case, _reject)


@pytest.mark.slow
@SLOW
@given(cases())
def test_every_path_agrees_on_many_random_models(case):
    check(case, _reject)


def test_the_generator_covers_every_user_op():
    """A new op in graphc/ops.py must be added to the generator (and the references) above."""
    assert set(ops.FUNCTIONS) <= GENERATED_FUNCS, (
        f"ops the differential test never writes: {set(ops.FUNCTIONS) - GENERATED_FUNCS}"
    )
    parsed = set(builder.BINARY) | set(builder.COMPARE)  # every binary operator the language reads
    assert parsed <= set(INFIX_SYNTAX), f"infix operators not generated: {parsed - set(INFIX_SYNTAX)}"


# ==== issue 11's own models, items 1-8: every path, as above ======================================

R = np.array
REGRESSIONS = [
    # 1: an alias line merged into its user kept its expression's parentheses in `eval`, not in `grad`
    (
        "1-alias-scalar",
        "param w = 1; param b = -1; z = w*1.5 + b; net = z; L = 0.5*(2*net - 1)^2",
        {"w": 1.0, "b": -1},
        {},
    ),
    ("1-alias-vector", "param p: [3] = 1; v = p*p; w = v; L = sum(w)", {"p": [1.0, 1.0, 1.0]}, {}),
    (
        "1-alias-logits",
        "z = X @ w + b; logits = z; L = mean(softplus(-y*logits))",
        {"X": R([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), "w": R([0.25, -0.5, 1.0]), "b": 0.5, "y": R([1.0, -1.0])},
        {},
    ),
    (
        "1-alias-logits-declared",
        "input X: [N, D]; param w: [D]; param b = 0; input y: [N]\n"
        "z = X @ w + b; logits = z\nL = mean(softplus(-y*logits))",
        {"X": R([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]]), "w": R([0.25, -0.5, 1.0]), "b": 0.5, "y": R([1.0, -1.0])},
        {"N": 2, "D": 3},
    ),
    ("1-alias-difference", "param p = 2; param q = 0.5; w = p - q; L = (2*w)^2", {"p": 2.0, "q": 0.5}, {}),
    # 2: kinks as PyTorch: a masked gradient is 0 (not 0 * inf), and d(z^0)/dz = 0 at z = 0
    ("2-sqrt-relu", "L = sum(sqrt(relu(z)))", {"z": R([-1.0, 0.0, 2.0])}, {}),
    ("2-pow-zero", "L = sum(z^0) + sum(z^2 * 3)", {"z": R([-1.0, 0.0, 2.0])}, {}),
    # 3: float32 stays float32 through reductions along an axis
    (
        "3-float32-reductions",
        "input X: [N, D]; param W: [D, K]\nL = sum(max(X @ W, axis=1)) + sum(mean(X @ W, axis=1))",
        {"X": R([[1.0, 0.5, -1.0], [0.0, 2.0, 1.0]]), "W": R([[0.5, -1.0], [1.0, 0.25], [0.0, 0.5]])},
        {"N": 2, "D": 3, "K": 2},
    ),
    # 4: a param's symbolic dim comes from whatever argument carries it (here W1, a param)
    (
        "4-dim-bound-by-a-param",
        "input X: [N, D]; param W1: [D, H]; param b1: [H] = 0\nL = sum(sigmoid(X @ W1 + b1))",
        {
            "X": R([[1.0, -0.5], [0.25, 2.0], [0.0, 1.0]]),
            "W1": R([[0.5, -1.0, 0.0], [1.0, 0.25, -0.5]]),
            "b1": R([0.0, 0.0, 0.0]),
        },
        {"N": 3, "D": 2, "H": 3},
    ),
    # 5: `.T` of a scalar constant in the backward pass
    ("5-scalar-transpose", "param p = 0.5; L = p.T + p^2", {"p": 0.5}, {}),
    ("5-scalar-transpose-input", "input s: []; L = sum(s.T * x.T)", {"s": 1.5, "x": R([1.0, -2.0])}, {}),
    # 6: names that collide with what graphc adds
    (
        "6-dim-tmp1",
        "input X: [tmp1, D]; param W: [D, K]\nz = X @ W\nL = sum(exp(z) * z) + mean(X) + sum(sigmoid(z) * z)",
        {"X": R([[1.0, -0.5], [0.25, 2.0], [0.0, 1.0]]), "W": R([[0.5, -1.0], [1.0, 0.25]])},
        {"tmp1": 3, "D": 2, "K": 2},
    ),
    ("6-np-and-np_", "L = sum(np * np_) + sum(sigmoid(np))", {"np": R([1.0, 2.0]), "np_": R([0.5, -1.0])}, {}),
    (
        "6-dim-np",
        "input X: [np, 2]; L = mean(X) + sum(X * X)",
        {"X": R([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]])},
        {"np": 3},
    ),
    (
        "6-dim-np-and-np_",
        "input X: [np, 2]; input np_: []; L = mean(X) * np_ + sum(exp(X))",
        {"X": R([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]), "np_": 2.0},
        {"np": 3},
    ),
    (
        "6-helper-names",
        "input _sigmoid: [3]; input _softmax: [3]\nL = sum(sigmoid(_sigmoid) * softmax(_softmax))",
        {"_sigmoid": R([1.0, 0.0, -1.0]), "_softmax": R([0.5, 0.5, 2.0])},
        {},
    ),
    (
        "6-keyword-names",
        "param lambda = 0.1; input class: [2]; in = class * lambda; L = sum(in^2)",
        {"lambda": 0.1, "class": R([1.0, -2.0])},
        {},
    ),
    (
        "6-tmp1-value",
        "param tmp1: [2]; L = sum(exp(tmp1) * tmp1) + sum(sin(tmp1) * exp(tmp1))",
        {"tmp1": R([0.5, -1.0])},
        {},
    ),
    # 7: arguments as NumPy users pass them
    (
        "7-lists-ints-bools",
        "input x: [3]; input s: []\nL = sum(softmax(x) * s) + max(x)",
        {"x": [1, 2, 2], "s": True},
        {},
    ),
    ("7-python-floats", "param w = 0.5; input x: []; L = (w * x - 1)^2", {"w": 0.5, "x": 2}, {}),
    (
        "7-list-matrix",
        "input X: [N, 2]; param w: [2]\nL = sum(relu(X @ w))",
        {"X": [[1, 2], [3, -4]], "w": [0.5, 0.25]},
        {"N": 2},
    ),
    # 8: emit(order=2) keeps the whole gradient, and its direction argument cannot collide with `v`
    (
        "8-order2-v",
        "param w: [2]; param v: [2]\nL = sum(w * v * w) + sum(v^3)",
        {"w": R([1.0, -0.5]), "v": R([0.5, 2.0])},
        {},
    ),
    (
        "8-order2-inputs",
        "input v: [2]; input u: [2]\nL = sum(exp(v) * u)",
        {"v": R([0.5, -1.0]), "u": R([1.0, 2.0])},
        {},
    ),
]
# X, w, b undeclared: their shapes are unknown until values arrive, and `@`'s gradient needs ranks, so
# emitting code is refused ("cannot differentiate `@` through a value of unknown shape"); the declared
# twin below runs every path
INTERPRETER_ONLY = {"1-alias-logits"}
EXPECTED_GRADS = {  # what PyTorch gives, written out (so these run without PyTorch too)
    "2-sqrt-relu": {"z": [0.0, 0.0, 0.5 / np.sqrt(2.0)]},
    "2-pow-zero": {"z": [-6.0, 0.0, 12.0]},
    "1-alias-scalar": {"w": [0.0], "b": [0.0]},
    "1-alias-difference": {"p": [12.0], "q": [-12.0]},
}


@pytest.mark.parametrize("case", REGRESSIONS, ids=[c[0] for c in REGRESSIONS])
def test_issue_11_models_agree_on_every_path(case):
    name, src, args, dims = case
    if name in EXPECTED_GRADS:
        _, grads = graphc.compile(src).loss_and_grad(dict(args))
        for k, g in EXPECTED_GRADS[name].items():
            agree(grads[k], np.reshape(g, np.shape(grads[k])), TORCH, f"d/d{k}")
    check(Case(src, args, dims), emitted=name not in INTERPRETER_ONLY)


def test_an_unbound_dim_of_an_omitted_param_names_the_param():
    """Item 4: `gain`'s dim H is carried by nothing passed: the emitted module says which param to pass."""
    mod = graphc.compile("param gain: [H] = 1; input x: []; L = sum(gain * x)").compiled()
    with pytest.raises(Exception, match="gain"):
        mod.loss_and_grad(x=2.0)
    assert np.asarray(mod.loss_and_grad(x=2.0, gain=[1.0, 2.0])[1]["gain"]).tolist() == [2.0, 2.0]
