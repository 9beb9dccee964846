"""The notebook playground (graphc.playground, an anywidget): what the kernel answers the widget's
messages with, and the one-file module and style sheet the browser gets. The browser side is
test_widget_browser.py."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.app import analysis
from graphc.app.widget import Answers, css, esm

REPO = Path(__file__).resolve().parents[2]
TWO_LAYER = (REPO / "examples" / "two_layer.gc").read_text()


def _widget(model=None):
    pytest.importorskip("anywidget", reason="the notebook playground needs the notebook extra")
    w = graphc.playground(model)
    w.sent = []
    w.send = lambda msg, buffers=None: w.sent.append(json.loads(json.dumps(msg)))  # (as the channel carries it)
    return w


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_the_model_is_a_path_a_text_a_model_or_the_lecture_network():
    assert _widget().source == TWO_LAYER
    assert _widget(str(REPO / "examples" / "two_layer.gc")).source == TWO_LAYER
    assert _widget(REPO / "examples" / "two_layer.gc").source == TWO_LAYER
    assert _widget(graphc.load(REPO / "examples" / "two_layer.gc")).source == TWO_LAYER
    assert _widget("y = 2*x\nloss y\n").source == "y = 2*x\nloss y\n"


@pytest.mark.parametrize(
    "model, said",
    [("no_such_model.gc", "cannot read no_such_model.gc"), (3, "not int")],
)
def test_a_model_it_cannot_take_is_a_clear_error(model, said):
    pytest.importorskip("anywidget")
    with pytest.raises(graphc.GraphcError, match=said):
        graphc.playground(model)


def test_an_edit_is_answered_with_the_pages_panels():
    """The message an edit sends gets the same panels the page's server gives for the same request."""
    w = _widget()
    request = {"tab": "t", "seq": 3, "source": TWO_LAYER, "seed": 1, "target": "numba", "example": "two_layer"}
    w._handle_custom_msg({"kind": "analyze", "id": "v:1", "payload": request}, [])
    (msg,) = w.sent
    assert (msg["id"], msg["status"]) == ("v:1", 200)
    want = analysis.analyze(analysis.parse_request(request))
    for key in ("shapes", "equations", "code", "cost", "steps", "forward_svg", "backward_svg", "errors"):
        assert msg["data"][key] == want[key], key
    assert "@numba.njit" in msg["data"]["code"] and msg["data"]["errors"] == []


def test_a_model_with_an_error_is_answered_with_its_place():
    w = _widget()
    w._handle_custom_msg({"kind": "analyze", "id": 7, "payload": {"source": "y = (x +\nloss y\n"}}, [])
    (msg,) = w.sent
    assert msg["status"] == 200 and msg["id"] == 7
    (err,) = msg["data"]["errors"]
    assert err["line"] == 2 and err["col"] >= 1


@pytest.mark.parametrize(
    "kind, payload, status, said",
    [
        ("analyze", {"source": 3}, 400, "model text"),
        ("analyze", {"source": "", "seed": -1}, 400, '"seed"'),
        ("analyze", {"source": "", "values": {"a": float("inf")}}, 400, "values.a"),
        ("analyze", {"source": "", "upload": "9"}, 410, "upload it again"),
        ("upload", {}, 400, "one buffer"),
        ("mine", {}, 400, "no such message"),
    ],
)
def test_a_bad_message_gets_a_clear_answer(kind, payload, status, said):
    w = _widget()
    w._handle_custom_msg({"kind": kind, "id": 1, "payload": payload}, [])
    (msg,) = w.sent
    assert msg["status"] == status and said in msg["data"]["error"]


def test_a_bug_in_graphc_is_said_in_the_widget(monkeypatch):
    w = _widget()
    monkeypatch.setattr(analysis, "examples", lambda: 1 / 0)
    w._handle_custom_msg({"kind": "examples", "id": 1}, [])
    (msg,) = w.sent
    assert msg["status"] == 500 and "ZeroDivisionError" in msg["data"]["error"]


def test_an_uploaded_npz_gives_the_values():
    answers = Answers()
    status, up = answers("upload", {}, [memoryview(_npz(x=np.array([0.5, -1.0]), t=np.array([1.0, 0.0])))])
    assert status == 200 and up["arrays"] == {"x": [2], "t": [2]}
    status, out = answers("analyze", {"source": TWO_LAYER, "upload": up["id"]}, [])
    assert status == 200 and out["errors"] == []
    assert "0.5" in out["forward_svg"]  # (the uploaded x is drawn)
    status, out = answers("upload", {}, [b"not a zip"])
    assert status == 400 and "not a .npz" in out["error"]
    status, out = answers("upload", {}, [_npz(s=np.array(["a"]))])
    assert status == 400


def test_the_examples_are_the_pages():
    status, listed = Answers()("examples", None, [])
    assert status == 200 and listed == analysis.examples()
    assert any(e["name"] == "two_layer" for e in listed)


def test_the_module_is_one_offline_file_that_keeps_off_the_notebooks_globals():
    js = esm()
    assert "export default" in js and "function mount(" in js
    assert not re.search(r"^\s*import\b", js, re.M), "the widget's module imports nothing"
    assert not re.search(r"""(?:src|href)\s*=\s*["']https?://""", js), "the widget loads nothing from the web"
    markup = json.loads(re.search(r"^const MARKUP = (.*);$", js, re.M).group(1))
    for hook in ("source", "errors", "shapes", "equations", "forward", "backward", "step", "cost", "code"):
        assert f'data-test="{hook}"' in markup  # (SPEC §6's hooks, as on the page)
    # every library's UMD header is handed no define/exports/module, and KaTeX its own `self`
    assert js.count("(function (define, exports, module") == 3


def test_the_style_sheet_carries_katex_fonts_and_touches_nothing_outside_the_widget():
    sheet = css()
    assert "url(fonts/" not in sheet and sheet.count("data:font/woff2;base64,") >= 20
    app = sheet[sheet.index("/* The playground's look") :]
    for rule in re.findall(r"^([^{}\n]+)\{", app, re.M):
        for selector in rule.split(","):
            assert selector.strip().startswith(".gp"), selector
