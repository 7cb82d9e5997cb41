"""engine.io's ping timer as a timer, not a task: the one place callbox reaches into
python-engineio's ``AsyncSocket._send_ping`` (pinned below its next major version).

After each pong, engine.io starts a task per socket (``start_background_task(
socket._send_ping)``) that sleeps one ping interval (25 s), then marks the ping's time
(``last_ping``) and queues a PING packet. An idle connection spends nearly all its life in
that sleep: a task, its coroutine frame, the sleep's future and a context, ~1 KB per socket
(tracemalloc on 2,000 idle connections: bench/README.md, "idle"). engine.io offers no hook
for the ping itself, only ``start_background_task``, which it also uses for other work;
:meth:`Pings.start` is called from there (server/engine.py) and takes over only
``_send_ping`` and does the same thing when its interval is over: same interval, same
packet, same ``last_ping``, the same check that the socket is still open.

Every socket of a server waits the same interval, so the sockets due for a ping are due in
the order they started waiting: one queue of (deadline, socket) and one loop timer for its
head, ~70 bytes per socket where a ``call_later`` timer per socket took ~600 (uvloop's
handle and its timer). A socket that closes stays queued until its deadline, as engine.io's
task lived out its sleep, then is skipped: :attr:`Pings.waiting` counts them all (the
``ping`` tasks of ``/metrics``). tests/unit/test_engine_server.py pins down what is relied
on.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

#: a timer may fire this much before its time (the loop's clock resolution is ~1 ms)
_EARLY = 0.002


class Pings:
    __slots__ = ("_due", "_timer")

    def __init__(self) -> None:
        self._due: deque[tuple[float, AsyncSocket]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """Sockets waiting for their next ping (some may have closed meanwhile)."""
        return len(self._due)

    def start(self, target: Callable[..., Any]) -> bool:
        """Whether ``target`` (given to ``start_background_task``) was engine.io's ping,
        now queued here instead of started as a task."""
        sock = getattr(target, "__self__", None)
        if not isinstance(sock, AsyncSocket) or getattr(target, "__func__", None) is not (
            AsyncSocket._send_ping
        ):
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + sock.server.ping_interval
        self._due.append((deadline, sock))
        if self._timer is None:
            self._timer = loop.call_at(deadline, self._fire)
        return True

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time() + _EARLY
        due = self._due
        while due and due[0][0] <= now:
            _ping(due.popleft()[1])
        self._timer = loop.call_at(due[0][0], self._fire) if due else None


def _ping(sock: AsyncSocket) -> None:
    # what AsyncSocket._send_ping does after its sleep; its send() only checks the ping
    # timeout (which cannot have passed: last_ping is now) before queueing the packet
    if not sock.closing and not sock.closed:
        sock.last_ping = time.time()
        sock.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
