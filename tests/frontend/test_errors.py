"""Errors like a compiler (issue 2, item 7): one GraphcError with a span, message and hint.

Each case asserts the exact line and column of the spot, key words of the message and the
hint, and the rendered form `path:line:col: error: message`, the source line, a caret.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from clitools import run_graphc

import graphc
from graphc import GraphcError

REPO = Path(__file__).resolve().parents[2]


def compile_error(src: str) -> GraphcError:
    with pytest.raises(GraphcError) as info:
        graphc.compile(src, "model.gc")
    return info.value


def eval_error(src: str, **values) -> GraphcError:
    m = graphc.compile(src, "model.gc")
    with pytest.raises(GraphcError) as info:
        m.evaluate(values)
    return info.value


def text_of(e: GraphcError) -> str:
    return f"{e.message}\n{e.hint or ''}"


def assert_words(text: str, words) -> None:
    for w in words:
        assert w.lower() in text.lower(), f"{w!r} not in {text!r}"


def assert_rendered(e: GraphcError, src: str, path: str = "model.gc") -> None:
    """`path:line:col: error: message`, then the source line, then a caret under the column."""
    out = e.render(path, src).splitlines()
    line, col = e.span.line, e.span.col
    assert out[0] == f"{path}:{line}:{col}: error: {e.message}"
    source_line = src.splitlines()[line - 1].replace("\t", " ").rstrip()
    shown = out[1].replace("\t", " ").rstrip()
    assert shown.endswith(source_line), f"source line not shown:\n{out[1]}"
    indent = len(shown) - len(source_line)
    caret = out[2]
    assert len(caret) > indent + col - 1 and caret[indent + col - 1] == "^", (
        f"caret not under column {col}:\n{out[1]}\n{caret}"
    )
    assert caret[: indent + col - 1].strip() == ""
    if e.hint:
        assert any(e.hint in o for o in out[3:])


# ---- compile-time errors: (source, line, col, words in message+hint) -------------------------

SYNTAX = [
    ("y = (x + )", 1, 10, ["unexpected", ")"]),
    ("y = 2 $ x", 1, 7, ["unexpected", "$"]),
    ("a = 1\ny = 3 x", 2, 7, ["unexpected", "x"]),
    ("y = x +\n", 1, 8, ["unexpected", "end of line"]),
    ("y = sum(x,)", 1, 11, ["unexpected", ")"]),
    ("y = a = b", 1, 7, ["unexpected", "="]),
    ("a = 1\nb = 2\n  c = (a +", 3, 11, ["unexpected", "end of file"]),
    ("input x: [2, 3\ny = x", 2, 1, ["unexpected"]),
    ("y = \x00", 1, 5, ["unexpected"]),
    ("y = x.T.T.", 1, 10, ["unexpected", "."]),
    ("y = sum(x, axis=1.5)", 1, 12, ["`axis` must be an integer, not 1.5"]),
]

UNKNOWN_FUNCTION = [
    ("y = sigmoud(x)", 1, 5, ["unknown function", "sigmoud", "did you mean `sigmoid`"]),
    ("y = sigmod(x)", 1, 5, ["sigmod", "did you mean `sigmoid`"]),
    ("a = 1\n\n   z = 2 * softmaks(x)", 3, 12, ["softmaks", "did you mean `softmax`"]),
    ("y = log_sofmax(x)", 1, 5, ["log_sofmax", "did you mean `log_softmax`"]),
    ("y = maxium(x, 0)", 1, 5, ["maxium", "did you mean `maximum`"]),
    ("y = tanhh(x)", 1, 5, ["tanhh", "did you mean `tanh`"]),
    ("y = f(x)", 1, 5, ["unknown function", "`f`"]),
    ("y = exp(x) + lgo(x)", 1, 14, ["lgo", "did you mean `log`"]),
]

ARITY = [
    ("y = maximum(x)", 1, 5, ["maximum", "2", "1"]),
    ("y = exp(x, x)", 1, 5, ["exp", "1", "2"]),
    ("y = sum()", 1, 5, ["sum", "1", "0"]),
    ("y = 1\nz = softmax(x, y)", 2, 5, ["softmax", "1", "2"]),
    ("y = minimum(a, b, c)", 1, 5, ["minimum", "2", "3"]),
]

KEYWORD = [
    ("y = sum(x, axes=0)", 1, 12, ["axes", "axis"]),
    ("y = softmax(x, keepdims=true)", 1, 16, ["keepdims", "axis"]),
    ("y = exp(x, axis=0)", 1, 12, ["exp", "axis"]),
    ("y = mean(x, axis=0, axis=1)", 1, 21, ["axis", "twice"]),
    ("y = sum(x, axis=foo)", 1, 17, ["foo"]),
    ("y = sum(x, keepdims=2)", 1, 12, ["keepdims", "true", "false"]),
]

BAD_AXIS = [
    ("input x: [2, 3]\ny = sum(x, axis=2)", 2, 5, ["axis 2", "[2, 3]"]),
    ("input x: [2, 3]\ny = sum(x, axis=-3)", 2, 5, ["axis -3", "[2, 3]"]),
    ("input x: [4]\ny = mean(x, axis=1)", 2, 5, ["axis 1", "[4]"]),
    ("input x: [N, 4]\ny = logsumexp(x, axis=-3)", 2, 5, ["axis -3", "[N, 4]"]),
    ("input x: [2, 3]\ny = sum(softmax(x, axis=2))", 2, 9, ["axis 2", "[2, 3]"]),
    ("input x: [2, 3]\ny = sum(log_softmax(x, axis=-3))", 2, 9, ["axis -3", "[2, 3]"]),
]

NEGATIVE_DIM = [
    ("input x: [2, -3]\ny = sum(x)", 1, 14, ["-3", "negative"]),
    ("param w: [-1] = 0\ny = sum(w)", 1, 11, ["-1", "negative"]),
]

SHAPES = [
    ("input x: [2, 3]\ninput b: [4]\ny = sum(x + b)", 3, 9, ["[2, 3]", "[4]"]),
    ("input x: [2, 3]\ninput b: [2]\ny = sum(x * b)", 3, 9, ["[2, 3]", "[2]"]),
    ("input A: [2, 3]\ninput B: [4, 5]\ny = sum(A @ B)", 3, 9, ["[2, 3]", "[4, 5]", "@"]),
    ("input A: [2, 3]\ninput v: [2]\ny = sum(A @ v)", 3, 9, ["[2, 3]", "[2]", "@"]),
    ("input X: [N, 3]\nparam w: [4]\ny = sum(X @ w)", 3, 9, ["[N, 3]", "[4]"]),
    ("input a: [N, 3]\ninput b: [4]\ny = sum(a - b)", 3, 9, ["[N, 3]", "[4]"]),
    ("input a: [3]\ny = sum(2 @ a)", 2, 9, ["@", "[]", "[3]"]),
]

NON_SCALAR_LOSS = [
    ("input x: [3]\ny = 2*x", 2, ["`y`", "scalar", "[3]", "sum", "mean"]),
    ("input x: [3]\ny = 2*x\nz = sum(y)\nloss y", 2, ["`y`", "scalar", "sum", "mean"]),
    ("input X: [N, 4]\nparam W: [4, 2]\nL = X @ W", 3, ["`L`", "scalar", "[N, 2]", "sum", "mean"]),
]

DEFINED_TWICE = [
    ("y = x\nz = 1\ny = 2*x", 3, 1, "y", (1, 3)),
    ("input x\ninput x", 2, 7, "x", (1, 2)),
    ("x = 1\ninput x", 2, 7, "x", (1, 2)),
    ("param w = 1\nconst c = 2\nparam w = 3\ny = w*c", 3, 7, "w", (1, 3)),
    ("const c = 1\ny = c\nz = y\n\nconst c = 2", 5, 7, "c", (1, 5)),
]

RESERVED = [
    ("y = input + 1", 1, (5,), "input"),
    ("y = 2 * loss", 1, (9,), "loss"),
    ("z = 1\ny = sum(param)", 2, (9,), "param"),
    ("input loss\ny = 2", 1, (7,), "loss"),
    ("param output = 1\ny = 2", 1, (7,), "output"),
    ("y = x\nloss loss", 2, (6,), "loss"),
    ("loss = 2*x", 1, (1, 6), "loss"),
    ("input = 3", 1, (1, 7), "input"),
    ("y = 1\nconst = 2", 2, (1, 7), "const"),
    ("output = y + 1", 1, (1, 8), "output"),
]

ERRORS_AT = (
    [pytest.param(*c, id=f"syntax:{c[0]!r}") for c in SYNTAX]
    + [pytest.param(*c, id=f"function:{c[0]!r}") for c in UNKNOWN_FUNCTION]
    + [pytest.param(*c, id=f"arity:{c[0]!r}") for c in ARITY]
    + [pytest.param(*c, id=f"keyword:{c[0]!r}") for c in KEYWORD]
    + [pytest.param(*c, id=f"axis:{c[0]!r}") for c in BAD_AXIS]
    + [pytest.param(*c, id=f"dim:{c[0]!r}") for c in NEGATIVE_DIM]
    + [pytest.param(*c, id=f"shape:{c[0]!r}") for c in SHAPES]
)


@pytest.mark.parametrize("src, line, col, words", ERRORS_AT)
def test_compile_error_location_and_message(src, line, col, words):
    e = compile_error(src)
    assert e.span is not None, e.message
    assert (e.span.line, e.span.col) == (line, col), f"{e.message} at {e.span}"
    assert_words(text_of(e), words)
    assert_rendered(e, src)


def test_did_you_mean_is_the_hint():
    e = compile_error("y = sigmoud(x)")
    assert e.hint is not None and "did you mean `sigmoid`" in e.hint
    assert "did you mean" not in e.message


def test_unknown_keyword_lists_the_allowed_ones():
    e = compile_error("y = sum(x, axes=0)")
    assert "axis" in (e.hint or "") and "keepdims" in (e.hint or "")


@pytest.mark.parametrize("src, line, words", NON_SCALAR_LOSS)
def test_non_scalar_loss(src, line, words):
    e = compile_error(src)
    assert e.span is not None and e.span.line == line
    # the spot is the loss's definition: its name (col 1) or its expression
    assert e.span.col in (1, src.splitlines()[line - 1].index("=") + 3)
    assert_words(text_of(e), words)
    assert "sum" in (e.hint or "") and "mean" in (e.hint or "")
    assert_rendered(e, src)


def test_span_of_a_parenthesised_expression_starts_at_the_parenthesis():
    src = "input X: [N, 4]\nparam W: [4, 2]\nL = (X @ W)^2"
    e = compile_error(src)
    assert "scalar" in e.message
    assert (e.span.line, e.span.col) == (3, 5)  # `(X @ W)^2` starts at the `(`


def test_non_scalar_loss_known_only_from_the_values():
    e = eval_error("y = 2*x", x=np.ones(3))
    assert e.span is not None and e.span.line == 1
    assert_words(text_of(e), ["`y`", "scalar", "[3]", "sum", "mean"])


@pytest.mark.parametrize("src, line, col, name, lines", DEFINED_TWICE)
def test_name_defined_twice_names_both_lines(src, line, col, name, lines):
    e = compile_error(src)
    assert (e.span.line, e.span.col) == (line, col)
    assert f"`{name}`" in e.message and "twice" in e.message
    text = text_of(e)
    for n in lines:
        assert re.search(rf"\b{n}\b", text), f"line {n} not named in {text!r}"
    assert_rendered(e, src)


def test_cycle_names_every_value_on_it_and_their_lines():
    src = "input x\na = b + 1\nb = c * 2\nc = a - x\nL = a"
    e = compile_error(src)
    assert "cycle" in e.message
    for name, line in (("a", 2), ("b", 3), ("c", 4)):
        assert re.search(rf"\b{name}\b", e.message), f"{name} not named"
        assert re.search(rf"\b{line}\b", e.message), f"line {line} not named"
    assert not re.search(r"\bL\b", e.message)  # L uses the cycle but is not on it
    assert e.span is not None and e.span.line in (2, 3, 4)
    assert_rendered(e, src)


def test_self_cycle():
    e = compile_error("a = a + 1")
    assert "cycle" in e.message and re.search(r"\ba\b", e.message)
    assert (e.span.line, e.span.col) in ((1, 1), (1, 5))


@pytest.mark.parametrize("src, line, cols, word", RESERVED)
def test_reserved_word_used_as_a_value(src, line, cols, word):
    e = compile_error(src)
    assert e.span is not None and e.span.line == line and e.span.col in cols, f"{e.message} at {e.span}"
    assert_words(text_of(e), [word, "reserved"])
    assert_rendered(e, src)


@pytest.mark.parametrize("src", ["", "\n\n\n", "   \t ", "# only a comment\n# and another", ";;;", "\n; \n;"])
def test_empty_model(src):
    e = compile_error(src)
    assert re.search(r"empty|no value|defines no", e.message), e.message
    out = e.render("model.gc", src).splitlines()
    assert re.match(r"model\.gc(:\d+:\d+)?: error: ", out[0])


def test_declarations_only_define_no_value():
    e = compile_error("input x: [3]\nparam w: [3]\nconst c = 1")
    assert re.search(r"empty|no value|defines no", e.message)


def test_loss_and_output_of_an_unknown_name():
    e = compile_error("y = 2*x\nloss z")
    assert (e.span.line, e.span.col) == (2, 6) and "`z`" in e.message
    e = compile_error("y = 2*x\nL = sum(y)\noutput y, yy")
    assert (e.span.line, e.span.col) == (3, 11) and "`yy`" in e.message


@pytest.mark.parametrize(
    "src, line, col, words",
    [
        ("param w: [3] = gaussian(0, 1)\ny = sum(w)", 1, 16, ["gaussian", "normal"]),
        ("param w: [3] = normal(0)\ny = sum(w)", 1, 16, ["normal", "2", "1"]),
        ("param w: [3] = uniform(0, 1, 2)\ny = sum(w)", 1, 16, ["uniform", "2", "3"]),
        ("param w: [3] = glorot\ny = sum(w)", 1, 7, ["glorot", "2"]),
        ("param w: [3] = normal(0, -1)\ny = sum(w)", 1, 16, ["std"]),
    ],
)
def test_bad_initialiser(src, line, col, words):
    e = compile_error(src)
    assert (e.span.line, e.span.col) == (line, col)
    assert_words(text_of(e), words)


# ---- errors found when values arrive ---------------------------------------------------------


def test_wrong_value_shape_vs_declared_shape():
    src = "input x: [3]\ny = sum(x)"
    e = eval_error(src, x=np.ones(4))
    assert (e.span.line, e.span.col) == (1, 7)
    assert_words(e.message, ["`x`", "[3]", "[4]"])
    assert_rendered(e, src)


def test_wrong_rank_vs_declared_shape():
    e = eval_error("input x: [2, 3]\ny = sum(x)", x=np.ones(6))
    assert_words(e.message, ["`x`", "[2, 3]", "[6]"])


def test_missing_input_value_names_the_input():
    src = "input x: [3]\ninput t: [3]\ny = sum(x - t)"
    e = eval_error(src, x=np.ones(3))
    assert (e.span.line, e.span.col) == (2, 7)
    assert_words(text_of(e), ["`t`", "no value", "[3]"])
    assert_rendered(e, src)


def test_missing_undeclared_input_points_at_its_first_use():
    src = "a = 2\ny = a * x + b"
    e = eval_error(src, x=1.0)
    assert (e.span.line, e.span.col) == (2, 13)
    assert_words(e.message, ["`b`"])


def test_symbolic_dim_mismatch_across_two_inputs():
    src = "input X: [N, D]\ninput w: [D]\ny = sum(X @ w)"
    e = eval_error(src, X=np.ones((5, 3)), w=np.ones(4))
    assert (e.span.line, e.span.col) == (2, 7)
    assert_words(e.message, ["`w`", "[D]", "[4]", "3"])
    assert_rendered(e, src)


def test_symbolic_batch_dim_mismatch():
    e = eval_error("input X: [N, 3]\ninput t: [N]\ny = sum(X) + sum(t)", X=np.ones((5, 3)), t=np.ones(4))
    assert (e.span.line, e.span.col) == (2, 7)
    assert_words(e.message, ["`t`", "[N]", "5", "[4]"])


def test_broadcast_mismatch_found_from_values():
    src = "y = sum(a + b)"
    e = eval_error(src, a=np.ones((2, 3)), b=np.ones(4))
    assert (e.span.line, e.span.col) == (1, 9)
    assert_words(e.message, ["[2, 3]", "[4]"])
    assert_rendered(e, src)


def test_matmul_mismatch_found_from_values():
    src = "L = 1\ny = sum(a @ b)"
    e = eval_error(src, a=np.ones((2, 3)), b=np.ones((2, 3)))
    assert (e.span.line, e.span.col) == (2, 9)
    assert_words(e.message, ["[2, 3]", "@"])


def test_axis_out_of_range_found_from_values():
    e = eval_error("y = sum(x, axis=3)", x=np.ones((2, 3)))
    assert (e.span.line, e.span.col) == (1, 5)
    assert_words(e.message, ["axis 3", "[2, 3]"])


def _user_op_models():
    from graphc.ir import ops as O

    for name, op in sorted(O.FUNCTIONS.items()):
        args = ["x"] * (op.arity or 2)  # (an op of one or more arrays: two)
        for k in op.positional:  # what a call must give, by position: one_hot(x, 2), reshape(x, [-1])
            if op.kwargs[k] is O.REQUIRED:
                args.append({int: "2", tuple: "[-1]", float: "0.5"}[op.kwtypes[k]])
        yield f"y = {name}({', '.join(args)})\nL = sum(y)"
    for sym in ("+", "-", "*", "/", "^", "@"):
        yield f"y = x {sym} x\nL = sum(y)"


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)], ids=str)
@pytest.mark.parametrize("src", list(_user_op_models()), ids=lambda s: s.split("\n")[0])
def test_empty_arrays_give_values_or_a_graphc_error(src, shape):
    """Data a user can pass (an empty list) must never crash an op with a non-graphc exception."""
    m = graphc.compile(src)
    try:
        out = m.evaluate({"x": np.zeros(shape)})
    except GraphcError as e:
        assert e.message
        return
    assert np.shape(out["L"]) == ()


def test_value_for_an_unknown_name_is_an_error():
    e = eval_error("y = 2*x", x=1.0, xx=2.0)
    assert "xx" in e.message


def test_non_numeric_value():
    e = eval_error("y = 2*x", x="abc")
    assert "`x`" in e.message


# ---- files: empty, binary, missing, broken npz -----------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.gc"
    with pytest.raises(GraphcError) as info:
        graphc.load(path)
    assert "no such file" in info.value.message and str(path) in info.value.message


def test_directory_instead_of_a_file(tmp_path):
    with pytest.raises(GraphcError):
        graphc.load(tmp_path)


@pytest.mark.parametrize("data", [b"y = \x00\x01\x02", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", bytes(range(256))])
def test_binary_file(tmp_path, data):
    path = tmp_path / "model.gc"
    path.write_bytes(data)
    with pytest.raises(GraphcError) as info:
        graphc.load(path)
    assert "binary" in info.value.message and str(path) in info.value.message


def test_non_utf8_file(tmp_path):
    path = tmp_path / "model.gc"
    path.write_bytes(b"y = 2*x # caf\xe9\n")
    with pytest.raises(GraphcError) as info:
        graphc.load(path)
    assert "UTF-8" in info.value.message or "utf-8" in info.value.message.lower()


def test_empty_file(tmp_path):
    path = tmp_path / "model.gc"
    path.write_text("")
    with pytest.raises(GraphcError) as info:
        graphc.load(path)
    assert re.search(r"empty|no value|defines no", info.value.message)


def cli(*args, cwd, stdin=None):
    return run_graphc(*args, cwd=cwd, stdin=stdin)


@pytest.mark.parametrize("content", [b"", b"not a zip file at all", b"PK\x03\x04truncated", "npz-half"])
def test_broken_npz(tmp_path, content):
    model = tmp_path / "m.gc"
    model.write_text("input x: [3]\nL = sum(x)\n")
    data = tmp_path / "data.npz"
    if content == "npz-half":
        np.savez(data, x=np.arange(3.0))
        raw = data.read_bytes()
        data.write_bytes(raw[: len(raw) // 2])
    else:
        data.write_bytes(content)
    r = cli("eval", model, "--inputs", data, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr
    assert "data.npz" in r.stderr and "error:" in r.stderr


def test_npz_holding_a_wrong_shape(tmp_path):
    model = tmp_path / "m.gc"
    model.write_text("input x: [3]\nL = sum(x)\n")
    np.savez(tmp_path / "data.npz", x=np.ones((2, 2)))
    r = cli("eval", model, "--inputs", tmp_path / "data.npz", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{model}:1:7: error:" in r.stderr and "[3]" in r.stderr and "[2, 2]" in r.stderr


# ---- the rendered form on the command line ---------------------------------------------------


def test_cli_renders_path_line_col_source_and_caret(tmp_path):
    src = "# a model\ninput x: [3]\ny = sigmoud(x)\nL = sum(y)\n"
    (tmp_path / "bad.gc").write_text(src)
    r = cli("check", "bad.gc", cwd=tmp_path)
    assert r.returncode == 1
    err = r.stderr.splitlines()
    assert err[0] == "bad.gc:3:5: error: unknown function `sigmoud`"
    assert err[1].endswith("y = sigmoud(x)")
    indent = len(err[1]) - len("y = sigmoud(x)")
    assert err[2][: indent + 4].strip() == "" and err[2][indent + 4] == "^"
    assert any("did you mean `sigmoid`?" in line for line in err[3:])
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_render_with_tabs_and_unicode_before_the_spot():
    src = "λ = 1\n\tμ = λ + sigmoud(x)"
    e = compile_error(src)
    assert (e.span.line, e.span.col) == (2, 10)
    assert_rendered(e, src)


def test_render_without_span():
    e = GraphcError("something is wrong", hint="try this")
    assert e.render("m.gc", "y = x").splitlines() == ["m.gc: error: something is wrong", "hint: try this"]
