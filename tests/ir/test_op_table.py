"""Meta-tests of the op table: every op declares what each layer needs, so a new op cannot be half-registered."""

import inspect

import pytest

from graphc.backends.numpy import dialect, runtime
from graphc.frontend import builder
from graphc.ir import ops as O
from graphc.ir.ops import ATOM, CMP, Op

SCALE = range(CMP, ATOM + 1)


def test_every_op_has_numpy_code_and_no_code_names_an_unknown_op():
    assert set(dialect.CODE) == set(O.OPS)


@pytest.mark.parametrize("name", sorted(O.OPS))
def test_an_op_declares_what_the_layers_read(name):
    op = O.OPS[name]
    assert op.name == name and op.label
    for k, kind in op.kwtypes.items():
        assert kind in O.KWTYPES, f"{name}: keyword {k} has type {kind}"
    assert op.arity is None or all(0 <= k < op.arity for k in op.shape_only), f"{name}: shape-only beyond its arity"
    assert not (op.view and op.arity == 0), f"{name}: a view of nothing"
    if op.infix:
        symbol, precedence = op.infix
        assert symbol and precedence in SCALE, f"{name}: infix {op.infix} off the precedence scale"
    for h in dialect.helpers(name):
        assert inspect.isfunction(getattr(runtime, h, None)), f"{name}'s code calls {h}, which runtime.py lacks"


def test_a_keyword_without_a_type_is_refused_when_the_op_is_declared():
    with pytest.raises(TypeError, match="every keyword needs a type"):
        Op("bad", 1, O.same, kwargs={"axis": None})


def test_every_operator_the_language_parses_is_an_infix_op():
    for symbol, name in builder.BINARY.items():
        assert O.OPS[name].infix, f"`{symbol}` parses to {name}, which declares no infix notation"


def test_the_numpy_dialect_has_what_the_printer_asks_of_a_target():
    for attr in ("ALIAS", "CODE", "LOWERED", "number", "call", "lower", "helpers"):
        assert hasattr(dialect, attr), f"the NumPy dialect lacks {attr}"
    assert dialect.LOWERED <= set(O.OPS)
