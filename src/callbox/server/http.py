"""The HTTP side: the pages and files, /config, /healthz, /metrics, /ca.pem, and the
headers and origin rules every answer follows."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from aiohttp import web

from callbox import __version__
from callbox.config import ServerSettings
from callbox.server.lifecycle import Hub
from callbox.server.metrics import CONTENT_TYPE_LATEST
from callbox.signaling import SignalingError

log = logging.getLogger(__name__)

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


async def security_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """Every HTTP answer carries them, errors (404, 405, ...) included; not a websocket's
    101. Run as the app's ``on_response_prepare``, not as a middleware: a middleware's frame
    (and aiohttp's own wrapper's, added once an app has one) lives as long as the request,
    which for a websocket is the connection: ~0.7 KB per idle connection (bench/README.md,
    "idle")."""
    if not isinstance(response, web.WebSocketResponse):
        _secure(response)


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


def bearer_matches(header: str | None, secret: str) -> bool:
    scheme, _, credential = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        credential.strip().encode(), secret.encode()
    )


class Pages:
    """The HTTP routes of one node."""

    def __init__(self, hub: Hub, ca_path: Path | None) -> None:
        self.hub = hub
        self.root = web_root()
        self.ca_file = ca_path if ca_path is not None and ca_path.is_file() else None
        self.started = time.monotonic()

    def add_to(self, app: web.Application) -> None:
        for path, handler in (
            ("/", self.index),
            ("/config", self.config),
            ("/ca.pem", self.ca_pem),
            ("/phone", self.phone),
            ("/healthz", self.healthz),
            ("/metrics", self.metrics),
        ):
            app.router.add_get(path, handler)
        app.router.add_static("/js/", self.root / "js")
        app.router.add_static("/css/", self.root / "css")
        vendor = self.root / "vendor"
        if vendor.is_dir():
            app.router.add_static("/vendor/", vendor)
        else:
            log.error("the socket.io browser client is missing (%s): reinstall callbox", vendor)

    async def index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.root / "index.html", headers={"Cache-Control": "no-cache"})

    async def phone(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.root / "phone.html", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        hub = self.hub
        user = hub.authenticator.bearer(request.headers.get("Authorization"))
        ice, host = hub.ice, request.headers.get("Host")
        offer = ice.anonymous(host) if user is None else ice.for_request(host)
        return web.json_response(offer.to_wire(), headers={"Cache-Control": "no-store"})

    async def ca_pem(self, request: web.Request) -> web.StreamResponse:
        if self.ca_file is None:
            raise web.HTTPNotFound(text="this server does not use a local CA")
        return web.FileResponse(
            self.ca_file,
            headers={"Content-Type": "application/x-pem-file", "Cache-Control": "no-cache"},
        )

    async def healthz(self, request: web.Request) -> web.Response:
        hub = self.hub
        body: dict[str, object] = {
            "status": "ok",
            "version": __version__,
            "node": hub.node,
            "uptime": round(time.monotonic() - self.started, 1),
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

    async def metrics(self, request: web.Request) -> web.Response:
        hub = self.hub
        header = request.headers.get("Authorization")
        token = hub.settings.metrics_token
        allowed = (token is not None and bearer_matches(header, token)) or (
            token is None and hub.authenticator.bearer(header) is not None
        )
        if not allowed:
            raise web.HTTPUnauthorized(
                text="/metrics needs Authorization: Bearer <metrics token, password or JWT>",
                headers={"WWW-Authenticate": 'Bearer realm="callbox metrics"'},
            )
        with contextlib.suppress(Exception):  # the store's figures when it answers
            stats = await hub.switchboard.store.stats()
            hub.metrics.waiting_offers.set(stats.waiting_offers)
            hub.metrics.calls.set(stats.calls)
            hub.metrics.held.set(await hub.mailbox.held_count())
        body = hub.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
