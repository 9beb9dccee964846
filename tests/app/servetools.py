"""The playground's server, run in a thread of the test process on a free port of 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

uvicorn = pytest.importorskip("uvicorn", reason="graphc serve needs the serve extra: pip install 'graphc[serve]'")
pytest.importorskip("starlette", reason="graphc serve needs the serve extra: pip install 'graphc[serve]'")

from graphc.app.serve import Limits, make_app  # noqa: E402


@contextlib.contextmanager
def running(limits: Limits | None = None):
    """The base URL of a playground server, stopped (and its worker processes ended) on exit."""
    app = make_app(limits or Limits())
    app.app.state.warm()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and server.servers):
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server stopped while starting"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def request(url: str, body=None, method: str | None = None, headers: dict | None = None, timeout: float = 30):
    """(status, parsed JSON or text, headers) of one request; body: bytes, or anything JSON takes."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, raw, hdrs = r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        status, raw, hdrs = e.code, e.read(), e.headers
    text = raw.decode("utf-8")
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs
