"""The app factory: static web client, /config, /healthz, /metrics and Socket.IO."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from callbox import __version__
from callbox.config import ServerSettings
from callbox.server.events import CallboxSocketServer, SignalingEvents
from callbox.server.metrics import CONTENT_TYPE_LATEST, Metrics
from callbox.server.stun import stun_service
from callbox.signaling import Limits, MemoryStore, Store, Switchboard

log = logging.getLogger(__name__)

EVENTS_KEY = web.AppKey("events", SignalingEvents)
SETTINGS_KEY = web.AppKey("settings", ServerSettings)

# engine.io drops the connection above its buffer size, so it is only the last line of
# defence: it is kept well above --max-message-bytes, which gets the client a `too_large`.
MIN_ENGINE_BUFFER_BYTES = 1024 * 1024


def engine_buffer_bytes(settings: ServerSettings) -> int:
    return max(MIN_ENGINE_BUFFER_BYTES, 4 * settings.max_message_bytes)


def sweep_interval(offer_ttl: float) -> float:
    """How often waiting offers are checked for expiry: a quarter of the TTL, 50 ms-10 s."""
    return min(10.0, max(0.05, offer_ttl / 4))


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


def same_origin(
    settings: ServerSettings, on_refused: Callable[[str], None] | None = None
) -> Callable[[str, dict[str, Any]], bool]:
    """Socket.IO accepts a browser only from the page's own origin, or one of
    ``--allowed-origin``. (Clients that send no Origin header, i.e. not browsers, pass.)

    engine.io's built-in check assumes ``http`` under aiohttp even when we serve TLS, which
    would refuse every HTTPS page; this compares with the scheme we really serve.
    """
    extra = frozenset(settings.allowed_origins)

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:  # engine.io asks for every response; no Origin: not a browser's CORS
            return True
        host = environ.get("HTTP_HOST", "")
        scheme = settings.scheme
        if settings.http:  # behind a TLS-terminating proxy, it tells the browser's scheme
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
        if (bool(host) and origin == f"{scheme}://{host}") or origin.lower() in extra:
            return True
        # engine.io asks again for the same request when it builds the refusal: count once
        if on_refused is not None and not environ.get("callbox.origin_refused"):
            environ["callbox.origin_refused"] = True
            on_refused(origin)
        return False

    return allowed


def create_app(
    settings: ServerSettings,
    store: Store | None = None,
    *,
    clock: Callable[[], float] = time.time,
    ca_path: Path | None = None,
) -> web.Application:
    """Build the aiohttp application; nothing is global, everything hangs off the app.
    ``clock`` is the switchboard's (offer ages), injectable for tests; ``ca_path`` the local
    CA's certificate served at ``/ca.pem`` (None: the server does not use one)."""
    app = web.Application(middlewares=[_security_headers])
    metrics = Metrics()

    def origin_refused(origin: str) -> None:
        metrics.error("forbidden")
        metrics.limit("origin")
        log.warning("socket.io connection from origin %r refused", origin[:128])

    sio = CallboxSocketServer(
        async_mode="aiohttp",
        async_handlers=False,  # one client's events are handled in the order they arrive
        cors_allowed_origins=same_origin(settings, origin_refused),
        max_http_buffer_size=engine_buffer_bytes(settings),
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    store = store if store is not None else MemoryStore()
    if isinstance(store, MemoryStore):
        metrics.watch_store(store.counts)
    limits = Limits(max_waiting_offers=settings.max_waiting_offers)
    switchboard = Switchboard(store, limits=limits, clock=clock)
    events = SignalingEvents(sio, switchboard, settings, metrics)
    app[EVENTS_KEY] = events
    app[SETTINGS_KEY] = settings

    root = web_root()
    vendor = root / "vendor"

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(request: web.Request) -> web.Response:
        user = events.authenticator.bearer(request.headers.get("Authorization"))
        ice, host = events.ice, request.headers.get("Host")
        offer = ice.anonymous(host) if user is None else ice.for_request(host)
        return web.json_response(offer.to_wire(), headers={"Cache-Control": "no-store"})

    async def ca_pem(request: web.Request) -> web.StreamResponse:
        ca = ca_path
        if ca is None or not ca.is_file():
            raise web.HTTPNotFound(text="this server does not use a local CA")
        return web.FileResponse(
            ca, headers={"Content-Type": "application/x-pem-file", "Cache-Control": "no-cache"}
        )

    async def phone(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "phone.html", headers={"Cache-Control": "no-cache"})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__})

    async def metrics_view(request: web.Request) -> web.Response:
        body = metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/", index)
    app.router.add_get("/config", config)
    app.router.add_get("/ca.pem", ca_pem)
    app.router.add_get("/phone", phone)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_static("/js/", root / "js")
    app.router.add_static("/css/", root / "css")
    if vendor.is_dir():
        app.router.add_static("/vendor/", vendor)
    else:
        log.error("the socket.io browser client is missing (%s): reinstall callbox", vendor)

    sweeper: list[asyncio.Task[None]] = []

    async def sweep() -> None:
        interval = sweep_interval(settings.offer_ttl)
        while True:
            await asyncio.sleep(interval)
            try:
                events.outbox.put(await switchboard.expire_offers(settings.offer_ttl))
            except Exception:
                log.exception("expiring offers failed")

    async def start(app: web.Application) -> None:
        events.outbox.start()
        sweeper.append(asyncio.create_task(sweep(), name="callbox-offer-sweeper"))

    async def stop(app: web.Application) -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sweeper.clear()
        # every client is disconnected (running the disconnect handler: peers are told),
        # else aiohttp would wait for each open websocket until its shutdown timeout
        for sid, _ in list(sio.manager.get_participants("/", None)):
            await sio.disconnect(sid)
        if sio.eio.sockets:  # engine.io's disconnect() fails on an empty set of sockets
            await sio.eio.disconnect()  # engine.io sockets that never joined the namespace
        await sio.shutdown()
        await events.close()
        await events.outbox.drain()
        await events.outbox.close()
        await switchboard.store.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    app.cleanup_ctx.append(stun_service(settings))  # the built-in STUN server, if --stun-port
    return app
