"""The notebook playground's module in a real browser (headless Chromium). A small page stands in for the
notebook: a model object with anywidget's interface (get, set, save_changes, on, off, send) whose
messages go over HTTP to a graphc.playground widget in this process, which answers as in a kernel."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from pathlib import Path

import pytest

from .browsertools import TWO_LAYER, pytestmark, watched  # noqa: F401 (the skip where there is no browser)

REPO = Path(__file__).resolve().parents[2]
HARNESS = """<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<link rel="stylesheet" href="/widget.css">
</head><body><h2 id="outside">notebook text</h2><div id="w1"></div><div id="w2"></div>
<script type="module">
import widget from "/widget.js";
const listeners = {};
const state = { source: SOURCE };
const fire = (e, ...args) => (listeners[e] || []).forEach((f) => f(...args));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const model = {
  get: (k) => state[k],
  set: (k, v) => { if (state[k] !== v) { state[k] = v; fire("change:" + k); } },
  save_changes: () => fetch("/state", { method: "POST", body: JSON.stringify(state) }),
  on: (e, f) => (listeners[e] = listeners[e] || []).push(f),
  off: (e, f) => { listeners[e] = (listeners[e] || []).filter((g) => g !== f); },
  send: async (content, callbacks, buffers) => {
    const body = JSON.stringify({ content, buffers: (buffers || []).map(b64) });
    const answers = await (await fetch("/msg", { method: "POST", body })).json();
    for (const m of answers) fire("msg:custom", m, []);
  },
};
window.model = model;
widget.render({ model, el: document.getElementById("w1") });
if (location.hash === "#two") widget.render({ model, el: document.getElementById("w2") });
</script></body></html>"""


@pytest.fixture()
def notebook():
    """(the harness's URL, the widget)"""
    pytest.importorskip("anywidget", reason="the notebook playground needs the notebook extra")
    import graphc
    from graphc.app.widget import css, esm

    w = graphc.playground("input x: [2]\nL = sum(x^2)\nloss L\n")
    sent = []
    w.send = lambda msg, buffers=None: sent.append(msg)
    page = HARNESS.replace("SOURCE", json.dumps(w.source)).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, body: bytes, kind: str):
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            files = {"/": (page, "text/html"), "/widget.js": (esm().encode(), "text/javascript")}
            files["/widget.css"] = (css().encode(), "text/css")
            if self.path.split("#")[0] not in files:
                self.send_error(404)
                return
            self._answer(*files[self.path.split("#")[0]])

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/state":  # (what the kernel's copy of the widget's state becomes)
                w.source = body["source"]
                self._answer(b"{}", "application/json")
                return
            sent.clear()
            w._handle_custom_msg(body["content"], [base64.b64decode(b) for b in body["buffers"]])
            self._answer(json.dumps(sent).encode(), "application/json")

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)  # (one message at a time, as a kernel)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", w
    server.shutdown()
    server.server_close()


@pytest.fixture()
def tab(browser, notebook):
    with watched(browser, notebook[0], "widget") as pg:
        yield pg


def ready(pg, view: str = "w1") -> None:
    pg.wait_for_function(
        "v => { const p = document.getElementById(v).graphcPlayground; return p && p.ready(); }",
        arg=view,
        timeout=10_000,
    )


def test_typing_in_the_widget_shows_the_panels_and_the_kernel_sees_the_text(tab, notebook):
    url, w = notebook
    tab.goto(url + "/")
    ready(tab)
    assert tab.locator("#w1 [data-test=backward] svg").count() == 1  # the widget's own model, drawn
    tab.evaluate("() => document.getElementById('w1').graphcPlayground.cm.setValue('')")
    tab.click("#w1 .CodeMirror")
    tab.keyboard.type(TWO_LAYER)
    ready(tab)
    for hook in ("forward", "backward"):
        assert tab.locator(f"#w1 [data-test={hook}] svg").count() == 1
    assert tab.locator("#w1 [data-test=equations] .katex").count() >= 8
    assert "def loss_and_grad" in tab.inner_text("#w1 [data-test=code]")
    assert tab.locator("#w1 [data-test=errors] li").count() == 0
    assert w.source == TWO_LAYER  # the editor's text is the widget's `source` in the kernel
    # the kernel sets the text (w.source = ...): the editor shows it
    tab.evaluate("t => window.model.set('source', t)", "y = (x +\nloss y\n")
    ready(tab)
    assert tab.inner_text("#w1 [data-test=errors] li").startswith("2:")
    # the widget's style stays in the widget: the notebook's own h2 is untouched
    assert tab.evaluate("getComputedStyle(document.getElementById('outside')).textTransform") == "none"


def test_the_step_control_and_an_upload_work_in_the_widget(tab, notebook):
    url, _ = notebook
    tab.goto(url + "/")
    ready(tab)
    tab.evaluate("t => document.getElementById('w1').graphcPlayground.cm.setValue(t)", TWO_LAYER)
    ready(tab)
    steps = tab.evaluate("document.getElementById('w1').graphcPlayground.state.steps")
    assert len(steps) >= 5
    for k in range(len(steps)):
        tab.click("#w1 [data-test=step]")
        assert tab.get_attribute("#w1 [data-test=backward]", "data-step-node") == str(steps[k]["id"])
        assert tab.locator("#w1 [data-test=backward] g.node.hl").count() in (1, 2)
    tab.set_input_files("#w1 #npz", str(REPO / "examples" / "two_layer.npz"))  # (bytes as a message buffer)
    tab.wait_for_function("() => document.querySelector('#w1 #upload-info').textContent.includes('x [2]')")
    ready(tab)
    assert "[0.5, -1]" in tab.inner_html("#w1 [data-test=forward]")


def test_two_views_of_one_widget_each_get_their_own_answers(tab, notebook):
    url, _ = notebook
    tab.goto(url + "/#two")
    ready(tab, "w1")
    ready(tab, "w2")
    tab.evaluate("t => document.getElementById('w1').graphcPlayground.cm.setValue(t)", TWO_LAYER)
    ready(tab, "w1")
    ready(tab, "w2")  # (the shared `source` reaches the other view too, and it follows)
    for view in ("w1", "w2"):
        assert tab.locator(f"#{view} [data-test=backward] svg").count() == 1
        assert "W1" in tab.inner_text(f"#{view} [data-test=shapes]")
