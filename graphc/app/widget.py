"""The playground in a Jupyter notebook: `graphc.playground(model)`, an anywidget.

The widget is the page's own code (static/app.js, mounted on the widget's element), with the kernel's
message channel where the page has fetch: each edit is a message, answered in the kernel by the same
analysis.analyze the page's server runs. The kernel is the user's own process, running their own code:
it needs no worker to bound an analysis, as the page's server does for any page that reaches it.

The module the browser gets is one file: the vendored CodeMirror and KaTeX (kept off the notebook's
globals), the page's markup, app.js and widget.js; its CSS carries KaTeX's fonts inline. Nothing is
fetched from anywhere: the notebook works offline, as the page does.

anywidget is the `notebook` extra: imported here only, never by `graphc check`.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from pathlib import Path

from ..errors import GraphcError
from . import analysis

STATIC = Path(__file__).resolve().parent / "static"
MAX_UPLOAD = 64_000_000  # bytes of an uploaded .npz's arrays, unpacked (the page's server default)


@functools.cache
def esm() -> str:
    """The widget's JavaScript module."""
    vendor = STATIC / "vendor"

    def read(name: str) -> str:
        return (vendor / name).read_text(encoding="utf-8")

    page = (STATIC / "index.html").read_text(encoding="utf-8")
    markup = re.search(r'<div class="gp">.*</div>', page, re.S).group(0)
    # Each library's UMD header sees no AMD `define` (a classic notebook has RequireJS) and no CommonJS,
    # so it puts itself on `lib`, not on window (where a notebook may have a CodeMirror of its own).
    return "\n".join(
        [
            "const lib = {};",
            f"(function (define, exports, module) {{\n{read('codemirror/codemirror.js')}\n}}).call(lib);",
            f"(function (define, exports, module, CodeMirror) {{\n{read('codemirror/simple.js')}\n}})"
            "(undefined, undefined, undefined, lib.CodeMirror);",
            f"(function (define, exports, module, self) {{\n{read('katex/katex.min.js')}\n}})"
            "(undefined, undefined, undefined, lib);",
            "const CodeMirror = lib.CodeMirror, katex = lib.katex;",
            f"const MARKUP = {json.dumps(markup)};",
            (STATIC / "app.js").read_text(encoding="utf-8"),
            (STATIC / "widget.js").read_text(encoding="utf-8"),
        ]
    )


@functools.cache
def css() -> str:
    """The widget's style sheet: the page's, with KaTeX's fonts as data: URLs (woff2, which every
    browser a notebook runs in reads)."""
    fonts = STATIC / "vendor" / "katex" / "fonts"

    def inline(m: re.Match) -> str:
        data = base64.b64encode((fonts / f"{m.group(1)}.woff2").read_bytes()).decode("ascii")
        return f'src:url(data:font/woff2;base64,{data}) format("woff2")'

    katex = (STATIC / "vendor" / "katex" / "katex.min.css").read_text(encoding="utf-8")
    katex = re.sub(r"src:url\(fonts/([A-Za-z0-9_-]+)\.woff2\)[^;}]*", inline, katex)
    parts = ["vendor/codemirror/codemirror.css", "app.css"]
    return "\n".join([katex, *((STATIC / p).read_text(encoding="utf-8") for p in parts)])


def _text(model) -> str:
    """A model's text: a graphc Model, a .gc file's path, or the text itself."""
    from ..api import Model

    if model is None:
        return (analysis.EXAMPLES / "two_layer.gc").read_text(encoding="utf-8")
    if isinstance(model, Model):
        if not model.graph.source:
            raise GraphcError("this model has no text to edit", hint="pass its .gc file's path or its text")
        return model.graph.source
    if isinstance(model, Path) or isinstance(model, str) and "\n" not in model and model.strip().endswith(".gc"):
        path = Path(model)
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise GraphcError(f"cannot read {path}: {e}", hint="pass a .gc file's path or the model's text") from None
    if isinstance(model, str):
        return model
    raise GraphcError(f"playground() takes a Model, a .gc file's path or a model's text, not {type(model).__name__}")


class Answers:
    """What the widget's messages are answered with, apart from the widget (and tested so): one
    channel's state, the arrays it was sent."""

    def __init__(self):
        self.uploads: dict[str, dict] = {}
        self.sent = 0  # uploads received

    def __call__(self, kind, payload, buffers) -> tuple[int, object]:
        """(status, data) for one message, as the page's server gives them for its requests."""
        if kind == "examples":
            return 200, analysis.examples()
        if kind == "upload":
            if len(buffers) != 1:
                return 400, {"error": "send the .npz file's bytes as one buffer"}
            result = analysis.load_npz(bytes(buffers[0]), MAX_UPLOAD)
            if "error" in result:
                return 400, result
            self.sent += 1
            key = str(self.sent)
            self.uploads = {key: result["arrays"]}  # (the latest upload is the one the widget shows)
            return 200, {"id": key, "arrays": {k: list(a.shape) for k, a in result["arrays"].items()}}
        if kind != "analyze":
            return 400, {"error": f"no such message: {kind!r}"}
        try:
            req = analysis.parse_request(payload)
        except ValueError as e:
            return 400, {"error": str(e)}
        req.pop("tab")
        req.pop("seq")
        upload = req.pop("upload")
        if upload:
            if upload not in self.uploads:
                return 410, {"error": "the uploaded .npz is no longer here: upload it again"}
            req["arrays"] = self.uploads[upload]
        return 200, analysis.analyze(req)


@functools.cache
def widget_class():
    """The widget's class, made once anywidget is imported."""
    try:
        import anywidget
        import traitlets
    except ImportError:
        raise GraphcError("the notebook playground needs anywidget", hint="pip install 'graphc[notebook]'") from None

    class Playground(anywidget.AnyWidget):
        """The playground's panels for one model; `source` is the editor's text, both ways."""

        _esm = esm()
        _css = css()
        source = traitlets.Unicode("").tag(sync=True)

        def __init__(self, source: str = "", **kwargs):
            super().__init__(source=source, **kwargs)
            self._answers = Answers()
            self.on_msg(self._heard)

        def _heard(self, _widget, msg, buffers) -> None:
            if not isinstance(msg, dict):
                return
            try:
                status, data = self._answers(msg.get("kind"), msg.get("payload"), buffers or [])
            except Exception as e:  # a bug in graphc: said in the widget, never a silent hang
                status, data = 500, {"error": f"internal error in graphc: {type(e).__name__}: {e}"}
            self.send({"id": msg.get("id"), "status": status, "data": data})

    return Playground


def playground(model=None):
    """The playground as a notebook widget: edit `model` (a Model, a .gc file's path or a model's text;
    the lecture's two-layer network if none) and watch its graph, backward pass, equations, cost and
    code follow. Its `source` is the editor's text: `graphc.compile(w.source)` takes up what was typed.
    """
    return widget_class()(_text(model))
