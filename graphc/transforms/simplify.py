"""Clean up what mechanical differentiation leaves behind: fold constants, apply algebraic identities,
merge common subexpressions, drop dead nodes."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np

from ..ir.graph import LEAVES, Graph, paused_gc
from .rewrite import Journal, WouldChange, changing, const, const_value, is_const, new, replace, replaceable

Evaluate = Callable[[Graph, int, list], float]  # see simplify


def fold_constants(g: Graph, order: list[int] | None = None, *, evaluate: Evaluate) -> bool:
    """Evaluate ops whose arguments are all anonymous scalar constants; size ratios of known shapes."""
    node = g._node
    changed = False
    out = []  # the order, with each new constant after the node it replaces (merge_common visits it)
    for i in order or g.order():
        out.append(i)
        n = node[i]
        if n["shape"] != () or n["op"] in LEAVES or not replaceable(g, i):
            continue  # (only scalars fold: size ratios are scalars too)
        if n["op"] == "size_ratio":
            s0, s1 = (g[a]["shape"] for a in n["args"])
            if s0 is None or s1 is None or not all(isinstance(d, int) for d in s0 + s1):
                continue
            with np.errstate(all="ignore"):  # an empty array's size is 0: mean of [0] values is nan, as NumPy's
                value = float(np.float64(np.prod(s0)) / np.float64(np.prod(s1)))
        else:
            vals = [const_value(g, a) for a in n["args"]]
            if any(v is None for v in vals):
                continue
            value = evaluate(g, i, vals)  # (as the code would at run time: NumPy's 1/0 = inf, 0/0 = nan)
        c = const(g, value, n["span"])
        replace(g, i, c)
        out.append(c)
        changed = True
    if order is not None and changed:
        order[:] = out
    return changed


def identities(g: Graph, order: list[int] | None = None) -> bool:
    """x*1, x+0, x-0, x/1, x^1, x^0, -(-x), x*0 (scalar), x^2 -> x*x, no-op broadcasts, minus signs gathered,
    where(where(c, 1, 0), a, b) -> where(c, a, b), where(constant, a, b) -> a or b.

    A rewrite's new nodes are visited at once, right after the node they replace (their arguments were
    visited already, their users come later): a rewrite they allow in turn (a - -(a*b) from (-a)*b) is made
    in the same pass, not a whole round later. With `order` given, the new nodes are spliced into it, so the
    passes after this one in the round (merge_common) visit them too."""
    node = g._node
    changed = False
    out = []  # the order, with the nodes made along the way
    for i in order or g.order():
        made = g._next
        j = i
        while True:  # i, then each node made since (ids grow: arguments first), as long as rewrites make some
            out.append(j)
            n = node.get(j)
            op = n and n["op"]
            # most nodes are passed over here, without a call: no rule rewrites their op, or (most of a
            # backward graph) a product, sum or difference without an operand some rule needs
            if op in _IDENTITY_OPS and not (
                op in _ARITH and node[n["args"][0]]["op"] not in _ARG_OPS and node[n["args"][1]]["op"] not in _ARG_OPS
            ):
                to = _identity(g, j)
                if to is not None and to != j:
                    replace(g, j, to)
                    changed = True
            if made == g._next:  # (nothing is removed before remove_dead: each id made is a node)
                break
            j, made = made, made + 1
    if order is not None:
        order[:] = out
    return changed


def _identity(g: Graph, i: int) -> int | None:
    """What identities rewrites node i (an op in _IDENTITY_OPS, passed over by identities unless some rule
    may apply) to: a node that exists, or one it makes; or None."""
    node = g._node
    n = node[i]
    op, args, shape = n["op"], n["args"], n["shape"]
    if not replaceable(g, i):
        return None
    to = None
    if op == "mul":
        a, b = args
        ca, cb = const_value(g, a), const_value(g, b)  # None unless an anonymous constant
        if ca is None and cb is None:
            pass  # the usual case: each rule below needs a constant operand
        elif cb == 1.0 and _same(g, n, a):
            to = a
        elif ca == 1.0 and _same(g, n, b):
            to = b
        elif (ca == 0.0 or cb == 0.0) and shape == ():
            to = const(g, 0.0)
        elif ca == -1.0 and _same(g, n, b):
            to = new(g, i, "neg", [b])
        elif ca is not None or cb is not None:
            to = _fold_scale(g, i)
    elif op in ("add", "sub"):
        a, b = args
        ca, cb = const_value(g, a), const_value(g, b)
        if cb == 0.0 and _same(g, n, a):
            to = a
        elif ca == 0.0 and _same(g, n, b):
            to = b if op == "add" else new(g, i, "neg", [b])
        elif node[b]["op"] == "neg" and replaceable(g, b):  # a + -b -> a - b, a - -b -> a + b
            to = new(g, i, "sub" if op == "add" else "add", [a, node[b]["args"][0]])
    elif op in ("div", "pow") and is_const(g, args[1], 1.0) and _same(g, n, args[0]):
        to = args[0]
    elif op == "pow" and is_const(g, args[1], 2.0):
        to = new(g, i, "mul", [args[0], args[0]])
    elif op == "pow" and is_const(g, args[1], 0.0):  # x^0 = 1, nan and inf included (as NumPy has it)
        one = const(g, 1.0)
        to = one if shape == () else new(g, i, "broadcast", [one, args[0]])
    elif op == "neg" and g[args[0]]["op"] == "neg":
        to = g[args[0]]["args"][0]
    elif op == "neg" and g[args[0]]["op"] == "broadcast" and replaceable(g, args[0]):
        b = g[args[0]]  # -broadcast(s) -> broadcast(-s): negate the small thing
        to = new(g, i, "broadcast", [new(g, i, "neg", [b["args"][0]]), b["args"][1]], b["attrs"])
    elif op == "neg" and g[args[0]]["op"] == "sub" and replaceable(g, args[0]):
        to = new(g, i, "sub", g[args[0]]["args"][::-1])
    elif op == "broadcast" and node[args[0]]["op"] == "broadcast" and g[node[args[0]]["args"][0]]["shape"] == ():
        to = new(g, i, "broadcast", [node[args[0]]["args"][0], args[1]])  # a scalar spread twice: once
    elif (
        op in ("unbroadcast", "broadcast")
        and n["attrs"].get("axis") is None
        and (shape is not None and g[args[0]]["shape"] == shape)
    ):  # the second argument only gives a shape
        to = args[0]
    elif op == "identity" and n["name"] is None:
        to = args[0]
    elif op == "where" and const_value(g, args[0]) is not None:  # a constant test: its branch
        pick = args[1] if const_value(g, args[0]) != 0 else args[2]  # (nan is true, as NumPy has it)
        if shape is not None and g[pick]["shape"] == shape:
            to = pick
    elif op == "where" and node[args[0]]["op"] == "where":  # a comparison as a condition: the test itself
        c = node[args[0]]
        if is_const(g, c["args"][1], 1.0) and is_const(g, c["args"][2], 0.0):
            to = new(g, i, "where", [c["args"][0], args[1], args[2]])
    if to is None and op in ("mul", "div", "add", "sub"):
        arg_ops = (node[args[0]]["op"], node[args[1]]["op"])  # the rules below need a neg or a broadcast
        if "neg" in arg_ops and op in ("mul", "div"):
            to = _pull_neg(g, i)
        if to is None and ("broadcast" in arg_ops or "expand_dims" in arg_ops):
            to = _drop_broadcast(g, i)
    return to


def _same(g: Graph, n: dict, a: int) -> bool:
    """Is node n = op(a, other) shaped like a, so that dropping the op keeps the shape? (other is scalar,
    or both shapes are known and equal)"""
    shape = n["shape"]
    other = [b for b in n["args"] if b != a]
    return (shape is not None and g[a]["shape"] == shape) or bool(other) and g[other[0]]["shape"] == ()


_ARITH = frozenset(("mul", "add", "sub"))  # products, sums, differences: most of a backward graph
# the ops identities rewrites; it skips the others at once
_IDENTITY_OPS = frozenset(("mul", "add", "sub", "div", "pow", "neg", "unbroadcast", "broadcast", "identity", "where"))
# the operands without one of which no rule rewrites a product, sum or difference (a constant: x*1,
# 2*(3*x); a minus: a - -b, (-a)*b; a spread: op(broadcast(s), y)): the backward pass's many x*y skip at once
_ARG_OPS = frozenset(("const", "neg", "broadcast", "expand_dims"))


def _fold_scale(g: Graph, i: int) -> int | None:
    """c1 * (c2 * x), c1 * (x * c2), (c2 * x) * c1 ... -> (c1 c2) * x: constants gather and fold."""
    a, b = g[i]["args"]
    for c, m in ((a, b), (b, a)):
        if const_value(g, c) is None or g[m]["op"] != "mul" or not replaceable(g, m):
            continue
        for k in (0, 1):
            inner = g[m]["args"][k]
            if const_value(g, inner) is not None:
                value = const_value(g, c) * const_value(g, inner)
                scale = const(g, value)
                return new(g, i, "mul", [scale, g[m]["args"][1 - k]])
    return None


def _pull_neg(g: Graph, i: int) -> int | None:
    """(-a) * b -> -(a * b), so that the minus can meet a sum: x - (-a) * b -> x + a * b."""
    args = list(g[i]["args"])
    for k in (0, 1):
        if g[args[k]]["op"] == "neg" and replaceable(g, args[k]):
            args[k] = g[args[k]]["args"][0]
            return new(g, i, "neg", [new(g, i, g[i]["op"], args)])
    return None


def _spread(g: Graph, i: int) -> int | None:
    """If node i only spreads a value over a bigger shape, the value spread, such that an elementwise op
    whose other operand has the full shape broadcasts it the same way (a scalar spreads anywhere)."""
    n = g[i]
    if n["op"] == "broadcast":
        s, ax = n["args"][0], n["attrs"].get("axis")
        if ax is None or g[s]["shape"] == ():
            return s
        return new(g, i, "expand_dims", [s], {"axis": ax})
    if n["op"] == "expand_dims":
        inner = _spread(g, n["args"][0]) if g[n["args"][0]]["op"] in ("broadcast", "expand_dims") else None
        return inner if inner is not None and g[inner]["shape"] == () else None
    return None


def _drop_broadcast(g: Graph, i: int) -> int | None:
    """Elementwise ops broadcast by themselves: op(broadcast(s, ref), y) -> op(s, y) when y already has the
    result's shape, and op(broadcast(s, ref), c) -> broadcast(op(s, c), ref) for a scalar c."""
    node = g._node
    n = node[i]
    if n["shape"] is None:
        return None
    for k in (0, 1):
        args = n["args"]
        b = node[args[k]]
        if b["op"] not in ("broadcast", "expand_dims") or not replaceable(g, args[k]):
            continue
        args, other = list(args), node[args[1 - k]]
        if other["shape"] == n["shape"]:
            s = _spread(g, args[k])
            if s is not None:
                args[k] = s
                return new(g, i, n["op"], args)
        elif other["shape"] == () and b["op"] == "broadcast" and g[b["args"][1]]["shape"] == n["shape"]:
            args[k] = b["args"][0]
            return new(g, i, "broadcast", [new(g, i, n["op"], args), b["args"][1]], b["attrs"])
    return None


def share_softmax(g: Graph, order: list[int] | None = None) -> bool:
    """softmax(z) -> exp(log_softmax(z)) where log_softmax(z) is computed anyway: one exp instead of a
    second max, exp, sum and divide."""
    pairs = _softmax_pairs(g)
    for i, log in pairs:
        changing(g, (i,))
        g[i]["op"], g[i]["attrs"] = "exp", {}
        g.set_args(i, [log])
    return bool(pairs)


def _softmax_pairs(g: Graph) -> list[tuple[int, int]]:
    """(softmax(z), log_softmax(z)) pairs, along the same axis."""
    node = g._node
    logs = {(n["args"], n["attrs"].get("axis", -1)): i for i, n in node.items() if n["op"] == "log_softmax"}
    if not logs:
        return []
    keys = ((i, (n["args"], n["attrs"].get("axis", -1))) for i, n in node.items() if n["op"] == "softmax")
    return [(i, logs[key]) for i, key in keys if key in logs]


def _key(n: dict):
    """What makes two nodes the same value (None: a node never merged), from its node dict."""
    if n["op"] in ("input", "param"):
        return None
    if n["op"] == "const":
        return ("const", _signed(n["attrs"]["value"])) if n["name"] is None else None
    attrs = n["attrs"]
    return (n["op"], n["args"], tuple(sorted((k, _signed(v)) for k, v in attrs.items())) if attrs else ())


def _signed(v):
    """v, with a float's sign beside it: -0.0 == 0.0, but 1 / -0.0 is -inf (two values, never merged)."""
    return (v, math.copysign(1.0, v)) if isinstance(v, float) else v


def merge_common(g: Graph, order: list[int] | None = None) -> bool:
    """Common-subexpression merging: one node per (op, args, attrs)."""
    node = g._node
    seen: dict = {}
    changed = False
    for i in order or g.order():
        k = _key(node[i])
        if k is None:
            continue
        first = seen.setdefault(k, i)
        if first != i:
            if not replaceable(g, i):
                if not replaceable(g, first):
                    continue
                seen[k], first, i = i, i, first  # keep the model's named value; merge the other into it
            replace(g, i, first)
            changed = True
    return changed


def remove_dead(g: Graph, order: list[int] | None = None) -> bool:
    """Drop nodes that no named model value, loss, output or gradient depends on."""
    node, succ = g._node, g._succ
    roots = {i for i in g.names.values() if not node[i].get("signal")}
    roots |= set(g.grads.values()) | set(g.outputs) | {g.loss}
    # In a DAG a node is dead when each of its users is (then, in the end, when it has none): so start from
    # the dead nodes nothing uses and follow their arguments, touching only the dead, not every live node.
    dead = [i for i, users in succ.items() if not users and i not in roots]
    for i in dead:  # (the list grows as removals leave arguments without users)
        args = node[i]["args"]
        name = node[i]["name"]
        if name and g.names.get(name) == i:
            del g.names[name]
        g.remove(i)
        dead += [a for a in set(args) if not succ[a] and a not in roots]
    return bool(dead)


PIPELINE = (fold_constants, identities, share_softmax, merge_common, remove_dead)


def round_passes(evaluate: Evaluate) -> list:
    """PIPELINE's passes as one round runs them, each taking (g, order); constants fold by `evaluate`."""
    return [partial(p, evaluate=evaluate) if p is fold_constants else p for p in PIPELINE]


@paused_gc()
def simplify(g: Graph, evaluate: Evaluate, inplace: bool = False, max_rounds: int = 10) -> Graph:
    """Rounds of PIPELINE, each pass over every node, until a round would change nothing. That last round
    is not run: _settled answers for it by looking only near what the round before changed.

    evaluate(g, i, values): node i's op applied to scalar float64 values, as the backend computes it at
    run time (constant folding must give the number running the code would)."""
    g = g if inplace else g.copy()
    passes = round_passes(evaluate)
    for _ in range(max_rounds):
        changed = False
        order = g.order()  # one order a round: nodes a pass adds are visited next round
        g._journal = journal = Journal(g)  # what the round changes, for _settled
        try:
            for p in passes:  # every pass runs each round, until a round changes nothing
                changed = p(g, order) or changed
        finally:
            del g._journal
        if not changed or _settled(g, journal, evaluate):
            break
    return g


def _settled(g: Graph, before: Journal, evaluate: Evaluate) -> bool:
    """Would another round of PIPELINE leave g as it is? `before` is the round's journal: each node the round
    changed, as it was (op, args, name, attrs) when the round began, and where the nodes it made begin (each
    change a pass makes is announced to rewrite.changing with the nodes it touches: what is not in the journal
    nor made since is as it was, and need not be looked at).

    fold_constants and identities decide about a node from its own fields and those of its arguments, three
    deep (deeper only along chains of expand_dims and broadcast). The round looked at every node that existed
    when it began and left alone those still here; a node none of whose fields, nor those of the nodes it
    reads, changed since would be left alone again. So the two passes run only on the nodes near a change,
    on a graph that refuses changes: the first one they try answers no. A constant swapped for an equal one
    (merge_common does thousands) changes nothing they read. merge_common can merge only a node whose key
    changed, with a node that has its arguments (or, for a constant, its value). share_softmax paired every
    softmax it saw: a new pair has a softmax or log_softmax whose key changed (then the whole graph is
    checked). remove_dead finds nothing in a graph that nothing changed since it ran."""
    node, succ = g._node, g._succ
    rekeyed, dirty = [], []  # nodes whose key may have changed; nodes whose rewrites may now apply
    made = range(before.start, g._next)
    for i in [*before, *made]:  # (the others are as they were)
        n = node.get(i)
        if n is None:  # removed
            continue
        was = before.get(i)
        if was is None:  # made this round
            rekeyed.append(i)
            dirty.append(i)
        elif n["args"] is not was[1] or n["op"] != was[0] or n["name"] != was[2]:
            rekeyed.append(i)
            if n["op"] != was[0] or n["name"] != was[2] or not _equal_constants(g, was[1], n["args"], before):
                dirty.append(i)
    softmaxes = any(node[i]["op"] in ("softmax", "log_softmax") for i in rekeyed)
    if softmaxes and _softmax_pairs(g) or _merges(g, rekeyed):
        return False
    near, frontier, depth = set(dirty), set(dirty), 0  # what reads a dirty node: users 3 deep, or along spreads
    while frontier:
        depth += 1
        frontier = {u for i in frontier if depth <= 3 or node[i]["op"] in ("expand_dims", "broadcast") for u in succ[i]}
        frontier -= near
        near |= frontier
    if not near:
        return True
    g._dry_run = True
    try:
        fold_constants(g, list(near), evaluate=evaluate)
        identities(g, list(near))
    except WouldChange:
        return False
    finally:
        del g._dry_run
    return True


def _equal_constants(g: Graph, old_args: tuple, args: tuple, before: dict) -> bool:
    """Do args differ from old_args only where an anonymous constant was swapped for an equal one? (`before`
    knows each node swapped out, replaced, even the constants merge_common then removed)"""
    if len(old_args) != len(args):
        return False
    for a, b in zip(old_args, args):
        if a != b:
            op, _, name, attrs = before.get(a, (None,) * 4)
            if op != "const" or name is not None or attrs["value"] != const_value(g, b):
                return False
    return True


def _merges(g: Graph, nodes: list[int]) -> bool:
    """Might merge_common merge one of `nodes` with another node? (True when unsure)"""
    node, succ = g._node, g._succ
    consts = None
    for i in nodes:
        n = node[i]
        k = _key(n)
        if k is None:
            continue
        if n["args"]:
            twins = succ[n["args"][0]].keys()  # a node with the same key has the same arguments
            for a in n["args"][1:]:
                twins = twins & succ[a].keys()
            if len(twins) > 64:
                return True  # a value with very many users: let a round decide
        else:
            if consts is None:
                consts = {}
                for j, m in node.items():
                    if m["op"] == "const":
                        consts.setdefault(_key(m), []).append(j)
            twins = consts.get(k, ())
        for j in twins:
            if j != i and _key(node[j]) == k and (replaceable(g, i) or replaceable(g, j)):
                return True
    return False
