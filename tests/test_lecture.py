"""The lecture's examples against its hand-derived backward passes, and the equations printed for them."""

import subprocess
import unicodedata

import numpy as np
import pytest
from clitools import run_graphc
from gradtools import assert_close

import graphc
from graphc import data

EX = "examples/"


def nfd(text: str) -> str:
    """ȳ may be one precomposed character or y + a combining macron: compare them as the same."""
    return unicodedata.normalize("NFD", text)


def sigma(z):
    return 1 / (1 + np.exp(-z))


def test_logistic_least_squares_matches_the_slide():
    m = graphc.load(EX + "logistic_least_squares.gc")
    v = {"x": 1.5, "t": 1.0, "w": 0.8, "b": -0.3}
    loss, g = m.loss_and_grad(v)
    z = v["w"] * v["x"] + v["b"]
    y = sigma(z)
    z_bar = (y - v["t"]) * sigma(z) * (1 - sigma(z))  # ȳ = y - t, z̄ = ȳ σ'(z)
    assert loss == pytest.approx(0.5 * (y - v["t"]) ** 2, rel=1e-14)
    assert_close(g["w"], z_bar * v["x"], rtol=1e-14)  # w̄ = z̄ x
    assert_close(g["b"], z_bar, rtol=1e-14)  # b̄ = z̄


def test_l2_regularised_fan_out_of_w_is_summed():
    m = graphc.load(EX + "logistic_least_squares_l2.gc")
    lam = float(m.evaluate({"x": 1.0, "t": 0.0})["lam"])
    v = {"x": 1.5, "t": 1.0, "w": 0.8, "b": -0.3}
    _, g = m.loss_and_grad(v)
    z = v["w"] * v["x"] + v["b"]
    z_bar = (sigma(z) - v["t"]) * sigma(z) * (1 - sigma(z))
    assert_close(g["w"], z_bar * v["x"] + lam * v["w"], rtol=1e-14)  # w̄ = z̄ x + R̄ w, R̄ = λ


def test_multivariate_chain_rule_example():
    m = graphc.load(EX + "chain_rule.gc")
    t = 0.7
    _, g = m.loss_and_grad({"t": t})
    x, y = np.cos(t), t**2
    assert_close(g["t"], y * np.exp(x * y) * -np.sin(t) + (1 + x * np.exp(x * y)) * 2 * t, rtol=1e-14)


def test_softmax_regression_gradient():
    m = graphc.load(EX + "softmax_regression.gc")
    d = data.load_npz(EX + "softmax_regression.npz")
    rng = np.random.default_rng(0)
    W, b = rng.normal(size=(2, 3)), rng.normal(size=3)
    _, g = m.loss_and_grad({"X": d["X"], "T": d["T"], "W": W, "b": b})
    z = d["X"] @ W + b
    y = np.exp(z - z.max(1, keepdims=True))
    y /= y.sum(1, keepdims=True)
    z_bar = (y - d["T"]) / len(z)  # softmax with cross-entropy: z̄ = (y - t) / N
    assert_close(g["W"], d["X"].T @ z_bar, rtol=1e-12)
    assert_close(g["b"], z_bar.sum(0), rtol=1e-12)


def test_two_layer_network_matches_the_vectorised_slide():
    m = graphc.load(EX + "two_layer.gc")
    rng = np.random.default_rng(1)
    v = {
        "x": rng.normal(size=2),
        "t": rng.normal(size=2),
        "W1": rng.normal(size=(3, 2)),
        "b1": rng.normal(size=3),
        "W2": rng.normal(size=(2, 3)),
        "b2": rng.normal(size=2),
    }
    _, g = m.loss_and_grad(v)
    z = v["W1"] @ v["x"] + v["b1"]
    h = sigma(z)
    y = v["W2"] @ h + v["b2"]
    y_bar = y - v["t"]
    h_bar = v["W2"].T @ y_bar
    z_bar = h_bar * h * (1 - h)
    assert_close(g["W2"], np.outer(y_bar, h), rtol=1e-14)
    assert_close(g["b2"], y_bar, rtol=1e-14)
    assert_close(g["W1"], np.outer(z_bar, v["x"]), rtol=1e-14)
    assert_close(g["b1"], z_bar, rtol=1e-14)


def test_xor_threshold_network_computes_xor():
    m = graphc.load(EX + "xor_threshold.gc")
    d = data.load_npz(EX + "xor.npz")
    out = m.evaluate({k: d[k] for k in ("x1", "x2", "t")})
    assert_close(out["y"], np.logical_xor(d["x1"], d["x2"]).astype(float))
    assert float(out["errors"]) == 0.0


# ---- equations -------------------------------------------------------------------------------------


def test_equations_of_the_two_layer_network_read_like_the_slide():
    text = graphc.load(EX + "two_layer.gc").equations()
    fwd, bwd = nfd(text).split("# backward pass")
    # aligned by display width: W̅2̅ (the widest name, its overlines combining) takes two columns
    for line in ["z  = W1 @ x + b1", "h  = sigmoid(z)", "y  = W2 @ h + b2"]:
        assert line in fwd.splitlines()
    lines = [ln.split("=", 1) for ln in bwd.strip().splitlines()[1:]]
    eq = {lhs.strip(): rhs.strip() for lhs, rhs in lines}
    eq = {k: v for k, v in eq.items()} | {nfd(k): v for k, v in eq.items()}
    assert eq[nfd("L̄")] == "1"
    y, h, z = nfd("ȳ"), nfd("h̄"), nfd("z̄")
    assert eq[y] == "y - t"
    assert eq[h] == f"{y} @ W2"
    assert eq[z] == f"{h} ∘ σ'(z)"  # the vectorised slide: z̄ = h̄ ∘ σ'(z)
    assert eq[nfd("W̅2̅")] == f"{y} hᵀ" and eq[nfd("W̅1̅")] == f"{z} xᵀ"
    assert eq[nfd("b̅2̅")] == y and eq[nfd("b̅1̅")] == z
    names = [nfd(lhs.strip()) for lhs, _ in lines]
    assert names.index(y) < names.index(h) < names.index(z)  # in reverse topological order


def test_equations_fan_out_shows_the_sum():
    text = graphc.load(EX + "logistic_least_squares_l2.gc").equations({"x": 1.5, "t": 1.0})
    w_bar = next(ln for ln in nfd(text).splitlines() if ln.startswith(nfd("w̄")))
    assert "lam * w" in w_bar and nfd("z̄ * x") in w_bar and "+" in w_bar
    z_bar = next(ln for ln in nfd(text).splitlines() if ln.startswith(nfd("z̄")))
    assert z_bar.endswith(nfd("= ȳ σ'(z)"))  # the slide's z̄ = ȳ σ'(z)


@pytest.mark.parametrize("example", ["two_layer.gc", "digits_mlp.gc", "logistic_least_squares_l2.gc"])
def test_equations_latex_compiles(tmp_path, example):
    """pdflatex comes with the setup (scripts/install-system-deps.sh): the block must really compile."""
    tex = graphc.load(EX + example).equations(latex=True)
    doc = tmp_path / "eq.tex"
    doc.write_text("\\documentclass{article}\\usepackage{amsmath}\\begin{document}\n" + tex + "\\end{document}\n")
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout[-2000:]


def test_equations_latex_is_an_align_block():
    tex = graphc.load(EX + "two_layer.gc").equations(latex=True)
    assert tex.startswith("\\begin{align*}") and tex.rstrip().endswith("\\end{align*}")
    assert "\\overline{y} &= y - t" in tex and "\\overline{W_{2}} &= \\overline{y} h^\\top" in tex
    assert tex.count("{") == tex.count("}") and tex.count("\\left(") == tex.count("\\right)")


# ---- CLI: grad, gradcheck, equations -------------------------------------------------------------


def run(*args, input=None):
    return run_graphc(*args, stdin=input)


def test_cli_grad_prints_and_saves_gradients(tmp_path):
    out = tmp_path / "g.npz"
    r = run(
        "grad",
        EX + "logistic_least_squares.gc",
        "--inputs",
        EX + "logistic_least_squares.npz",
        "--wrt",
        "w",
        "-o",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "dL/dw" in r.stdout and "dL/db" not in r.stdout
    saved = data.load_npz(str(out))
    assert set(saved) == {"w"}
    m = graphc.load(EX + "logistic_least_squares.gc")
    assert_close(saved["w"], m.loss_and_grad(data.load_npz(EX + "logistic_least_squares.npz"), ["w"])[1]["w"])


def test_cli_grad_order_2_gives_the_hessian(tmp_path):
    r = run("grad", EX + "chain_rule.gc", "--set", "t=0.7", "--order", "2", "-o", str(tmp_path / "h.npz"))
    assert r.returncode == 0, r.stderr
    h = data.load_npz(str(tmp_path / "h.npz"))["t"]
    f = graphc.load(EX + "chain_rule.gc")
    eps = 1e-5
    numeric = (f.loss_and_grad({"t": 0.7 + eps})[1]["t"] - f.loss_and_grad({"t": 0.7 - eps})[1]["t"]) / (2 * eps)
    assert_close(h, numeric, rtol=1e-7)


@pytest.mark.parametrize(
    "example",
    [
        "logistic_least_squares.gc",
        "logistic_least_squares_l2.gc",
        "chain_rule.gc",
        "softmax_regression.gc",
        "two_layer.gc",
        "least_squares.gc",
        "xor_features.gc",
        "xor_mlp.gc",
        "digits_mlp.gc",
    ],
)
def test_cli_gradcheck_passes_on_every_example(example, example_data_file):
    r = run("gradcheck", EX + example, "--inputs", example_data_file(example), "--max-checks", "40")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("ok: worst")


def test_cli_gradcheck_fails_beyond_tolerance():
    r = run("gradcheck", EX + "chain_rule.gc", "--set", "t=0.7", "--tol", "1e-30")
    assert r.returncode == 1 and "FAIL" in r.stdout


def test_cli_equations_prints_both_passes_and_latex():
    r = run("equations", EX + "two_layer.gc")
    assert r.returncode == 0 and "# forward pass" in r.stdout
    assert any(ln.startswith(nfd("ȳ ")) and ln.endswith("= y - t") for ln in nfd(r.stdout).splitlines())
    r = run("equations", "-", "--latex", input="z = w*x + b; y = sigmoid(z); L = 0.5*(y-t)^2")
    assert r.returncode == 0 and "\\begin{align*}" in r.stdout and "\\sigma" in r.stdout


def test_cli_grad_of_unknown_name_is_a_usage_error():
    r = run("grad", EX + "chain_rule.gc", "--set", "t=1", "--wrt", "q")
    assert r.returncode == 2 and "q" in r.stderr and "Traceback" not in r.stderr
