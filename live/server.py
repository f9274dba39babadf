"""The preview page's server (FastAPI on uvicorn, on a thread of the live run).

Routes: ``/`` the page; ``/assets/{name}`` its own script and style (a fixed list: no
other file is served); ``/ws`` a WebSocket that sends each new preview frame as a
JSON header (its number, the numbers, the bodies for the 3D view) and then its JPEG,
and takes back the page's "shown" reports (capture-to-display latency); ``/api/stats``
the numbers; ``POST /api/stop`` and ``POST /api/record`` the buttons. Binds
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import threading
import time
from collections import OrderedDict
from importlib import resources

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import HTMLResponse, JSONResponse, Response

from meshstream.stream.errors import ConfigError

_ASSETS = {"live.js": "text/javascript", "live.css": "text/css"}


def _asset(name: str) -> bytes:
    return resources.files("meshstream.live").joinpath("page", name).read_bytes()


def make_app(run, title: str):
    """The page's ASGI app for a :class:`~meshstream.live.session.LiveRun`.

    Args:
        run: The live run (its ``stats``, ``preview``, ``request_stop``, ``set_recording``).
        title: What the page calls the source.
    """
    app = FastAPI(title="meshstream live", docs_url=None, redoc_url=None, openapi_url=None)
    page = _asset("index.html").decode().replace("{{title}}", _html_escape(title))
    sent: OrderedDict[int, float] = OrderedDict()  # preview seq -> capture time, for the page's reports

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return page

    @app.get("/assets/{name}")
    def asset(name: str) -> Response:
        if name not in _ASSETS:
            raise HTTPException(status_code=404)
        return Response(_asset(name), media_type=_ASSETS[name], headers={"Cache-Control": "no-store"})

    @app.get("/api/stats")
    def stats() -> JSONResponse:
        return JSONResponse(run.stats.snapshot())

    @app.post("/api/stop")
    def stop() -> dict:
        run.request_stop()
        return {"stopping": True}

    @app.post("/api/record")
    def record(on: bool | None = None) -> dict:
        run.set_recording(not run.stats.recording if on is None else on)
        return {"recording": run.stats.recording}

    @app.websocket("/ws")
    async def frames(ws: WebSocket) -> None:
        await ws.accept()

        async def reports() -> None:
            while True:
                msg = json.loads(await ws.receive_text())
                shown = sent.get(int(msg.get("shown", -1)))
                if shown is not None:
                    run.stats.shown(time.monotonic() - shown)

        listener = asyncio.create_task(reports())
        loop, fresh = asyncio.get_running_loop(), asyncio.Event()

        def wake() -> None:  # from the preview's thread
            loop.call_soon_threadsafe(fresh.set)

        run.preview.listen(wake)
        last = 0
        try:
            while not listener.done():
                frame = run.preview.latest()
                if frame is None or frame.seq == last:
                    try:
                        await asyncio.wait_for(fresh.wait(), timeout=0.5)
                    except TimeoutError:
                        pass
                    fresh.clear()
                    continue
                last = frame.seq
                sent[frame.seq] = frame.captured_s
                while len(sent) > 256:
                    sent.popitem(last=False)
                await ws.send_text(json.dumps({"seq": frame.seq, "stats": run.stats.snapshot(), **frame.meta}))
                await ws.send_bytes(frame.jpeg)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            run.preview.unlisten(wake)
            listener.cancel()

    return app


def _html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def check_port(host: str, port: int) -> None:
    """Raises ``ConfigError`` (one line) when ``host:port`` cannot be bound."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"--port {port}: {host}:{port} is already in use (another meshstream live?); "
                                  "pass another --port") from exc
            raise ConfigError(f"--host {host} --port {port}: cannot listen there ({exc.strerror}); check the "
                              "address") from exc


class PageServer:
    """uvicorn serving :func:`make_app` on a thread.

    Args:
        app: The ASGI app.
        host: Address to bind.
        port: Port (0: any free one; :attr:`port` tells which after :meth:`start`).
    """

    def __init__(self, app, host: str, port: int) -> None:
        import uvicorn

        self.host = host
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                                    ws_ping_interval=None))
        self.port = port
        self._thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def start(self, timeout_s: float = 10.0) -> None:
        """Starts serving; returns once the socket listens."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"the preview page could not be served on {self.host}:{self.port}; pass another "
                                  "--port")
            time.sleep(0.02)
        if self.port == 0:
            self.port = self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/"

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5.0)
