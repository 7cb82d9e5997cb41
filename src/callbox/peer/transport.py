"""The connection under the signaling client: TLS trust, reachability, reconnection delays
and a deliberate goodbye."""

from __future__ import annotations

import asyncio
import contextlib
import random
import ssl
from pathlib import Path

import aiohttp
import socketio

from callbox.peer.errors import ServerUnreachable, TlsUntrusted

#: backoff of reconnections (socket.io's own, and ours after "io server disconnect")
RECONNECT_DELAY = 0.5
RECONNECT_DELAY_MAX = 5.0


def ssl_context(ca: Path | None) -> ssl.SSLContext:
    """Verify the server against ``ca`` (a PEM bundle) if given, else the system store."""
    if ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ServerUnreachable(f"cannot load CA file {ca}: {exc}") from exc


async def say_goodbye(sio: socketio.AsyncClient) -> None:
    """Make a disconnect deliberate in the server's eyes.

    python-socketio queues its DISCONNECT packet and closes the websocket at once, so the
    packet is often lost: the server then sees a dropped socket and holds the session for a
    resume (DESIGN's grace period) instead of ending it. Send it first and wait until it has
    been written.
    """
    if sio.connected:
        await sio._send_packet(sio.packet_class(socketio.packet.DISCONNECT, namespace="/"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await sio.eio.queue.join()


def backoff(attempt: int) -> float:
    """Seconds before reconnection attempt ``attempt`` (1, 2, ...): doubling, capped, +-50%."""
    delay = min(RECONNECT_DELAY * 2 ** (attempt - 1), RECONNECT_DELAY_MAX)
    return float(delay * (0.5 + random.random()))


async def preflight(http: aiohttp.ClientSession, url: str, ca: Path | None) -> None:
    """GET /healthz with our SSL context: gives a clear TLS or reachability error."""
    try:
        async with http.get(f"{url}/healthz") as response:
            await response.read()
    except aiohttp.ClientConnectorCertificateError as exc:
        raise TlsUntrusted(
            f"TLS certificate of {url} is not trusted"
            f"{' by ' + str(ca) if ca else ''}: {exc.certificate_error}"
        ) from None
    except aiohttp.ClientSSLError as exc:
        raise TlsUntrusted(f"TLS handshake with {url} failed: {exc}") from None
    except aiohttp.ClientError as exc:
        raise ServerUnreachable(f"cannot reach {url}: {exc}") from None
