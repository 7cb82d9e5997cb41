"""engine.io's ping timer as a timer, not a task: the one place callbox reaches into
python-engineio's ``AsyncSocket._send_ping`` (pinned below its next major version).

After each pong, engine.io starts a task per socket (``start_background_task(
socket._send_ping)``) that sleeps one ping interval (25 s), then marks the ping's time
(``last_ping``) and queues a PING packet. An idle connection spends nearly all its life in
that sleep: a task, its coroutine frame, the sleep's future and a context, ~1 KB per socket
(tracemalloc on 2,000 idle connections: bench/README.md, "idle"). engine.io offers no hook
for the ping itself, only ``start_background_task``, which it also uses for other work;
:meth:`Pings.start` is called from there (server/sio.py) and takes over only
``_send_ping``, doing the same thing from a ``call_later`` timer: same interval, same
packet, same ``last_ping``, the same check that the socket is still open. The timer is
not cancelled when its socket closes, as engine.io's task was not (it lives out its
interval, then does nothing): :attr:`Pings.waiting` counts them (the ``ping`` tasks of
``/metrics``). tests/unit/test_engine_server.py pins down what is relied on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket


class Pings:
    __slots__ = ("waiting",)

    def __init__(self) -> None:
        #: timers set and not fired yet (their sockets may have closed meanwhile)
        self.waiting = 0

    def start(self, target: Callable[..., Any]) -> bool:
        """Whether ``target`` (given to ``start_background_task``) was engine.io's ping,
        now started as a timer instead of a task."""
        sock = getattr(target, "__self__", None)
        if not isinstance(sock, AsyncSocket) or getattr(target, "__func__", None) is not (
            AsyncSocket._send_ping
        ):
            return False
        loop = asyncio.get_running_loop()
        loop.call_later(sock.server.ping_interval, self._ping, sock)
        self.waiting += 1
        return True

    def _ping(self, sock: AsyncSocket) -> None:
        # what AsyncSocket._send_ping does after its sleep; its send() only checks the ping
        # timeout (which cannot have passed: last_ping is now) before queueing the packet
        self.waiting -= 1
        if not sock.closing and not sock.closed:
            sock.last_ping = time.time()
            sock.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
