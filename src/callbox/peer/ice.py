"""The ICE servers a session was given, kept fresh (PLAN decision 7).

``welcome`` carries ``iceServers`` and ``iceServersTtl`` (seconds minted TURN credentials
stay valid; null when nothing expires). The list is asked for again with the ``iceServers``
event at half the TTL and right before a new peer connection is made, so a call always
starts with credentials that have their whole lifetime ahead of them.

aiortc has no ``setConfiguration``: a peer connection keeps the list it gathered with, and
its TURN allocation keeps the credentials it was made with (coturn checks them when the
allocation is made, not when it is refreshed: docs/protocol.md, "Python peers and ICE
restart"). The fresh list is for the next peer connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from aiortc import RTCIceServer

from callbox.errors import PeerError
from callbox.peer.wire import JSON

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[tuple[tuple[JSON, ...], float | None]]]

#: after a failed refresh, try again this soon (seconds; at most a quarter of the TTL)
RETRY_AFTER = 30.0


def rtc_ice_servers(raw: tuple[JSON, ...]) -> list[RTCIceServer]:
    """aiortc's form of the RTCIceServer list the server sent (entries without urls skipped)."""
    servers = []
    for entry in raw:
        urls = entry.get("urls")
        if isinstance(urls, str | list):
            servers.append(
                RTCIceServer(
                    urls=urls, username=entry.get("username"), credential=entry.get("credential")
                )
            )
    return servers


class IceServerList:
    """The current list, when it was fetched, and a task that refreshes it at half its TTL."""

    def __init__(self, fetch: Fetch, *, label: str = "ice") -> None:
        self._fetch = fetch
        self._label = label
        self.servers: tuple[JSON, ...] = ()
        self.ttl: float | None = None
        """Seconds the credentials in :attr:`servers` stay valid from :attr:`fetched_at`."""
        self.fetched_at = 0.0
        """``loop.time()`` when :attr:`servers` came."""
        self.refreshes = 0
        """How many times the list was asked for again (not counting ``welcome``)."""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def update(self, servers: tuple[JSON, ...], ttl: float | None) -> None:
        """A new list (from ``welcome`` or an ``iceServers`` ack)."""
        self.servers = servers
        self.ttl = ttl if ttl is None or ttl > 0 else None
        self.fetched_at = asyncio.get_running_loop().time()
        self._changed.set()

    def due(self) -> float | None:
        """``loop.time()`` at which the list should be refreshed; None: never."""
        return None if self.ttl is None else self.fetched_at + self.ttl / 2

    async def refresh(self) -> tuple[JSON, ...]:
        """Ask the server for a fresh list now; raise :class:`PeerError` if that fails."""
        servers, ttl = await self._fetch()
        self.refreshes += 1
        self.update(servers, ttl)
        log.info("%s: ICE servers refreshed (%d, ttl %s)", self._label, len(servers), ttl)
        return servers

    async def fresh(self) -> tuple[JSON, ...]:
        """The list to build a new peer connection with: asked for again when its
        credentials expire (kept as it is when nothing expires, or when asking fails)."""
        if self.ttl is None:
            return self.servers
        try:
            return await self.refresh()
        except PeerError as exc:
            log.warning("%s: ICE servers not refreshed (%s); using the last ones", self._label, exc)
            return self.servers

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        retry_at: float | None = None
        while True:
            due = self.due()
            if retry_at is not None and due is not None:
                due = max(due, retry_at)
            self._changed.clear()
            if due is None or due > loop.time():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout_at(due):
                        await self._changed.wait()
                        retry_at = None  # a new list came: plan again from it
                        continue
            try:
                await self.refresh()
                retry_at = None
            except PeerError as exc:
                ttl = self.ttl or RETRY_AFTER * 4
                retry_at = loop.time() + min(RETRY_AFTER, ttl / 4)
                log.warning("%s: ICE server refresh failed (%s); trying again", self._label, exc)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
