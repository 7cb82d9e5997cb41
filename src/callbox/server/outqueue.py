"""The queue of packets waiting to be written to one engine.io socket, lighter than the
``asyncio.Queue`` engine.io makes by default (its ``create_queue``, overridden in
server/engine.py).

An idle connection keeps its queue empty, with engine.io's writer waiting in ``get()``
(``asyncio.wait_for(queue.get(), ping_interval + ping_timeout)``). ``asyncio.Queue`` holds
four deques from the start (its items, getters, putters, and its ``join`` event's waiters:
~3 KB), and its ``get()`` is a coroutine, which ``wait_for`` wraps in a task of its own (~1 KB
with its frame and context). Measured with tracemalloc on 2,000 idle connections:
bench/README.md, "idle". Here nothing is allocated until it is needed, and ``get()`` returns
a future (``wait_for`` waits on it as it is, no task).

What engine.io uses, and nothing else: ``get``, ``get_nowait``, ``put``, ``put_nowait``,
``task_done``, ``join``, ``qsize`` (``engineio/async_socket.py``). The queue has no size
limit (engine.io makes it without one). A packet put while a ``get()`` waits goes to that
getter's future at once; a getter whose wait ended (timed out or cancelled) is skipped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class OutQueue:
    __slots__ = ("_loop", "_items", "_getters", "_unfinished", "_joiners")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._items: deque[Any] | None = None
        self._getters: list[asyncio.Future[Any]] | None = None
        self._unfinished = 0
        self._joiners: list[asyncio.Future[None]] | None = None

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def pending(self) -> tuple[Any, ...]:
        """The items waiting, oldest first (for the send budget's count)."""
        return tuple(self._items) if self._items else ()

    def put_nowait(self, item: Any) -> None:
        self._unfinished += 1
        getters = self._getters
        while getters:
            getter = getters.pop(0)
            if not getter.done():
                if not getters:
                    self._getters = None
                getter.set_result(item)
                return
        self._getters = None
        if self._items is None:
            self._items = deque()
        self._items.append(item)

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        items = self._items
        if not items:
            raise asyncio.QueueEmpty
        item = items.popleft()
        if not items:
            self._items = None  # an idle socket keeps no deque
        return item

    def get(self) -> asyncio.Future[Any]:
        """A future of the next item: done already if one is waiting."""
        future: asyncio.Future[Any] = self._loop.create_future()
        if self._items:
            future.set_result(self.get_nowait())
        elif self._getters is None:
            self._getters = [future]
        else:  # a getter whose wait ended stays until a put skips it, or until now
            self._getters = [g for g in self._getters if not g.done()]
            self._getters.append(future)
        return future

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0 and self._joiners:
            for joiner in self._joiners:
                if not joiner.done():
                    joiner.set_result(None)
            self._joiners = None

    async def join(self) -> None:
        """Until every item put has been taken and marked done (``task_done``)."""
        if self._unfinished == 0:
            return
        joiner: asyncio.Future[None] = self._loop.create_future()
        if self._joiners is None:
            self._joiners = []
        self._joiners.append(joiner)
        await joiner
