"""Model text -> forward Graph: parse (LALR), then check names, order and shapes."""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import GraphcError, Span, suggest
from ..ir.graph import Graph, paused_gc
from .builder import Builder
from .functions import check_calls, inline_calls, report_cycle, where
from .lalr import Parser, Tok, span_of

_LOCK = threading.Lock()
_BUILDER = Builder()
_PARSER: Parser | None = None


def parse(source: str, path: str = "<model>") -> Graph:
    """Parse model text into a Graph: names resolved, ordered, shapes inferred as far as declared."""
    global _PARSER
    source = source.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is no text
    with _LOCK, paused_gc():
        if _PARSER is None:
            _PARSER = _BUILDER.parser = Parser(_BUILDER)
        _BUILDER.reset(source, path)
        try:
            _PARSER.parse(source)
            return _finish(_BUILDER)
        finally:
            _BUILDER.reset("", path)  # the builder keeps no graph alive


def _finish(b: Builder) -> Graph:
    g = b.g
    if b.functions:
        check_calls(b.functions)
        for name in b.functions.keys() & g.names.keys():  # (a call and a value of one name: which is meant?)
            n, fn = g[g.names[name]], b.functions[name]
            if n["op"] is None:
                raise GraphcError(f"`{name}` is a function, used here as a value", n["span"], f"call it: `{name}(...)`")
            raise GraphcError(
                f"`{name}` names both a function (defined at {where(fn, g.path)}) and a value",
                n["span"],
                "rename one of them",
            )
    if b.calls:
        inline_calls(g, b.functions, b.calls)
    g.shared_consts = None
    for i in g.names.values():  # (every input and param is named: no need to visit all the nodes)
        n = g[i]
        if n["op"] is None:  # used but never defined: an input of unknown shape
            n.update(op="input", attrs={"declared": None})
        if n["op"] in ("input", "param"):
            n["shape"] = n["attrs"]["declared"]
    if not b.assigned and b.functions:
        raise GraphcError(
            f"this file defines functions ({', '.join(b.functions)}) but no value: it is a file to `use`",
            None,
            f'a model says `use "{g.path.rsplit("/", 1)[-1]}"` and calls them',
        )
    if not b.assigned:
        raise GraphcError(
            "the model defines no value",
            Span(1, 1) if g.source.strip() else None,
            "write an equation such as `y = w*x + b`",
        )
    order = g.order()
    if len(order) < len(g):  # a topological order leaves out every node on a cycle
        report_cycle(g)
    _bind_const_dims(g)
    g.infer_all(order)
    _check_reshape_dims(g)
    for tok in b.outputs:
        g.outputs.append(_lookup(g, b, tok))
    if b.loss is not None:
        g.loss = _lookup(g, b, b.loss)
    else:
        # the last value nothing uses (there is one: the graph has no cycle)
        g.loss = next(g.names[n] for n in reversed(b.assigned) if not g.users(g.names[n]))
    check_loss_shape(g, g[g.loss]["shape"])
    return g


def _declared_dims(g: Graph) -> set:
    """The dims of the inputs' and params' declared shapes."""
    return {d for i in g.names.values() if g[i]["op"] in ("input", "param") for d in g[i]["attrs"]["declared"] or ()}


def _bind_const_dims(g: Graph) -> None:
    """SPEC §1: a const and a symbolic dim of one name are one size (`const N = 3` with `input X: [N, 2]`)."""
    dims = _declared_dims(g)
    dims |= {d for n in g._node.values() if n["op"] == "reshape" for d in n["attrs"]["shape"]}  # reshape(x, [N, -1])
    for name in dims & set(g.names):
        n = g[g.names[name]]
        if n["op"] != "const":
            continue  # a value named like a dim is a value: only consts give dims a size
        v = n["attrs"]["value"]
        if not (float(v).is_integer() and v >= 0):
            raise GraphcError(
                f"`{name}` is a dim of a declared shape, so the const `{name}` must be a size (0, 1, 2, ...), "
                f"not {v:g}",
                n["span"],
            )
        g.dims.unify(name, int(v))


def _check_reshape_dims(g: Graph) -> None:
    """A reshape's target may leave one size to infer when the model runs: a -1, or one dim no input or
    param declares (nor the element counts tie to one). Two such, or one twice ([K, K]), nothing fixes."""
    reshapes = [n for n in g._node.values() if n["op"] == "reshape"]
    if not reshapes:
        return
    resolve = g.dims.resolve
    known = {resolve(d) for d in _declared_dims(g)}
    for n in reshapes:
        target = n["attrs"]["shape"]
        free = [d for d in target if isinstance(resolve(d), str) and resolve(d) not in known]
        if len(free) + target.count(-1) > 1:
            raise GraphcError(
                f"reshape to [{', '.join(map(str, target))}]: nothing fixes the dims "
                + " and ".join(dict.fromkeys(map(str, free + [-1] * target.count(-1)))),
                n["span"],
                "name dims the model's inputs or params declare, or write -1 for the one size to infer",
            )


def check_loss_shape(g: Graph, shape) -> None:
    if shape is not None and shape != ():
        name = g.label(g.loss)
        raise GraphcError(
            f"the loss `{name}` must be a scalar, but its shape is [{', '.join(map(str, shape))}]",
            g[g.loss]["span"],
            f"reduce it, e.g. `{name} = sum(...)` or `mean(...)`, or pick another with `loss NAME`",
        )


def _lookup(g: Graph, b: Builder, tok: Tok) -> int:
    name = tok[1]
    if name not in b.defined:
        raise GraphcError(f"`{name}` is not defined in the model", span_of(tok), suggest(name, b.defined))
    return g.names[name]


def read_source(path: str) -> str:
    """Read a model file (or '-' for stdin) as text, with graphc errors for unreadable input."""
    import sys

    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except FileNotFoundError:
        raise GraphcError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise GraphcError(f"{path} is a directory, not a model file") from None
    except OSError as e:
        raise GraphcError(f"cannot read {path}: {e.strerror}") from None
    if b"\0" in data:
        raise GraphcError(f"{path} is a binary file, not a model", hint="a model is text, e.g. `y = w*x + b`")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")  # (parse skips it too, for text from the API)
    except UnicodeDecodeError as e:
        raise GraphcError(f"{path} is not UTF-8 text (byte {e.start})") from None
