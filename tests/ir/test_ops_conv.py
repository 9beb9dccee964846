"""conv2d, max_pool2d and avg_pool2d (issue 13, items 7-9): PyTorch's semantics, derivatives of every order.

Forward against torch.nn.functional (float64) over shapes, strides and paddings; gradients against PyTorch
and finite differences; max pooling's ties (the whole signal to one entry per window, as PyTorch); the
interpreter and the emitted module in float64 and float32; Hessian-vector products of a small CNN against
PyTorch's double backward; the shape rules with symbolic dims, and every error.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradtools import assert_close, assert_matches_finite_differences, error_of, shapes_of

import graphc
from graphc import GraphcError

torch = pytest.importorskip("torch")
OPS_TESTED = {"conv2d", "max_pool2d", "avg_pool2d"}
F = torch.nn.functional


def rng(seed=0):
    return np.random.default_rng(seed)


def torch_grads(fn, values: dict, wrt: list[str]):
    """fn's value and its gradients w.r.t. wrt, by PyTorch in float64."""
    t = {k: torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=k in wrt) for k, a in values.items()}
    loss = fn(**t)
    grads = torch.autograd.grad(loss, [t[k] for k in wrt])
    return loss.item(), {k: g.numpy() for k, g in zip(wrt, grads)}


def torch_hvp(fn, values: dict, wrt: str, direction):
    """The Hessian of fn w.r.t. wrt times direction, by PyTorch's double backward."""
    t = {k: torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=k == wrt) for k, a in values.items()}
    (g,) = torch.autograd.grad(fn(**t), [t[wrt]], create_graph=True)
    (hv,) = torch.autograd.grad((g * torch.tensor(direction)).sum(), [t[wrt]])
    return hv.numpy()


# ---- forward --------------------------------------------------------------------------------------

CONV_CASES = [  # x shape, w shape, stride, padding
    ((2, 1, 8, 8), (4, 1, 3, 3), 1, 0),
    ((2, 1, 8, 8), (4, 1, 3, 3), 1, 1),
    ((3, 3, 9, 7), (5, 3, 3, 2), 2, 1),  # a non-square kernel, a stride that does not divide
    ((1, 2, 5, 5), (3, 2, 5, 5), 1, 0),  # the kernel covers the image: [1, 3, 1, 1]
    ((2, 2, 6, 6), (2, 2, 1, 1), 1, 0),  # a 1x1 kernel mixes channels only
    ((2, 3, 7, 7), (2, 3, 3, 3), 3, 2),  # padding beyond the kernel's reach
    ((1, 1, 4, 4), (1, 1, 5, 5), 1, 1),  # a kernel larger than the image, not than the padded image
]


@pytest.mark.parametrize(("xs", "ws", "stride", "padding"), CONV_CASES, ids=str)
def test_conv2d_is_torchs(xs, ws, stride, padding):
    x, w = rng(1).normal(size=xs), rng(2).normal(size=ws)
    kw = "".join(f", {k}={v}" for k, v in (("stride", stride), ("padding", padding)) if v != (k == "stride"))
    m = graphc.compile(f"input x: {list(xs)}\ninput w: {list(ws)}\ny = conv2d(x, w{kw})\nL = sum(y)")
    y = m.evaluate({"x": x, "w": w})["y"]
    want = F.conv2d(torch.tensor(x), torch.tensor(w), stride=stride, padding=padding).numpy()
    assert shapes_of(m)["y"] == str(list(want.shape))  # the shape rule gives torch's shape before any value
    assert_close(y, want, rtol=1e-12, atol=1e-12, what="conv2d")


POOL_CASES = [  # x shape, k, stride (None: k)
    ((2, 3, 8, 8), 2, None),
    ((2, 3, 9, 7), 2, None),  # the last row and column fit no window: dropped, as torch does
    ((2, 3, 8, 8), 3, 1),  # overlapping windows
    ((1, 2, 9, 9), 3, 2),
    ((2, 5, 5), 2, 1),  # [C, H, W]: pooling is over the last two axes
    ((2, 2, 2, 6, 6), 3, None),  # any leading axes
    ((4, 4), 4, None),
]


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(("xs", "k", "stride"), POOL_CASES, ids=str)
def test_pooling_is_torchs(op, xs, k, stride):
    x = rng(3).normal(size=xs)
    call = f"{op}(x, {k})" if stride is None else f"{op}(x, {k}, stride={stride})"
    m = graphc.compile(f"input x: {list(xs)}\ny = {call}\nL = sum(y)")
    y = m.evaluate({"x": x})["y"]
    flat = torch.tensor(x.reshape(-1, *xs[-3:]) if len(xs) >= 3 else x[None])
    want = getattr(F, op)(flat, k, stride=stride or k).numpy()
    want = want.reshape(*xs[:-2], *want.shape[-2:])
    assert shapes_of(m)["y"] == str(list(want.shape))
    assert_close(y, want, rtol=1e-12, atol=1e-12, what=op)


def test_k_may_be_a_keyword_and_a_const():
    x = rng(4).normal(size=(1, 1, 6, 6))
    ys = [
        graphc.compile(f"{pre}y = max_pool2d(x, {k})\nL = sum(y)").evaluate({"x": x})["y"]
        for pre, k in (("", "2"), ("", "k=2"), ("const K = 2\n", "K"), ("", "2, stride=2"))
    ]
    for y in ys:
        np.testing.assert_array_equal(y, ys[0])


# ---- gradients against PyTorch and finite differences ------------------------------------------------

CNN = """
input X: [N, 2, 7, 7]
param K1: [3, 2, 3, 3]
param c1: [3, 1, 1]
param K2: [4, 3, 2, 2]
param W: [16, 3]
H1 = tanh(conv2d(X, K1, padding=1) + c1)         # [N, 3, 7, 7]
P1 = max_pool2d(H1, 3, stride=2)                 # [N, 3, 3, 3], overlapping windows
H2 = softplus(conv2d(P1, K2, stride=1, padding=1))  # [N, 4, 4, 4]
P2 = avg_pool2d(H2, 2)                           # [N, 4, 2, 2]
Z = reshape(P2, [N, 16]) @ W
L = sum(Z * Z) + sum(sin(P1))
"""
CNN_PARAMS = ["X", "K1", "c1", "K2", "W"]


def cnn_torch(X, K1, c1, K2, W):
    H1 = torch.tanh(F.conv2d(X, K1, padding=1) + c1)
    P1 = F.max_pool2d(H1, 3, stride=2)
    H2 = F.softplus(F.conv2d(P1, K2, stride=1, padding=1))
    P2 = F.avg_pool2d(H2, 2)
    Z = P2.reshape(X.shape[0], 16) @ W
    return (Z * Z).sum() + torch.sin(P1).sum()


def cnn_values(seed=0, n=2):
    r = rng(seed)
    return {
        "X": r.normal(size=(n, 2, 7, 7)),
        "K1": r.normal(size=(3, 2, 3, 3)) * 0.5,
        "c1": r.normal(size=(3, 1, 1)),
        "K2": r.normal(size=(4, 3, 2, 2)) * 0.5,
        "W": r.normal(size=(16, 3)),
    }


def test_cnn_shapes_with_a_symbolic_batch():
    shapes = shapes_of(graphc.compile(CNN))
    assert shapes["H1"] == "[N, 3, 7, 7]" and shapes["P1"] == "[N, 3, 3, 3]"
    assert shapes["H2"] == "[N, 4, 4, 4]" and shapes["P2"] == "[N, 4, 2, 2]" and shapes["Z"] == "[N, 3]"


def test_cnn_gradients_agree_with_pytorch_and_finite_differences():
    m = graphc.compile(CNN)
    v = cnn_values()
    loss, grads = m.loss_and_grad(v, wrt=CNN_PARAMS)
    ref_loss, ref = torch_grads(cnn_torch, v, CNN_PARAMS)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    for k in CNN_PARAMS:
        assert_close(grads[k], ref[k], rtol=1e-10, atol=1e-11, what=k)
    for k in ("K1", "c1", "K2"):  # (no ties in random data: max pooling is smooth here)
        assert_matches_finite_differences(m, v, k, grads[k])


@pytest.mark.parametrize(("xs", "ws", "stride", "padding"), CONV_CASES, ids=str)
def test_conv2d_gradients_in_x_and_w_for_every_case(xs, ws, stride, padding):
    conv = f"conv2d(x, w, stride={stride}, padding={padding})"
    src = f"input x: {list(xs)}\nparam w: {list(ws)}\ninput r\nL = sum(r * {conv})"
    x, w = rng(5).normal(size=xs), rng(6).normal(size=ws)
    r = rng(7).normal(size=F.conv2d(torch.tensor(x), torch.tensor(w), stride=stride, padding=padding).shape)
    v = {"x": x, "w": w, "r": r}
    _, grads = graphc.compile(src).loss_and_grad(v, wrt=["x", "w"])
    _, ref = torch_grads(lambda x, w, r: (r * F.conv2d(x, w, stride=stride, padding=padding)).sum(), v, ["x", "w"])
    for k in ("x", "w"):
        assert_close(grads[k], ref[k], rtol=1e-12, atol=1e-12, what=k)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(("xs", "k", "stride"), POOL_CASES, ids=str)
def test_pooling_gradients(op, xs, k, stride):
    x = rng(8).normal(size=xs)
    m = graphc.compile(f"input x: {list(xs)}\nL = sum(sin({op}(x, {k}, stride={stride or k})))")
    _, grads = m.loss_and_grad({"x": x}, wrt=["x"])

    def ref(x):
        flat = x.reshape(-1, *xs[-3:]) if len(xs) >= 3 else x[None]
        return torch.sin(getattr(F, op)(flat, k, stride=stride or k)).sum()

    assert_close(grads["x"], torch_grads(ref, {"x": x}, ["x"])[1]["x"], rtol=1e-12, atol=1e-12, what=op)
    assert_matches_finite_differences(m, {"x": x}, "x", grads["x"])


# ---- ties: PyTorch gives each window's whole signal to one entry, the first max in row-major order --------

TIES = [
    np.array([[1.0, 1.0, 0.0, 2.0], [1.0, 1.0, 2.0, 2.0], [0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0]]),
    np.zeros((4, 4)),
    np.array([[3.0, 1.0, 3.0, 1.0], [1.0, 3.0, 1.0, 3.0], [3.0, 3.0, 3.0, 3.0], [1.0, 1.0, 1.0, 3.0]]),
]


@pytest.mark.parametrize(("k", "stride"), [(2, 2), (2, 1), (3, 1), (3, 2)])
@pytest.mark.parametrize("image", range(len(TIES)))
def test_max_pool_ties_follow_pytorch(image, k, stride):
    x = TIES[image][None, None]
    src = f"input x: [1, 1, 4, 4]\ninput r\nL = sum(r * max_pool2d(x, {k}, stride={stride}))"
    r = rng(9).normal(size=F.max_pool2d(torch.tensor(x), k, stride).shape)
    for m in (graphc.compile(src), graphc.compile(src).compiled(wrt=["x"])):
        grads = (
            m.loss_and_grad({"x": x, "r": r}, wrt=["x"])[1]
            if isinstance(m, graphc.Model)
            else m.loss_and_grad(x=x, r=r)[1]
        )
        _, ref = torch_grads(lambda x, r: (r * F.max_pool2d(x, k, stride)).sum(), {"x": x, "r": r}, ["x"])
        np.testing.assert_array_equal(grads["x"], ref["x"])


def test_ties_after_relu_send_the_signal_to_one_zero_per_window():
    """relu makes whole windows 0: max_pool2d's signal goes to each window's first entry, as in PyTorch."""
    src = "input x: [2, 3, 6, 6]\nparam s: [3, 1, 1]\n"
    src += "L = sum(max_pool2d(relu(x) * s, 2) ^ 2) + sum(max_pool2d(relu(x), 3, stride=1))"
    x = np.round(rng(10).normal(size=(2, 3, 6, 6)))  # integers: ties within windows, zeros after relu
    v = {"x": x, "s": np.ones((3, 1, 1))}
    _, grads = graphc.compile(src).loss_and_grad(v, wrt=["x", "s"])
    fn = lambda x, s: (F.max_pool2d(torch.relu(x) * s, 2) ** 2).sum() + F.max_pool2d(torch.relu(x), 3, 1).sum()  # noqa: E731
    _, ref = torch_grads(fn, v, ["x", "s"])
    for k in ("x", "s"):
        assert_close(grads[k], ref[k], rtol=1e-12, atol=0, what=k)


# ---- the emitted module, float64 and float32 -------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_emitted_module_agrees_with_the_interpreter(dtype):
    m = graphc.compile(CNN)
    mod = m.compiled(wrt=CNN_PARAMS, dtype=dtype)
    tol = 1e-12 if dtype == "float64" else 2e-4
    for n in (1, 3):
        v = cnn_values(1, n)
        loss, grads = mod.loss_and_grad(**v)
        ref_loss, ref = m.loss_and_grad(v, wrt=CNN_PARAMS)
        assert np.asarray(loss).dtype == np.dtype(dtype)
        assert float(loss) == pytest.approx(ref_loss, rel=tol)
        for k in CNN_PARAMS:
            assert grads[k].dtype == np.dtype(dtype) and grads[k].shape == v[k].shape, k
            assert_close(grads[k], ref[k], rtol=tol, atol=tol, what=f"{dtype} {k}")
        out = mod.forward(**v)
        assert out["P1"].dtype == np.dtype(dtype)
        assert_close(out["Z"], m.evaluate(v)["Z"], rtol=tol, atol=tol, what="forward")


def test_the_emitted_module_is_standalone_and_reads_like_the_model():
    src = graphc.compile(CNN).emit(wrt=["K1"], order=2)
    for line in (
        "H1 = np.tanh(_conv(X, K1, padding=1) + c1)",
        "P1 = _max_pool(H1, k=3, stride=2)",
        "P2 = _avg_pool(H2, k=2)",
        "np.reshape(P2, (N, 16))",
    ):
        assert line in src, line
    ns: dict = {}
    exec(compile(src, "<emitted>", "exec"), ns)  # noqa: S102 - our own output
    v = cnn_values(2)
    assert_close(
        ns["hvp"](np.ones((3, 2, 3, 3)), **v),
        graphc.compile(CNN).hvp(v, np.ones((3, 2, 3, 3)), "K1"),
        rtol=1e-11,
        atol=1e-11,
        what="hvp",
    )


# ---- second derivatives ----------------------------------------------------------------------------


@pytest.mark.parametrize("wrt", CNN_PARAMS)
def test_hvp_agrees_with_pytorchs_double_backward(wrt):
    """Through both convs, both poolings and the reshape, w.r.t. every value: the gradient ops' own gradients
    (conv2d_input_grad's, conv2d_weight_grad's, max_pool2d_grad's, ...) are right."""
    m = graphc.compile(CNN)
    v = cnn_values(3)
    direction = rng(11).normal(size=v[wrt].shape)
    want = torch_hvp(cnn_torch, v, wrt, direction)
    assert_close(m.hvp(v, direction, wrt), want, rtol=1e-10, atol=1e-10, what=f"interpreter hvp {wrt}")
    emitted = m.compiled([wrt], order=2).hvp(direction, **v)
    assert_close(emitted, want, rtol=1e-10, atol=1e-10, what=f"emitted hvp {wrt}")


def test_hessian_of_a_conv_kernel_is_symmetric_and_matches_pytorch():
    m = graphc.compile(CNN)
    v = cnn_values(4, n=1)
    h = m.hessian(v, "K2")
    assert h.shape == (4, 3, 2, 2) * 2
    flat = h.reshape(48, 48)
    assert_close(flat, flat.T, rtol=1e-10, atol=1e-10, what="symmetry")
    e = np.zeros(48)
    e[5] = 1.0
    assert_close(flat[:, 5], torch_hvp(cnn_torch, v, "K2", e.reshape(4, 3, 2, 2)).reshape(48), rtol=1e-10, atol=1e-10)


def test_hvp_of_a_kernel_used_twice_agrees_with_pytorch():
    """K in both convs: differentiating the backward pass again meets conv2d_input_grad(ḡ, K, H) and
    conv2d_weight_grad(H, ḡ, K) with K and H depending on K, so every argument's gradient of both is used."""
    src = "input X: [N, 2, 6, 6]\nparam K: [2, 2, 3, 3]\nH = tanh(conv2d(X, K, padding=1))\n"
    src += "L = sum(sin(conv2d(H, K, stride=2)))\n"

    def fn(X, K):
        return torch.sin(F.conv2d(torch.tanh(F.conv2d(X, K, padding=1)), K, stride=2)).sum()

    m = graphc.compile(src)
    v = {"X": rng(14).normal(size=(2, 2, 6, 6)), "K": rng(15).normal(size=(2, 2, 3, 3)) * 0.5}
    for wrt in ("K", "X"):
        d = rng(16).normal(size=v[wrt].shape)
        want = torch_hvp(fn, v, wrt, d)
        assert_close(m.hvp(v, d, wrt), want, rtol=1e-10, atol=1e-10, what=f"hvp {wrt}")
        assert_close(m.compiled([wrt], order=2).hvp(d, **v), want, rtol=1e-10, atol=1e-10, what=f"emitted {wrt}")


# graphc's own ops, made only by derivative rules: (name, argument shapes, attrs, the arguments with a
# derivative); each appears in a backward graph, and its own derivative in the next one (order 2 and beyond).
# max_pool2d_grad(g, x, y) and max_pool2d_select(a, x, y) read y = max_pool2d(x) and x for where the maxima
# are: y is made so, and neither is perturbed (their derivative is 0 wherever it exists).
GRADIENT_OPS = [
    ("conv2d_input_grad", [(2, 3, 4, 4), (3, 2, 3, 2), (2, 2, 7, 6)], {"stride": 2, "padding": 1}, [0, 1]),
    ("conv2d_weight_grad", [(2, 2, 7, 6), (2, 3, 4, 4), (3, 2, 3, 2)], {"stride": 2, "padding": 1}, [0, 1]),
    ("max_pool2d_grad", [(2, 2, 2, 2), (2, 2, 5, 5), (2, 2, 2, 2)], {"k": 3, "stride": 2}, [0]),
    ("max_pool2d_grad", [(1, 2, 3, 3), (1, 2, 6, 6), (1, 2, 3, 3)], {"k": 2}, [0]),
    ("max_pool2d_select", [(2, 2, 5, 5), (2, 2, 5, 5), (2, 2, 2, 2)], {"k": 3, "stride": 2}, [0]),
    ("max_pool2d_select", [(1, 2, 6, 6), (1, 2, 6, 6), (1, 2, 3, 3)], {"k": 2}, [0]),
    ("avg_pool2d_grad", [(2, 2, 2, 2), (2, 2, 5, 5)], {"k": 2, "stride": 2}, [0]),
    ("reshape_like", [(2, 6), (3, 4)], {}, [0]),
]


@pytest.mark.parametrize(("name", "shapes", "attrs", "read"), GRADIENT_OPS, ids=lambda c: str(c))
def test_the_gradient_ops_own_derivatives_match_finite_differences(name, shapes, attrs, read):
    """L = sum(r * op(a0, a1, ...)) for an op no model text can call: its derivative rule (which third and
    higher derivatives of the user's ops use) against finite differences."""
    decl = "".join(f"input a{k}: {list(s)}\n" for k, s in enumerate(shapes))
    m = graphc.compile(decl + "input r\ny = identity(a0)\nL = sum(r * y)\n")
    g = m.graph
    y = g.names["y"]
    g[y].update(op=name, attrs=attrs)
    g.set_args(y, [g.names[f"a{k}"] for k in range(len(shapes))])
    g.infer_all()
    values = {f"a{k}": rng(20 + k).normal(size=s) for k, s in enumerate(shapes)}
    if name.startswith("max_pool2d"):
        values["a2"] = F.max_pool2d(torch.tensor(values["a1"]), attrs["k"], attrs.get("stride")).numpy()
    values["r"] = rng(30).normal(size=g[y]["shape"])
    wrt = [f"a{k}" for k in read]
    _, grads = m.loss_and_grad(values, wrt=wrt)
    for a in wrt:
        assert_matches_finite_differences(m, values, a, grads[a])


# ---- shape rules with symbolic dims ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("decl", "call", "want"),
    [
        ("input x: [N, 3, 8, 8]\nparam w: [F, 3, 3, 3]", "conv2d(x, w)", "[N, F, 6, 6]"),
        ("input x: [N, C, 8, 8]\nparam w: [4, 3, 3, 3]", "conv2d(x, w, padding=1)", "[N, 4, 8, 8]"),
        ("input x: [N, 3, H, W]\nparam w: [4, 3, 3, 3]", "conv2d(x, w)", "unknown"),  # H - 2 is no dim
        ("input x: [N, 3, H, W]\nparam w: [4, 3, 1, 1]", "conv2d(x, w)", "[N, 4, H, W]"),
        ("input x: [N, C, 9, 9]", "max_pool2d(x, 2)", "[N, C, 4, 4]"),
        ("input x: [N, C, H, 9]", "avg_pool2d(x, 3)", "unknown"),
    ],
)
def test_symbolic_shapes(decl, call, want):
    m = graphc.compile(f"{decl}\ny = {call}\nL = sum(y)")
    assert shapes_of(m)["y"] == want


def test_a_symbolic_channel_count_is_unified_with_the_kernels():
    m = graphc.compile("input x: [N, C, 8, 8]\nparam w: [4, 3, 3, 3]\ny = conv2d(x, w)\nL = sum(y)")
    assert shapes_of(m)["x"] == "[N, 3, 8, 8]"


def test_unknown_shapes_are_taken_from_the_values():
    m = graphc.compile("y = max_pool2d(conv2d(x, w, padding=1), 2)\nL = sum(y)")
    v = {"x": rng(12).normal(size=(2, 3, 6, 6)), "w": rng(13).normal(size=(5, 3, 3, 3))}
    y = m.evaluate(v)["y"]
    want = F.max_pool2d(F.conv2d(torch.tensor(v["x"]), torch.tensor(v["w"]), padding=1), 2).numpy()
    assert_close(y, want, rtol=1e-12, atol=1e-12)
    _, grads = m.loss_and_grad(v, wrt=["x", "w"])
    _, ref = torch_grads(lambda x, w: F.max_pool2d(F.conv2d(x, w, padding=1), 2).sum(), v, ["x", "w"])
    for k in ("x", "w"):
        assert_close(grads[k], ref[k], rtol=1e-12, atol=1e-12, what=k)


# ---- errors ---------------------------------------------------------------------------------------

DECL = "input x: [2, 3, 8, 8]\nparam w: [4, 3, 3, 3]\n"


@pytest.mark.parametrize(
    ("src", "words"),
    [
        (
            "input x: [2, 3, 8, 8]\nparam w: [4, 2, 3, 3]\ny = conv2d(x, w)",
            ["[2, 3, 8, 8]", "[4, 2, 3, 3]", "channels"],
        ),
        ("input x: [2, 3, 4, 4]\nparam w: [4, 3, 5, 5]\ny = conv2d(x, w)", ["[5, 5]", "larger", "[4, 4]"]),
        ("input x: [2, 3, 2, 2]\nparam w: [4, 3, 5, 5]\ny = conv2d(x, w, padding=1)", ["larger", "padded by 1"]),
        ("input x: [3, 8, 8]\nparam w: [4, 3, 3, 3]\ny = conv2d(x, w)", ["x", "[N, C, H, W]", "[3, 8, 8]"]),
        ("input x: [2, 3, 8, 8]\nparam w: [3, 3, 3]\ny = conv2d(x, w)", ["w", "[F, C, kh, kw]", "[3, 3, 3]"]),
        (DECL + "y = conv2d(x, w, stride=0)", ["stride", "at least 1", "0"]),
        (DECL + "y = conv2d(x, w, padding=-1)", ["padding", "at least 0", "-1"]),
        ("input x: [2, 3, 4, 4]\ny = max_pool2d(x, 5)", ["5x5", "larger", "[4, 4]"]),
        ("input x: [2, 3, 4, 4]\ny = avg_pool2d(x, 0)", ["k", "at least 1"]),
        ("input x: [2, 3, 4, 4]\ny = max_pool2d(x, 2, stride=0)", ["stride", "at least 1"]),
        ("input x: [8]\ny = max_pool2d(x, 2)", ["last two axes", "[8]"]),
        ("input x: [2, 3, 4, 4]\nparam w: [4, 3, 0, 2]\ny = conv2d(x, w)", ["empty", "at least 1x1"]),
    ],
)
def test_bad_shapes_are_located_errors(src, words):
    e = error_of(src + "\nL = sum(y)")
    line = src.count("\n") + 1
    assert e.span is not None and e.span.line == line, (e.message, e.span)
    for w in words:
        assert w in e.message, (w, e.message)


def test_a_channel_mismatch_known_only_from_the_values_is_located():
    e = error_of("y = conv2d(x, w)\nL = sum(y)", x=np.zeros((1, 3, 5, 5)), w=np.zeros((2, 4, 3, 3)))
    assert e.span.line == 1 and "[1, 3, 5, 5]" in e.message and "[2, 4, 3, 3]" in e.message


@pytest.mark.parametrize("call", ["conv2d(x, w, padding=1)", "max_pool2d(x, 2)", "avg_pool2d(x, 2, stride=1)"])
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4), (2, 3, 0, 4), (0,), (3, 0)], ids=str)
def test_empty_arrays_give_values_or_a_graphc_error(call, shape):
    """An empty batch is empty values and gradients; an empty image is an error saying why, never a crash."""
    m = graphc.compile(f"y = {call}\nL = sum(y)")
    values = {"x": np.zeros(shape), "w": np.ones((2, 3, 3, 3))} if "w" in call else {"x": np.zeros(shape)}
    try:
        _, grads = m.loss_and_grad(values, wrt=["x"])
    except GraphcError as e:
        assert e.span is not None and e.span.line == 1 and e.message
        assert shape[0] != 0 or len(shape) < 4  # an empty batch has values
        return
    assert grads["x"].shape == shape and m.evaluate(values)["L"] == 0.0


@pytest.mark.parametrize(
    ("call", "words"),
    [
        ("max_pool2d(x)", ["needs `k`"]),
        ("avg_pool2d(x, 2.5)", ["`k`", "integer"]),
        ("max_pool2d(x, 2, 2)", ["takes 1 to 2 arguments"]),
        ("conv2d(x)", ["takes 2 arguments"]),
        ("conv2d(x, x, stride=1.5)", ["`stride`", "integer"]),
        ("conv2d(x, x, dilation=2)", ["no keyword `dilation`"]),
    ],
)
def test_bad_calls(call, words):
    e = error_of(f"y = {call}\nL = sum(y)")
    assert e.span is not None and e.span.line == 1
    for w in words:
        assert w in e.message, (w, e.message)


@pytest.mark.parametrize(
    "name",
    [
        "conv2d_input_grad",
        "conv2d_weight_grad",
        "max_pool2d_grad",
        "max_pool2d_select",
        "avg_pool2d_grad",
        "reshape_like",
    ],
)
def test_the_gradient_ops_are_graphcs_own(name):
    e = error_of(f"y = {name}(x, x, x)\nL = sum(y)")
    assert "unknown function" in e.message


# ---- the example: examples/digits_cnn.gc ----------------------------------------------------------------


def test_the_digits_cnn_example_trains_through_the_command_line_to_96_percent_held_out(tmp_path):
    import re

    from clitools import REPO, run_cleanly

    ex = REPO / "examples"
    r = run_cleanly(
        "train", ex / "digits_cnn.gc", "--data", ex / "digits_train.npz", "--val", ex / "digits_test.npz",
        "--lr", "0.5", "--schedule", "halve", "--epochs", "20", "--batch-size", "32", "--metric", "accuracy",
        "--quiet", "-o", tmp_path / "params.npz",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    held_out = float(re.search(r"^val accuracy = ([0-9.]+)$", r.stdout, re.MULTILINE).group(1))
    assert held_out >= 0.96, r.stdout
    # the params it wrote classify the held-out images as it says
    m = graphc.load(ex / "digits_cnn.gc")
    test = dict(np.load(ex / "digits_test.npz"))
    Y = m.evaluate({"X": test["X"], "T": test["T"], **np.load(tmp_path / "params.npz")})["Y"]
    assert np.mean(np.argmax(Y, axis=1) == test["labels"]) == pytest.approx(held_out, abs=1e-6)


def test_he_and_glorot_initialise_a_kernel_by_its_receptive_field():
    """A kernel [F, C, kh, kw] reads C kh kw inputs per output, as PyTorch counts its fans."""
    m = graphc.compile(
        "param K: [64, 4, 3, 3] = he\nparam G: [64, 4, 3, 3] = glorot\ninput x: []\nL = sum(K) * x + sum(G)"
    )
    v = m.evaluate({"x": 1.0})
    assert np.std(v["K"]) == pytest.approx(np.sqrt(2.0 / (4 * 9)), rel=0.05)
    assert np.abs(v["G"]).max() <= np.sqrt(6.0 / (4 * 9 + 64 * 9))
    assert np.abs(v["G"]).max() > 0.9 * np.sqrt(6.0 / (4 * 9 + 64 * 9))


def test_too_many_arguments_name_the_keywords():
    with pytest.raises(GraphcError) as e:
        graphc.compile("input x: [1, 1, 4, 4]\nparam w: [1, 1, 2, 2]\nL = sum(conv2d(x, w, 2, 1))")
    assert "takes 2 arguments, got 4" in e.value.message and "stride, padding" in e.value.hint
