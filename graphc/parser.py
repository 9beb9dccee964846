"""Parse model text with Lark (LALR) into a Graph, checking names, order and shapes."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import NamedTuple

import lark
import networkx as nx

from . import ops as O
from .errors import GraphcError, Span, suggest
from .graph import LEAVES, Graph

RESERVED = ("input", "param", "const", "loss", "output")
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow", "**": "pow"}
INITIALISERS = {"normal": 2, "uniform": 2, "glorot": 0, "he": 0}
TOKEN_TEXT = {"_NL": "end of line", "$END": "end of file", "ADDOP": "`+` or `-`", "MULOP": "`*`, `/` or `@`",
              "POWOP": "`^`", "TRANSPOSE": "`.T`", "LPAR": "`(`", "RPAR": "`)`", "LSQB": "`[`", "RSQB": "`]`",
              "COMMA": "`,`", "SEMICOLON": "`;`", "EQUAL": "`=`", "COLON": "`:`", "NAME": "a name",
              "NUMBER": "a number", "SIGNED_INT": "an integer"}


def grammar_path() -> Path:
    """The grammar: packaged beside the module in a wheel, at the top of a checkout otherwise."""
    here = Path(__file__).resolve().parent
    for p in (here / "grammar" / "graphc.lark", here.parent / "grammar" / "graphc.lark"):
        if p.is_file():
            return p
    raise FileNotFoundError("graphc.lark not found; is graphc installed correctly?")


def _span(tok: lark.Token) -> Span:
    return Span(tok.line, tok.column, tok.end_line, tok.end_column)


class E(NamedTuple):
    """An expression as it reduces: its node and where it came from."""

    id: int
    span: Span


class _Brackets:
    """Drop newlines inside brackets, so a long expression may span lines."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for tok in stream:
            if tok.type in ("LPAR", "LSQB"):
                depth += 1
            elif tok.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and depth:
                continue
            yield tok


class _Builder(lark.Transformer):
    """Builds the graph as the LALR parser reduces each rule."""

    def reset(self, source: str, path: str):
        self.g = Graph(source, path)
        self.defined: dict[str, Span] = {}  # name -> span of its definition
        self.used: dict[str, Span] = {}  # name -> span of its first use
        self.loss: lark.Token | None = None
        self.outputs: list[lark.Token] = []
        self.assigned: list[str] = []

    # ---- names --------------------------------------------------------------------------
    def _ref(self, tok: lark.Token) -> int:
        name = str(tok)
        if name in RESERVED:
            raise GraphcError(f"`{name}` is a reserved word, not a value", _span(tok),
                              f"reserved words: {', '.join(RESERVED)}; rename the value")
        if name not in self.g.names:
            self.g.names[name] = self.g.add(None, name=name, span=_span(tok))
            self.used[name] = _span(tok)
        return self.g.names[name]

    def _define(self, tok: lark.Token, op, args=(), attrs=None, adopt: int | None = None, span=None) -> int:
        """Give `tok`'s name a definition: fill its placeholder, or adopt a fresh expression node."""
        name, at = str(tok), _span(tok)
        span = span or at
        if name in self.defined:
            first = self.defined[name]
            raise GraphcError(f"`{name}` is defined twice (first on line {first.line})", at,
                              f"each name is defined once; rename one of them (line {first.line} or {at.line})")
        self.defined[name] = at
        g = self.g
        if adopt is not None:
            n = g[adopt]
            op, args, attrs = n["op"], n["args"], n["attrs"]
            if name not in g.names:
                g.names[name] = adopt
                n["name"] = name
                return adopt
            g.nx.remove_node(adopt)  # move the node into the placeholder made by an earlier use
        i = self._ref(tok)
        g[i].update(op=op, attrs=attrs or {}, span=span)
        g.set_args(i, args)
        return i

    # ---- statements ---------------------------------------------------------------------
    def assign(self, c):
        tok, e = c
        n = self.g[e.id]
        if n["name"] is None and n["op"] not in LEAVES and n["op"] is not None:
            self._define(tok, None, adopt=e.id, span=e.span)
        else:  # `y = x` or `y = 3`: a value of its own
            self._define(tok, "identity", [e.id], span=e.span)
        self.assigned.append(str(tok))

    def input_decl(self, c):
        tok, shape = c
        self._define(tok, "input", attrs={"declared": shape})

    def param_decl(self, c):
        tok, shape, init = c
        shape = () if shape is None else shape
        if init is None:
            init = ("glorot",) if len(shape) >= 2 else ("number", 0.0)
        if init[0] in ("glorot", "he") and len(shape) < 2:
            raise GraphcError(f"`{init[0]}` initialisation needs a shape with 2+ dims, `{tok}` has {len(shape)}",
                              _span(tok), "give a number, normal(mean, std) or uniform(lo, hi)")
        self._define(tok, "param", attrs={"declared": shape, "init": init})

    def const_decl(self, c):
        tok, value = c
        self._define(tok, "const", attrs={"value": value})

    def loss_stmt(self, c):
        if self.loss is not None:
            raise GraphcError("a second `loss` statement", _span(c[0]), f"the loss is already `{self.loss}`")
        self.loss = c[0]

    def output_stmt(self, c):
        self.outputs.extend(c)

    # ---- declarations -------------------------------------------------------------------
    def shape(self, c):
        return tuple(d for d in c if d is not None)

    def dim(self, c):
        (tok,) = c
        if tok.type == "NAME":
            return str(tok)
        if int(tok) < 0:
            raise GraphcError(f"dimension {tok} is negative", _span(tok), "dims are sizes: 0 or more")
        return int(tok)

    def signed(self, c):
        sign = -1.0 if len(c) == 2 and c[0] == "-" else 1.0
        return sign * float(c[-1])

    def init_number(self, c):
        return ("number", c[0])

    def init_named(self, c):
        return self.init_call(c)

    def init_call(self, c):
        tok, args = c[0], c[1:]
        name = str(tok)
        if name not in INITIALISERS:
            raise GraphcError(f"unknown initialiser `{name}`", _span(tok),
                              suggest(name, INITIALISERS) or "use a number, normal(mean, std), uniform(lo, hi), glorot or he")
        if len(args) != INITIALISERS[name]:
            want = INITIALISERS[name]
            raise GraphcError(f"`{name}` takes {want} argument{'s' * (want != 1)}, got {len(args)}", _span(tok),
                              {"normal": "normal(mean, std)", "uniform": "uniform(lo, hi)"}.get(name, f"just `{name}`"))
        if name == "normal" and args[1] < 0:
            raise GraphcError("normal(mean, std) needs std >= 0", _span(tok))
        return (name, *args)

    # ---- expressions --------------------------------------------------------------------
    def number(self, c):
        (tok,) = c
        return E(self.g.add("const", attrs={"value": float(tok)}, span=_span(tok), shape=()), _span(tok))

    def name(self, c):
        (tok,) = c
        return E(self._ref(tok), _span(tok))

    def binary(self, c):
        a, tok, b = c
        span = a.span.to(b.span)
        return E(self.g.add(BINARY[str(tok)], (a.id, b.id), span=span), span)

    def unary(self, c):
        tok, x = c
        if tok == "+":
            return x
        span = _span(tok).to(x.span)
        return E(self.g.add("neg", (x.id,), span=span), span)

    def dot_t(self, c):
        x, tok = c
        span = x.span.to(_span(tok))
        return E(self.g.add("transpose", (x.id,), span=span), span)

    def kwarg(self, c):
        return c

    def kwvalue(self, c):
        (tok,) = c
        if tok.type == "SIGNED_INT":
            return int(tok)
        if str(tok) in ("true", "false", "True", "False"):
            return str(tok).lower() == "true"
        raise GraphcError(f"keyword value `{tok}` is not an integer, true or false", _span(tok))

    def call(self, c):
        tok, args = c[0], [a for a in c[1:] if a is not None]
        fname = str(tok)
        op = O.FUNCTIONS.get(fname)
        if op is None:
            hint = suggest(fname, O.FUNCTIONS) or "functions: " + ", ".join(sorted(O.FUNCTIONS))
            raise GraphcError(f"unknown function `{fname}`", _span(tok), hint)
        pos = [a for a in args if isinstance(a, E)]
        kws = [a for a in args if not isinstance(a, E)]
        if len(pos) != op.arity:
            raise GraphcError(f"`{fname}` takes {op.arity} argument{'s' * (op.arity != 1)}, got {len(pos)}",
                              _span(tok))
        attrs = {}
        for key, value in kws:
            k = str(key)
            if k not in op.kwargs:
                allowed = ", ".join(op.kwargs) or "none"
                raise GraphcError(f"`{fname}` has no keyword `{k}`", _span(key), f"its keywords: {allowed}")
            if k in attrs:
                raise GraphcError(f"keyword `{k}` given twice", _span(key))
            kind = bool if k == "keepdims" else int
            if type(value) is not kind:
                raise GraphcError(f"`{k}` must be {'true or false' if kind is bool else 'an integer'}", _span(key))
            attrs[k] = value
        end = c[-1].span if args and isinstance(c[-1], E) else _span(tok)
        span = _span(tok).to(end)
        return E(self.g.add(op.name, [a.id for a in pos], attrs, span=span), span)

    def start(self, c):
        return self.g


_LOCK = threading.Lock()
_BUILDER = _Builder()
_PARSER: lark.Lark | None = None


def _parser() -> lark.Lark:
    global _PARSER
    if _PARSER is None:
        _PARSER = lark.Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", lexer="contextual",
                            postlex=_Brackets(), transformer=_BUILDER, maybe_placeholders=True)
    return _PARSER


def _syntax_error(e: lark.exceptions.UnexpectedInput, source: str) -> GraphcError:
    line, col = getattr(e, "line", 1) or 1, getattr(e, "column", 1) or 1
    if isinstance(e, lark.exceptions.UnexpectedCharacters):
        ch = source[e.pos_in_stream] if e.pos_in_stream < len(source) else ""
        return GraphcError(f"unexpected character {ch!r}", Span(line, col), None)
    tok = getattr(e, "token", None)
    expected = sorted({TOKEN_TEXT.get(t, f"`{t.lower()}`") for t in getattr(e, "expected", ()) or ()})
    hint = ("expected " + ", ".join(expected[:6]) + (" …" if len(expected) > 6 else "")) if expected else None
    if tok is None or tok.type == "$END":
        lines = source.splitlines() or [""]
        return GraphcError("unexpected end of file", Span(len(lines), len(lines[-1]) + 1), hint)
    text = "end of line" if tok.type == "_NL" else f"`{tok}`"
    if str(tok) in RESERVED:
        hint = f"`{tok}` is a reserved word: {', '.join(RESERVED)}"
    return GraphcError(f"unexpected {text}", Span(tok.line, tok.column, tok.end_line, tok.end_column), hint)


def parse(source: str, path: str = "<model>") -> Graph:
    """Parse model text into a Graph: names resolved, ordered, shapes inferred as far as declared."""
    with _LOCK:
        _BUILDER.reset(source, path)
        try:
            _parser().parse(source)
        except lark.exceptions.UnexpectedInput as e:
            raise _syntax_error(e, source) from None
        b = _BUILDER
        b.g.source = source
        return _finish(b)


def _finish(b: _Builder) -> Graph:
    g = b.g
    for name, i in g.names.items():  # used but never defined: an input of unknown shape
        if g[i]["op"] is None:
            g[i].update(op="input", attrs={"declared": None})
    if not b.assigned:
        raise GraphcError("the model defines no value", Span(1, 1) if g.source.strip() else None,
                          "write an equation such as `y = w*x + b`")
    _check_acyclic(g)
    for i in g.nx.nodes:
        n = g[i]
        if n["op"] in ("input", "param"):
            n["shape"] = n["attrs"]["declared"]
    g.infer_all()
    for tok in b.outputs:
        g.outputs.append(_lookup(g, b, tok))
    if b.loss is not None:
        g.loss = _lookup(g, b, b.loss)
    else:
        unused = [n for n in b.assigned if g.nx.out_degree(g.names[n]) == 0]
        g.loss = g.names[unused[-1]]
    check_loss_shape(g, g[g.loss]["shape"])
    return g


def check_loss_shape(g: Graph, shape) -> None:
    if shape is not None and shape != ():
        name = g.label(g.loss)
        raise GraphcError(f"the loss `{name}` must be a scalar, but its shape is "
                          f"[{', '.join(map(str, shape))}]", g[g.loss]["span"],
                          f"reduce it, e.g. `{name} = sum(...)` or `mean(...)`, or pick another with `loss NAME`")


def _lookup(g: Graph, b: _Builder, tok: lark.Token) -> int:
    name = str(tok)
    if name not in b.defined:
        raise GraphcError(f"`{name}` is not defined in the model", _span(tok), suggest(name, b.defined))
    return g.names[name]


def _check_acyclic(g: Graph) -> None:
    if nx.is_directed_acyclic_graph(g.nx):
        return
    cycle = [u for u, _ in nx.find_cycle(g.nx)]
    named = [i for i in cycle if g[i]["name"]]
    first = min(named, key=lambda i: (g[i]["span"].line, g[i]["span"].col))
    at = " -> ".join(f"{g[i]['name']} (line {g[i]['span'].line})" for i in named)
    raise GraphcError(f"the definitions form a cycle: {at} -> {g[named[0]]['name']}", g[first]["span"],
                      "a value cannot depend on itself; break the cycle")


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
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise GraphcError(f"{path} is not UTF-8 text (byte {e.start})") from None
