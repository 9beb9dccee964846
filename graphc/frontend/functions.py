"""A model's own functions: their bodies as template graphs, inlined at every call.

A body is built like a model, into a graph of its own whose parameters are placeholders; each call
copies the nodes the body's result needs into the model's graph, its parameters replaced by the
call's arguments, its names given after the call (`H1 = layer(...)`'s `z` is `H1.z`) and its spans
kept in the body, reached `via` the call (an error in a body names the line in it and the call).
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import GraphcError, Source, Span, suggest
from ..ir import ops as O
from ..ir.graph import Graph


class Function(NamedTuple):
    name: str
    params: tuple[str, ...]
    graph: Graph  # the body: a placeholder node (op None) per parameter and per name it reads
    result: int  # the node of its `return` (or one-line) expression
    span: Span  # its name in the `def`
    source: Source | None  # the file it is in, if not the model's own (brought in by `use`)


def where(fn: Function, path: str) -> str:
    """Where a function is defined, as `file:line` (for errors that name two places)."""
    return f"{fn.source.path if fn.source else path}:{fn.span.line}"


def check_calls(functions: dict[str, Function]) -> None:
    """Every function a body calls exists, and none calls itself, directly or through others."""
    callees = {}
    for fn in functions.values():
        if len(fn.graph.order()) < len(fn.graph):  # a topological order leaves out every node on a cycle
            report_cycle(fn.graph, fn.source)
        callees[fn.name] = []
        for n in fn.graph._node.values():
            if n["op"] == "call":
                callee = n["attrs"]["fn"]
                if callee not in functions:
                    raise unknown_function(callee, n["span"]._replace(source=fn.source), functions)
                callees[fn.name].append(callee)
    state: dict[str, int] = {}  # 1: on the path being followed, 2: done

    def visit(name, path):
        state[name] = 1
        for callee in callees[name]:
            if state.get(callee) == 1:
                cycle = path[path.index(callee) :] + [callee]
                fn = functions[callee]
                raise GraphcError(
                    f"recursion: {' -> '.join(f'`{c}`' for c in cycle)}",
                    fn.span._replace(source=fn.source),
                    "a function cannot call itself, directly or through others: graphc inlines every call",
                )
            if callee not in state:
                visit(callee, path + [callee])
        state[name] = 2

    for name in callees:  # (functions are few and shallow: recursion depth is no concern)
        if name not in state:
            visit(name, [name])


def report_cycle(g: Graph, source: Source | None = None, via: Span | None = None) -> None:
    """Raise the error for a cycle among g's definitions (a model's, or a function body's in `source`)."""
    import networkx as nx  # only for a model that has a cycle: `graphc check` never loads networkx

    cycle = [u for u, _ in nx.find_cycle(g.nx)]
    named = [i for i in cycle if g[i]["name"]]
    first = min(named, key=lambda i: (g[i]["span"].line, g[i]["span"].col))
    at = " -> ".join(f"{g[i]['name']} (line {g[i]['span'].line})" for i in named)
    raise GraphcError(
        f"the definitions form a cycle: {at} -> {g[named[0]]['name']}",
        g[first]["span"]._replace(source=source, via=via),
        "a value cannot depend on itself; break the cycle",
    )


def unknown_function(name: str, span: Span, functions) -> GraphcError:
    choices = [*O.FUNCTIONS, *functions]
    hint = suggest(name, choices) or "functions: " + ", ".join(sorted(choices))
    return GraphcError(f"unknown function `{name}`", span, hint)


def inline_calls(g: Graph, functions: dict[str, Function], calls: list[int]) -> None:
    """Replace each call node of the model's graph by the body of its function (calls of calls too)."""
    counts: dict[str, int] = {}
    for i in calls:
        _inline(g, functions, i, "", counts)


def _inline(g: Graph, functions, i: int, scope: str, counts: dict) -> None:
    n = g[i]
    fname, call = n["attrs"]["fn"], n["span"]
    fn = functions.get(fname)
    if fn is None:
        raise unknown_function(fname, call, functions)
    if len(n["args"]) != len(fn.params):
        want = len(fn.params)
        raise GraphcError(
            f"`{fname}` takes {want} argument{'s' * (want != 1)}, got {len(n['args'])}",
            call,
            f"it is defined at {where(fn, g.path)}: def {fname}({', '.join(fn.params)})",
        )
    if n["name"]:
        prefix = n["name"]
    else:  # a call inside an expression: named after the function, numbered in its scope
        key = f"{scope}.{fname}" if scope else fname
        counts[key] = counts.get(key, 0) + 1
        prefix = f"{key}#{counts[key]}"
    body = fn.graph
    copy = {body.names[p]: a for p, a in zip(fn.params, n["args"])}
    needed = body.upstream([fn.result])
    for j in body.order():
        t = body[j]
        if j not in needed or j in copy:
            continue
        if t["op"] is None:  # a name the body reads but does not define: a const of the model
            copy[j] = _const_of_model(g, fn, t, call)
            continue
        span = t["span"]._replace(source=fn.source, via=call)
        if t["op"] == "const" and not t["name"]:
            copy[j] = g.const(t["attrs"]["value"], span)
            continue
        args = [copy[a] for a in t["args"]]
        if j == fn.result:  # the call's node becomes the result: its users and its name stay
            n.update(op=t["op"], attrs=dict(t["attrs"]), span=span)
            g.set_args(i, args)
            k = i
        else:
            name = t["name"] and f"{prefix}.{t['name']}"
            k = g.add(t["op"], args, dict(t["attrs"]), span=span, name=name)
            if name:
                g.names[name] = k
        copy[j] = k
        if t["op"] == "call":
            _inline(g, functions, k, prefix, counts)
    if copy[fn.result] != i:  # the body returns a parameter or a const: the call is a copy of it
        n.update(op="identity", attrs={})
        g.set_args(i, [copy[fn.result]])


def _const_of_model(g: Graph, fn: Function, t: dict, call: Span) -> int:
    name, span = t["name"], t["span"]._replace(source=fn.source, via=call)
    k = g.names.get(name)
    if k is not None and g[k]["op"] == "const":
        return k
    if k is None:
        hint = f"a function reads its parameters, its own names and the model's `const`s; make `{name}` a parameter"
        raise GraphcError(f"`{name}` is not defined in `{fn.name}`", span, hint)
    raise GraphcError(
        f"`{fn.name}` reads `{name}`, a value of the model, not one of its parameters",
        span,
        f"a function reads its parameters, its own names and `const`s: add `{name}` to `{fn.name}`'s parameters",
    )
