"""The app factory: static web client, /config, /healthz, /metrics, /ca.pem and Socket.IO."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callbox import __version__
from callbox.config import ServerSettings
from callbox.server.events import SignalingEvents
from callbox.server.lifecycle import Hub, Lifecycle
from callbox.server.metrics import CONTENT_TYPE_LATEST, Metrics
from callbox.server.routing import LocalSessions, Router
from callbox.server.sio import Budget, CallboxSocketServer
from callbox.signaling import Limits, MemoryStore, SignalingError, Store, Switchboard
from callbox.signaling.mailbox import Mailbox, MailboxLimits, MemoryMailbox

if TYPE_CHECKING:
    from callbox.server.cluster import Cluster

log = logging.getLogger(__name__)

HUB_KEY = web.AppKey("hub", Hub)
LIFECYCLE_KEY = web.AppKey("lifecycle", Lifecycle)
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
_SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
    "X-Frame-Options": "DENY",
}


def web_root() -> Path:
    """Where the browser client's files are (package data)."""
    return Path(str(files("callbox") / "web"))


def _secure(response: web.StreamResponse) -> None:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def _security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every HTTP answer carries them, errors (404, 405, ...) included."""
    try:
        response = await handler(request)
    except web.HTTPException as e:
        _secure(e)
        raise
    if not request.path.startswith("/socket.io") or not response.prepared:
        _secure(response)
    return response


def same_origin(
    settings: ServerSettings,
    on_refused: Callable[[str], None] | None = None,
    trusts: Callable[[dict[str, Any]], bool] = lambda environ: False,
) -> Callable[[str, dict[str, Any]], bool]:
    """Socket.IO accepts a browser only from the page's own origin, or one of
    ``--allowed-origin``. (Clients that send no Origin header, i.e. not browsers, pass.)

    engine.io's built-in check assumes ``http`` under aiohttp even when we serve TLS, which
    would refuse every HTTPS page; this compares with the scheme we really serve (behind a
    trusted proxy, the one its X-Forwarded-Proto says).
    """
    extra = frozenset(settings.allowed_origins)

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:  # engine.io asks for every response; no Origin: not a browser's CORS
            return True
        host = environ.get("HTTP_HOST", "")
        scheme = settings.scheme
        if settings.http and trusts(environ):
            scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme).split(",")[0].strip()
        if (bool(host) and origin == f"{scheme}://{host}") or origin.lower() in extra:
            return True
        # engine.io asks again for the same request when it builds the refusal: count once
        if on_refused is not None and not environ.get("callbox.origin_refused"):
            environ["callbox.origin_refused"] = True
            on_refused(origin)
        return False

    return allowed


def _bearer_matches(header: str | None, secret: str) -> bool:
    scheme, _, credential = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credential.strip().encode(), secret.encode()
    )


def create_app(
    settings: ServerSettings,
    store: Store | None = None,
    *,
    clock: Callable[[], float] = time.time,
    ca_path: Path | None = None,
    mailbox: Mailbox | None = None,
    node: str | None = None,
) -> web.Application:
    """Build the aiohttp application; nothing is global, everything hangs off the app.
    ``clock`` is the switchboard's (offer ages), injectable for tests; ``ca_path`` the local
    CA's certificate served at ``/ca.pem`` (None: the server does not use one). A ``store``
    and ``mailbox`` shared with other nodes make this node one of many."""
    app = web.Application(middlewares=[_security_headers])
    metrics = Metrics(debug=settings.debug_metrics)
    node_id = node or settings.node_id or secrets.token_hex(6)
    cluster: Cluster | None = None
    if settings.redis_url and store is None:
        from callbox.server.cluster import Cluster

        cluster = Cluster.connect(settings, node_id)
        store, mailbox = cluster.store, cluster.mailbox
    shared = store is not None and not isinstance(store, MemoryStore)
    store = store if store is not None else MemoryStore()
    mailbox = mailbox or MemoryMailbox(MailboxLimits(log_bytes=settings.max_log_bytes))
    limits = Limits(
        max_waiting_offers=settings.max_waiting_offers,
        max_room_offer_bytes=settings.max_room_offer_bytes,
    )
    switchboard = Switchboard(store, limits=limits, clock=clock)
    sessions = LocalSessions()
    hub_ref: list[Hub] = []

    def origin_refused(origin: str) -> None:
        metrics.error("forbidden")
        metrics.limit("origin")
        log.warning("socket.io connection from origin %r refused", origin[:128])

    class _GuardProxy:  # the engine.io guard is the lifecycle, made below
        async def engine_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool:
            return await lifecycle.engine_connect(eio_sid, environ)

        def engine_disconnect(self, eio_sid: str) -> None:
            lifecycle.engine_disconnect(eio_sid)

        def refused(self, eio_sid: str, kind: str, detail: str) -> None:
            lifecycle.refused(eio_sid, kind, detail)

    sio = CallboxSocketServer(
        guard=_GuardProxy(),
        budget=Budget(
            socket_bytes=settings.max_queued_bytes, address_bytes=settings.max_queued_bytes_per_ip
        ),
        connect_deadline=settings.connect_timeout,
        async_mode="aiohttp",
        async_handlers=False,  # one client's events are handled in the order they arrive
        cors_allowed_origins=same_origin(
            settings, origin_refused, lambda environ: hub_ref[0].trusts(environ)
        ),
        max_http_buffer_size=engine_buffer_bytes(settings),
        logger=False,
        engineio_logger=False,
    )
    sio.attach(app)
    router = Router(sio, mailbox, node_id, sessions)
    hub = Hub(settings, sio, switchboard, mailbox, router, sessions, metrics, node_id, shared)
    hub_ref.append(hub)
    lifecycle = Lifecycle(hub)
    if cluster is not None:
        cluster.attach(hub, lifecycle)
    SignalingEvents(hub)
    app[HUB_KEY] = hub
    app[LIFECYCLE_KEY] = lifecycle
    app[SETTINGS_KEY] = settings
    metrics.sessions.set_function(lambda: len(sessions))
    tables: list[Callable[[], dict[str, int]]] = []
    for part in (store, mailbox):
        counts = getattr(part, "counts", None)
        if callable(counts):
            tables.append(counts)
    if tables:
        metrics.watch_tables(lambda: {k: v for t in tables for k, v in t().items()})
    _routes(app, hub, ca_path)
    _background(app, hub, lifecycle, cluster)
    return app


def _routes(app: web.Application, hub: Hub, ca_path: Path | None) -> None:
    settings = hub.settings
    root = web_root()
    vendor = root / "vendor"
    ca_file = ca_path if ca_path is not None and ca_path.is_file() else None

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(request: web.Request) -> web.Response:
        user = hub.authenticator.bearer(request.headers.get("Authorization"))
        offer = hub.ice.anonymous() if user is None else hub.ice.for_user(user)
        return web.json_response(offer.to_wire(), headers={"Cache-Control": "no-store"})

    async def ca_pem(request: web.Request) -> web.StreamResponse:
        if ca_file is None:
            raise web.HTTPNotFound(text="this server does not use a local CA")
        return web.FileResponse(
            ca_file,
            headers={"Content-Type": "application/x-pem-file", "Cache-Control": "no-cache"},
        )

    async def phone(request: web.Request) -> web.FileResponse:
        return web.FileResponse(root / "phone.html", headers={"Cache-Control": "no-cache"})

    started = time.monotonic()

    async def healthz(request: web.Request) -> web.Response:
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "node": hub.node,
            "uptime": round(time.monotonic() - started, 1),
            "store": "redis" if hub.shared else "memory",
        }
        status = 200
        try:
            async with asyncio.timeout(1.0):
                await hub.switchboard.store.ping()
            body["storeReachable"] = True
        except (SignalingError, TimeoutError):
            body["storeReachable"] = False
            body["status"], body["reason"], status = "degraded", "signaling store unreachable", 503
        if hub.stopping:
            body["status"], body["reason"], status = "stopping", "the server is stopping", 503
        return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})

    async def metrics_view(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        token = settings.metrics_token
        allowed = (token is not None and _bearer_matches(header, token)) or (
            token is None and hub.authenticator.bearer(header) is not None
        )
        if not allowed:
            raise web.HTTPUnauthorized(
                text="/metrics needs Authorization: Bearer <metrics token, password or JWT>",
                headers={"WWW-Authenticate": 'Bearer realm="callbox metrics"'},
            )
        with contextlib.suppress(Exception):
            stats = await hub.switchboard.store.stats()
            hub.metrics.waiting_offers.set(stats.waiting_offers)
            hub.metrics.calls.set(stats.calls)
        body = hub.metrics.render()
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


def _background(
    app: web.Application, hub: Hub, lifecycle: Lifecycle, cluster: Cluster | None
) -> None:
    settings = hub.settings
    tasks: list[asyncio.Task[None]] = []

    async def sweep() -> None:
        interval = sweep_interval(settings.offer_ttl)
        while True:
            await asyncio.sleep(interval)
            try:
                await hub.router.deliver(await hub.switchboard.expire_offers(settings.offer_ttl))
            except Exception:
                log.exception("expiring offers failed")

    async def start(app: web.Application) -> None:
        if cluster is not None:
            await cluster.start()
        tasks.append(asyncio.create_task(sweep(), name="callbox-offer-sweeper"))
        tasks.append(asyncio.create_task(lifecycle.run_reaper(), name="callbox-reaper"))

    async def stop(app: web.Application) -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()
        if not hub.stopping:  # drained already when the runner stopped us on a signal
            await lifecycle.drain()
        await hub.sio.shutdown()
        await lifecycle.close()
        await hub.mailbox.close()
        await hub.switchboard.store.close()
        if cluster is not None:
            await cluster.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
