"""The model's own functions (SPEC §1 "Functions"): definitions, inlined calls, names after the call, errors
located in the body with a note for the call, and `use` of a file of functions."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from clitools import run_cleanly

import graphc
from graphc import GraphcError

MLP = """\
def dense(x, W, b) = x @ W + b

def layer(x, W, b):
    z = dense(x, W, b)
    return sigmoid(z)

input X: [N, 3]
param W1: [3, 4]
param b1: [4] = 0
param W2: [4, 2]
param b2: [2] = 0.5
H1 = layer(X, W1, b1)
H2 = layer(H1, W2, b2)
L = mean(H2 * H2)
"""
INLINE = """\
input X: [N, 3]
param W1: [3, 4]
param b1: [4] = 0
param W2: [4, 2]
param b2: [2] = 0.5
H1 = sigmoid(X @ W1 + b1)
H2 = sigmoid(H1 @ W2 + b2)
L = mean(H2 * H2)
"""


def values():
    rng = np.random.default_rng(3)
    return {"X": rng.normal(size=(5, 3)), "W1": rng.normal(size=(3, 4)), "W2": rng.normal(size=(4, 2))}


def test_a_call_computes_what_its_body_written_out_computes():
    m, ref = graphc.compile(MLP), graphc.compile(INLINE)
    v = values()
    loss, grads = m.loss_and_grad(dict(v))
    loss_ref, grads_ref = ref.loss_and_grad(dict(v))
    assert loss == pytest.approx(loss_ref, rel=1e-15)
    for k in grads_ref:
        np.testing.assert_allclose(grads[k], grads_ref[k], rtol=1e-14)
    mod = m.compiled()  # and the emitted module
    loss2, grads2 = mod.loss_and_grad(**v)
    assert loss2 == pytest.approx(loss_ref, rel=1e-14)
    np.testing.assert_allclose(grads2["W1"], grads_ref["W1"], rtol=1e-13)


def test_a_calls_values_are_named_after_the_call():
    m = graphc.compile(MLP)
    v = m.evaluate(values())
    assert {"H1.z", "H2.z"} <= set(v)
    np.testing.assert_allclose(v["H1"], 1 / (1 + np.exp(-v["H1.z"])))
    code = m.emit()
    assert "H1_z = X @ W1 + b1  # line 12 → 4 → 1" in code  # the model's line, then the body's
    assert "H2_z_bar" in code
    eqs = m.equations()
    assert "H1.z = X @ W1 + b1" in eqs and "H2.z̄" in eqs
    assert r"H_{1}.z" in m.equations(latex=True)


def test_a_call_inside_an_expression_is_numbered_after_its_function():
    m = graphc.compile("def f(x):\n    a = exp(x)\n    return a * a\ninput x: [2]\nL = sum(f(x)) + sum(f(2 * x))")
    v = m.evaluate({"x": np.array([0.5, -1.0])})
    assert {"f#1.a", "f#2.a"} <= set(v)
    np.testing.assert_allclose(v["f#2.a"], np.exp([1.0, -2.0]))
    assert "f_1_a" in m.emit()


def test_locals_hide_model_names_and_consts_are_read():
    src = "const c = 3\ndef f(x):\n    z = c * x\n    return z + 1\nz = 10\ninput x: []\nL = f(x) + z"
    assert graphc.compile(src).evaluate({"x": 2.0})["L"] == 3 * 2 + 1 + 10


def test_a_function_may_return_a_parameter_and_call_functions_defined_later():
    m = graphc.compile("def f(x, y) = g(y)\ndef g(a) = a\ninput p: []\ninput q: []\nL = f(p, q) * 2")
    assert m.evaluate({"p": 1.0, "q": 5.0})["L"] == 10.0


def test_functions_differentiate_twice():
    m = graphc.compile("def cube(x) = x * x * x\nparam w: [2]\nL = sum(cube(w))")
    mod = m.compiled(order=2)
    w = np.array([1.0, -2.0])
    np.testing.assert_allclose(mod.hvp(np.array([1.0, 1.0]), w=w), 6 * w)


ERRORS = [
    # (model, line, col, message, note line:col or None, hint part)
    ("def f(x) = x @ q\ninput a: [2]\ny = sum(f(a))", 1, 16, "`q` is not defined in `f`", (3, 9), "parameter"),
    ("input X: [2, 3]\ndef f(x) = x @ x\ny = sum(f(X))", 2, 12, "do not match for `@`", (3, 9), None),
    ("def f(x) = g(x)\ndef g(x) = f(x) + 1\ny = f(1)", 1, 5, "recursion: `f` -> `g` -> `f`", None, "inlines"),
    ("def f(x) = f(x)\ny = 2", 1, 5, "recursion: `f` -> `f`", None, None),
    ("def f(x) = x\ny = f(1, 2)", 2, 5, "`f` takes 1 argument, got 2", None, "def f(x)"),
    ("def f(x) = x\ndef f(y) = y\nz = f(1)", 2, 5, "function `f` is defined twice (first at", None, None),
    ("def relu(x) = x\ny = 1", 1, 5, "`relu` is a built-in function", None, None),
    ("def f(x, x) = x\ny = 1", 1, 10, "parameter `x` of `f` is named twice", None, None),
    ("def f(x):\n    z = x\n    z = 2\n    return z\ny = f(1)", 3, 5, "`z` is defined twice", None, None),
    ("def f(x):\n    z = x\n    return z\n    w = 3\ny = f(1)", 4, 5, "ended at its `return`", None, None),
    ("def f(x):\nz = x\n    return z\ny = f(1)", 2, 1, "must be indented", None, None),
    ("def f(x):\n    z = x\n  return z\ny = f(1)", 3, 3, "indented unlike", None, None),
    ("y = g(1)", 1, 5, "unknown function `g`", None, None),
    ("def f(x) = x\ny = f(x, axis=1)", 2, 10, "`f` takes no keywords", None, None),
    ("input W: [2]\ndef f(x) = x * W\ny = sum(f(1))", 2, 16, "reads `W`, a value of the model", (3, 9), "parameters"),
    ("def f(x) = sigmoud(x)\ny = 1", 1, 12, "unknown function `sigmoud`", None, "sigmoid"),
    # found by a review: a cycle in a body, a function used as a value, one name for both, a parameter assigned
    ("def f(x):\n    y = y + 1\n    return y\nL = f(1)", 2, 9, "the definitions form a cycle: y (line 2)", None, None),
    ("def f(x) = x * 2\nparam w\nL = f + w", 3, 5, "`f` is a function, used here as a value", None, "`f(...)`"),
    ("const f = 2\ndef f(x) = x\nparam w\nL = f(w) * f", 1, 7, "names both a function", None, "rename"),
    ("def f(x):\n    x = 2\n    return x\nL = f(1)", 2, 5, "`x` is a parameter of `f`", None, "own"),
]


@pytest.mark.parametrize("src, line, col, message, note, hint", ERRORS, ids=[e[3][:30] for e in ERRORS])
def test_errors_in_functions_are_located_in_the_body(src, line, col, message, note, hint):
    with pytest.raises(GraphcError) as e:
        graphc.compile(src)
    err = e.value
    assert message in err.message
    assert (err.span.line, err.span.col) == (line, col)
    if note:
        assert (err.span.via.line, err.span.via.col) == note
        assert f"note: in the call at <model>:{note[0]}:{note[1]}" in err.render("<model>", src)
    if hint:
        assert hint in err.hint


@pytest.fixture
def files(tmp_path):
    def write(texts):
        for name, text in texts.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return tmp_path

    return write


def test_use_brings_in_the_functions_of_a_file_relative_to_the_using_file(files):
    root = files(
        {
            "lib/layers.gc": 'use "more.gc"\ndef dense(x, W, b) = x @ W + b\n',
            "lib/more.gc": "def act(z) = tanh(z)\n",
            "model.gc": 'use "lib/layers.gc"\ninput X: [2, 3]\nparam W: [3, 1]\nparam b: [1] = 0\n'
            "L = sum(act(dense(X, W, b)))\n",
        }
    )
    m = graphc.compile((root / "model.gc").read_text(), str(root / "model.gc"))
    X, W = np.ones((2, 3)), np.full((3, 1), 0.1)
    assert m.evaluate({"X": X, "W": W})["L"] == pytest.approx(2 * np.tanh(0.3))
    r = run_cleanly("check", root / "model.gc", cwd=root.parent)  # from any directory
    assert r.returncode == 0, r.stderr


def test_an_error_in_a_used_file_names_that_file_and_the_call(files):
    root = files(
        {
            "lib/layers.gc": "def dense(x, W) = x @ W\n",
            "model.gc": 'use "lib/layers.gc"\ninput X: [2, 3]\ny = sum(dense(X, X))\n',
        }
    )
    r = run_cleanly("check", root / "model.gc")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert lines[0].endswith(
        "lib/layers.gc:1:19: error: shapes [2, 3] and [2, 3] do not match for `@` (inner dims 3 and 2)"
    )
    assert lines[1] == "    def dense(x, W) = x @ W"
    assert lines[3] == f"note: in the call at {root / 'model.gc'}:3:9"
    assert lines[4] == "    y = sum(dense(X, X))"


@pytest.mark.parametrize(
    "texts, message",
    [
        ({"model.gc": 'use "nope.gc"\ny = 1\n'}, "no such file"),
        (
            {"a.gc": 'use "b.gc"\n', "b.gc": 'use "a.gc"\n', "model.gc": 'use "a.gc"\ny = 1\n'},
            "the files use each other",
        ),
        (
            {"a.gc": "def f(x) = x\n", "model.gc": 'use "a.gc"\ndef f(y) = y\nz = f(1)\n'},
            "function `f` is defined twice",
        ),
        ({"a.gc": "input X\ndef f(x) = x\n", "model.gc": 'use "a.gc"\nz = f(1)\n'}, "a used file holds functions only"),
        ({"a.gc": "def f(x) = x +\n", "model.gc": 'use "a.gc"\nz = f(1)\n'}, "unexpected end of line"),
    ],
    ids=["missing", "cycle", "twice", "values", "syntax"],
)
def test_use_errors_are_located(files, texts, message):
    root = files(texts)
    r = run_cleanly("check", root / "model.gc")
    assert r.returncode == 1 and message in r.stderr, r.stderr
    first = r.stderr.splitlines()[0]
    assert ":1:" in first or ":2:" in first  # a location, in the file at fault


def test_a_file_used_by_two_files_is_read_once(files):
    root = files(
        {
            "base.gc": "def sq(x) = x * x\n",
            "a.gc": 'use "base.gc"\ndef f(x) = sq(x)\n',
            "b.gc": 'use "base.gc"\ndef g(x) = sq(x) + 1\n',
            "model.gc": 'use "a.gc"\nuse "b.gc"\ny = f(2) + g(3)\n',
        }
    )
    assert graphc.compile((root / "model.gc").read_text(), str(root / "model.gc")).evaluate({})["y"] == 14.0


def test_the_new_keywords_are_reserved():
    for word in ("def", "return", "use"):
        with pytest.raises(GraphcError) as e:
            graphc.compile(f"{word} = 1")
        assert "reserved word" in e.value.message + (e.value.hint or "")


def test_a_calls_value_may_be_used_before_the_line_that_calls():
    """Statements may come in any order: `h` reads `z` before `z = layer(...)` is written (the fuzzer's find)."""
    m = graphc.compile("def layer(x, W) = W * x\ninput x: []\nparam W = 2\nh = sigmoid(z)\nz = layer(x, W)\nL = h")
    assert m.evaluate({"x": 0.0})["L"] == 0.5
    assert m.evaluate({"x": 1.0})["z"] == 2.0
