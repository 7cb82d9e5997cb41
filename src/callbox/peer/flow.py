"""Whether a call's media still flows: the one question behind keeping a call whose
signaling server went away (PLAN decisions 3 and 5).

"Flows" means bytes arrived on the call's transport recently: media, RTCP reports or data
channel messages, whatever the other side sends. A peer that crashed or lost its network
sends nothing any more, so its call is not kept; one whose signaling server restarted goes
on sending, so its call is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: how often the transport's byte counter is read
INTERVAL = 1.0
#: bytes must have arrived within this many seconds for media to count as flowing
WINDOW = 4.0


class FlowWatch:
    """Reads ``inbound()`` (bytes received so far) every ``interval`` seconds once started."""

    def __init__(
        self,
        inbound: Callable[[], Awaitable[int]],
        *,
        interval: float = INTERVAL,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._inbound = inbound
        self._interval = interval
        self._window = window
        self._clock = clock
        self._bytes = -1
        self._grew_at: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start watching (idempotent): call once the connection is up."""
        if self._task is None:
            self._grew_at = self._clock()  # connected just now: bytes are arriving
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self._interval)

    async def sample(self) -> None:
        """Read the counter once (also done every ``interval`` while started)."""
        try:
            now = await self._inbound()
        except Exception:  # noqa: BLE001 - a closing connection has no stats: not flowing
            log.debug("inbound byte count unavailable", exc_info=True)
            return
        if now > self._bytes:
            self._bytes = now
            self._grew_at = self._clock()

    def flowing(self) -> bool:
        """Bytes arrived within the window (False before :meth:`start`)."""
        return self._grew_at is not None and self._clock() - self._grew_at <= self._window

    async def check(self) -> bool:
        """:meth:`flowing`, after reading the counter right now."""
        if self._task is None:
            return False
        await self.sample()
        return self.flowing()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
