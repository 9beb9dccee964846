"""One error type for everything a user can get wrong, rendered in one place."""

from __future__ import annotations

from typing import NamedTuple


class Source(NamedTuple):
    """A file of model text other than the one being compiled: one brought in by `use`."""

    path: str
    text: str


class Span(NamedTuple):
    """A 1-based source region: where a node, token or statement came from; in the file being compiled
    unless `source` says otherwise, and reached through the function call `via` (a node of an inlined
    body: its span is in the body, `via` the span of the call, itself perhaps inside another body)."""

    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None
    source: Source | None = None
    via: Span | None = None

    @property
    def model_line(self) -> int:
        """The line of the model's own file it comes from: its own, or that of the outermost call it came through."""
        span = self
        while span.via is not None:
            span = span.via
        return span.line

    def lines(self) -> str:
        """Where it is, for a comment: `13`, or through calls `13 → 5 → layers.gc:2` (the model's line first)."""
        out, span = [], self
        while span is not None:
            out.append(f"{span.source.path.rsplit('/', 1)[-1]}:{span.line}" if span.source else str(span.line))
            span = span.via
        return " → ".join(reversed(out))

    def to(self, other: Span | None) -> Span:
        """The span from the start of self to the end of other."""
        if other is None:
            return self
        return self._replace(end_line=other.end_line or other.line, end_col=other.end_col or other.col)


class GraphcError(Exception):
    """A problem in a model, its data or its usage, with an optional source span and hint."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None, usage: bool = False):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.usage = usage  # wrong command-line usage: exit code 2 instead of 1

    def render(self, path: str = "<model>", source: str | None = None) -> str:
        """Format like a compiler: path:line:col: error: message, the line, a caret; then a note for each
        function call the error came through, with its line; then a hint."""
        if self.span is None:
            out = [f"{path}: error: {self.message}"]
        else:
            out = _located(self.span, f"error: {self.message}", path, source)
            via = self.span.via
            while via is not None:
                at = via.source.path if via.source else path
                out += _located(via, f"note: in the call at {at}:{via.line}:{via.col}", path, source, head=False)
                via = via.via
        if self.hint:
            out.append(f"hint: {self.hint}")
        return "\n".join(out)


def _located(span: Span, message: str, path: str, source: str | None, head: bool = True) -> list[str]:
    """`path:line:col: message` (or just the message), then the span's line with a caret under it."""
    if span.source is not None:
        path, source = span.source
    out = [f"{path}:{span.line}:{span.col}: {message}" if head else message]
    lines = source.splitlines() if source else []
    if 0 < span.line <= len(lines):
        text = lines[span.line - 1].expandtabs(1)
        width = 1
        if span.end_line == span.line and span.end_col:
            width = max(1, span.end_col - span.col)
        out.append(f"    {text}")
        out.append("    " + " " * (span.col - 1) + "^" + "~" * (width - 1))
    return out


def suggest(word: str, choices) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    import difflib

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
