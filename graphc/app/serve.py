"""`graphc serve`: the playground, a local web page over graphc's Python API (SPEC §6).

The page (static/) posts the editor's text to /api/analyze on every edit; the analysis
(graphc/app/analysis.py) runs in a process of its own, started from a fork server that has graphc
and NumPy loaded, so that a model taking too long, a tab that went away or a newer edit from the same
tab ends it by killing the process: no worker is ever left hung. Each request is bounded (body size,
model size, nodes, seconds, memory); a bad one gets a JSON error and the server goes on answering.

Starlette and uvicorn are the `serve` extra: imported by make_app and serve, never by `graphc check`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import GraphcError

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class Limits:
    body: int = 1_000_000  # bytes of an /api/analyze request
    upload: int = 8_000_000  # bytes of an uploaded .npz
    unpacked: int = 64_000_000  # bytes of its arrays, unpacked
    seconds: float = 10.0  # of one analysis
    memory: int = 2_000_000_000  # bytes of address space of one analysis process
    workers: int = 2  # analyses at once
    queue: int = 64  # analyses waiting for a worker, beyond which the server says it is busy
    uploads: int = 32  # uploads kept (the oldest are dropped) ...
    kept: int = 256_000_000  # ... and bytes of their arrays kept in all
    tabs: int = 1_000  # tabs whose latest edit is remembered


def _child(conn, memory: int) -> None:
    """A worker process: waits for one job, (kind, payload), and sends back its result (a dict, whatever
    happens); then ends. Started ahead of need, so a job pays neither the fork nor the start-up."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    except (ImportError, ValueError, OSError):  # (not on every platform)
        pass
    from . import analysis

    try:
        kind, payload = conn.recv()
    except (EOFError, OSError):  # the server let it go unused
        return
    try:
        if kind == "npz":
            result = analysis.load_npz(*payload)
        else:
            result = analysis.analyze(payload)
    except MemoryError:
        result = {"fail": "the analysis ran out of memory (the playground bounds it): make the model smaller"}
    except RecursionError:
        result = {"fail": "the model nests too deeply to analyse"}
    except Exception as e:  # a bug in graphc: said, never a dead worker
        result = {"fail": f"internal error in graphc: {type(e).__name__}: {e}"}
    try:
        conn.send(result)
    except Exception as e:  # (a result that will not pickle or is too big for the memory bound)
        conn.send({"fail": f"internal error in graphc: cannot send the result: {type(e).__name__}"})
    conn.close()


class Workers:
    """Analyses in processes of their own, `limits.workers` at once, each killed when it runs past
    `limits.seconds` or when `cancelled()` says its result is no longer wanted. A process serves one
    job and ends; `limits.workers` of them are kept started and waiting."""

    def __init__(self, limits: Limits):
        self.limits = limits
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # (one analysis, one core: the fork server inherits these)
        methods = multiprocessing.get_all_start_methods()
        self.ctx = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        if "forkserver" in methods:
            self.ctx.set_forkserver_preload(["graphc.app.warm"])
        self.slots = asyncio.Semaphore(limits.workers)
        self.waiting = 0
        self.spares: list = []  # (process, connection) started and waiting for a job
        self.refilling = 0
        self.closed = False

    def _start(self):
        mine, theirs = self.ctx.Pipe()
        p = self.ctx.Process(target=_child, args=(theirs, self.limits.memory), daemon=True)
        p.start()
        theirs.close()
        return p, mine

    def warm(self) -> None:
        """Start the fork server (and load graphc in it) and the waiting workers now, not on the first edit."""
        while len(self.spares) < self.limits.workers:
            self.spares.append(self._start())

    def _refill(self, loop) -> None:
        """Start processes in the background until `limits.workers` are waiting."""
        while not self.closed and len(self.spares) + self.refilling < self.limits.workers:
            self.refilling += 1
            future = loop.run_in_executor(None, self._start)

            def done(f):
                self.refilling -= 1
                if f.exception() is None:
                    if self.closed:
                        _end(*f.result())
                    else:
                        self.spares.append(f.result())

            future.add_done_callback(done)

    def close(self) -> None:
        self.closed = True
        while self.spares:
            _end(*self.spares.pop())

    async def run(self, kind: str, payload, cancelled) -> dict | None:
        """The result; None when cancelled; {"fail": why} when it timed out, crashed or the server is busy."""
        if self.waiting >= self.limits.queue:
            return {"fail": "the server is busy: try again in a moment", "busy": True}
        self.waiting += 1
        try:
            while True:
                if await cancelled():
                    return None
                try:
                    await asyncio.wait_for(self.slots.acquire(), 0.1)
                    break
                except asyncio.TimeoutError:
                    pass
        finally:
            self.waiting -= 1
        try:
            return await self._run(kind, payload, cancelled)
        finally:
            self.slots.release()

    async def _run(self, kind: str, payload, cancelled) -> dict | None:
        loop = asyncio.get_running_loop()
        p, conn = None, None
        while self.spares:
            p, conn = self.spares.pop()
            if p.is_alive():
                break
            _end(p, conn)
            p = None
        if p is None:
            p, conn = await loop.run_in_executor(None, self._start)
        self._refill(loop)
        ready = loop.create_future()
        try:
            await loop.run_in_executor(None, conn.send, (kind, payload))
            loop.add_reader(conn.fileno(), lambda: ready.done() or ready.set_result(None))
            deadline = time.monotonic() + self.limits.seconds
            while not ready.done():
                await asyncio.wait([ready], timeout=0.05)
                if ready.done():
                    break
                if time.monotonic() > deadline:
                    return {
                        "fail": f"the analysis took longer than {self.limits.seconds:g} s and was stopped",
                        "timeout": True,
                    }
                if await cancelled():
                    return None
            loop.remove_reader(conn.fileno())
            return await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):
            return {"fail": "the analysis stopped without a result (it may have run out of memory)"}
        finally:
            if not ready.done():
                ready.cancel()
            try:
                loop.remove_reader(conn.fileno())
            except (ValueError, OSError):
                pass
            await loop.run_in_executor(None, _end, p, conn)


def _end(p, conn) -> None:
    """A worker process ended (killed if it still runs) and reaped; its connection closed."""
    conn.close()
    if p.is_alive():
        p.kill()
    p.join(5)


def _json(data, status: int = 200):
    from starlette.responses import Response

    return Response(json.dumps(data, allow_nan=False), status, media_type="application/json")


def _bad(message: str, status: int = 400):
    return _json({"error": message}, status)


async def _body(request, limit: int) -> bytes | None:
    """The request's body, or None when it is longer than limit (found from Content-Length, or on the way)."""
    size = request.headers.get("content-length")
    if size is not None and (not size.isdigit() or int(size) > limit):
        return None
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _posted(request, limit: int, what: str):
    """A POST's body, or the error response to send instead: a page of another site (403), or more than
    limit bytes (413)."""
    if _foreign(request):
        return _bad("a page of another site cannot use the playground", 403)
    body = await _body(request, limit)
    if body is None:
        return _bad(f"{what} is larger than the playground takes ({limit} bytes)", 413)
    return body


def _foreign(request) -> bool:
    """A request a page of another site sent (its browser says where it came from): refused, so that a
    site the user visits cannot spend this machine's time through the user's browser."""
    origin = request.headers.get("origin")
    return origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}"


def _parse_request(body: bytes) -> dict:
    """The analysis request in the body, checked; ValueError says what is wrong with it."""
    from . import analysis

    try:
        req = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise ValueError('the body is not JSON: send {"source": "model text"}') from None
    return analysis.parse_request(req)


class _Headers:
    """ASGI middleware: every response says the page loads nothing from anywhere but this server
    (Content-Security-Policy), and a loopback server answers only requests addressed to loopback
    (a DNS-rebinding page elsewhere cannot reach it)."""

    CSP = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )

    def __init__(self, app, loopback_only: bool):
        self.app, self.loopback_only = app, loopback_only

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.loopback_only:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0] if host else ""
            if name not in LOOPBACK:
                return await _bad(f"this server answers requests to 127.0.0.1, not {host!r}", 421)(scope, receive, send)

        async def sending(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", self.CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def make_app(limits: Limits | None = None, loopback_only: bool = True):
    """The playground as an ASGI application."""
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from . import analysis

    limits = limits or Limits()
    state: dict = {"workers": None, "examples": analysis.examples()}
    latest: collections.OrderedDict[str, int] = collections.OrderedDict()  # tab -> its newest edit's seq
    uploads: collections.OrderedDict[str, dict] = collections.OrderedDict()

    def workers() -> Workers:
        if state["workers"] is None:
            state["workers"] = Workers(limits)
        return state["workers"]

    async def index(request):
        return FileResponse(STATIC / "index.html")

    async def examples(request):
        return _json(state["examples"])

    async def analyze(request):
        body = await _posted(request, limits.body, "the request")
        if not isinstance(body, bytes):
            return body
        try:
            req = _parse_request(body)
        except ValueError as e:
            return _bad(str(e))
        if len(req["source"]) > analysis.MAX_SOURCE:
            return _bad(f"the model has {len(req['source'])} characters: the playground takes {analysis.MAX_SOURCE}")
        tab, seq = req.pop("tab"), req.pop("seq")
        if tab:
            if seq < latest.get(tab, -1):
                return _bad("superseded by a newer edit", 409)
            latest[tab] = seq
            latest.move_to_end(tab)
            while len(latest) > limits.tabs:
                latest.popitem(last=False)
        upload = req.pop("upload")
        if upload:
            if upload not in uploads:
                return _bad("the uploaded .npz is no longer here: upload it again", 410)
            req["arrays"] = uploads[upload]

        async def cancelled() -> bool:
            return bool(tab) and latest.get(tab, seq) != seq or await request.is_disconnected()

        result = await workers().run("analyze", req, cancelled)
        if result is None:
            return _bad("superseded by a newer edit, or the page went away", 409)
        if "fail" in result:
            if result.get("busy"):
                return _bad(result["fail"], 503)
            result = {"errors": [{"line": 0, "col": 0, "end_line": 0, "end_col": 0, "message": result["fail"]}]}
        return _json(result)

    async def upload(request):
        body = await _posted(request, limits.upload, "the upload")
        if not isinstance(body, bytes):
            return body
        result = await workers().run("npz", (body, limits.unpacked), request.is_disconnected)
        if result is None:
            return _bad("the page went away", 409)
        if "fail" in result or "error" in result:
            return _bad(result.get("fail") or result["error"], 503 if result.get("busy") else 400)
        key = secrets.token_hex(8)
        uploads[key] = result["arrays"]

        def kept() -> int:
            return sum(a.nbytes for arrays in uploads.values() for a in arrays.values())

        while len(uploads) > limits.uploads or kept() > limits.kept:
            uploads.popitem(last=False)
        shapes = {k: list(a.shape) for k, a in result["arrays"].items()}
        return _json({"id": key, "arrays": shapes})

    async def not_found(request, exc):
        status = getattr(exc, "status_code", 404)
        if status == 405:
            return _bad(f"{request.url.path} does not take {request.method}", 405)
        return _bad(f"no such page: {request.url.path}", status)

    async def failed(request, exc):
        return _bad(f"internal error in graphc's server: {type(exc).__name__}", 500)

    routes = [
        Route("/", index),
        Route("/api/examples", examples),
        Route("/api/analyze", analyze, methods=["POST"]),
        Route("/api/upload", upload, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        if state["workers"] is not None:
            state["workers"].close()

    app = Starlette(
        routes=routes, exception_handlers={404: not_found, 405: not_found, Exception: failed}, lifespan=lifespan
    )
    app.state.warm = lambda: workers().warm()
    return _Headers(app, loopback_only)


def missing() -> GraphcError:
    return GraphcError(
        "graphc serve needs Starlette and uvicorn, which are not installed",
        hint="pip install 'graphc[serve]'",
    )


def _check_port(host: str, port: int) -> None:
    """A port taken (another server) or an address this machine does not have: said before anything starts."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise GraphcError(f"cannot serve on {host}: {e.strerror}", hint="--host 127.0.0.1", usage=True) from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            raise GraphcError(
                f"cannot serve on {host}:{port}: {e.strerror}",
                hint="another program has that port: give another with --port" if e.errno == 98 else None,
            ) from None


def serve(host: str = "127.0.0.1", port: int = 8765, limits: Limits | None = None, quiet: bool = False) -> None:
    """Run the playground until interrupted."""
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise missing() from None
    _check_port(host, port)
    loopback = host in LOOPBACK
    if not loopback:
        print(
            f"warning: serving on {host}, not 127.0.0.1: anyone who can reach this machine on port {port} can "
            "use the playground (it runs no code of theirs, but it spends this machine's time)",
            file=sys.stderr,
        )
    app = make_app(limits, loopback_only=loopback)
    app.app.state.warm()
    shown = f"[{host}]" if ":" in host else host
    print(f"graphc playground: http://{shown}:{port}/  (Ctrl-C stops it)", file=sys.stderr)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning" if quiet else "info", access_log=not quiet)
    except OSError as e:
        raise GraphcError(f"cannot serve on {host}:{port}: {e.strerror or e}", hint="try another --port") from None
