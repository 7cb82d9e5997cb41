"""The app factory: one node's Socket.IO server, signaling core, HTTP pages and background
tasks, built from its settings; nothing is global."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from callbox.config import ServerSettings
from callbox.server import codec
from callbox.server.codec import JsonPacket
from callbox.server.events import SignalingEvents
from callbox.server.http import Pages, same_origin, security_headers
from callbox.server.lifecycle import Hub, Lifecycle
from callbox.server.metrics import Metrics
from callbox.server.routing import LocalSessions, Router
from callbox.server.sio import Budget, CallboxSocketServer
from callbox.signaling import Limits, MemoryStore, Store, Switchboard, names
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
    app = web.Application()
    app.on_response_prepare.append(security_headers)
    names.prepare()
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
    guard = _GuardProxy()
    sio = _socket_server(settings, metrics, guard)
    sio.attach(app)
    metrics.watch_pings(lambda: sio.eio.pings.waiting)
    router = Router(sio, mailbox, node_id, sessions)
    hub = Hub(settings, sio, switchboard, mailbox, router, sessions, metrics, node_id, shared)
    guard.lifecycle = lifecycle = Lifecycle(hub)
    if cluster is not None:
        cluster.attach(hub, lifecycle)
    SignalingEvents(hub)
    app[HUB_KEY] = hub
    app[LIFECYCLE_KEY] = lifecycle
    app[SETTINGS_KEY] = settings
    _watch(metrics, sessions, store, mailbox)
    Pages(hub, ca_path).add_to(app)
    _background(app, hub, lifecycle, cluster)
    return app


class _GuardProxy:
    """The engine.io guard (server/sio.py) is the lifecycle, made after the server."""

    lifecycle: Lifecycle | None = None

    async def engine_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        return self.lifecycle is not None and await self.lifecycle.engine_connect(eio_sid, environ)

    def engine_disconnect(self, eio_sid: str) -> None:
        if self.lifecycle is not None:
            self.lifecycle.engine_disconnect(eio_sid)

    def refused(self, eio_sid: str, kind: str, detail: str) -> None:
        if self.lifecycle is not None:
            self.lifecycle.refused(eio_sid, kind, detail)

    def trusts(self, environ: dict[str, Any]) -> bool:
        return self.lifecycle is not None and self.lifecycle.hub.trusts(environ)


def _socket_server(
    settings: ServerSettings, metrics: Metrics, guard: _GuardProxy
) -> CallboxSocketServer:
    def origin_refused(origin: str) -> None:
        metrics.error("forbidden")
        metrics.limit("origin")
        log.warning("socket.io connection from origin %r refused", origin[:128])

    return CallboxSocketServer(
        guard=guard,
        budget=Budget(
            socket_bytes=settings.max_queued_bytes, address_bytes=settings.max_queued_bytes_per_ip
        ),
        connect_deadline=settings.connect_timeout,
        async_mode="aiohttp",
        serializer=JsonPacket,
        json=codec.json,
        async_handlers=False,  # one client's events are handled in the order they arrive
        cors_allowed_origins=same_origin(settings, origin_refused, guard.trusts),
        max_http_buffer_size=engine_buffer_bytes(settings),
        logger=False,
        engineio_logger=False,
    )


def _watch(metrics: Metrics, sessions: LocalSessions, *parts: object) -> None:
    """Gauges read at scrape: local sessions, and in-memory table sizes."""
    metrics.sessions.set_function(lambda: len(sessions))
    tables: list[Callable[[], dict[str, int]]] = []
    for part in parts:
        counts = getattr(part, "counts", None)
        if callable(counts):
            tables.append(counts)
    if tables:
        metrics.watch_tables(lambda: {k: v for t in tables for k, v in t().items()})


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
    stun_port = hub.settings.stun_port
    if stun_port is not None:  # aioice, its codec, is loaded only for it
        from callbox.server.stun import stun_service

        app.cleanup_ctx.append(stun_service(hub.settings.host, stun_port))
