"""Scale (issue 2, item 8): big and deep models parse, check and run with no RecursionError.

The models come from bench/models.py, the generators the benchmark uses. No timing
asserts here: the benchmark under bench/ measures speed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import graphc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from clitools import run_graphc  # noqa: E402
from models import chain_model, nested_model  # noqa: E402


@pytest.fixture(scope="module")
def chain_src():
    return chain_model(10_000)


@pytest.fixture(scope="module")
def chain(chain_src):
    return graphc.compile(chain_src, "chain.gc")


def test_chain_model_has_10000_statements(chain_src):
    statements = [line for line in chain_src.splitlines() if "=" in line and not line.startswith(("input", "param"))]
    assert len(statements) >= 9_998


def test_10000_statement_model_parses_and_checks(chain):
    rows = chain.summary()
    names = {r[0] for r in rows}
    assert {"x", "w", "b", "v0", "v9998", "L"} <= names
    assert len(rows) == len(names) >= 10_000
    assert chain.loss_name == "L"
    shapes = {name: shape.replace(" ", "") for name, _, shape, _ in rows}
    assert shapes["v9998"] == "[N,16]" and shapes["L"] == "[]"
    lines = {name: line for name, _, _, line in rows}
    assert lines["L"] == len(chain_model(10_000).splitlines())


def test_10000_statement_model_evaluates(chain):
    x = np.random.default_rng(0).normal(size=(3, 16))
    out = chain.evaluate({"x": x})
    assert out["v9998"].shape == (3, 16)
    assert np.isfinite(out["L"]) and np.shape(out["L"]) == ()
    np.testing.assert_allclose(out["L"], np.mean(out["v9998"] ** 2), rtol=1e-12)


def test_10000_statement_model_in_any_order():
    lines = chain_model(2_000).splitlines()
    shuffled = lines[:3] + list(reversed(lines[3:]))
    a = graphc.compile("\n".join(lines)).evaluate({"x": np.ones((2, 16))})
    b = graphc.compile("\n".join(shuffled)).evaluate({"x": np.ones((2, 16))})
    assert a["L"] == b["L"]


DEPTH = 5_000


@pytest.fixture(scope="module")
def nested():
    return graphc.compile(nested_model(DEPTH), "nested.gc")


def test_5000_deep_parentheses_parse_and_check(nested):
    assert nested_model(DEPTH).count("(") >= DEPTH
    assert nested.loss_name == "L"
    assert {"x", "y", "L"} <= set(nested.names)


def test_5000_deep_parentheses_evaluate(nested):
    x = np.array([0.5, -2.0, 3.0])
    out = nested.evaluate({"x": x})
    np.testing.assert_allclose(out["y"], x + DEPTH, rtol=1e-12)
    assert out["L"] == pytest.approx(np.sum(x + DEPTH), rel=1e-12)


def test_5000_deep_parentheses_gradient(nested):
    loss, grads = nested.loss_and_grad({"x": np.array([1.0, 2.0])})
    assert loss == pytest.approx(3.0 + 2 * DEPTH)
    np.testing.assert_allclose(grads["x"], [1.0, 1.0])


@pytest.mark.parametrize(
    "src, x, want",
    [
        ("y = " + "-" * DEPTH + "x", 2.0, 2.0 * (-1) ** DEPTH),  # unary minus chain
        ("y = " + "- " * (DEPTH + 1) + "x", 2.0, 2.0 * (-1) ** (DEPTH + 1)),
        ("y = x" + "^1" * DEPTH, 3.0, 3.0),  # right-associative powers
        ("y = x" + " + 1" * DEPTH, 0.5, 0.5 + DEPTH),  # a long left-associative sum
        ("y = " + "abs(" * DEPTH + "x" + ")" * DEPTH, -2.0, 2.0),  # deeply nested calls
        ("y = " + "maximum(x, " * DEPTH + "x" + ")" * DEPTH, 1.5, 1.5),  # nested two-argument calls
    ],
    ids=["unary-minus", "spaced-unary-minus", "power-chain", "long-sum", "nested-calls", "nested-maximum"],
)
def test_other_deep_expressions(src, x, want):
    out = graphc.compile(src).evaluate({"x": x})
    assert out["y"] == pytest.approx(want, rel=1e-9)


def test_cli_check_of_big_and_deep_models(tmp_path):
    (tmp_path / "chain.gc").write_text(chain_model(10_000))
    (tmp_path / "nested.gc").write_text(nested_model(DEPTH))
    for name in ("chain.gc", "nested.gc"):
        r = run_graphc("check", name, cwd=tmp_path, timeout=300)
        assert r.returncode == 0, r.stderr
        assert "Traceback" not in r.stderr and "RecursionError" not in r.stderr


# ---- every command on a deep expression (issue 11, item 15) -----------------------------------------

COMMANDS = {
    "check": ["check"],
    "eval": ["eval", "--inputs", "x.npz"],
    "grad": ["grad", "--inputs", "x.npz"],
    "gradcheck": ["gradcheck", "--inputs", "x.npz", "--max-checks", "4"],
    "equations": ["equations"],
    "equations-inputs": ["equations", "--inputs", "x.npz"],
    "equations-latex": ["equations", "--latex"],
    "render": ["render", "-o", "g.dot"],
    "render-collapse": ["render", "--collapse", "-o", "g.dot"],
    "render-backward": ["render", "--backward", "-o", "g.dot"],
    "render-backward-inputs": ["render", "--backward", "--inputs", "x.npz", "-o", "g.dot"],
    "render-collapse-backward": ["render", "--collapse", "--backward", "-o", "g.dot"],
    "render-collapse-backward-inputs": ["render", "--collapse", "--backward", "--inputs", "x.npz", "-o", "g.dot"],
    "emit": ["emit", "-o", "m.py"],
    "train": ["train", "--data", "x.npz", "--epochs", "3", "--lr", "0.001"],
}


def deep_model(depth: int) -> str:
    """nested_model with a param inside the innermost parentheses, so that every command (train too) has work."""
    return "param w = 0.5\n" + nested_model(depth).replace("x + 1)", "x*w + 1)", 1)


@pytest.fixture(scope="module", params=[800, 2000])
def deep_dir(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"deep{request.param}")
    (d / "deep.gc").write_text(deep_model(request.param))
    np.savez(d / "x.npz", x=np.array([0.5, -1.0, 2.0]))
    return d


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_on_a_deep_expression(deep_dir, command):
    args = COMMANDS[command]
    r = run_graphc(args[0], "deep.gc", *args[1:], cwd=deep_dir, timeout=300)
    assert "RecursionError" not in r.stderr and "internal error" not in r.stderr, r.stderr[-500:]
    assert r.returncode == 0, r.stderr[-500:]
    if command.startswith("equations"):
        assert r.stdout.count("\n") >= 3


def test_deep_expression_equations_and_collapsed_picture_are_whole():
    m = graphc.compile(deep_model(2000), "deep.gc")
    text = m.equations()
    assert text.count("+ 1") == 2000 and text.count("(") == text.count(")")
    assert m.equations(latex=True).count("+ 1") == 2000
    dot = m.to_digraph(backward=True, collapse=True).source
    assert dot.count("+ 1") == 2000
