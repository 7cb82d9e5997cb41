"""Run the app until SIGINT/SIGTERM: TLS context, listening socket, clean shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from callbox.config import ServerSettings
from callbox.errors import ConfigError
from callbox.server import gcpace
from callbox.server.app import HUB_KEY, LIFECYCLE_KEY, create_app
from callbox.server.listener import ConnectionBook, GuardedSite

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listening:
    """What the server is bound to, for the start-up banner."""

    scheme: str
    host: str
    port: int


def loop_factory(choice: str, *, tls: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop ``callbox serve`` runs on (None: asyncio's own).

    uvloop makes the hot path cheaper (its transports write, and its loop schedules, in C:
    bench/README.md has the figures), but only where callbox does not terminate TLS itself
    (``--http``, behind a proxy): the send budget must count what waits in the TCP transport
    under the TLS one, which asyncio's TLS transport lets it read (server/sio.py, ``_Pipe``)
    and uvloop's does not. ``auto`` therefore means uvloop with ``--http`` where it is
    installed, asyncio's loop otherwise."""
    if choice == "asyncio":
        return None
    if choice == "uvloop" and tls:
        raise ConfigError(
            "--event-loop uvloop needs --http (TLS at a proxy): with its own TLS, callbox "
            "cannot count what uvloop holds for a client that does not read"
        )
    if tls:
        return None
    try:
        import uvloop
    except ImportError as e:
        if choice == "uvloop":
            raise ConfigError(
                "--event-loop uvloop: uvloop is not installed (pip install uvloop), "
                "or choose --event-loop asyncio"
            ) from e
        return None
    return uvloop.new_event_loop


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except FileNotFoundError as e:
        raise ConfigError(f"cannot read certificate or key: {e.filename}") from e
    except (ssl.SSLError, OSError) as e:
        raise ConfigError(f"cannot load certificate {cert} with key {key}: {e}") from e
    return context


async def serve(
    settings: ServerSettings,
    context: ssl.SSLContext | None,
    on_ready: Callable[[Listening], None],
    stop: asyncio.Event | None = None,
    *,
    ca_path: Path | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then stop within
    ``settings.drain_timeout`` whatever clients do: stop accepting, end or hand over every
    session, close every connection so that clients reconnect by themselves."""
    app = create_app(settings, ca_path=ca_path)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        # a connection that has not sent a complete request by then is closed (slow headers)
        keepalive_timeout=settings.connect_timeout,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__name__)
    log.info("%s", gcpace.pace())
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    hub = app[HUB_KEY]
    book = ConnectionBook(
        # a browser holds a few HTTP connections besides its sessions' websockets
        settings.max_connections_per_ip + 16,
        on_refused=lambda key: hub.metrics.dropped.labels(why="tcp_per_ip").inc(),
    )
    site = GuardedSite(
        runner,
        settings.host,
        settings.port,
        book=book,
        ssl_context=context,
        handshake_timeout=settings.connect_timeout,
    )
    try:
        try:
            await site.start()
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}"
            ) from e
        on_ready(Listening(settings.scheme, settings.host, site.bound_port))
        await stop.wait()
        log.info("stopping")
        await _drain(app, site, settings.drain_timeout)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        try:
            async with asyncio.timeout(max(1.0, settings.drain_timeout / 2)):
                await runner.cleanup()
        except TimeoutError:
            log.warning("connections still open after the drain: closed hard")


async def _drain(app: web.Application, site: GuardedSite, bound: float) -> None:
    """Stop accepting, then hand over or end every session, within half of ``bound``."""
    await site.stop()
    try:
        async with asyncio.timeout(bound / 2):
            await app[LIFECYCLE_KEY].drain()
    except TimeoutError:
        log.warning("draining took longer than %gs: stopping anyway", bound / 2)
