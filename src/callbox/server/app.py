"""The app factory: static web client, /config, /healthz, /metrics and Socket.IO."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import socketio
from aiohttp import web

from callbox import __version__
from callbox.config import ServerSettings
from callbox.server.events import CallboxSocketServer, SignalingEvents
from callbox.server.metrics import CONTENT_TYPE_LATEST, Metrics
from callbox.signaling import MemoryStore, Store, Switchboard

log = logging.getLogger(__name__)

EVENTS_KEY = web.AppKey("events", SignalingEvents)
SETTINGS_KEY = web.AppKey("settings", ServerSettings)

# Larger than any message the core accepts (it answers those with `too_large`); engine.io
# drops the connection above this, so it is only the last line of defence.
MAX_MESSAGE_BYTES = 512 * 1024

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def web_root() -> Path:
    """Where the browser client's files are (package data)."""
    return Path(str(files("callbox") / "web"))


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    response = await handler(request)
    if not request.path.startswith("/socket.io"):
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self)")
    return response


def same_origin(settings: ServerSettings) -> Callable[[str, dict[str, Any]], bool]:
    """Socket.IO accepts a browser only from the page's own origin.

    engine.io's built-in check assumes ``http`` under aiohttp even when we serve TLS, which
    would refuse every HTTPS page; this compares with the scheme we really serve.
    """

    def allowed(origin: str, environ: dict[str, Any]) -> bool:
        host = environ.get("HTTP_HOST", "")
        scheme = settings.scheme
        if settings.http:  # behind a TLS-terminating proxy, it tells the browser's scheme
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
        return bool(host) and origin == f"{scheme}://{host}"

    return allowed


def create_app(settings: ServerSettings, store: Store | None = None) -> web.Application:
    """Build the aiohttp application; nothing is global, everything hangs off the app."""
    app = web.Application(middlewares=[_security_headers])
    metrics = Metrics()
    sio = CallboxSocketServer(
        async_mode="aiohttp",
        async_handlers=False,  # one client's events are handled in the order they arrive
        cors_allowed_origins=same_origin(settings),
        max_http_buffer_size=MAX_MESSAGE_BYTES,
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    switchboard = Switchboard(store if store is not None else MemoryStore())
    events = SignalingEvents(sio, switchboard, settings, metrics)
    app[EVENTS_KEY] = events
    app[SETTINGS_KEY] = settings

    root = web_root()
    vendor = root / "vendor"

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(request: web.Request) -> web.Response:
        return web.json_response({"iceServers": [s.to_wire() for s in settings.ice_servers]})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def metrics_view(request: web.Request) -> web.Response:
        body = metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/", index)
    app.router.add_get("/config", config)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_static("/js/", root / "js")
    app.router.add_static("/css/", root / "css")
    if vendor.is_dir():
        app.router.add_static("/vendor/", vendor)
    else:
        log.error("the socket.io browser client is missing (%s): reinstall callbox", vendor)

    async def start(app: web.Application) -> None:
        events.outbox.start()

    async def stop(app: web.Application) -> None:
        await sio.shutdown()  # closes every client connection
        await events.outbox.drain()
        await events.outbox.close()
        await switchboard.store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app
