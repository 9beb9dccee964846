"""The LALR(1) driver: Lark's tables for graphc.lark, run by a lean loop and a one-regex lexer.

The only module that reads Lark's internals (its parse table and rule callbacks); the builder
beside it is an ordinary lark.Transformer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import lark

from ..errors import GraphcError, Span

RESERVED = ("input", "param", "const", "loss", "output")  # the statement keywords: never a value's name
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
    """The grammar, packaged beside this module."""
    return Path(__file__).resolve().with_name("graphc.lark")


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


def span_of(tok: Tok) -> Span:
    return Span(tok.line, tok.column, tok.line, tok.column + len(tok))


class Parser:
    """Lark's LALR(1) tables and tree-building callbacks for graphc.lark, run by a lean loop.

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
                    raise syntax_error(tok, states[stack[-1]], prev) from None
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


def syntax_error(tok: Tok, expected: dict, prev: Tok | None) -> GraphcError:
    kind, line, col, text = tok.type, tok.line, tok.column, str(tok)
    if prev is not None and prev in RESERVED and text in ("=", ":", ",", ";", "\n"):  # `loss = ...`
        return GraphcError(
            f"`{prev}` is a reserved word, not a value",
            span_of(prev),
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
    return GraphcError(f"unexpected `{text}`", span_of(tok), hint)
