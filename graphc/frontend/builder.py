"""Builds the forward graph as the LALR parser reduces each rule of graphc.lark."""

from __future__ import annotations

import os
from typing import NamedTuple

from ..errors import GraphcError, Source, Span, suggest
from ..ir import ops as O
from ..ir.graph import LEAVES, Graph
from .functions import Function, where
from .lalr import RESERVED, Tok, span_of

_KIND_TEXT = {bool: "true or false", int: "an integer", float: "a number", tuple: "a list of dims, e.g. [N, -1]"}
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow", "**": "pow"}
COMPARE = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
INITIALISERS = {"normal": 2, "uniform": 2, "glorot": 0, "he": 0}


# An expression as it reduces is a plain tuple (node, line, col, end_line, end_col): its node and where
# it came from. Most are names or operands, never a node's span, so no Span is made for them (and one
# a tuple costs a sixth of a NamedTuple's, made by a Python-level __new__).
Expr = tuple[int, int, int, int, int]


class Kw(NamedTuple):
    """A keyword argument of a call: `axis=1`."""

    key: Tok
    value: int | bool | float | tuple


class Lit(NamedTuple):
    """A list of dims as a call's argument, `[N, -1, 8]`, and where it is (as an Expr's tail)."""

    value: tuple
    line: int
    col: int
    end_line: int
    end_col: int


def _typed(k: str, value, kind: type, at: Span):
    """A keyword's value as its declared type (an integer is a number too), or a located error."""
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        got = str(value).lower() if type(value) is bool else list(value) if type(value) is tuple else value
        raise GraphcError(f"`{k}` must be {_KIND_TEXT[kind]}, not {got}", at)
    return value


class Builder:
    """Builds the graph as the LALR parser reduces each rule: one method per rule (or alias) of
    graphc.lark, given the rule's kept children (tokens, the values of its subrules, None for a missing
    `[x]`)."""

    # what each file has of its own while it is parsed; a `use` parses another file inside a statement
    _FILE = (
        "g",
        "defined",
        "used",
        "loss",
        "outputs",
        "assigned",
        "calls",
        "_comparison",
        "_outer",
        "_block",
        "source",
    )

    def reset(self, source: str, path: str):
        self.functions: dict[str, Function] = {}  # of the model and every file it uses
        self.using: list[str] = []  # the files being parsed, by real path: the used inside the users
        self.loaded: set[str] = set()  # the files used so far (each is read once)
        self._start(source, path)

    def _start(self, source: str, path: str, of: Source | None = None):
        self.source = of  # the file being parsed, if it is not the model's own
        self._outer: dict | None = None  # the model's own names while a function body is parsed
        self._block: tuple | None = None  # (function, line, column) of the body just ended
        self.calls: list[int] = []  # the nodes that call the model's own functions, to inline
        self.g = Graph(source, path)
        self.g.shared_consts = {}  # the literals: one node per number (_finish ends the sharing)
        self.defined: dict[str, Span] = {}  # name -> span of its definition
        self.used: dict[str, Span] = {}  # name -> span of its first use
        self.loss: Tok | None = None
        self.outputs: list[Tok] = []
        self.assigned: list[str] = []
        self._comparison = None  # the comparison just made: its result is no operand of another

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
        if self._outer is not None and name in self._params:
            raise GraphcError(
                f"`{name}` is a parameter of `{self._params[name]}`: a body cannot assign it",
                at,
                "give the new value a name of its own",
            )
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
            if op == "call":
                self.calls[self.calls.index(adopt)] = self.g.names[name]
        i = self._ref(tok)
        g[i].update(op=op, attrs=attrs or {}, span=Span(*where) if where else at)
        g.set_args(i, args)
        return i

    # ---- statements ---------------------------------------------------------------------
    def assign(self, c):
        tok, (i, *where) = c
        if self._block and self._outer is None and tok[3] > 1:
            fname, line, col = self._block
            if tok[3] == col:
                raise GraphcError(
                    f"`{tok[1]} = ...` is indented like the body of `{fname}`, which ended at its `return` "
                    f"(line {line})",
                    span_of(tok),
                    "a body's last line is its `return`: move this line above it, or unindent it",
                )
            self._block = None
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
        if type(tok) is Lit:
            return tok.value
        kind, text = tok[0], tok[1]
        if kind == "NUMBER":
            if text.isdigit():
                return self._integer(c)[0]
            return self.signed(c)
        if text in ("true", "false", "True", "False"):
            return text.lower() == "true"
        raise GraphcError(f"keyword value `{text}` is not a number, true or false", span_of(tok))

    def dimlist(self, c):
        (_, _, line, col), dims, (_, _, end_line, end_col) = c[0], c[1:-1], c[-1]
        return Lit(tuple(d for d in dims if d is not None), line, col, end_line, end_col + 1)

    def listdim(self, c):
        return c[-1][1] if c[-1][0] == "NAME" else self._integer(c)[0]

    def _constant(self, a, what: str):
        """The number an array argument given for a keyword spells (`2`, `-1`, a `const`), its node dropped."""
        g, i = self.g, a[0]
        n, sign = g[i], 1.0
        if n["op"] == "neg" and not n["name"]:
            g.remove(i)
            i, sign = n["args"][0], -1.0
            n = g[i]
        if n["op"] != "const":
            raise GraphcError(f"{what} must be a number", Span(*a[1:]), "write a number, or the name of a `const`")
        if not n["name"] and not g.users(i):  # a literal read here only: not a node of the model
            g.remove(i)
            if g.shared_consts.get(n["attrs"]["value"]) == i:
                del g.shared_consts[n["attrs"]["value"]]
        return sign * n["attrs"]["value"]

    def call(self, c):
        tok, args, rpar = c[0], c[1:-1] if c[-2] is not None else (), c[-1]  # (None: `f()`, no arguments)
        fname = tok[1]
        op = O.FUNCTIONS.get(fname)
        _, _, line, col = tok
        end_line, end_col = rpar[2], rpar[3] + 1  # the span ends with the closing parenthesis
        if op is None:
            return self._call_function(tok, args, Span(line, col, end_line, end_col))
        pos, kws = [], []  # (loops, not comprehensions: this runs for every call in the model)
        for a in args:
            (kws if type(a) is Kw else pos).append(a)
        for key, _ in kws:  # (a keyword the op lacks first: clip(x, lo=0, hi=1) is that, not a count)
            if key[1] not in op.kwtypes:
                allowed = ", ".join(op.kwargs) or "none; its arguments are given by position"
                raise GraphcError(f"`{fname}` has no keyword `{key[1]}`", span_of(key), f"its keywords: {allowed}")
        arrays = len(pos) if op.arity is None else op.arity
        if len(pos) != arrays and not arrays < len(pos) <= arrays + len(op.positional) or not pos and op.arity is None:
            want = (
                "1 or more"
                if op.arity is None
                else f"{op.arity}" + (f" to {op.arity + len(op.positional)}" if op.positional else "")
            )
            hint = f"its keywords: {', '.join(op.kwargs)} (the others are given by position)" if op.kwargs else None
            raise GraphcError(
                f"`{fname}` takes {want} argument{'s' * (want != '1')}, got {len(pos)}", span_of(tok), hint
            )
        ids = []
        for a in pos[:arrays] if len(pos) > arrays else pos:
            if type(a) is Lit:
                raise GraphcError(f"a list of dims is not a value of `{fname}`", Span(*a[1:]))
            ids.append(a[0])
        attrs = self._attrs(op, tok, zip(op.positional, pos[arrays:]), kws) if op.kwargs or kws else {}
        return self.g.add(op.name, ids, attrs, span=Span(line, col, end_line, end_col)), line, col, end_line, end_col

    def _attrs(self, op, tok, positional, keywords) -> dict:
        """A call's keywords, typed by the op's declaration: given by position (a number, a `const`, or a
        list of dims) or by name; every required one given."""
        fname, attrs = tok[1], {}
        for k, value in positional:
            kind, at = op.kwtypes[k], Span(*value[1:5])
            if (kind is tuple) != (type(value) is Lit) or kind is bool:
                raise GraphcError(f"`{k}` of `{fname}` must be {_KIND_TEXT[kind]}", at)
            value = value.value if kind is tuple else self._constant(value, f"`{k}` of `{fname}`")
            attrs[k] = _typed(k, int(value) if kind is int and float(value).is_integer() else value, kind, at)
        for key, value in keywords:  # (each one the op has: call checked the names)
            k, at = key[1], span_of(key)
            if k in attrs:
                raise GraphcError(f"keyword `{k}` given twice", at)
            attrs[k] = _typed(k, value, op.kwtypes[k], at)
        for k, default in op.kwargs.items():
            if default is O.REQUIRED and k not in attrs:
                raise GraphcError(
                    f"`{fname}` needs `{k}`", span_of(tok), f"give it by position, `{fname}(..., {k})`, or as `{k}=...`"
                )
        return attrs

    def _call_function(self, tok, args, span: Span):
        """A call of the model's own function (defined anywhere, or in a used file): a node to inline."""
        for a in args:
            if type(a) is Kw:
                raise GraphcError(f"`{tok[1]}` takes no keywords", span_of(a.key), "pass its arguments by position")
            if type(a) is Lit:
                raise GraphcError(f"a list of dims is not a value of `{tok[1]}`", Span(*a[1:]))
        self.calls.append(self.g.add("call", [a[0] for a in args], {"fn": tok[1]}, span=span))
        return self.calls[-1], span.line, span.col, span.end_line, span.end_col

    # ---- functions ----------------------------------------------------------------------
    def fhead(self, c):
        """`def f(a, b)`: the body that follows is built into a graph of its own."""
        keyword, tok, params = c[0], c[1], [p for p in c[2:] if p is not None]
        if tok[1] in O.FUNCTIONS:
            raise GraphcError(f"`{tok[1]}` is a built-in function", span_of(tok), "give your function another name")
        self._outer = {k: getattr(self, k) for k in ("g", "defined", "used", "assigned", "calls", "_comparison")}
        self.g = Graph(self._outer["g"].source, self._outer["g"].path)
        self.g.shared_consts = {}
        self.defined, self.used, self.assigned, self.calls, self._comparison = {}, {}, [], [], None
        self._params = dict.fromkeys((p[1] for p in params), tok[1])  # parameter -> its function
        for p in params:
            if p[1] in self.defined:
                raise GraphcError(f"parameter `{p[1]}` of `{tok[1]}` is named twice", span_of(p))
            self.defined[p[1]] = span_of(p)
            self.g.names[p[1]] = self.g.add(None, name=p[1], span=span_of(p))
        return keyword, tok, tuple(p[1] for p in params)

    def local(self, c):
        self.assign(c)
        return c[0]

    def def_line(self, c):
        (_, tok, params), (result, *_) = c
        self._define_function(tok, params, result)

    def def_block(self, c):
        (keyword, tok, params), lines, ret, (result, *_) = c[0], c[1:-2], c[-2], c[-1]
        col = (*lines, ret)[0][3]
        for line in (*lines, ret):
            if line[3] <= keyword[3]:
                raise GraphcError(
                    f"the body of `{tok[1]}` must be indented under its `def` (line {keyword[2]})",
                    span_of(line),
                    "indent each line of the body, and its `return`, by the same amount",
                )
            if line[3] != col:
                raise GraphcError(
                    f"this line of `{tok[1]}` is indented unlike the rest of its body",
                    span_of(line),
                    "indent each line of the body, and its `return`, by the same amount",
                )
        self._define_function(tok, params, result)
        self._block = (tok[1], ret[2], col)

    def _define_function(self, tok, params, result):
        body = self.g
        for k, v in self._outer.items():
            setattr(self, k, v)
        self._outer = None
        name, span = tok[1], span_of(tok)
        first = self.functions.get(name)
        if first is not None:
            raise GraphcError(
                f"function `{name}` is defined twice (first at {where(first, self.g.path)})",
                span,
                "each function is defined once; rename one of them",
            )
        body.shared_consts = None
        self.functions[name] = Function(name, params, body, result, span, self.source)

    def use_stmt(self, c):
        """`use "layers.gc"`: the functions of another file (a path relative to the file that says it)."""
        (tok,) = c
        at, rel = span_of(tok), tok[1][1:-1]
        here = self.source.path if self.source else self.g.path
        base = os.path.dirname(here)  # ("<model>", "<stdin>": the working directory)
        path = os.path.normpath(os.path.join(base, rel))
        real = os.path.realpath(path)
        if real in self.using:
            chain = [*self.using[self.using.index(real) :], real]
            raise GraphcError(
                "the files use each other: " + " -> ".join(os.path.relpath(p) for p in chain),
                at,
                "a file of functions cannot use, directly or not, a file that uses it",
            )
        if real in self.loaded:
            return  # (used twice, through two files: its functions are there already)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read().removeprefix("\ufeff")
        except FileNotFoundError:
            raise GraphcError(
                f"no such file: {path}", at, f"`use` paths are relative to the file that says them ({here})"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise GraphcError(f"cannot read {path}: {e}", at) from None
        saved = {k: getattr(self, k) for k in self._FILE}
        self.using.append(real)
        try:
            self._start(text, path, Source(path, text))
            self.g.shared_consts = {}
            self.parser.parse(text)
            stray = [*self.defined.values(), *(span_of(t) for t in [self.loss, *self.outputs] if t)]
            if stray:  # (a used file defines no values, only functions)
                raise GraphcError(
                    "a used file holds functions only",
                    min(stray)._replace(source=self.source),
                    "declare and define the model's values in the model, and functions here",
                )
        except GraphcError as e:
            if e.span is not None and e.span.source is None:
                e.span = e.span._replace(source=Source(path, text))
            raise
        finally:
            self.using.pop()
            for k, v in saved.items():
                setattr(self, k, v)
        self.loaded.add(real)

    def compare(self, c):
        a, (_, sym, line, col), b = c
        if a is self._comparison:
            raise GraphcError(
                "comparisons do not chain",
                Span(line, col, line, col + len(sym)),
                "`a < b < c` is not a range test here; write `(a < b) * (b < c)` for both",
            )
        (x, line, col, _, _), (y, _, _, end_line, end_col) = a, b
        span = Span(line, col, end_line, end_col)
        g = self.g
        test = g.add(COMPARE[sym], (x, y), span=span)
        # a comparison is 1.0 or 0.0 (SPEC §1: float64, like all arithmetic), not a NumPy bool
        one, zero = g.const(1.0, span), g.const(0.0, span)
        self._comparison = g.add("where", (test, one, zero), span=span), line, col, end_line, end_col
        return self._comparison

    # ---- indexing: NumPy's basic indexing, by integer constants -------------------------
    def index(self, c):
        (i, line, col, _, _), key, (_, _, end_line, end_col) = c[0], tuple(c[2:-1]), c[-1]
        end_col += 1
        span = Span(line, col, end_line, end_col)
        if sum(k is Ellipsis for k in key) > 1:
            raise GraphcError("an index can have only one `...`", span)
        if any(type(k) is tuple and k[2] == 0 for k in key):
            raise GraphcError("a slice step cannot be zero", span, "a step is a nonzero integer, e.g. `x[::2]`")
        return self.g.add("index", (i,), {"key": key}, span=span), line, col, end_line, end_col

    def at(self, c):
        return c[0]

    def slice(self, c):
        """A slice as (start, stop, step), None where left out: a tuple, so attrs compare and hash."""
        return (*c, None)[:3]

    def ellipsis(self, c):
        return Ellipsis

    def bound(self, c):
        return self._integer(c)[0]

    def start(self, c):
        return self.g
