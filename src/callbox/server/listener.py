"""The listening socket: TCP connections per client address, and a TLS handshake deadline.

aiohttp's own ``keepalive_timeout`` (set by the runner) already closes a connection that
has not sent a complete request in time (a slow-loris header) and idle keep-alive ones; what
it has no knob for is the TLS handshake (asyncio's default waits 60 s) and the number of
connections one address may hold open. :class:`GuardedSite` is a :class:`web.BaseSite` (the
documented base of aiohttp's sites) that adds both, by wrapping each connection's protocol in
:class:`_Guarded`, which only counts and delegates.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any

from aiohttp import web

from callbox.signaling.limits import address_key

log = logging.getLogger(__name__)


class ConnectionBook:
    """Open TCP connections per address key; refuses past ``limit``."""

    def __init__(self, limit: int, on_refused: Callable[[str], None] | None = None) -> None:
        self.limit = limit
        self._open: dict[str, int] = {}
        self._on_refused = on_refused

    def acquire(self, key: str) -> bool:
        count = self._open.get(key, 0)
        if count >= self.limit:
            if self._on_refused is not None:
                self._on_refused(key)
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    def __len__(self) -> int:
        return sum(self._open.values())


class _Guarded(asyncio.Protocol):
    """Counts the connection against its address, then hands everything to aiohttp's
    protocol; a connection over the address's limit is dropped before aiohttp sees it."""

    __slots__ = ("_inner", "_book", "_key")  # one per open connection

    def __init__(self, inner: asyncio.Protocol, book: ConnectionBook) -> None:
        self._inner = inner
        self._book = book
        self._key: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        key = address_key(str(peer[0])) if isinstance(peer, tuple) and peer else "unknown"
        if not self._book.acquire(key):
            if isinstance(transport, asyncio.WriteTransport):
                transport.abort()
            else:  # pragma: no cover - a stream server's transports are write transports
                transport.close()
            return
        self._key = key
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is None:
            return
        self._book.release(self._key)
        self._key = None
        self._inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._key is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._key is not None else None

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class GuardedSite(web.BaseSite):
    """A TCP site with a per-address connection cap and a TLS handshake deadline."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        book: ConnectionBook,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = 10.0,
        backlog: int = 512,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._book = book
        self._handshake_timeout = handshake_timeout
        self.bound_port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self._host}:{self.bound_port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        if server is None:  # pragma: no cover - the runner is set up before its sites
            raise RuntimeError("the runner is not set up")

        def factory() -> asyncio.Protocol:
            return _Guarded(server(), self._book)

        kwargs: dict[str, Any] = {}
        if self._ssl_context is not None:
            kwargs["ssl_handshake_timeout"] = self._handshake_timeout
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=True,
            **kwargs,
        )
        sockets = self._server.sockets
        if sockets:
            self.bound_port = int(sockets[0].getsockname()[1])
