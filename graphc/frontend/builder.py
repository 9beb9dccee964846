"""Builds the forward graph as the LALR parser reduces each rule of graphc.lark."""

from __future__ import annotations

from typing import NamedTuple

import lark

from ..errors import GraphcError, Span, suggest
from ..ir import ops as O
from ..ir.graph import LEAVES, Graph
from .lalr import RESERVED, Tok, span_of

_KIND_TEXT = {bool: "true or false", int: "an integer"}  # how an error names a keyword type
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow", "**": "pow"}
INITIALISERS = {"normal": 2, "uniform": 2, "glorot": 0, "he": 0}


class E(NamedTuple):
    """An expression as it reduces: its node and where it came from."""

    id: int
    span: Span


class Builder(lark.Transformer):
    """Builds the graph as the LALR parser reduces each rule."""

    def reset(self, source: str, path: str):
        self.g = Graph(source, path)
        self.g.shared_consts = {}  # the literals: one node per number (_finish ends the sharing)
        self.defined: dict[str, Span] = {}  # name -> span of its definition
        self.used: dict[str, Span] = {}  # name -> span of its first use
        self.loss: Tok | None = None
        self.outputs: list[Tok] = []
        self.assigned: list[str] = []

    # ---- names --------------------------------------------------------------------------
    def _ref(self, tok: Tok) -> int:
        name = str(tok)
        if name in RESERVED:
            raise GraphcError(
                f"`{name}` is a reserved word, not a value",
                span_of(tok),
                f"reserved words: {', '.join(RESERVED)}; rename the value",
            )
        if name not in self.g.names:
            self.g.names[name] = self.g.add(None, name=name, span=span_of(tok))
            self.used[name] = span_of(tok)
        return self.g.names[name]

    def _define(self, tok: Tok, op, args=(), attrs=None, adopt: int | None = None, span=None) -> int:
        """Give `tok`'s name a definition: fill its placeholder, or adopt a fresh expression node."""
        name, at = str(tok), span_of(tok)
        span = span or at
        if name in self.defined:
            first = self.defined[name]
            raise GraphcError(
                f"`{name}` is defined twice (first on line {first.line})",
                at,
                f"each name is defined once; rename one of them (line {first.line} or {at.line})",
            )
        self.defined[name] = at
        g = self.g
        if adopt is not None:
            n = g[adopt]
            op, args, attrs = n["op"], n["args"], n["attrs"]
            if name not in g.names:
                g.names[name] = adopt
                n["name"] = name
                return adopt
            g.remove(adopt)  # move the node into the placeholder made by an earlier use
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
            raise GraphcError(
                f"`{init[0]}` initialisation needs a shape with 2+ dims, `{tok}` has {len(shape)}",
                span_of(tok),
                "give a number, normal(mean, std) or uniform(lo, hi)",
            )
        self._define(tok, "param", attrs={"declared": shape, "init": init})

    def const_decl(self, c):
        tok, value = c
        self._define(tok, "const", attrs={"value": value})

    def loss_stmt(self, c):
        if self.loss is not None:
            raise GraphcError("a second `loss` statement", span_of(c[0]), f"the loss is already `{self.loss}`")
        self.loss = c[0]

    def output_stmt(self, c):
        self.outputs.extend(c)

    # ---- declarations -------------------------------------------------------------------
    def shape(self, c):
        return tuple(d for d in c if d is not None)

    def dim(self, c):
        if c[-1].type == "NAME":
            return str(c[-1])
        value, span = self._integer(c)
        if value < 0:
            raise GraphcError(f"dimension {value} is negative", span, "dims are sizes: 0 or more")
        return value

    def _integer(self, c) -> tuple[int, Span]:
        """A possibly signed integer literal, from [ADDOP?, NUMBER] tokens."""
        sign, tok = (c[0], c[1]) if len(c) == 2 and c[0] is not None else (None, c[-1])
        span = span_of(sign or tok).to(span_of(tok))
        x = float(tok)
        if not x.is_integer() or not str(tok).isdigit():
            raise GraphcError(f"expected an integer, got `{tok}`", span)
        return (-int(tok) if sign == "-" else int(tok)), span

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
            raise GraphcError(
                f"unknown initialiser `{name}`",
                span_of(tok),
                suggest(name, INITIALISERS) or "use a number, normal(mean, std), uniform(lo, hi), glorot or he",
            )
        if len(args) != INITIALISERS[name]:
            want = INITIALISERS[name]
            raise GraphcError(
                f"`{name}` takes {want} argument{'s' * (want != 1)}, got {len(args)}",
                span_of(tok),
                {"normal": "normal(mean, std)", "uniform": "uniform(lo, hi)"}.get(name, f"just `{name}`"),
            )
        if name == "normal" and args[1] < 0:
            raise GraphcError("normal(mean, std) needs std >= 0", span_of(tok))
        return (name, *args)

    # ---- expressions --------------------------------------------------------------------
    def number(self, c):
        (tok,) = c
        return E(self.g.const(float(tok), span_of(tok)), span_of(tok))  # (one node per number: see reset)

    def name(self, c):
        (tok,) = c
        return E(self._ref(tok), span_of(tok))

    def binary(self, c):
        a, tok, b = c
        span = a.span.to(b.span)
        return E(self.g.add(BINARY[str(tok)], (a.id, b.id), span=span), span)

    def unary(self, c):
        tok, x = c
        if tok == "+":
            return x
        span = span_of(tok).to(x.span)
        return E(self.g.add("neg", (x.id,), span=span), span)

    def paren(self, c):
        lpar, e, rpar = c
        return E(e.id, span_of(lpar).to(span_of(rpar)))

    def dot_t(self, c):
        x, tok = c
        span = x.span.to(span_of(tok))
        return E(self.g.add("transpose", (x.id,), span=span), span)

    def kwarg(self, c):
        return c

    def kwvalue(self, c):
        tok = c[-1]
        if tok.type == "NUMBER":
            return self._integer(c)[0]
        if str(tok) in ("true", "false", "True", "False"):
            return str(tok).lower() == "true"
        raise GraphcError(f"keyword value `{tok}` is not an integer, true or false", span_of(tok))

    def call(self, c):
        tok, args = c[0], [a for a in c[1:] if a is not None]
        fname = str(tok)
        op = O.FUNCTIONS.get(fname)
        if op is None:
            hint = suggest(fname, O.FUNCTIONS) or "functions: " + ", ".join(sorted(O.FUNCTIONS))
            raise GraphcError(f"unknown function `{fname}`", span_of(tok), hint)
        pos = [a for a in args if isinstance(a, E)]
        kws = [a for a in args if not isinstance(a, E)]
        if len(pos) != op.arity:
            raise GraphcError(
                f"`{fname}` takes {op.arity} argument{'s' * (op.arity != 1)}, got {len(pos)}", span_of(tok)
            )
        attrs = {}
        for key, value in kws:
            k = str(key)
            if k not in op.kwargs:
                allowed = ", ".join(op.kwargs) or "none"
                raise GraphcError(f"`{fname}` has no keyword `{k}`", span_of(key), f"its keywords: {allowed}")
            if k in attrs:
                raise GraphcError(f"keyword `{k}` given twice", span_of(key))
            kind = op.kwtypes[k]
            if type(value) is not kind:
                raise GraphcError(f"`{k}` must be {_KIND_TEXT[kind]}", span_of(key))
            attrs[k] = value
        end = c[-1].span if args and isinstance(c[-1], E) else span_of(tok)
        span = span_of(tok).to(end)
        return E(self.g.add(op.name, [a.id for a in pos], attrs, span=span), span)

    def start(self, c):
        return self.g
