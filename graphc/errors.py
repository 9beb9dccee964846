"""One error type for everything a user can get wrong, rendered in one place."""

from __future__ import annotations

from typing import NamedTuple


class Span(NamedTuple):
    """A 1-based source region: where a node, token or statement came from."""

    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def to(self, other: Span | None) -> Span:
        """The span from the start of self to the end of other."""
        if other is None:
            return self
        return Span(self.line, self.col, other.end_line or other.line, other.end_col or other.col)


class GraphcError(Exception):
    """A problem in a model, its data or its usage, with an optional source span and hint."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None, usage: bool = False):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.usage = usage  # wrong command-line usage: exit code 2 instead of 1

    def render(self, path: str = "<model>", source: str | None = None) -> str:
        """Format like a compiler: path:line:col: error: message, the line, a caret, a hint."""
        if self.span is None:
            out = [f"{path}: error: {self.message}"]
        else:
            out = [f"{path}:{self.span.line}:{self.span.col}: error: {self.message}"]
            lines = source.splitlines() if source else []
            if 0 < self.span.line <= len(lines):
                text = lines[self.span.line - 1].expandtabs(1)
                width = 1
                if self.span.end_line == self.span.line and self.span.end_col:
                    width = max(1, self.span.end_col - self.span.col)
                out.append(f"    {text}")
                out.append("    " + " " * (self.span.col - 1) + "^" + "~" * (width - 1))
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


def suggest(word: str, choices) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
