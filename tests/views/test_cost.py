"""`graphc cost` (issue 16 item 1, SPEC §2): FLOPs and bytes moved per node, forward and backward totals.

The expected counts are worked out by hand from the counting rules in graphc/views/cost.py's docstring
(2mkn per matmul, 1 per element of an elementwise op, n per reduction of n elements, views 0; bytes: each
argument read plus the result written, 8 bytes an element).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from clitools import run_cleanly
from goldens import example_models

import graphc
from graphc.ir import ops as O
from graphc.views.cost import Poly, covered, dim_poly

EX = Path(__file__).resolve().parents[2] / "examples"


def by_computes(c) -> dict:
    """{what a node computes: (pass, flops, bytes)} of a Cost, formulas as text."""
    return {n.computes: (n.pass_, n.flops.json(), n.bytes.json()) for n in c.nodes}


def totals(c) -> tuple:
    return (c.forward.flops.json(), c.backward.flops.json(), c.forward.bytes.json(), c.backward.bytes.json())


# ---- the polynomials of dims ----------------------------------------------------------------------


def test_polynomials_collect_and_print_readably():
    N, D, H = (Poly.symbol(s) for s in "NDH")
    p = N * D * H * 2 + N * H * 3 + H * N + 5 - 5
    assert str(p) == "2*D*H*N + 4*H*N"
    assert str(N * N * 3 - N + 1) == "3*N^2 - N + 1"
    assert str(Poly()) == "0" and Poly().number == 0
    assert (N * 0).number == 0 and Poly.const(7).json() == 7 and (N + 1).json() == "N + 1"
    assert N * D == D * N and hash(N * D) == hash(D * N)


def test_derived_dims_are_sums_and_others_are_symbols():
    assert str(dim_poly("N-1")) == "N - 1"
    assert str(dim_poly("N+M+3")) == "M + N + 3"
    assert str(dim_poly("len(N[::2])")) == "len(N[::2])"
    assert dim_poly(4) == 4


def test_every_op_has_a_counting_rule():
    assert [op for op in O.OPS if not covered(op)] == []


# ---- the lecture's models, by hand ------------------------------------------------------------------


def test_logistic_least_squares_by_hand():
    """z = w x + b, y = σ(z), L = ½(y - t)²: every value a scalar, so each op is 1 FLOP.
    forward: w*x, + b, σ, y - t, (y - t)², ½·: 6; backward: 1 - y, y(1 - y), z̄ = ȳ σ', w̄ = z̄ x: 4
    (ȳ = y - t is the forward's y - t, and b̄ = z̄: no work)."""
    c = graphc.load(EX / "logistic_least_squares.gc").cost()
    assert totals(c) == (6, 4, 6 * 24 - 8, 4 * 24)  # σ reads one number: 16 bytes, the others 24
    assert c.ratios()["flops"] == (4 / 6, True)
    assert [n.pass_ for n in c.nodes].count("backward") == 4


def test_two_layer_by_hand():
    """D = 2, H = 3, K = 2, one example. forward: W1 x 2·3·2 = 12, + b1 3, σ 3, W2 h 2·2·3 = 12, + b2 2,
    t - y 2, its square 2, sum 2, ½· 1: 39. backward: 1 - h 3, h(1 - h) 3, ȳ = y - t 2, h̄ = W2ᵀ ȳ 12,
    W̄2 = ȳ hᵀ 6 (an outer product: a multiply per weight), z̄ = h̄ ∘ σ' 3, W̄1 = z̄ xᵀ 6: 35."""
    m = graphc.load(EX / "two_layer.gc")
    c = m.cost()
    nodes = by_computes(c)
    assert nodes["W1 @ x"] == ("forward", 12, (6 + 2 + 3) * 8)
    assert nodes["sigmoid(z)"] == ("forward", 3, 6 * 8)
    assert nodes["y_bar @ W2"] == ("backward", 12, (2 + 6 + 3) * 8)
    assert nodes["outer(y_bar, h)"] == ("backward", 6, (2 + 3 + 6) * 8)
    assert nodes["outer(z_bar, x)"] == ("backward", 6, (3 + 2 + 6) * 8)
    assert totals(c) == (39, 35, 488, 512)
    assert c.forward.products.number == 24 and c.backward.products.number == 24
    # with values: the same numbers (the shapes were all known)
    values = dict(np.load(EX / "two_layer.npz"))
    assert totals(m.cost(values)) == totals(c)
    # x's gradient would add x̄ = W1ᵀ z̄, 2·3·2 = 12 FLOPs; t̄ = t - y is the forward's
    assert c.all_wrt == ["W1", "b1", "W2", "b2", "x", "t"]
    assert c.missing["x"] == (Poly.const(12), [32]) and c.missing["t"] == (Poly(), [])
    assert c.all_backward.flops.number == 47


DIGITS_FORWARD = {  # X: [N, 64], W1: [64, 32], W2: [32, 10]
    "X @ W1": 2 * 64 * 32,
    "%6 + b1": 32,
    "sigmoid(%7)": 32,
    "H @ W2": 2 * 32 * 10,
    "%9 + b2": 10,
    "log_softmax(Z)": 5 * 10 + 1,  # max, subtract, exp, sum, subtract: 5 a score; a log a row
    "exp(%12)": 10,  # Y = softmax(Z), shared with log_softmax (simplify)
    "T * %12": 10,
    "sum(%13, axis=1)": 10,
}


def test_digits_mlp_formulas_by_hand():
    """The lecture's two-layer network on a batch of N digits: every count a multiple of N, the products'
    forward 2N(64·32 + 32·10) = 4736 N; backward H̄ = Z̄ W2ᵀ and W̄2 = Hᵀ Z̄ 640 N each, W̄1 = Xᵀ Z̄1 4096 N;
    no X̄ = Z̄1 W1ᵀ (4096 N): X is data. So 5376 N / 4736 N = 1.14, not 2."""
    c = graphc.load(EX / "digits_mlp.gc").cost()
    nodes = by_computes(c)
    for what, per_n in DIGITS_FORWARD.items():
        assert nodes[what][:2] == ("forward", f"{per_n}*N"), what
    assert nodes["X @ W1"][2] == "768*N + 16384"  # reads X 512 N and W1 16384, writes 256 N bytes
    assert nodes["mean(%14)"][:2] == ("forward", "N + 1")
    assert c.symbols == ["N"]
    fwd = sum(DIGITS_FORWARD.values())
    assert str(c.forward.flops) == f"{fwd + 1}*N + 2"  # + mean's N + 1, and the loss's minus sign
    assert str(c.forward.products) == "4736*N" and str(c.backward.products) == "5376*N"
    backward = 640 + 640 + 4096 + 2 * 32 + 32 + 5 * 10 + 10 + 32  # products, σ', unbroadcast, the softmax's
    assert str(c.backward.flops) == f"{backward}*N"
    v, exact = c.ratios()["flops"]
    assert not exact and v == pytest.approx(backward / (fwd + 1))
    # X's gradient would add its product, 2·N·32·64; then the ratio is the lecture's ~2
    assert c.missing["X"] == (Poly.symbol("N") * 4096, [28])
    v = c.json()["all_inputs"]["ratio"]["flops"]
    assert v == pytest.approx((backward + 4096 + 20) / (fwd + 1)) and 1.95 < v < 2.0


def test_digits_mlp_with_values_is_the_formula_at_n():
    """With the 360 test digits, the counts are numbers: the forward pass's formula at N = 360."""
    m = graphc.load(EX / "digits_mlp.gc")
    data = dict(np.load(EX / "digits_test.npz"))
    n = len(data["X"])
    c, s = m.cost({"X": data["X"], "T": data["T"]}), m.cost()
    assert c.symbols == [] and c.ratios()["flops"][1]
    assert c.forward.flops.number == s.forward.flops.terms[(("N", 1),)] * n + 2
    assert c.forward.bytes.number == sum(k * n ** len(m_) for m_, k in s.forward.bytes.terms.items())
    # the backward pass is one op lighter: with N known, 1/N is a number, and -(1/N · T) folds to (-1/N) · T
    assert c.backward.flops.number == s.backward.flops.terms[(("N", 1),)] * n - 10 * n


def test_least_squares_formulas_in_two_dims():
    """X: [N, D], w: [D]. forward: Xw 2ND, - t N, r² N, mean N + 1, ½· 1; backward: r̄ = r/N N, w̄ = r̄ X 2ND."""
    c = graphc.load(EX / "least_squares.gc").cost()
    assert str(c.forward.flops) == "2*D*N + 3*N + 2"
    assert str(c.backward.flops) == "2*D*N + N"
    assert c.ratios()["flops"] == (1.0, False)  # 1 as N and D grow: no X̄ product
    assert str(by_computes(c)["X @ w"][2]) == "8*D*N + 8*D + 8*N"
    assert str(c.missing["X"][0]) == "D*N"  # X̄ = r̄ wᵀ, an outer product


def test_digits_cnn_convolution_by_formula():
    """conv2d of [N, 1, 8, 8] by 16 3x3 kernels, padding 1: 2·N·16·8·8·1·3·3 = 18432 N, and K̄ the same;
    2x2 max pooling: 4 comparisons a window, N·16·4·4 windows; the dense layer 2·N·256·10 = 5120 N."""
    c = graphc.load(EX / "digits_cnn.gc").cost()
    nodes = {n.op: n for n in c.nodes}
    assert str(nodes["conv2d"].flops) == "18432*N"
    assert str(nodes["conv2d"].bytes) == "8704*N + 1152"  # reads 64 N and 144, writes 1024 N numbers
    assert str(nodes["conv2d_weight_grad"].flops) == "18432*N" and nodes["conv2d_weight_grad"].pass_ == "backward"
    assert str(nodes["max_pool2d"].flops) == "1024*N" and str(nodes["max_pool2d_grad"].flops) == "1024*N"
    assert nodes["reshape"].flops == Poly() and nodes["reshape"].bytes == Poly()
    assert str(c.forward.products) == "23552*N" and str(c.backward.products) == "28672*N"
    assert c.missing["X"] == (Poly.symbol("N") * 18432, [35])  # V̄: the conv's adjoint in x


# ---- the ratio: ~2 when every input's gradient is needed -------------------------------------------


def test_ratio_of_products_is_two_when_every_factor_needs_its_gradient():
    m = graphc.compile("param A: [4, 5]\nparam B: [5, 3]\nC = A @ B\nL = sum(C * C)\n")
    c = m.cost()
    assert c.forward.products.number == 2 * 4 * 5 * 3
    assert c.backward.products.number == 2 * c.forward.products.number
    assert c.all_backward is None and "the case the lecture counts" in c.text()


def test_wrt_every_input_gives_the_lecture_ratio():
    m = graphc.load(EX / "digits_mlp.gc")
    data, every = graphc.load(EX / "digits_mlp.gc").cost(), ["W1", "b1", "W2", "b2", "X", "T"]
    full = m.cost(wrt=every)
    assert full.all_backward is None and full.backward.flops == data.all_backward.flops
    assert str(full.backward.products) == "9472*N"  # twice the forward's 4736 N
    assert data.ratios()["flops"][0] < 1.2 < 1.9 < full.ratios()["flops"][0]


def test_a_model_without_params_differentiates_its_inputs():
    c = graphc.compile("input A: [M, K]\ninput B: [K, P]\nL = sum(A @ B)\n").cost()
    assert c.wrt == ["A", "B"] and c.all_backward is None
    assert str(c.forward.products) == "2*K*M*P" and str(c.backward.products) == "4*K*M*P"
    assert c.ratios()["flops"] == (2.0, False)


def test_nothing_to_differentiate():
    c = graphc.compile("const k = 3\nL = k * 2\n").cost()
    assert c.wrt == [] and c.backward.flops == Poly()
    assert "no backward pass" in c.text()


# ---- the bytes rules --------------------------------------------------------------------------------


def test_bytes_views_masks_broadcasts_and_dtype():
    m = graphc.compile("input x: [N]\nparam s = 1\ny = relu(x * s)\nL = sum(y)\n")
    c = m.cost()
    nodes = by_computes(c)
    assert nodes["x * s"][2] == "16*N + 8"  # the broadcast scalar s is read as one number
    mask = next(n for n in c.nodes if n.op == "gt")
    assert str(mask.bytes) == "9*N + 8"  # reads x * s (8 N) and 0.0, writes N bools
    assert all(n.flops == Poly() and n.bytes == Poly() for n in c.nodes if n.op in ("broadcast", "mT"))
    c32 = m.cost(dtype="float32")
    assert by_computes(c32)["x * s"][2] == "8*N + 4"


def test_take_reads_the_rows_it_picks():
    m = graphc.compile("input i: [N]\nparam E: [V, D]\ne = take(E, i)\nL = sum(e)\n")
    take = next(n for n in m.cost().nodes if n.op == "take")
    assert take.flops == Poly() and str(take.bytes) == "16*D*N + 8*N"  # rows read and written, indices


def test_unknown_shapes_are_said_not_guessed():
    c = graphc.compile("input x\nL = sum(exp(x))\n").cost()
    assert any(n.flops is None for n in c.nodes) and c.forward.unknown
    assert "unknown" in c.text() and c.json()["ratio"]["flops"] is None


@pytest.mark.parametrize("path", example_models(), ids=lambda p: p.name)
def test_every_example_is_costed(path):
    c = graphc.load(path).cost()
    assert c.nodes and c.forward.flops != Poly()
    json.dumps(c.json())


# ---- the command line -------------------------------------------------------------------------------


def test_cli_text_table_totals_and_explanation(tmp_path):
    r = run_cleanly("cost", EX / "digits_mlp.gc", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    header = out.splitlines()[0].split()
    assert header == ["name", "pass", "line", "computes", "op", "shape", "flops", "bytes"]
    assert "forward:  4892*N + 2 FLOPs" in out and "backward: 5564*N" in out
    assert "backward/forward: 1.14 (for large N) in FLOPs" in out
    assert "no gradient for the inputs X, T (the data)" in out and "X̄ would add 4096*N FLOPs" in out
    assert "1.98 (for large N) times the forward pass" in out


def test_cli_json_with_values(tmp_path):
    r = run_cleanly("cost", EX / "two_layer.gc", "--inputs", EX / "two_layer.npz", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["forward"]["flops"] == 39 and d["backward"] == {"flops": 35, "bytes": 512}
    assert d["products"] == {"forward": 24, "backward": 24}
    assert d["forward"]["bytes"] == 488 and d["ratio"]["flops"] == pytest.approx(35 / 39)
    node = d["nodes"][0]
    assert set(node) == {"name", "op", "computes", "line", "shape", "flops", "bytes", "pass"}
    assert node == {
        "name": "%6",
        "op": "matmul",
        "computes": "W1 @ x",
        "line": 32,
        "shape": [3],
        "flops": 12,
        "bytes": 88,
        "pass": "forward",
    }
    assert {n["pass"] for n in d["nodes"]} == {"forward", "backward"}


def test_cli_json_formulas_without_values(tmp_path):
    d = json.loads(run_cleanly("cost", EX / "least_squares.gc", "--json", cwd=tmp_path).stdout)
    assert d["forward"]["flops"] == "2*D*N + 3*N + 2" and d["dims"] == ["D", "N"]
    assert d["ratio"]["flops"] == 1.0 and d["ratio_exact"] is False


def test_cli_wrt(tmp_path):
    d = json.loads(run_cleanly("cost", EX / "least_squares.gc", "--wrt", "w,X", "--json", cwd=tmp_path).stdout)
    assert d["backward"]["flops"] == "3*D*N + N" and d["wrt"] == ["w", "X"]


@pytest.mark.parametrize(
    "src, args, code",
    [
        ("input x: [3]\ny = 2*x\n", [], 1),  # a loss that is not a scalar
        ("input x: [3]\nL = sum(x)\n", ["--wrt", "q"], 2),  # no such value
        ("input x: [3]\nL = sum(x)\n", ["--set", "x=[1, 2]"], 1),  # a value of the wrong shape
        ("input x: [3]\nL = sum(x)\n", ["--dtype", "int8"], 2),
        ("y = (x + \n", [], 1),
    ],
)
def test_cli_errors(tmp_path, src, args, code):
    (tmp_path / "m.gc").write_text(src)
    r = run_cleanly("cost", "m.gc", *args, cwd=tmp_path)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert r.stderr.strip() and r.stdout == ""
    if code == 1:
        assert "m.gc:" in r.stderr and "error:" in r.stderr


def test_cli_help(tmp_path):
    r = run_cleanly("cost", "--help", cwd=tmp_path)
    assert r.returncode == 0 and all(w in r.stdout for w in ("MODEL", "--inputs", "--set", "--wrt", "--json"))


def test_integer_inputs_have_no_gradient_to_miss():
    """embedding.gc: tokens and labels are indices; the gradients of E, W and b are all there are. The
    products' ratio is 2 (H̄ = Z̄ Wᵀ and W̄ = Hᵀ Z̄ for H @ W), as N grows: the limit names only N."""
    c = graphc.load(EX / "embedding.gc").cost()
    assert c.all_backward is None and c.wrt == ["E", "W", "b"]
    text = c.text()
    assert "(not tokens, labels: integers, indices or labels), the case the lecture counts" in text
    assert "forward 48*N, backward 96*N FLOPs: 2 (for large N)\n" in text
    assert str(next(n for n in c.nodes if n.op == "untake").flops) == "8*N*T"  # an add per signal entry
