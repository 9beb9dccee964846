"""Builds the forward graph as the LALR parser reduces each rule of graphc.lark."""

from __future__ import annotations

from typing import NamedTuple

from ..errors import GraphcError, Span, suggest
from ..ir import ops as O
from ..ir.graph import LEAVES, Graph
from .lalr import RESERVED, Tok, span_of

_KIND_TEXT = {bool: "true or false", int: "an integer"}  # how an error names a keyword type
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow", "**": "pow"}
INITIALISERS = {"normal": 2, "uniform": 2, "glorot": 0, "he": 0}


# An expression as it reduces is a plain tuple (node, line, col, end_line, end_col): its node and where
# it came from. Most are names or operands, never a node's span, so no Span is made for them (and one
# a tuple costs a sixth of a NamedTuple's, made by a Python-level __new__).
Expr = tuple[int, int, int, int, int]


class Kw(NamedTuple):
    """A keyword argument of a call: `axis=1`."""

    key: Tok
    value: int | bool


class Builder:
    """Builds the graph as the LALR parser reduces each rule: one method per rule (or alias) of
    graphc.lark, given the rule's kept children (tokens, the values of its subrules, None for a missing
    `[x]`)."""

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
        name = tok[1]
        i = self.g.names.get(name)
        if i is None:  # (a reserved word is never a name, so it needs checking only here)
            if name in RESERVED:
                raise GraphcError(
                    f"`{name}` is a reserved word, not a value",
                    span_of(tok),
                    f"reserved words: {', '.join(RESERVED)}; rename the value",
                )
            i = self.g.names[name] = self.g.add(None, name=name, span=span_of(tok))
            self.used[name] = span_of(tok)
        return i

    def _define(self, tok: Tok, op, args=(), attrs=None, adopt: int | None = None, where=None) -> int:
        """Give `tok`'s name a definition: fill its placeholder, or adopt a fresh expression node. `where`
        (line, col, end_line, end_col) is the span of the definition, if not the name's."""
        name, at = tok[1], span_of(tok)
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
        g[i].update(op=op, attrs=attrs or {}, span=Span(*where) if where else at)
        g.set_args(i, args)
        return i

    # ---- statements ---------------------------------------------------------------------
    def assign(self, c):
        tok, (i, *where) = c
        n = self.g[i]
        if n["name"] is None and n["op"] not in LEAVES and n["op"] is not None:
            self._define(tok, None, adopt=i, where=where)  # (mostly a new name: the node keeps its span)
        else:  # `y = x` or `y = 3`: a value of its own
            self._define(tok, "identity", [i], where=where)
        self.assigned.append(tok[1])

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
                f"`{init[0]}` initialisation needs a shape with 2+ dims, `{tok[1]}` has {len(shape)}",
                span_of(tok),
                "give a number, normal(mean, std) or uniform(lo, hi)",
            )
        self._define(tok, "param", attrs={"declared": shape, "init": init})

    def const_decl(self, c):
        tok, value = c
        self._define(tok, "const", attrs={"value": value})

    def loss_stmt(self, c):
        if self.loss is not None:
            raise GraphcError("a second `loss` statement", span_of(c[0]), f"the loss is already `{self.loss[1]}`")
        self.loss = c[0]

    def output_stmt(self, c):
        self.outputs.extend(c)

    # ---- declarations -------------------------------------------------------------------
    def shape(self, c):
        return tuple(d for d in c if d is not None)

    def dim(self, c):
        if c[-1][0] == "NAME":
            return c[-1][1]
        value, span = self._integer(c)
        if value < 0:
            raise GraphcError(f"dimension {value} is negative", span, "dims are sizes: 0 or more")
        return value

    def _integer(self, c) -> tuple[int, Span]:
        """A possibly signed integer literal, from [ADDOP?, NUMBER] tokens."""
        sign, tok = (c[0], c[1]) if len(c) == 2 and c[0] is not None else (None, c[-1])
        span = span_of(sign or tok).to(span_of(tok))
        text = tok[1]
        if not float(text).is_integer() or not text.isdigit():
            raise GraphcError(f"expected an integer, got `{text}`", span)
        return (-int(text) if sign is not None and sign[1] == "-" else int(text)), span

    def signed(self, c):
        sign = -1.0 if len(c) == 2 and c[0][1] == "-" else 1.0
        return sign * float(c[-1][1])

    def init_number(self, c):
        return ("number", c[0])

    def init_named(self, c):
        return self.init_call(c)

    def init_call(self, c):
        tok, args = c[0], c[1:]
        name = tok[1]
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
        ((_, text, line, col),) = c
        end, value = col + len(text), float(text)
        g = self.g
        i = g.shared_consts.get(value)  # (one node per number, see reset: most need no Span made)
        if i is None:
            i = g.const(value, Span(line, col, line, end))
        return i, line, col, line, end

    def name(self, c):
        (tok,) = c
        _, text, line, col = tok
        return self._ref(tok), line, col, line, col + len(text)

    def binary(self, c):
        (a, line, col, _, _), (_, op, _, _), (b, _, _, end_line, end_col) = c
        return self.g.add(BINARY[op], (a, b), span=Span(line, col, end_line, end_col)), line, col, end_line, end_col

    def unary(self, c):
        (_, op, line, col), x = c
        if op == "+":
            return x
        i, _, _, end_line, end_col = x
        return self.g.add("neg", (i,), span=Span(line, col, end_line, end_col)), line, col, end_line, end_col

    def paren(self, c):
        (_, _, line, col), (i, *_), (_, text, end_line, end_col) = c
        return i, line, col, end_line, end_col + len(text)

    def dot_t(self, c):
        (i, line, col, _, _), (_, text, end_line, end_col) = c
        end_col += len(text)
        return self.g.add("transpose", (i,), span=Span(line, col, end_line, end_col)), line, col, end_line, end_col

    def kwarg(self, c):
        return Kw(*c)

    def kwvalue(self, c):
        tok = c[-1]
        kind, text = tok[0], tok[1]
        if kind == "NUMBER":
            return self._integer(c)[0]
        if text in ("true", "false", "True", "False"):
            return text.lower() == "true"
        raise GraphcError(f"keyword value `{text}` is not an integer, true or false", span_of(tok))

    def call(self, c):
        tok, args = c[0], c[1:] if c[-1] is not None else ()  # (None: `f()`, no arguments)
        fname = tok[1]
        op = O.FUNCTIONS.get(fname)
        if op is None:
            hint = suggest(fname, O.FUNCTIONS) or "functions: " + ", ".join(sorted(O.FUNCTIONS))
            raise GraphcError(f"unknown function `{fname}`", span_of(tok), hint)
        pos = [a for a in args if type(a) is not Kw]
        if len(pos) != op.arity:
            raise GraphcError(
                f"`{fname}` takes {op.arity} argument{'s' * (op.arity != 1)}, got {len(pos)}", span_of(tok)
            )
        attrs = {}
        for key, value in [a for a in args if type(a) is Kw] if len(pos) < len(args) else ():
            k = key[1]
            if k not in op.kwargs:
                allowed = ", ".join(op.kwargs) or "none"
                raise GraphcError(f"`{fname}` has no keyword `{k}`", span_of(key), f"its keywords: {allowed}")
            if k in attrs:
                raise GraphcError(f"keyword `{k}` given twice", span_of(key))
            kind = op.kwtypes[k]
            if type(value) is not kind:
                raise GraphcError(f"`{k}` must be {_KIND_TEXT[kind]}", span_of(key))
            attrs[k] = value
        _, _, line, col = tok
        if args and type(args[-1]) is not Kw:  # the span ends with the last argument, if positional
            end_line, end_col = args[-1][3], args[-1][4]
        else:
            end_line, end_col = line, col + len(fname)
        span = Span(line, col, end_line, end_col)
        return self.g.add(op.name, [a[0] for a in pos], attrs, span=span), line, col, end_line, end_col

    def start(self, c):
        return self.g
