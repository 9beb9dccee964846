"""graphc serve's API: what the page is answered, and the bounds on what a request may ask (SPEC §6)."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graphc.app import analysis
from graphc.views.notation import Style

from .servetools import Limits, request, running

REPO = Path(__file__).resolve().parents[2]
TWO_LAYER = (REPO / "examples" / "two_layer.gc").read_text()


def slow_model(n: int = 1500) -> str:
    """A chain of n sigmoids: seconds to compile, differentiate and draw."""
    lines = ["input x: [3]"] + [f"v{k} = sigmoid({'x' if k == 0 else f'v{k - 1}'})" for k in range(n)]
    return "\n".join(lines + [f"L = sum(v{n - 1})", "loss L", ""])


@pytest.fixture(scope="module")
def url():
    with running() as base:
        yield base


def analyze(url, body, **kw):
    return request(url + "/api/analyze", body, **kw)


def test_two_layer_network_every_panel(url):
    status, r, _ = analyze(url, {"source": TWO_LAYER})
    assert status == 200 and r["errors"] == []
    # the shape table as `graphc check` prints it
    assert [(s["name"], s["kind"], s["shape"], s["line"]) for s in r["shapes"]][:3] == [
        ("x", "input", "[2]", 25),
        ("t", "input", "[2]", 26),
        ("W1", "param", "[3, 2]", 27),
    ]
    assert r["forward_svg"].startswith("<svg") and r["backward_svg"].startswith("<svg")
    assert "W1_bar" not in r["forward_svg"]  # (the forward picture has no error signals)
    rows = [e["text"] for e in r["equations"]]
    bar = Style(False).bar
    assert rows[0].startswith("z") and f"{bar('h')}  = {bar('y')} @ W2" in rows
    assert all(e["latex"] for e in r["equations"])
    assert "def loss_and_grad(" in r["code"] and "flops" in r["cost"]
    # the step control's walk: the backward pass in the order it runs, ȳ first, each with its value
    steps = r["steps"]
    assert steps[0]["name"] == bar("y") and steps[0]["line"] == 35 and steps[0]["value"].startswith("[")
    assert {bar("h"), bar("W2"), bar("z"), bar("W1")} <= {s["name"] for s in steps}
    for s in steps:  # each one is a node of the backward picture
        assert f"<title>n{s['id']}</title>" in r["backward_svg"] or f"<title>o{s['id']}</title>" in r["backward_svg"]
    named = {s["name"]: s["row"] for s in steps}
    assert rows[named[bar("z")]].startswith(bar("z"))


def test_a_syntax_error_is_at_its_line_and_column(url):
    status, r, _ = analyze(url, {"source": "input x: [2]\nz = x +* 2\n"})
    assert status == 200
    (e,) = r["errors"]
    assert (e["line"], e["col"]) == (2, 8) and "unexpected `*`" in e["message"]


def test_a_shape_error_has_its_place(url):
    source = TWO_LAYER.replace("z = W1 @ x + b1", "z = W2 @ x + b1")
    r = analyze(url, {"source": source})[1]
    (e,) = r["errors"]
    assert e["line"] == 32 and e["col"] >= 5


def test_values_follow_uploads_sliders_and_dims(url):
    buf = io.BytesIO()
    np.savez(buf, x=np.array([1.0, 2.0]), t=np.array([0.5, -0.5]), extra=np.zeros(3))
    status, up, _ = request(url + "/api/upload", buf.getvalue())
    assert status == 200 and up["arrays"] == {"x": [2], "t": [2], "extra": [3]}
    r = analyze(url, {"source": TWO_LAYER, "upload": up["id"]})[1]
    assert r["errors"] == [] and any("extra" in n for n in r["notes"])
    assert "[1, 2]" in r["forward_svg"]  # x's value drawn in its box
    # a scalar param gets a slider, and the slider's value is used
    source = "input x: [2]\nparam a: [] = 1\nL = sum(a * x)\nloss L\n"
    r = analyze(url, {"source": source, "values": {"a": 2.5}})[1]
    assert r["sliders"] == [{"name": "a", "kind": "param", "value": 2.5}]
    # a symbolic dim the inputs are made in
    r = analyze(url, {"source": (REPO / "examples" / "digits_mlp.gc").read_text(), "dims": {"N": 7}})[1]
    assert r["errors"] == [] and r["dims"] == {"N": 7}


@pytest.mark.parametrize(
    "body, status, says",
    [
        (b"garbage", 400, "not JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"source": 3}', 400, "JSON object"),
        (b'{"source": "", "seq": -1}', 400, "seq"),
        (b'{"source": "", "values": {"a": "x"}}', 400, "values.a"),
        (b'{"source": "", "dims": {"N": 1e9}}', 400, "dims.N"),
        (b'{"source": "", "upload": "nope"}', 410, "upload it again"),
        (b'{"source": "", "target": "cuda"}', 400, "target"),
        (b'{"source": "", "example": "../x"}', 400, "example"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"[" * 100_000, 400, "not JSON"),
    ],
)
def test_bad_requests_get_a_clear_error(url, body, status, says):
    got, r, _ = analyze(url, body)
    assert got == status and says in r["error"]


def _raw(url: str, head: bytes, chunks) -> bytes:
    """Send a request by hand (its body in chunks, stopping when the server has closed); the answer's start."""
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=30) as s:
        s.sendall(head)
        try:
            for chunk in chunks:
                s.sendall(chunk)
        except OSError:  # (the server may close the connection once it has said no)
            pass
        answer = b""
        while b"}" not in answer:
            part = s.recv(4096)
            if not part:
                break
            answer += part
        return answer


def test_a_20_mb_body_is_refused_and_the_server_goes_on(url):
    mb = b"x" * 1_000_000
    for path in (b"/api/analyze", b"/api/upload"):
        head = b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 20000000\r\n\r\n" % path
        answer = _raw(url, head, [mb] * 20)
        assert b" 413 " in answer and b"larger than the playground takes" in answer
    # without a Content-Length (chunked), counted on the way
    head = b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert b" 413 " in _raw(url, head, [b"%x\r\n%s\r\n" % (len(mb), mb)] * 20)
    assert analyze(url, {"source": TWO_LAYER})[0] == 200


def test_bad_uploads(url):
    assert request(url + "/api/upload", b"not a zip")[0] == 400
    buf = io.BytesIO()
    np.savez(buf, x=np.array(["text"]))
    got, r, _ = request(url + "/api/upload", buf.getvalue())
    assert got == 400 and "x" in r["error"]
    buf = io.BytesIO()
    np.savez_compressed(buf, x=np.zeros(10_000_000))  # 80 MB unpacked, a few kB packed
    got, r, _ = request(url + "/api/upload", buf.getvalue())
    assert got == 400 and "unpacked" in r["error"]


def test_use_reads_no_file_but_the_shipped_ones(url):
    r = analyze(url, {"source": 'use "/etc/passwd"\ninput x: [2]\nL = sum(x)\nloss L\n'})[1]
    (e,) = r["errors"]
    assert (e["line"], e["col"]) == (1, 1) and "shipped file" in e["message"]
    # after a `;`, or with the path made up: found all the same, at its place; in a comment: not a `use`
    r = analyze(url, {"source": 'input x: [2]; use "/etc/passwd"\nL = sum(x) # use "/etc/x"\nloss L\n'})[1]
    (e,) = r["errors"]
    assert (e["line"], e["col"]) == (1, 15) and "/etc/passwd" in e["message"]
    r = analyze(url, {"source": 'input x: [2]; use "../README.md"\nL = sum(x)\nloss L\n'})[1]
    assert r["errors"][0]["line"] == 1
    source = (REPO / "examples" / "two_layer_layers.gc").read_text()
    assert analyze(url, {"source": source})[1]["errors"] == []


def test_the_frontend_reads_no_other_file_even_past_the_check(monkeypatch):
    monkeypatch.setattr(analysis, "_check_uses", lambda source: [])  # (as if a `use` slipped past it)
    r = analysis.analyze({"source": 'use "/etc/passwd"\ninput x: [2]\nL = sum(x)\nloss L\n'})
    (e,) = r["errors"]
    assert e["line"] == 1 and e["message"].startswith("no such file: /etc/passwd")
    r = analysis.analyze({"source": (REPO / "examples" / "two_layer_layers.gc").read_text()})
    assert r["errors"] == []  # (the shipped files still are)


def test_size_limits(url, monkeypatch):
    got, r, _ = analyze(url, {"source": "#" * (analysis.MAX_SOURCE + 1)})
    assert got == 400 and "characters" in r["error"]
    monkeypatch.setattr(analysis, "MAX_NODES", 5)  # (in this process: the analysis called directly)
    r = analysis.analyze({"source": TWO_LAYER})
    assert "nodes" in r["errors"][0]["message"]


def test_a_slow_model_is_stopped_and_the_next_edit_answered():
    with running(Limits(seconds=0.5)) as base:
        t0 = time.monotonic()
        got, r, _ = analyze(base, {"source": slow_model()})
        assert got == 200 and "longer than 0.5 s" in r["errors"][0]["message"]
        assert time.monotonic() - t0 < 5
        assert analyze(base, {"source": TWO_LAYER})[1]["errors"] == []


def test_a_newer_edit_from_the_same_tab_cancels_the_older(url):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        old = pool.submit(analyze, url, {"source": slow_model(), "tab": "t1", "seq": 1})
        time.sleep(0.3)
        t0 = time.monotonic()
        new = pool.submit(analyze, url, {"source": TWO_LAYER, "tab": "t1", "seq": 2})
        assert old.result()[0] == 409 and time.monotonic() - t0 < 3
        assert new.result()[0] == 200
    assert analyze(url, {"source": TWO_LAYER, "tab": "t1", "seq": 1})[0] == 409  # (an old one, late)


def test_thirty_loads_at_once_leave_it_answering(url):
    def load(k):
        page = request(url + "/")[0]
        ex = request(url + "/api/examples")[0]
        got = analyze(url, {"source": TWO_LAYER, "tab": f"tab{k}", "seq": 1}, timeout=60)[0]
        return page, ex, got

    with concurrent.futures.ThreadPoolExecutor(30) as pool:
        results = list(pool.map(load, range(30)))
    assert all(p == 200 and e == 200 and a in (200, 503) for p, e, a in results)
    assert sum(a == 200 for _, _, a in results) >= 20
    assert analyze(url, {"source": TWO_LAYER})[0] == 200


def test_page_and_headers(url):
    got, text, headers = request(url + "/")
    assert got == 200 and 'data-test="forward"' in text
    csp = headers["content-security-policy"]
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    for asset in ("app.js", "vendor/codemirror/codemirror.js", "vendor/katex/katex.min.js"):
        assert request(f"{url}/static/{asset}")[0] == 200
    assert "//" not in text.replace("http://", "").split("<body>")[0].replace("<!doctype", "")  # no CDN
    examples = request(url + "/api/examples")[1]
    names = [e["name"] for e in examples]
    assert "two_layer" in names and "digits_mlp" in names and "layers" not in names
    assert request(url + "/nope")[0] == 404
    got, r, _ = request(url + "/api/analyze")
    assert got == 405 and r["error"] == "/api/analyze does not take GET"


def test_a_loopback_server_answers_only_loopback_names(url):
    got, r, _ = request(url + "/", headers={"Host": "evil.example:8765"})
    assert got == 421 and "127.0.0.1" in r["error"]
    assert request(url + "/", headers={"Host": "localhost:1"})[0] == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(*args: str, until: str, seconds: float = 30) -> str:
    """Run `graphc serve ARGS` until its stderr says `until`, then stop it; its stderr so far."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.Popen(
        [sys.executable, "-m", "graphc", "serve", "--quiet", *args],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    out = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            out.append(line)
            if until in line:
                break
    finally:
        p.terminate()
        p.wait(10)
    return "".join(out)


def test_serve_binds_loopback_by_default_and_warns_otherwise():
    from graphc.app.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8765)
    port = _free_port()
    text = _serve("--port", str(port), until="playground:")
    assert f"http://127.0.0.1:{port}/" in text and "warning" not in text
    text = _serve("--host", "0.0.0.0", "--port", str(port), until="playground:")
    assert "warning: serving on 0.0.0.0" in text


def test_serve_says_what_to_install_when_the_extra_is_missing(monkeypatch, capsys):
    import builtins

    from graphc.app.cli import main

    real = builtins.__import__

    def no_uvicorn(name, *a, **kw):
        if name in ("uvicorn", "starlette"):
            raise ImportError(name)
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_uvicorn)
    assert main(["serve", "--port", "1"]) == 1
    err = capsys.readouterr().err
    assert "Starlette and uvicorn" in err and "pip install 'graphc[serve]'" in err


def test_a_taken_port_or_unknown_host_is_said_plainly(capsys):
    from graphc.app.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot serve on 127.0.0.1:{port}: Address already in use" in err and "--port" in err
    assert main(["serve", "--host", "no-such-host.invalid"]) == 2
    assert "cannot serve on no-such-host.invalid" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2


def test_a_page_that_leaves_frees_its_worker():
    """With one worker: a slow analysis whose client hangs up is killed, so the next one starts at once."""
    with running(Limits(workers=1, seconds=60)) as base:
        body = json.dumps({"source": slow_model(3000)}).encode()
        head = b"POST /api/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n\r\n" % len(body)
        with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1]))) as s:
            s.sendall(head + body)
            time.sleep(0.5)  # (it is running)
        t0 = time.monotonic()
        assert analyze(base, {"source": TWO_LAYER})[1]["errors"] == []
        assert time.monotonic() - t0 < 4  # not after the slow one (seconds more)


def test_a_page_of_another_site_cannot_post(url):
    host = url.removeprefix("http://")
    body = {"source": TWO_LAYER}
    assert analyze(url, body, headers={"Origin": "http://evil.example"})[0] == 403
    assert request(url + "/api/upload", b"PK", headers={"Origin": "http://evil.example"})[0] == 403
    assert analyze(url, body, headers={"Origin": f"http://{host}"})[0] == 200  # (the page's own)


@pytest.mark.parametrize("example", [e["name"] for e in analysis.examples()])
def test_the_steps_are_the_backward_nodes_of_the_picture(example):
    """In every shipped example: each node the backward picture draws as backward (an error signal, a
    backward operation, a fan-out sum) is a step, and each step is a node of the picture."""
    import re

    r = analysis.analyze({"source": (analysis.EXAMPLES / f"{example}.gc").read_text()})
    assert r["errors"] == []
    drawn = re.findall(r'<g id="node\d+" class="node ([a-z]+)">\s*<title>[no](\d+)</title>', r["backward_svg"])
    backward = {int(i) for kind, i in drawn if kind in ("signal", "bop", "fanout")}
    steps = [s["id"] for s in r["steps"]]
    assert len(steps) == len(set(steps))  # each once
    assert backward <= set(steps) <= {int(i) for _, i in drawn}


def test_a_bug_in_one_panel_leaves_the_others(monkeypatch):
    from graphc import api

    def broken(self, *a, **kw):
        raise KeyError("oops")

    monkeypatch.setattr(api.Model, "emit", broken)
    r = analysis.analyze({"source": TWO_LAYER})
    (e,) = r["errors"]
    assert e["message"] == "internal error in graphc (emit): KeyError: 'oops'"
    assert r["code"] is None and r["forward_svg"] and r["equations"] and r["cost"]


def test_the_code_for_each_target(url):
    from graphc.app.analysis import TARGETS
    from graphc.backends import targets

    assert set(TARGETS) == set(targets())
    for target in TARGETS:
        r = analyze(url, {"source": TWO_LAYER, "target": target})[1]
        assert r["errors"] == [] and r["target"] == target and "def loss_and_grad(" in r["code"]
    assert "array_namespace" in analyze(url, {"source": TWO_LAYER, "target": "array-api"})[1]["code"]


def test_an_examples_own_values(url):
    r = analyze(url, {"source": TWO_LAYER, "example": "two_layer"})[1]
    assert r["errors"] == [] and "[0.5, &#45;1]" in r["forward_svg"]  # x of examples/two_layer.npz (- as &#45;)
    edited = TWO_LAYER.replace("input x: [2] ", "input x: [3] ").replace("param W1: [3, 2]", "param W1: [3, 3]")
    r = analyze(url, {"source": edited, "example": "two_layer"})[1]
    assert r["errors"] == [] and r["notes"][0] == "not using `x` [2] from two_layer.npz: the model declares it [3]"
    assert analyze(url, {"source": TWO_LAYER, "example": "no_such"})[1]["errors"] == []  # (none: generated)
    names = {e["name"]: e["data"] for e in request(url + "/api/examples")[1]}
    assert names["two_layer"] == "two_layer" and names["digits_mlp"] is None
