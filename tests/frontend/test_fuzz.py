"""Fuzz the front end (issue 2, item 7): any text gives a model or a GraphcError, nothing else.

Inputs: random text, random token soup, random mutations of the shipped examples
(characters inserted, deleted, replaced; lines swapped, dropped, duplicated), random bytes
as a file. Mutated models that still compile are also evaluated on their example's data.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from goldens import example_models
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import graphc
from graphc import GraphcError

REPO = Path(__file__).resolve().parents[2]
FUZZ_PATH = str(REPO / "examples" / "fuzz.gc")
EXAMPLES = {p.name: p.read_text(encoding="utf-8") for p in example_models()}
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# characters the language uses, plus a few it does not
ALPHABET = list("abcdexyzXYZTWNDλ_0123456789 .,;:=+-*/^@()[]#\n\t\"'!$%&{}|~\\`?<>") + [
    "**",
    ".T",
    "\r\n",
    "\x00",
    "é",
    "→",
    "\u200b",
]
TOKENS = [
    "input",
    "param",
    "const",
    "loss",
    "output",
    "x",
    "y",
    "W",
    "b",
    "t",
    "N",
    "D",
    "λ",
    "=",
    ":",
    ",",
    ";",
    "\n",
    "(",
    ")",
    "[",
    "]",
    "+",
    "-",
    "*",
    "/",
    "@",
    "^",
    "**",
    ".T",
    "0",
    "1",
    "2.5",
    ".5",
    "1e-3",
    "-1",
    "exp",
    "log",
    "sum",
    "mean",
    "max",
    "softmax",
    "log_softmax",
    "logsumexp",
    "sigmoid",
    "maximum",
    "transpose",
    "axis",
    "keepdims",
    "true",
    "false",
    "normal",
    "uniform",
    "glorot",
    "he",
    "# c\n",
    "sigmoud",
]


def compiles_or_graphc_error(src: str):
    """Compile; anything but a Model or a GraphcError fails the test. Returns the Model or None."""
    try:
        m = graphc.compile(src, FUZZ_PATH)  # (beside the examples: their `use "layers.gc"` finds it)
    except GraphcError as e:
        text = e.render(FUZZ_PATH, src)  # rendering must work for every error
        assert text.split(":")[0].endswith(".gc") and "error:" in text  # at the model, or at a file it uses
        return None
    assert isinstance(m, graphc.Model)
    rows = m.summary()
    assert rows and all(len(r) == 4 for r in rows)
    assert m.loss_name in m.names
    return m


@FUZZ
@given(st.lists(st.sampled_from(ALPHABET), max_size=120).map("".join))
def test_random_text_in_the_language_alphabet(src):
    compiles_or_graphc_error(src)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_random_unicode_text(src):
    compiles_or_graphc_error(src)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join))
def test_random_token_soup(src):
    compiles_or_graphc_error(src)


# ---- mutations of the shipped examples -----------------------------------------------------


@st.composite
def mutated_example(draw):
    name = draw(st.sampled_from(sorted(EXAMPLES)))
    text = EXAMPLES[name]
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "swap_lines", "drop_line", "dup_line"]))
        if kind in ("insert", "delete", "replace"):
            if not text and kind != "insert":
                continue
            i = draw(st.integers(0, max(0, len(text) - 1)))
            ch = draw(st.sampled_from(ALPHABET))
            if kind == "insert":
                text = text[:i] + ch + text[i:]
            elif kind == "delete":
                text = text[:i] + text[i + 1 :]
            else:
                text = text[:i] + ch + text[i + 1 :]
        else:
            lines = text.split("\n")
            if len(lines) < 2:
                continue
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "swap_lines":
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "drop_line":
                del lines[i]
            else:
                lines.insert(j, lines[i])
            text = "\n".join(lines)
    return name, text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutated_examples(case):
    _, src = case
    compiles_or_graphc_error(src)


def test_every_example_compiles():
    for name, src in EXAMPLES.items():
        assert compiles_or_graphc_error(src) is not None, name


# ---- mutated models that compile are evaluated on their example's data -----------------------


def small_enough(m) -> bool:
    """Skip models whose declared arrays a mutation made huge (a MemoryError is not what we test)."""
    for _, _, shape, _ in m.summary():
        dims = [int(d) for d in shape.strip("[]").replace(" ", "").split(",") if d.isdigit()]
        if int(np.prod(dims, dtype=np.float64)) > 100_000 or any(d > 10_000 for d in dims):
            return False
    return True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example(), st.integers(0, 3))
def test_mutated_examples_evaluate_or_raise_graphc_error(example_inputs, case, seed):
    name, src = case
    m = compiles_or_graphc_error(src)
    assume(m is not None and small_enough(m))
    values = {k: v for k, v in example_inputs(name).items() if k in m.names}
    try:
        out = m.evaluate(values, seed=seed)
    except GraphcError as e:
        e.render("fuzz.gc", src)
        return
    assert set(out) == set(m.names)
    assert np.shape(out[m.loss_name]) == ()


# ---- random bytes as a model file ------------------------------------------------------------

_TMP = tempfile.TemporaryDirectory(prefix="graphc-fuzz-")


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_as_a_file(data):
    path = Path(_TMP.name) / "model.gc"
    path.write_bytes(data)
    try:
        m = graphc.load(path)
    except GraphcError as e:
        assert e.render(str(path), None).startswith(str(path))
        return
    assert isinstance(m, graphc.Model)
