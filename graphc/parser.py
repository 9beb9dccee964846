"""Parse model text with Lark (LALR) into a Graph, checking names, order and shapes."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import NamedTuple

import lark

from . import ops as O
from .errors import GraphcError, Span, suggest
from .graph import LEAVES, Graph, paused_gc

RESERVED = ("input", "param", "const", "loss", "output")
BINARY = {"+": "add", "-": "sub", "*": "mul", "/": "div", "@": "matmul", "^": "pow", "**": "pow"}
INITIALISERS = {"normal": 2, "uniform": 2, "glorot": 0, "he": 0}
TOKEN_TEXT = {
    "_SEP": "end of line or `;`",
    "$END": "end of file",
    "ADDOP": "`+` or `-`",
    "MULOP": "`*`, `/` or `@`",
    "POWOP": "`^`",
    "TRANSPOSE": "`.T`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "COMMA": "`,`",
    "EQUAL": "`=`",
    "COLON": "`:`",
    "NAME": "a name",
    "NUMBER": "a number",
}


def grammar_path() -> Path:
    """The grammar: packaged beside the module in a wheel, at the top of a checkout otherwise."""
    here = Path(__file__).resolve().parent
    for p in (here / "grammar" / "graphc.lark", here.parent / "grammar" / "graphc.lark"):
        if p.is_file():
            return p
    raise FileNotFoundError("graphc.lark not found; is graphc installed correctly?")


class Tok(str):
    """A token: its text, with its terminal's name and where it starts (lighter than Tok)."""

    __slots__ = ("type", "line", "column")


def _tok(kind: str, value: str, line: int, column: int) -> Tok:
    t = Tok(value)
    t.type, t.line, t.column = kind, line, column
    return t


def _cache_path() -> str | bool:
    """Where Lark keeps the analysed grammar between runs (a per-user cache; it checks the grammar's hash)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        os.makedirs(os.path.join(root, "graphc"), exist_ok=True)
    except OSError:
        return False
    return os.path.join(root, "graphc", f"grammar-lark{lark.__version__}.cache")


def _span(tok: Tok) -> Span:
    return Span(tok.line, tok.column, tok.line, tok.column + len(tok))


class E(NamedTuple):
    """An expression as it reduces: its node and where it came from."""

    id: int
    span: Span


class _Builder(lark.Transformer):
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
                _span(tok),
                f"reserved words: {', '.join(RESERVED)}; rename the value",
            )
        if name not in self.g.names:
            self.g.names[name] = self.g.add(None, name=name, span=_span(tok))
            self.used[name] = _span(tok)
        return self.g.names[name]

    def _define(self, tok: Tok, op, args=(), attrs=None, adopt: int | None = None, span=None) -> int:
        """Give `tok`'s name a definition: fill its placeholder, or adopt a fresh expression node."""
        name, at = str(tok), _span(tok)
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
                _span(tok),
                "give a number, normal(mean, std) or uniform(lo, hi)",
            )
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
        if c[-1].type == "NAME":
            return str(c[-1])
        value, span = self._integer(c)
        if value < 0:
            raise GraphcError(f"dimension {value} is negative", span, "dims are sizes: 0 or more")
        return value

    def _integer(self, c) -> tuple[int, Span]:
        """A possibly signed integer literal, from [ADDOP?, NUMBER] tokens."""
        sign, tok = (c[0], c[1]) if len(c) == 2 and c[0] is not None else (None, c[-1])
        span = _span(sign or tok).to(_span(tok))
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
                _span(tok),
                suggest(name, INITIALISERS) or "use a number, normal(mean, std), uniform(lo, hi), glorot or he",
            )
        if len(args) != INITIALISERS[name]:
            want = INITIALISERS[name]
            raise GraphcError(
                f"`{name}` takes {want} argument{'s' * (want != 1)}, got {len(args)}",
                _span(tok),
                {"normal": "normal(mean, std)", "uniform": "uniform(lo, hi)"}.get(name, f"just `{name}`"),
            )
        if name == "normal" and args[1] < 0:
            raise GraphcError("normal(mean, std) needs std >= 0", _span(tok))
        return (name, *args)

    # ---- expressions --------------------------------------------------------------------
    def number(self, c):
        (tok,) = c
        return E(self.g.const(float(tok), _span(tok)), _span(tok))  # (one node per number: see reset)

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

    def paren(self, c):
        lpar, e, rpar = c
        return E(e.id, _span(lpar).to(_span(rpar)))

    def dot_t(self, c):
        x, tok = c
        span = x.span.to(_span(tok))
        return E(self.g.add("transpose", (x.id,), span=span), span)

    def kwarg(self, c):
        return c

    def kwvalue(self, c):
        tok = c[-1]
        if tok.type == "NUMBER":
            return self._integer(c)[0]
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
            raise GraphcError(f"`{fname}` takes {op.arity} argument{'s' * (op.arity != 1)}, got {len(pos)}", _span(tok))
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


class _Parser:
    """Lark's LALR(1) tables and tree-building callbacks for grammar/graphc.lark, run by a lean loop.

    Lark computes the tables and wraps our transformer's methods (inlining `?rules`, dropping
    punctuation); we drive them ourselves because Lark's general-purpose loop and lexer spend
    most of their time in Python-level comparisons: this one parses 10,000 statements several
    times faster. The lexer is one regular expression made from the grammar's terminals (whitespace
    and comments skipped inside the same match); like Python's tokenizer it gives one _SEP for a run
    of newlines and `;`, and none for a newline inside brackets, so an expression may span lines.
    """

    def __init__(self, transformer: lark.Transformer):
        lk = lark.Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            lexer="basic",
            transformer=transformer,
            maybe_placeholders=True,
            cache=_cache_path(),
        )
        tables = lk.parser.parser.parser  # lark.parsers.lalr_parser._Parser
        reduce: dict[int, tuple] = {}
        self.states = {}
        for state, actions in tables.parse_table.states.items():
            row = {}
            for sym, (action, arg) in actions.items():
                if action is lark.parsers.lalr_analysis.Shift:
                    row[str(sym)] = (True, arg)
                else:
                    unit = (
                        len(arg.expansion) == 1 and arg.options.expand1 and not arg.alias
                    )  # `?rule: x` just passes x on
                    rule = reduce.setdefault(
                        id(arg), (len(arg.expansion), None if unit else tables.callbacks[arg], str(arg.origin.name))
                    )
                    row[str(sym)] = (False, rule)
            self.states[state] = row
        self.start = tables.parse_table.start_states["start"]
        terms = sorted(lk.terminals, key=lambda t: (-t.priority, -t.pattern.max_width, t.name))
        word = re.compile(r"\w+")
        self.keywords = {
            t.pattern.value: t.name
            for t in terms
            if isinstance(t.pattern, lark.lexer.PatternStr) and word.fullmatch(t.pattern.value)
        }
        skip = "|".join(t.pattern.to_regexp() for t in terms if t.name in lk.lexer_conf.ignore)
        kept = "|".join(
            f"(?P<{t.name}>{t.pattern.to_regexp()})"
            for t in terms
            if t.name not in self.keywords.values() and t.name not in lk.lexer_conf.ignore
        )
        self.regex = re.compile(f"(?:{skip})*(?:{kept})?")  # whitespace and comments, then a token
        self.units: dict[tuple[int, int, str], int] = {}

    def tokens(self, text: str):
        """The Toks of text, then one of type $END."""
        keywords, end = self.keywords, len(text)
        line, line_start, depth, last = 1, 0, 0, "_SEP"  # no _SEP before the first statement
        for m in self.regex.finditer(text):
            kind = m.lastgroup
            if kind is None:  # only whitespace or comments: the end, or a character no token starts with
                at = m.end()
                if at < end:
                    raise GraphcError(f"unexpected character {text[at]!r}", Span(line, at - line_start + 1))
                break
            value, col = m.group(kind), m.start(kind) - line_start + 1
            if kind == "_SEP":
                newline = value != ";"
                if last != "_SEP" and not (newline and depth):
                    last = kind
                    tok = Tok("\n" if newline else ";")
                    tok.type, tok.line, tok.column = kind, line, col
                    yield tok
                if newline:
                    line += value.count("\n")
                    line_start = m.end()
                continue
            if kind == "NAME":
                kind = keywords.get(value, kind)
            elif kind in ("LPAR", "LSQB"):
                depth += 1
            elif kind in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            last = kind
            tok = Tok(value)  # inline, not a helper: this runs for every token
            tok.type, tok.line, tok.column = kind, line, col
            yield tok
        yield _tok("$END", "", line, end - line_start + 1)

    def parse(self, text: str):
        states, units, stack, values, prev = self.states, self.units, [self.start], [], None
        for tok in self.tokens(text):
            kind = tok.type
            while True:
                try:
                    shift, arg = states[stack[-1]][kind]
                except KeyError:
                    raise _syntax_error(tok, states[stack[-1]], prev) from None
                if shift:
                    stack.append(arg)
                    values.append(tok)
                    prev = tok
                    break
                size, callback, origin = arg
                if callback is None:  # a chain of `?rule: x` reductions only changes the top state
                    key = (stack[-2], stack[-1], kind)
                    top = units.get(key)
                    if top is None:
                        top = units[key] = self._unit_chain(*key)
                    stack[-1] = top
                    continue
                if size:
                    value = callback(values[-size:])
                    del stack[-size:], values[-size:]
                else:
                    value = callback([])
                if origin == "start" and kind == "$END" and len(stack) == 1:
                    return value
                stack.append(states[stack[-1]][origin][1])
                values.append(value)

    def _unit_chain(self, below: int, top: int, kind: str) -> int:
        """The top state after every unit reduction that state `top` makes on `kind`, over `below`."""
        while True:
            shift, arg = self.states[top].get(kind, (True, None))
            if shift or arg[1] is not None:
                return top
            top = self.states[below][arg[2]][1]


def _syntax_error(tok: Tok, expected: dict, prev: Tok | None) -> GraphcError:
    kind, line, col, text = tok.type, tok.line, tok.column, str(tok)
    if prev is not None and prev in RESERVED and text in ("=", ":", ",", ";", "\n"):  # `loss = ...`
        return GraphcError(
            f"`{prev}` is a reserved word, not a value",
            _span(prev),
            f"reserved words: {', '.join(RESERVED)}; rename the value",
        )
    names = sorted({TOKEN_TEXT.get(t, f"`{t.lower()}`") for t in expected if t.isupper() or t in TOKEN_TEXT})
    hint = ("expected " + ", ".join(names[:6]) + (" …" if len(names) > 6 else "")) if names else None
    if text in RESERVED:
        hint = f"`{text}` is a reserved word: {', '.join(RESERVED)}"
    if kind == "$END":
        return GraphcError("unexpected end of file", Span(line, col), hint)
    if text == "\n":
        return GraphcError("unexpected end of line", Span(line, col, line, col + 1), hint)
    return GraphcError(f"unexpected `{text}`", _span(tok), hint)


_LOCK = threading.Lock()
_BUILDER = _Builder()
_PARSER: _Parser | None = None


def parse(source: str, path: str = "<model>") -> Graph:
    """Parse model text into a Graph: names resolved, ordered, shapes inferred as far as declared."""
    global _PARSER
    source = source.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is no text
    with _LOCK, paused_gc():
        if _PARSER is None:
            _PARSER = _Parser(_BUILDER)
        _BUILDER.reset(source, path)
        try:
            _PARSER.parse(source)
            return _finish(_BUILDER)
        finally:
            _BUILDER.reset("", path)  # the builder keeps no graph alive


def _finish(b: _Builder) -> Graph:
    g = b.g
    g.shared_consts = None
    for i in g.names.values():  # used but never defined: an input of unknown shape
        if g[i]["op"] is None:
            g[i].update(op="input", attrs={"declared": None})
    if not b.assigned:
        raise GraphcError(
            "the model defines no value",
            Span(1, 1) if g.source.strip() else None,
            "write an equation such as `y = w*x + b`",
        )
    order = g.order()
    if len(order) < len(g):  # a topological order leaves out every node on a cycle
        _report_cycle(g)
    for i in g:
        n = g[i]
        if n["op"] in ("input", "param"):
            n["shape"] = n["attrs"]["declared"]
    _bind_const_dims(g)
    g.infer_all(order)
    for tok in b.outputs:
        g.outputs.append(_lookup(g, b, tok))
    if b.loss is not None:
        g.loss = _lookup(g, b, b.loss)
    else:
        unused = [n for n in b.assigned if not g.users(g.names[n])]
        g.loss = g.names[unused[-1]]
    check_loss_shape(g, g[g.loss]["shape"])
    return g


def _bind_const_dims(g: Graph) -> None:
    """SPEC §1: a const and a symbolic dim of one name are one size (`const N = 3` with `input X: [N, 2]`)."""
    dims = {d for i in g.names.values() if g[i]["op"] in ("input", "param") for d in g[i]["attrs"]["declared"] or ()}
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


def check_loss_shape(g: Graph, shape) -> None:
    if shape is not None and shape != ():
        name = g.label(g.loss)
        raise GraphcError(
            f"the loss `{name}` must be a scalar, but its shape is [{', '.join(map(str, shape))}]",
            g[g.loss]["span"],
            f"reduce it, e.g. `{name} = sum(...)` or `mean(...)`, or pick another with `loss NAME`",
        )


def _lookup(g: Graph, b: _Builder, tok: Tok) -> int:
    name = str(tok)
    if name not in b.defined:
        raise GraphcError(f"`{name}` is not defined in the model", _span(tok), suggest(name, b.defined))
    return g.names[name]


def _report_cycle(g: Graph) -> None:
    import networkx as nx

    cycle = [u for u, _ in nx.find_cycle(g.nx)]
    named = [i for i in cycle if g[i]["name"]]
    first = min(named, key=lambda i: (g[i]["span"].line, g[i]["span"].col))
    at = " -> ".join(f"{g[i]['name']} (line {g[i]['span'].line})" for i in named)
    raise GraphcError(
        f"the definitions form a cycle: {at} -> {g[named[0]]['name']}",
        g[first]["span"],
        "a value cannot depend on itself; break the cycle",
    )


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
