"""A loopback TCP proxy for tests that need to break a connection on purpose.

    async with TcpProxy("127.0.0.1", server.port) as proxy:   # in the test's own loop
        connect to 127.0.0.1:proxy.port ...
        await proxy.cut()        # every open connection aborted both ways (RST), at once
        proxy.refuse(True)       # new connections are reset as soon as they are accepted
        proxy.refuse(False)
        proxy.connections        # connections open through the proxy now

    with ThreadedTcpProxy("127.0.0.1", server.port) as proxy:  # sync code (Playwright sync)
        proxy.cut(); proxy.refuse(True); proxy.connections

It forwards bytes, nothing else: TLS passes through untouched (the client's SNI and Host
header name the proxy's address, 127.0.0.1, which the server certificate covers).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")

_CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection abruptly: SO_LINGER 0 makes close() send RST, not FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    """One proxied connection: the client's side and the target's side."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.upstream):
            _reset(writer)
        for task in self.tasks:
            task.cancel()


class TcpProxy:
    """Listens on 127.0.0.1 (a free port) and forwards each connection to the target."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        """Connections accepted so far (refused ones included)."""
        self._refusing = False
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    @property
    def connections(self) -> int:
        """Connections open through the proxy now."""
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.cut()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def __aenter__(self) -> TcpProxy:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def refuse(self, refusing: bool = True) -> None:
        """While refusing, a new connection is reset as soon as it is accepted."""
        self._refusing = refusing

    async def cut(self) -> int:
        """Abort every open connection, both ways, with a reset; return how many."""
        links, self._links = list(self._links), set()
        for link in links:
            link.abort()
        await asyncio.gather(*(t for link in links for t in link.tasks), return_exceptions=True)
        return len(links)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            self.accepted += 1
            if self._refusing:
                _reset(writer)
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                _reset(writer)
                return
            link = _Link(writer, up_writer)
            self._links.add(link)
            link.tasks = [
                asyncio.create_task(self._pump(reader, up_writer, link)),
                asyncio.create_task(self._pump(up_reader, writer, link)),
            ]
            await asyncio.gather(*link.tasks, return_exceptions=True)
            self._links.discard(link)
            for w in (writer, up_writer):
                w.transport.abort()
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
            # orderly end of one direction: pass the FIN on
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, asyncio.IncompleteReadError):
            link.abort()


class ThreadedTcpProxy:
    """A :class:`TcpProxy` on its own event loop in a thread, with a blocking facade,
    for synchronous tests (Playwright's sync API). Every method is thread-safe."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._proxy = TcpProxy(target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    @property
    def port(self) -> int:
        return self._proxy.port

    @property
    def connections(self) -> int:
        return self._proxy.connections

    @property
    def accepted(self) -> int:
        return self._proxy.accepted

    def start(self) -> None:
        self._thread.start()
        self._run(self._proxy.start())

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._run(self._proxy.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> ThreadedTcpProxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def refuse(self, refusing: bool = True) -> None:
        self._proxy.refuse(refusing)  # one attribute store: atomic, and seen at the next accept

    def cut(self) -> int:
        """Abort every open connection (both ways, reset); return how many were open."""
        return self._run(self._proxy.cut())
