"""The model language, SPEC §1: lexical rules, declarations, statements, expressions.

Every expected value here is computed independently with NumPy (or by hand), never
copied from graphc's own output.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
from graphc import GraphcError

RNG = np.random.default_rng(20240601)


def evaluate(src: str, seed: int = 0, **values):
    """Compile `src` and evaluate it with those of `values` the model uses; every named value as an array."""
    m = graphc.compile(src)
    return m.evaluate({k: v for k, v in values.items() if k in m.names}, seed=seed)


def rows(src: str) -> dict:
    """Model.summary() keyed by name: {name: (kind, shape-without-spaces, line)}."""
    return {name: (kind, shape.replace(" ", ""), line) for name, kind, shape, line in graphc.compile(src).summary()}


def sigmoid_ref(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(x >= 0, 1.0 / (1.0 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1.0 + np.exp(-np.abs(x))))


# ---- lexical: comments, separators, blank lines ---------------------------------------------


class TestLexical:
    def test_full_line_and_trailing_comments(self):
        src = "# a model\n# with a header\ny = 2*x   # trailing comment\n# between\nz = y + 1 # last"
        v = evaluate(src, x=3.0)
        assert v["y"] == 6.0 and v["z"] == 7.0

    def test_comment_hides_the_rest_of_the_line_including_semicolons(self):
        v = evaluate("y = x + 1 # ; b = 3 ; c = y\n", x=1.0)
        assert set(v) == {"x", "y"}
        assert v["y"] == 2.0

    def test_comment_may_hold_any_characters(self):
        v = evaluate("# λ ü $ @ ^ ** ( [ { ' \" \\ \ny = x*2 # )))\n", x=2.0)
        assert v["y"] == 4.0

    def test_comment_at_end_of_file_without_newline(self):
        assert evaluate("y = x*3 # done", x=2.0)["y"] == 6.0

    def test_semicolons_separate_statements_on_one_line(self):
        v = evaluate("a = x + 1; b = a * 2; c = b - x", x=1.0)
        assert (v["a"], v["b"], v["c"]) == (2.0, 4.0, 3.0)

    @pytest.mark.parametrize(
        "src",
        [
            "a = x + 1;\nb = a * 2;",  # trailing semicolons
            "a = x + 1;;b = a * 2",  # empty statements
            ";a = x + 1\nb = a * 2",  # leading semicolon
            "\n\n\na = x + 1\n\n\n\nb = a * 2\n\n",  # blank lines everywhere
            "a = x + 1\n   \n\t\nb = a * 2",  # blank lines holding whitespace
            "a = x + 1\r\nb = a * 2\r\n",  # Windows line endings
            "\ta = x + 1\n  b = a * 2",  # indentation is just whitespace
            "a=x+1\nb=a*2",  # no spaces at all
            "a = x + 1 ;  b = a * 2",  # spaces around ;
        ],
    )
    def test_separator_variants(self, src):
        v = evaluate(src, x=1.0)
        assert v["a"] == 2.0 and v["b"] == 4.0


# ---- names --------------------------------------------------------------------------------


class TestNames:
    @pytest.mark.parametrize("name", ["λ", "W1", "b_2", "_hidden", "café", "αβγ", "x_1_2", "Δw", "ñ", "e", "E", "T"])
    def test_identifier_names_including_unicode(self, name):
        v = evaluate(f"{name} = 2*x\ny = {name} + 1", x=5.0)
        assert v[name] == 10.0
        assert v["y"] == 11.0

    def test_unicode_param_and_const(self):
        v = evaluate("param θ = 0.5\nconst λ = 0.25\nL = θ * x + λ", x=2.0)
        assert v["θ"] == 0.5 and v["λ"] == 0.25 and v["L"] == 1.25

    @pytest.mark.parametrize(
        "name", ["inputs", "params", "constant", "loss_fn", "lossy", "outputs", "output2", "input_x"]
    )
    def test_names_that_only_start_with_a_reserved_word_are_ordinary(self, name):
        v = evaluate(f"{name} = 3*x\ny = {name} - 1", x=2.0)
        assert v[name] == 6.0 and v["y"] == 5.0

    @pytest.mark.parametrize("src", ["1x = 2", "y = 2x", "y = x$", "y = a.b"])
    def test_names_follow_identifier_rules(self, src):
        with pytest.raises(GraphcError):
            graphc.compile(src)

    def test_undeclared_names_are_inputs_of_unknown_shape(self):
        m = graphc.compile("y = w*x + b\nL = sum(y)")
        assert set(m.inputs) == {"w", "x", "b"}
        r = rows("y = w*x + b\nL = sum(y)")
        assert {n: r[n][0] for n in ("w", "x", "b", "y")} == {"w": "input", "x": "input", "b": "input", "y": "value"}
        v = m.evaluate({"w": 2.0, "x": np.array([1.0, 2.0]), "b": np.ones((3, 1))})
        np.testing.assert_array_equal(v["y"], 2.0 * np.array([1.0, 2.0]) + np.ones((3, 1)))


# ---- numbers ------------------------------------------------------------------------------


class TestNumbers:
    @pytest.mark.parametrize(
        "text, value",
        [
            ("3", 3.0),
            ("0.5", 0.5),
            (".5", 0.5),
            ("1e-3", 1e-3),
            ("2.5E+4", 2.5e4),
            ("1E3", 1e3),
            ("10", 10.0),
            ("0", 0.0),
            ("123.456", 123.456),
            ("7e0", 7.0),
            ("1.5e2", 150.0),
        ],
    )
    def test_number_forms(self, text, value):
        v = evaluate(f"y = {text} * x", x=1.0)
        assert v["y"] == value

    @pytest.mark.parametrize(
        "text, value", [("3", 3.0), (".5", 0.5), ("-2", -2.0), ("1e-3", 1e-3), ("-2.5E+4", -2.5e4)]
    )
    def test_number_forms_in_declarations(self, text, value):
        v = evaluate(f"param p = {text}\nconst c = {text}\ny = p + c")
        assert v["p"] == value and v["c"] == value and v["y"] == 2 * value

    def test_arithmetic_is_float64(self):
        v = evaluate("y = 1/3\nz = x / 2\nL = sum(z) + y", x=np.array([3, 5], dtype=np.int64))
        assert v["y"].dtype == np.float64 and v["y"] == 1.0 / 3.0
        assert v["z"].dtype == np.float64
        np.testing.assert_array_equal(v["z"], [1.5, 2.5])

    def test_float32_values_are_computed_in_float64(self):
        x = np.array([1.0 / 3.0, 0.1], dtype=np.float32)
        v = evaluate("y = x * 3\nL = sum(y)", x=x)
        assert v["y"].dtype == np.float64
        np.testing.assert_array_equal(v["y"], x.astype(np.float64) * 3)


# ---- declarations -------------------------------------------------------------------------


class TestInputDeclarations:
    def test_input_with_integer_shape(self):
        r = rows("input X: [4, 784]\nL = sum(X)")
        assert r["X"] == ("input", "[4,784]", 1)
        assert r["L"] == ("value", "[]", 2)

    def test_input_without_shape_takes_it_from_its_value(self):
        m = graphc.compile("input t\nL = sum(t * 2)")
        assert m.summary()[0][:2] == ("t", "input")
        for value in (3.0, np.arange(4.0), np.ones((2, 3))):
            assert m.evaluate({"t": value})["L"] == pytest.approx(2 * np.sum(value))

    def test_symbolic_dims_are_shared_and_bound_by_values(self):
        src = "input X: [N, D]\ninput t: [N]\nparam w: [D]\nr = X @ w - t\nE = sum(r^2)"
        r = rows(src)
        assert r["X"] == ("input", "[N,D]", 1)
        assert r["w"] == ("param", "[D]", 3)
        assert r["r"] == ("value", "[N]", 4)
        X, t = RNG.normal(size=(6, 3)), RNG.normal(size=6)
        v = evaluate(src, X=X, t=t)
        assert v["w"].shape == (3,)  # D = 3, from X
        np.testing.assert_array_equal(v["w"], np.zeros(3))  # 1-dim param: default 0
        np.testing.assert_allclose(v["E"], np.sum(t**2))

    def test_symbolic_dim_fixed_by_one_input_checks_the_next(self):
        m = graphc.compile("input X: [N, D]\ninput w: [D]\ny = sum(X @ w)")
        X, w = RNG.normal(size=(5, 3)), RNG.normal(size=3)
        assert m.evaluate({"X": X, "w": w})["y"] == pytest.approx(np.sum(X @ w))
        with pytest.raises(GraphcError):
            m.evaluate({"X": X, "w": RNG.normal(size=4)})

    def test_shape_may_span_lines(self):
        r = rows("input X: [N,\n    3]\nL = sum(X)")
        assert r["X"][:2] == ("input", "[N,3]")


class TestParamDeclarations:
    @pytest.mark.parametrize(
        "init, value",
        [("0", 0.0), ("1", 1.0), ("0.5", 0.5), ("-1", -1.0), (".25", 0.25), ("1e-2", 0.01), ("-2.5E+1", -25.0)],
    )
    def test_number_initialiser_fills_the_shape(self, init, value):
        v = evaluate(f"param b: [3, 2] = {init}\nL = sum(b)")
        assert v["b"].shape == (3, 2)
        np.testing.assert_array_equal(v["b"], np.full((3, 2), value))

    def test_scalar_param(self):
        v = evaluate("param w = 1.5\nL = w * x", x=2.0)
        assert v["w"].shape == () and v["w"] == 1.5 and v["L"] == 3.0

    def test_empty_shape_is_scalar(self):
        v = evaluate("param w: [] = 2\nL = w * x", x=3.0)
        assert v["w"].shape == () and v["L"] == 6.0
        assert rows("param w: [] = 2\nL = w * x")["w"] == ("param", "[]", 1)

    @pytest.mark.parametrize("mean, std", [(0, 1), (3, 0.5), (-2, 0.1)])
    def test_normal_initialiser(self, mean, std):
        w = evaluate(f"param w: [4000] = normal({mean}, {std})\nL = sum(w)")["w"]
        assert w.shape == (4000,)
        assert abs(w.mean() - mean) < 6 * std / math.sqrt(4000)
        assert abs(w.std() - std) < 0.1 * std
        assert len(np.unique(w)) == 4000

    @pytest.mark.parametrize("lo, hi", [(0, 1), (-2, 5), (-0.1, 0.1)])
    def test_uniform_initialiser(self, lo, hi):
        w = evaluate(f"param w: [50, 80] = uniform({lo}, {hi})\nL = sum(w)")["w"]
        assert w.shape == (50, 80)
        assert w.min() >= lo and w.max() <= hi
        span = hi - lo
        assert w.min() < lo + 0.01 * span and w.max() > hi - 0.01 * span  # fills the whole range
        assert abs(w.mean() - (lo + hi) / 2) < 0.02 * span

    @pytest.mark.parametrize("shape", [(200, 300), (300, 100)])
    def test_glorot_initialiser(self, shape):
        fan_in, fan_out = shape
        w = evaluate(f"param W: [{shape[0]}, {shape[1]}] = glorot\nL = sum(W)")["W"]
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert w.shape == shape
        assert np.all(np.abs(w) <= bound)
        assert np.abs(w).max() > 0.98 * bound
        assert abs(w.std() - bound / math.sqrt(3)) < 0.03 * bound
        assert abs(w.mean()) < 0.02 * bound

    def test_he_initialiser(self):
        n = 300  # square, so fan-in is the same under either layout convention
        w = evaluate(f"param W: [{n}, {n}] = he\nL = sum(W)")["W"]
        std = math.sqrt(2.0 / n)
        assert w.shape == (n, n)
        assert abs(w.std() - std) < 0.03 * std
        assert abs(w.mean()) < 0.03 * std

    def test_default_init_is_glorot_for_two_or_more_dims(self):
        w = evaluate("param W: [40, 60]\nL = sum(W)")["W"]
        bound = math.sqrt(6.0 / 100)
        assert w.shape == (40, 60)
        assert np.all(np.abs(w) <= bound)
        assert w.std() > 0.3 * bound  # random, not a constant
        w3 = evaluate("param W: [3, 40, 60]\nL = sum(W)")["W"]
        assert w3.shape == (3, 40, 60) and np.std(w3) > 0 and np.all(np.isfinite(w3))

    @pytest.mark.parametrize("decl, shape", [("param b: [7]", (7,)), ("param s", ()), ("param s: []", ())])
    def test_default_init_is_zero_below_two_dims(self, decl, shape):
        name = decl.split()[1].rstrip(":")
        v = evaluate(f"{decl}\nL = sum({name}) + x", x=1.0)
        assert v[name].shape == shape
        np.testing.assert_array_equal(v[name], np.zeros(shape))

    def test_initialisers_are_reproducible_per_seed(self):
        src = "param W: [5, 4] = normal(0, 1)\nparam U: [5, 4] = uniform(-1, 1)\nparam G: [5, 4]\nL = sum(W + U + G)"
        a, b, c = (evaluate(src, seed=s) for s in (7, 7, 8))
        for name in ("W", "U", "G"):
            np.testing.assert_array_equal(a[name], b[name])
            assert not np.array_equal(a[name], c[name])
        np.testing.assert_array_equal(evaluate(src)["W"], evaluate(src, seed=0)["W"])  # default seed is 0

    def test_two_params_with_the_same_initialiser_differ(self):
        v = evaluate("param A: [6, 6] = normal(0, 1)\nparam B: [6, 6] = normal(0, 1)\nL = sum(A + B)")
        assert not np.array_equal(v["A"], v["B"])

    def test_given_value_overrides_the_initialiser(self):
        v = evaluate("param W: [2, 2] = normal(0, 1)\nL = sum(W)", W=np.array([[1.0, 2.0], [3.0, 4.0]]))
        assert v["L"] == 10.0

    def test_symbolic_param_shape_from_an_input(self):
        v = evaluate("input X: [N, D]\nparam w: [D] = 0.5\nL = sum(X @ w)", X=np.ones((4, 3)))
        np.testing.assert_array_equal(v["w"], np.full(3, 0.5))
        assert v["L"] == pytest.approx(4 * 1.5)

    @pytest.mark.parametrize("decl", ["param w: [3] = normal(-1, .5)", "param w: [3] = uniform(-1e-1, 2.5E-1)"])
    def test_initialiser_arguments_take_every_number_form(self, decl):
        w = evaluate(decl + "\nL = sum(w)")["w"]
        assert w.shape == (3,) and np.all(np.isfinite(w)) and len(np.unique(w)) == 3


class TestConstDeclarations:
    @pytest.mark.parametrize("text, value", [("0.01", 0.01), ("2", 2.0), ("-3", -3.0), (".5", 0.5), ("1e-3", 1e-3)])
    def test_const(self, text, value):
        src = f"const lam = {text}\nL = lam * x"
        v = evaluate(src, x=4.0)
        assert v["lam"] == value and v["L"] == 4.0 * value
        assert rows(src)["lam"] == ("const", "[]", 1)

    def test_kinds_in_summary(self):
        src = "input x: [3]\nparam w: [3] = 1\nconst c = 2\ny = c * sum(w * x)"
        r = rows(src)
        assert r == {
            "x": ("input", "[3]", 1),
            "w": ("param", "[3]", 2),
            "c": ("const", "[]", 3),
            "y": ("value", "[]", 4),
        }


# ---- statements ---------------------------------------------------------------------------


class TestStatements:
    def test_statements_in_any_order(self):
        src = "L = sum(y^2)\ny = W @ x\nparam W: [2, 3] = 1\ninput x: [3]"
        x = np.array([1.0, 2.0, 4.0])
        v = evaluate(src, x=x)
        np.testing.assert_array_equal(v["y"], [7.0, 7.0])
        assert v["L"] == 98.0

    def test_reverse_order_equals_forward_order(self):
        lines = ["input x", "a = x + 1", "b = a * 3", "c = b - a", "d = c / 2"]
        fwd = evaluate("\n".join(lines), x=5.0)
        rev = evaluate("\n".join(reversed(lines)), x=5.0)
        assert fwd == rev
        assert fwd["d"] == ((5 + 1) * 3 - (5 + 1)) / 2

    def test_loss_statement_picks_the_objective(self):
        m = graphc.compile("a = x*2\nb = x*3\nloss a")
        assert m.loss_name == "a"

    @pytest.mark.parametrize(
        "src, loss",
        [
            ("a = 2*x\nb = 3*x", "b"),  # two unused: the last defined
            ("b = a*2\na = x + 1\nc = x - 1", "c"),  # a is used by b
            ("c = x - 1\nb = a*2\na = x + 1", "b"),  # unused: c and b, b defined later
            ("y = 2*x\nz = y + 1\nw = y*z", "w"),  # a chain: only w unused
            ("y = 2*x\nparam q = 1", "y"),  # a param is not a defined value
            ("y = 2*x\nconst k = 3", "y"),  # nor is a const
            ("y = 2*x\ninput extra", "y"),  # nor an input
        ],
    )
    def test_default_loss_is_the_unused_value_defined_last(self, src, loss):
        assert graphc.compile(src).loss_name == loss

    def test_output_statement(self):
        m = graphc.compile("y = 2*x\nz = y + 1\nL = sum(z)\noutput y, z")
        assert m.output_names == ["y", "z"]
        assert graphc.compile("y = 2*x\nL = sum(y)\noutput y").output_names == ["y"]
        assert graphc.compile("y = 2*x\nL = sum(y)").output_names == []

    def test_loss_and_output_may_come_first(self):
        m = graphc.compile("loss L\noutput y\ny = 2*x\nL = sum(y)\nu = 3*x")
        assert m.loss_name == "L" and m.output_names == ["y"]

    def test_value_copy_of_name_or_number(self):
        v = evaluate("y = x\nc = 3\nz = y * c", x=2.0)
        assert v["y"] == 2.0 and v["c"] == 3.0 and v["z"] == 6.0

    def test_summary_lines_and_order(self):
        src = "# header\n\ninput x: [3]\n\nparam w: [3] = 2\ny = w * x  # line 6\nL = sum(y)\n"
        got = graphc.compile(src).summary()
        assert [(n, line) for n, _, _, line in got] == [("x", 3), ("w", 5), ("y", 6), ("L", 7)]


# ---- precedence and associativity -------------------------------------------------------------

A_, B_, C_ = 2.0, 3.0, 5.0
PRECEDENCE = [
    ("-a^2", -(A_**2)),
    ("-a**2", -(A_**2)),
    ("2^3^2", 2.0**9),
    ("2**3**2", 2.0**9),
    ("2^3**2", 2.0**9),
    ("(2^3)^2", 64.0),
    ("-2^2", -4.0),
    ("(-2)^2", 4.0),
    ("2^-1", 0.5),
    ("a^-b", A_**-B_),
    ("a - b - c", (A_ - B_) - C_),
    ("a - (b - c)", A_ - (B_ - C_)),
    ("a / b / c", (A_ / B_) / C_),
    ("a / b * c", (A_ / B_) * C_),
    ("a * b / c", (A_ * B_) / C_),
    ("a + b * c", A_ + B_ * C_),
    ("a * b + c", A_ * B_ + C_),
    ("(a + b) * c", (A_ + B_) * C_),
    ("a - b + c", (A_ - B_) + C_),
    ("a * -b", A_ * -B_),
    ("a - -b", A_ + B_),
    ("+a", A_),
    ("--a", A_),
    ("-a * b", -A_ * B_),
    ("a ^ b * c", (A_**B_) * C_),
    ("a * b ^ c", A_ * (B_**C_)),
    ("a / b ^ 2", A_ / B_**2),
    ("c ^ a / b", C_**A_ / B_),
    ("-exp(a)", -math.exp(A_)),
    ("exp(a)^2", math.exp(A_) ** 2),
    ("-exp(a)^2", -(math.exp(A_) ** 2)),
    ("exp(a^2)", math.exp(A_**2)),
    ("sqrt(b)*sqrt(b)", math.sqrt(B_) ** 2),
    ("maximum(a, b) - minimum(a, b)", B_ - A_),
    ("exp(log(c))", C_),
    ("a.T * b", A_ * B_),
    ("-a.T^2", -(A_**2)),
    ("1 - a/b/c*2", 1 - A_ / B_ / C_ * 2),
    ("a*b - c*a + b/a", A_ * B_ - C_ * A_ + B_ / A_),
]


class TestPrecedence:
    @pytest.mark.parametrize("expr, expected", PRECEDENCE, ids=[e for e, _ in PRECEDENCE])
    def test_scalar_precedence(self, expr, expected):
        v = evaluate(f"y = {expr}", a=A_, b=B_, c=C_)
        assert v["y"] == pytest.approx(expected, rel=1e-14)

    def test_double_star_equals_caret(self):
        x = RNG.uniform(0.5, 2.0, size=(3, 4))
        p = RNG.normal(size=4)
        v = evaluate("u = x ^ p\nw = x ** p\nL = sum(u) + sum(w)", x=x, p=p)
        np.testing.assert_array_equal(v["u"], v["w"])
        np.testing.assert_allclose(v["u"], x**p, rtol=1e-14)

    def test_unary_minus_binds_looser_than_power_on_arrays(self):
        x = RNG.normal(size=5)
        v = evaluate("y = -x^2\nL = sum(y)", x=x)
        np.testing.assert_allclose(v["y"], -(x**2))
        assert np.all(v["y"] <= 0)

    def test_matmul_and_star_share_a_level_left_to_right(self):
        x, A, v = RNG.normal(size=3), RNG.normal(size=(3, 3)), RNG.normal(size=3)
        out = evaluate("p = x * A @ v\nq = A @ v * x\nr = x * (A @ v)\nL = sum(p) + sum(q) + sum(r)", x=x, A=A, v=v)
        np.testing.assert_allclose(out["p"], (x * A) @ v)
        np.testing.assert_allclose(out["q"], (A @ v) * x)
        np.testing.assert_allclose(out["r"], x * (A @ v))
        assert not np.allclose(out["p"], out["r"])  # the test distinguishes the two groupings

    def test_matmul_binds_tighter_than_plus(self):
        A, v, b = RNG.normal(size=(3, 3)), RNG.normal(size=3), RNG.normal(size=3)
        out = evaluate("y = A @ v + b\nz = b + A @ v\nL = sum(y) + sum(z)", A=A, v=v, b=b)
        np.testing.assert_allclose(out["y"], A @ v + b)
        np.testing.assert_allclose(out["z"], A @ v + b)

    def test_power_binds_tighter_than_matmul(self):
        A, v = RNG.normal(size=(3, 3)), RNG.normal(size=3)
        out = evaluate("y = A @ v ^ 2\nL = sum(y)", A=A, v=v)
        np.testing.assert_allclose(out["y"], A @ (v**2))

    def test_transpose_binds_tightest(self):
        A, B, v = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 2)), RNG.normal(size=3)
        out = evaluate(
            "P = A.T @ B\nq = A.T @ v\nR = -A.T\nS = A.T.T\nL = sum(P) + sum(q) + sum(R) + sum(S)", A=A, B=B, v=v
        )
        np.testing.assert_allclose(out["P"], A.T @ B)
        np.testing.assert_allclose(out["q"], A.T @ v)
        np.testing.assert_allclose(out["R"], -A.T)
        np.testing.assert_array_equal(out["S"], A)

    def test_transpose_of_call_and_parenthesised_expression(self):
        A, B = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4))
        out = evaluate("P = (A @ B).T\nQ = exp(A).T\nL = sum(P) + sum(Q)", A=A, B=B)
        np.testing.assert_allclose(out["P"], (A @ B).T)
        np.testing.assert_allclose(out["Q"], np.exp(A).T)

    def test_matmul_is_left_associative(self):
        A, B, C = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
        out = evaluate("Y = A @ B @ C\nL = sum(Y)", A=A, B=B, C=C)
        np.testing.assert_allclose(out["Y"], (A @ B) @ C)


# ---- functions, aliases and keywords --------------------------------------------------------


class TestFunctions:
    def test_logistic_is_sigmoid(self):
        x = RNG.normal(size=(3, 4)) * 5
        v = evaluate("a = sigmoid(x)\nb = logistic(x)\nL = sum(a) + sum(b)", x=x)
        np.testing.assert_allclose(v["b"], sigmoid_ref(x), rtol=1e-13)
        np.testing.assert_array_equal(v["a"], v["b"])

    def test_softrelu_is_softplus(self):
        x = RNG.normal(size=(3, 4)) * 5
        v = evaluate("a = softplus(x)\nb = softrelu(x)\nL = sum(a) + sum(b)", x=x)
        np.testing.assert_allclose(v["b"], np.log1p(np.exp(x)), rtol=1e-13)
        np.testing.assert_array_equal(v["a"], v["b"])

    @pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
    def test_axis_keyword_including_negative(self, axis):
        x = RNG.normal(size=(2, 3, 4))
        v = evaluate(f"s = sum(x, axis={axis})\nm = max(x, axis={axis})\nL = sum(s) + sum(m)", x=x)
        np.testing.assert_allclose(v["s"], np.sum(x, axis=axis))
        np.testing.assert_array_equal(v["m"], np.max(x, axis=axis))

    @pytest.mark.parametrize("keepdims, kept", [("true", True), ("false", False)])
    def test_keepdims_keyword(self, keepdims, kept):
        X = RNG.normal(size=(4, 3))
        v = evaluate(f"s = mean(X, axis=1, keepdims={keepdims})\nL = sum(s)", X=X)
        np.testing.assert_allclose(v["s"], np.mean(X, axis=1, keepdims=kept))
        assert v["s"].shape == ((4, 1) if kept else (4,))

    def test_keepdims_result_broadcasts_back(self):
        X = RNG.normal(size=(4, 3))
        v = evaluate("C = X - max(X, axis=-1, keepdims=true)\nL = sum(C)", X=X)
        np.testing.assert_allclose(v["C"], X - X.max(axis=-1, keepdims=True))

    def test_keywords_in_either_order(self):
        X = RNG.normal(size=(4, 3))
        v = evaluate("a = sum(X, keepdims=true, axis=0)\nb = sum(X, axis=0, keepdims=true)\nL = sum(a) + sum(b)", X=X)
        np.testing.assert_allclose(v["a"], X.sum(axis=0, keepdims=True))
        np.testing.assert_array_equal(v["a"], v["b"])

    def test_softmax_axis_keyword(self):
        X = RNG.normal(size=(3, 4))
        v = evaluate("P = softmax(X, axis=0)\nQ = softmax(X)\nL = sum(P) + sum(Q)", X=X)
        np.testing.assert_allclose(v["P"], np.exp(X) / np.exp(X).sum(axis=0, keepdims=True))
        np.testing.assert_allclose(v["Q"], np.exp(X) / np.exp(X).sum(axis=-1, keepdims=True))

    def test_nested_calls(self):
        x = RNG.normal(size=5)
        v = evaluate("y = sum(square(tanh(maximum(x, 0.5 * x))))", x=x)
        assert v["y"] == pytest.approx(np.sum(np.tanh(np.maximum(x, 0.5 * x)) ** 2))


# ---- layout: expressions spanning lines ------------------------------------------------------


class TestLineSpanning:
    def test_expression_spans_lines_inside_parentheses(self):
        v = evaluate("y = (a +\n     b\n     * c)\nz = y + 1", a=A_, b=B_, c=C_)
        assert v["y"] == A_ + B_ * C_ and v["z"] == A_ + B_ * C_ + 1

    def test_call_arguments_span_lines(self):
        X = RNG.normal(size=(3, 4))
        v = evaluate("m = maximum(X,\n            0)\ns = sum(m,\n  axis=0,\n  keepdims=true\n)\nL = sum(s)", X=X)
        np.testing.assert_allclose(v["s"], np.maximum(X, 0).sum(axis=0, keepdims=True))

    def test_line_spanning_keeps_later_lines_right(self):
        m = graphc.compile("y = (a +\n b)\nz = y * 2\n")
        lines = {name: line for name, _, _, line in m.summary()}
        assert lines["z"] == 3

    def test_comment_inside_a_multiline_expression(self):
        v = evaluate("y = (a +   # first part\n     b)   # second part\n", a=A_, b=B_)
        assert v["y"] == A_ + B_

    def test_newline_outside_parentheses_ends_the_statement(self):
        with pytest.raises(GraphcError):
            graphc.compile("y = a +\n b")
