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
from callbox.server.app import create_app

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Listening:
    """What the server is bound to, for the start-up banner."""

    scheme: str
    host: str
    port: int


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
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), then close every session cleanly."""
    app = create_app(settings, ca_path=ca_path)
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=2)
    await runner.setup()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, settings.host, settings.port, ssl_context=context)
        try:
            await site.start()
        except OSError as e:
            raise ConfigError(
                f"cannot listen on {settings.host}:{settings.port}: {e.strerror or e}"
            ) from e
        port = settings.port
        sockets = getattr(site._server, "sockets", None)  # the real port when --port 0
        if sockets:
            port = sockets[0].getsockname()[1]
        on_ready(Listening(settings.scheme, settings.host, port))
        await stop.wait()
        log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await runner.cleanup()
