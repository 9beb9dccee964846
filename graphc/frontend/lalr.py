"""The LALR(1) driver: Lark's tables for graphc.lark, run by a lean loop and a one-regex lexer.

The only module that reads Lark's internals (its parse table, rules and tree-shaping); the builder
beside it is a plain class with one method per rule, called with the children Lark would give it.
"""

from __future__ import annotations

import os
import re
from operator import itemgetter
from pathlib import Path

import lark
from lark.parse_tree_builder import maybe_create_child_filter

from ..errors import GraphcError, Span

# the statement keywords: never a value's name
RESERVED = ("input", "param", "const", "loss", "output", "def", "return", "use")
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
    "CMPOP": "a comparison",
    "ELLIPSIS": "`...`",
    "STRING": 'a file name in quotes, "layers.gc"',
    "DEF": "`def`",
    "RETURN": "`return`",
    "NAME": "a name",
    "NUMBER": "a number",
}

# A token is a plain tuple (kind, text, line, col): one is made per token, and a tuple costs a sixth of
# a str subclass with attributes (or of a NamedTuple).
Tok = tuple[str, str, int, int]


def grammar_path() -> Path:
    """The grammar, packaged beside this module."""
    return Path(__file__).resolve().with_name("graphc.lark")


def _cache_path() -> str | bool:
    """Where Lark keeps the analysed grammar between runs (a per-user cache; it checks the grammar's hash)."""
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        os.makedirs(os.path.join(root, "graphc"), exist_ok=True)
    except OSError:
        return False
    return os.path.join(root, "graphc", f"grammar-lark{lark.__version__}.cache")


def span_of(tok: Tok) -> Span:
    _, text, line, col = tok
    return Span(line, col, line, col + len(text))


class Parser:
    """Lark's LALR(1) tables for graphc.lark, run by a lean loop that calls the builder's methods.

    Lark computes the tables and, per rule, which children its callback gets (punctuation dropped,
    None for a missing `[x]`, `?rules` of one child inlined); we drive them ourselves because Lark's
    general-purpose loop, lexer and callback wrappers spend most of their time in Python-level
    bookkeeping: this one parses 10,000 statements several times faster. The lexer is one regular
    expression made from the grammar's terminals (whitespace and comments skipped inside the same
    match); like Python's tokenizer it gives one _SEP for a run of newlines and `;`, and none for a
    newline inside brackets, so an expression may span lines.
    """

    def __init__(self, builder):
        lk = lark.Lark(
            grammar_path().read_text(encoding="utf-8"),
            parser="lalr",
            lexer="basic",
            maybe_placeholders=True,
            cache=_cache_path(),
        )
        table = lk.parser.parser.parser.parse_table
        # Per state, terminal -> action (a state >= 0 to shift to, or ~i to reduce by self.rules[i]),
        # and rule name -> state after reducing to it: ints and lists, so the loop's tests stay cheap.
        self.actions: list[dict[str, int]] = [{} for _ in table.states]
        self.goto: list[dict[str, int]] = [{} for _ in table.states]
        self.rules: list[tuple[int, object, str]] = []  # (children, callback or None for `?rule: x`, name)
        terminals = {t.name for t in lk.terminals} | {"$END"}
        index: dict[int, int] = {}
        for state, row in table.states.items():
            for sym, (action, arg) in row.items():
                if action is lark.parsers.lalr_analysis.Shift:
                    (self.actions if sym in terminals else self.goto)[state][sym] = arg
                    continue
                if id(arg) not in index:
                    index[id(arg)] = len(self.rules)
                    self.rules.append((len(arg.expansion), _callback(arg, builder), arg.origin.name))
                self.actions[state][sym] = ~index[id(arg)]
        # A reduction's goto, then every `?rule: x` unit reduction the new state makes on the lookahead
        # (they call nothing, and only follow a goto): per state below, rule name and lookahead, the
        # state the loop goes on from. A third of the loop's steps were such unit reductions.
        self.after = [
            {origin: self._after(below, top, terminals) for origin, top in row.items()}
            for below, row in enumerate(self.goto)
        ]
        self.start = table.start_states["start"]
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
        # A match's lastindex is its token's group (the outermost, so it closes last): the terminal by
        # number, cheaper than lastgroup and group(name).
        self.kinds: list[str | None] = [None] * (self.regex.groups + 1)
        for name, i in self.regex.groupindex.items():
            self.kinds[i] = name

    def parse(self, text: str):
        """Lex text and run the tables over its tokens, calling the builder as rules reduce: the value of
        the start rule. (One loop for both: a generator between them cost a tenth of the parse.)"""
        actions, after, rules = self.actions, self.after, self.rules
        keywords, kinds, end = self.keywords, self.kinds, len(text)
        state = self.start
        stack, values, prev = [state], [], None  # prev: the token shifted last
        line, line_start, depth = 1, 0, 0
        for m in self.regex.finditer(text):  # (the last match is the empty one at the end of text)
            i = m.lastindex
            if i is None:  # only whitespace or comments: the end, or a character no token starts with
                at = m.end()
                if at < end:
                    raise GraphcError(f"unexpected character {text[at]!r}", Span(line, at - line_start + 1))
                kind = "$END"
                tok = (kind, "", line, end - line_start + 1)
            else:
                kind, value, col = kinds[i], m.group(i), m.start(i) - line_start + 1
                if kind == "_SEP":
                    newline = value != ";"
                    tok = (kind, "\n" if newline else ";", line, col)
                    if newline:
                        line += value.count("\n")
                        line_start = m.end()
                    if prev is None or prev[0] == "_SEP" or (newline and depth):
                        continue  # one _SEP for a run of them, none first, none inside brackets
                else:
                    if kind == "NAME":
                        kind = keywords.get(value, kind)
                    elif kind == "LPAR" or kind == "LSQB":
                        depth += 1
                    elif (kind == "RPAR" or kind == "RSQB") and depth:
                        depth -= 1
                    tok = (kind, value, line, col)
            while True:
                try:
                    action = actions[state][kind]
                except KeyError:
                    raise syntax_error(tok, actions[state], prev) from None
                if action >= 0:  # shift
                    stack.append(action)
                    values.append(tok)
                    state, prev = action, tok
                    break
                size, callback, origin = rules[~action]
                if size:
                    result = callback(values[-size:])
                    del stack[-size:], values[-size:]
                else:
                    result = callback([])
                if origin == "start":  # (reduced only at the end of the text: the accepting reduction)
                    return result
                state = after[stack[-1]][origin][kind]
                stack.append(state)
                values.append(result)
        raise AssertionError("no end of text")  # (unreachable: the lexer's last match is empty at the end)

    def _after(self, below: int, top: int, terminals) -> dict[str, int]:
        """Per lookahead, the state after the unit reductions state `top` makes on it: top itself, but for
        the few lookaheads top reduces a `?rule: x` on (a table per goto: built with C-level dict calls)."""
        row = dict.fromkeys(terminals, top)
        for kind, action in self.actions[top].items():
            if action < 0 and self.rules[~action][1] is None:
                row[kind] = self._unit_chain(below, top, kind)
        return row

    def _unit_chain(self, below: int, top: int, kind: str) -> int:
        """The top state after every unit reduction that state `top` makes on `kind`, over `below`."""
        while True:
            action = self.actions[top].get(kind, 0)
            if action >= 0 or self.rules[~action][1] is not None:
                return top
            top = self.goto[below][self.rules[~action][2]]


def _callback(rule, builder):
    """What reducing by `rule` calls with its children, or None for a `?rule: x` that passes x on.

    The builder's method named after the rule (or its alias), given the children Lark's tree builder
    would give it; a hidden rule (`__start_star_0`, from a `(...)*`) gives its kept children as a list,
    for the rule that uses it to splice in (in place when first: left recursion stays linear).
    """
    options = rule.options
    if options.expand1 and not rule.alias and len(rule.expansion) == 1 and not rule.expansion[0].is_term:
        return None  # (it only ever follows a goto: the parser folds it into the goto, see Parser.after)
    name = rule.alias or options.template_source or rule.origin.name
    method = None if name.startswith("_") else getattr(builder, name)
    keep_all = list(range(len(rule.expansion)))
    picker = maybe_create_child_filter(rule.expansion, options.keep_all_tokens, False, options.empty_indices)
    if picker is None:
        keep, nones_after = [(i, False, 0) for i in keep_all], 0
    elif len(picker.args) == 2:  # ChildFilterLALR(to_include, nones_after): placeholders
        keep, nones_after = picker.args
    else:  # ChildFilterLALR_NoPlaceholders(to_include)
        keep, nones_after = [(i, splice, 0) for i, splice in picker.args[0]], 0
    picks = [i for i, splice, nones in keep if not splice and not nones]
    if len(picks) < len(keep) or nones_after:

        def gather(children):  # what ChildFilterLALR does
            out = []
            for i, splice, nones in keep:
                if nones:
                    out += [None] * nones
                if not splice:
                    out.append(children[i])
                elif out:
                    out += children[i]
                else:
                    out = children[i]
            if nones_after:
                out += [None] * nones_after
            return out if method is None else method(out)

        call = gather
    elif method is None:
        get = itemgetter(*picks) if picks else (lambda children: ())
        call = (lambda children: [get(children)]) if len(picks) == 1 else (lambda children: list(get(children)))
    elif picks == keep_all:
        call = method
    elif len(picks) == 1:
        (i,) = picks
        call = lambda children: method([children[i]])  # noqa: E731
    else:
        get = itemgetter(*picks) if picks else (lambda children: ())
        call = lambda children: method(get(children))  # noqa: E731 (a tuple: the methods only read it)
    if options.expand1 and not rule.alias:  # `?rule`: one child is passed on, more make the rule
        inner = call
        call = lambda children: children[0] if len(children) == 1 else inner(children)  # noqa: E731
    return call


def syntax_error(tok: Tok, expected: dict, prev: Tok | None) -> GraphcError:
    kind, text, line, col = tok
    if prev is not None and prev[1] in RESERVED and text in ("=", ":", ",", ";", "\n"):  # `loss = ...`
        return GraphcError(
            f"`{prev[1]}` is a reserved word, not a value",
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
