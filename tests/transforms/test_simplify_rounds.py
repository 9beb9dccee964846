"""simplify runs rounds of the pipeline until a round would change nothing, and does not run that last
round: it decides the graph has settled by looking only near what the round before changed. These tests
hold it to the plain loop (run rounds until one changes nothing): the same graph, node for node, after
the same rounds (the ones that change something, and not one more), on the shipped examples and on
random models written to set off every rewrite (constants, minus signs, broadcasts, softmax next to
log_softmax). All through simplify's public parts: simplify, round_passes and PIPELINE.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from goldens import example_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc
from graphc import GraphcError
from graphc.backends.numpy.kernels import evaluate
from graphc.transforms import autodiff
from graphc.transforms import simplify as passes
from graphc.transforms.stabilise import stabilise

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = example_models()


def plain_rounds(g, max_rounds: int = 10):
    """simplify as a plain loop: rounds until one changes nothing. (graph, how many rounds changed it)"""
    g = g.copy()
    changed = 0
    for _ in range(max_rounds):
        if not _round(g):
            break
        changed += 1
    return g, changed


def _round(g) -> bool:
    order = g.order()
    changed = False
    for p in passes.round_passes(evaluate):
        changed = p(g, order) or changed
    return changed


def counted_simplify(g, **options):
    """simplify(g), and how many rounds it ran (it runs each pass of PIPELINE once a round)."""
    rounds = []
    last = passes.PIPELINE[-1]

    def counting(*args, **kw):
        rounds.append(1)
        return last(*args, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passes, "PIPELINE", (*passes.PIPELINE[:-1], counting))
        out = passes.simplify(g, evaluate, **options)
    return out, len(rounds)


def dump(g) -> list:
    G = g.nx
    nodes = [
        (i, sorted((k, repr(v)) for k, v in n.items()), list(G.succ[i]), list(G.pred[i])) for i, n in G.nodes(data=True)
    ]
    next_id = g.copy().add(None)  # the id the next node made gets
    return [next_id, g.loss, g.outputs, sorted(g.grads.items()), sorted(g.names.items()), nodes]


def graphs(model: graphc.Model):
    """The graphs simplify gets: the forward graph (emit's forward()), the backward graph, and the backward
    graph differentiated again (Hessian-vector products)."""
    yield stabilise(model.graph)
    yield autodiff.differentiate(stabilise(model.graph))
    wrt = (model.params or model.inputs)[0]
    yield autodiff.hvp_graph(stabilise(model.graph), wrt, autodiff.hvp_input_name(model.graph))


def check(model: graphc.Model):
    for g in graphs(model):
        plain, changed = plain_rounds(g)
        got, rounds = counted_simplify(g)
        assert dump(got) == dump(plain)
        # the rounds that changed something, and not the last one, which would change nothing (a graph
        # with nothing to simplify: the one round that finds so); unless max_rounds stopped the loop
        assert rounds == max(1, changed), "simplify ran a round too many or too few"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_simplify_as_the_plain_loop(path):
    check(graphc.compile(path.read_text(encoding="utf-8"), str(path)))


TERMS = [
    "exp({x})",
    "sin({x})",
    "tanh({x})",
    "sigmoid({x})",
    "softplus({x})",
    "relu({x})",
    "-{x}",
    "-(-{x})",
    "{x} * {y}",
    "{x} + {y}",
    "{x} - {y}",
    "{x} / (1 + {y} * {y})",
    "maximum({x}, {y})",
    "{x} ^ 2",
    "{x} ^ 1",
    "{x} * 1",
    "1 * {x}",
    "{x} * 0",
    "0 + {x}",
    "{x} - 0",
    "0 - {x}",
    "{x} / 1",
    "-1 * {x}",
    "2 * (3 * {x})",
    "{x} * 0.5 + b",
    "1 - {x}",
    "1 / (1 + exp(-{x}))",
    "log(sigmoid({x}))",
    "log(1 - sigmoid({x}))",
    "softmax({x}) * {y}",
    "log(softmax({x})) + softmax({x})",
    "log_softmax({x}) - {y}",
    "log(sum(exp({x})))",
    "sum({x}) * {y}",
    "mean({x}, axis=-1, keepdims=true) * {y}",
    "max({x}, axis=0, keepdims=true) - {y}",
    "sum({x}, axis=0)",
    "{x} * c",
    "c * {x} - c",
]


@st.composite
def models(draw):
    a = draw(st.sampled_from(["[3]", "[2, 3]", "[N, 3]", "[4, 2, 3]"]))
    b = draw(st.sampled_from(["[]", "[3]", "[1]"]))
    lines = [f"input x: {a}", f"param b: {b} = 0.5", "param c = 2"]
    names = ["x", "b", "c"]
    for k in range(draw(st.integers(1, 8))):
        term = draw(st.sampled_from(TERMS))
        lines.append(f"v{k} = " + term.format(x=draw(st.sampled_from(names)), y=draw(st.sampled_from(names))))
        names.append(f"v{k}")
    lines.append(f"L = sum(sin({names[-1]})) + mean({draw(st.sampled_from(names))})")
    return "\n".join(lines)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models())
def test_random_models_simplify_as_the_plain_loop(src):
    try:
        model = graphc.compile(src)
        list(graphs(model))
    except GraphcError:
        return  # shapes that do not fit: nothing to simplify
    check(model)


def test_a_long_chain_simplifies_as_the_plain_loop():
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from models import chain_model

    check(graphc.compile(chain_model(300)))


def test_a_mixed_model_simplifies_as_the_plain_loop():
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from models import mixed_model

    check(graphc.compile(mixed_model(300)))


def test_a_mixed_model_settles_in_one_round():
    """identities visits the nodes its rewrites make at once, and the passes after it in the round see them
    (spliced into the round's order): what they allow is done in the same round, not in another full one."""
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    from models import mixed_model

    g = autodiff.differentiate(stabilise(graphc.compile(mixed_model(300)).graph))
    one, rounds = counted_simplify(g, max_rounds=1)
    assert rounds == 1 and dump(one) != dump(g)  # the round changed something
    assert dump(one) == dump(passes.simplify(g, evaluate))  # and left nothing for another round
    assert not _round(one.copy())
