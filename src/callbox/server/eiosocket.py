"""engine.io's socket, with cheaper waits: one timer per socket for its deadlines, not a task,
a future and a timer for every packet sent and every message received.

python-engineio's ``AsyncSocket`` wraps each wait for a packet to send (``poll``) in
``asyncio.wait_for(..., ping_interval + ping_timeout)``, and each wait for a websocket message
in a new task and a ``wait_for``. On Python 3.11 ``wait_for`` is a task, a future and a
timer of its own. ``bench/waits.py`` on uvloop, packets that come apart: 11.3 us a packet
sent against 4.8 here, 11.3 us a message received against 4.5. In the lobby a handshake
sends ~210 packets; with every pair in its own room ~40 packets and messages together.

:class:`Socket` keeps both deadlines with one timer per socket (:meth:`Socket._watch`) that
fires about once per deadline: each wait notes when it began, and the timer, when it fires,
cancels a wait that has lasted the whole deadline, or comes back when the oldest wait would.
A direct websocket (no long-polling first, as callbox's page and Python peers connect) gets
:meth:`Socket._websocket_handler`'s loop: engine.io's own, each message read in the
handler's task; an upgrade from long-polling keeps engine.io's handler, whose handshake is
longer. What ``poll`` returns and raises, and how the loop ends, are python-engineio's
(pinned below its next major version); tests/unit/test_eiosocket.py pins them down.

Engine.io makes its sockets itself, with no hook for the class: :func:`adopt` gives one the
class when callbox first sees it (its connect event, before anything waits on it). That, and
aiohttp's websocket under engine.io's wrapper (``_sock``: the wrapper's ``send`` checks
``inspect.iscoroutinefunction`` on every packet, its ``wait`` is one more coroutine per
message), read for its send methods and ``receive``, are the reaches into engine.io here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from callbox.server import frames

T = TypeVar("T")


class Socket(AsyncSocket):  # type: ignore[misc]
    connected: bool  # engine.io's, set in its __init__
    #: tasks waiting (to send, to receive), each with when it began (the loop's clock)
    _waits: dict[asyncio.Task[Any], float] | None = None
    _watchdog: asyncio.TimerHandle | None = None
    #: tasks the watchdog cancelled (their deadline passed): a TimeoutError, not a cancel;
    #: made when that first happens (a set is ~200 bytes, on every idle connection)
    _overdue: set[asyncio.Task[Any]] | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def poll(self) -> list[Any]:
        """The packets to send, at least one; ``[]`` once the socket is closed (``None``
        queued); :class:`engineio.exceptions.QueueEmpty` when none came within the deadline
        (or the wait was cancelled): all as python-engineio's own ``poll``."""
        task = asyncio.current_task()
        assert task is not None
        return await self._poll(task)

    async def _poll(self, task: asyncio.Task[Any]) -> list[Any]:
        """:meth:`poll` in ``task`` (asyncio's ``current_task`` costs a ``getpid`` call on
        Python 3.11: the writer names its task once)."""
        queue = self.queue
        if not queue.empty():
            first = queue.get_nowait()
        else:
            waiter = queue.get()  # OutQueue: a future; asyncio.Queue: a coroutine
            try:
                first = await self._timed(waiter, task)
            except TimeoutError:
                # the deadline passed; but a late loop may have run the put and the watchdog
                # in one go: a packet handed over (OutQueue) or queued is sent, not dropped
                if isinstance(waiter, asyncio.Future) and waiter.done() and not waiter.cancelled():
                    first = waiter.result()
                elif not queue.empty():
                    first = queue.get_nowait()
                else:
                    raise eio_exceptions.QueueEmpty() from None
            except asyncio.CancelledError:
                raise eio_exceptions.QueueEmpty() from None
        queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is None:  # left for the next poll, which ends the writer
                queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    async def send(self, pkt: Any) -> None:
        """Queue a packet, as engine.io's ``send``: its ping-timeout check awaited only when
        a ping is out (a coroutine less per packet)."""
        if self.closed:
            raise eio_exceptions.SocketIsClosedError()
        if self.last_ping and not await self.check_ping_timeout():
            return
        self.queue.put_nowait(pkt)  # engine.io's queue is unbounded: put never waits

    async def close(self, *args: Any, **kwargs: Any) -> None:
        await super().close(*args, **kwargs)
        if not self._waits:  # else the watchdog goes on until they end
            self._stop_watching()

    async def _websocket_handler(self, ws: Any) -> None:
        if self.connected:  # an upgrade from long-polling: engine.io's handshake and loop
            await super()._websocket_handler(ws)
            return
        self.connected = self.upgraded = True
        writer = asyncio.ensure_future(self._write(ws))
        reader = asyncio.current_task()
        assert reader is not None
        await self._read(ws, reader)
        await self.queue.put(None)  # the writer ends
        await writer
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _read(self, ws: Any, task: asyncio.Task[Any]) -> None:
        """Every message to :meth:`receive`, in order, until the websocket closes, a message
        is too large, or none came within the deadline (then the socket ends)."""
        limit = self.server.max_http_buffer_size
        receive = ws._sock.receive  # aiohttp's, as engine.io's ``wait`` reads it
        trigger, run_async = self.server._trigger_event, self.server.async_handlers
        while True:
            try:
                data = (await self._timed(receive(), task)).data
            except (Exception, asyncio.CancelledError):  # closed, the deadline, cancelled
                return
            if not isinstance(data, str | bytes) or len(data) > limit:
                return  # closed (engine.io's wait raises OSError then), or too large
            try:
                if data[:1] == "4" and data[1:2].isdigit():  # a socket.io packet, as text
                    # what engine.io's receive does with it, without its packet object
                    await trigger("message", self.sid, data[1:], run_async=run_async)
                else:
                    await self.receive(eio_packet.Packet(encoded_packet=data))
            except eio_exceptions.UnknownPacketError:
                pass
            except eio_exceptions.SocketIsClosedError:
                return
            except Exception:  # engine.io logs it and goes on
                self.server.logger.exception("Unknown receive error")
            del data  # not held while the next message is awaited

    async def _write(self, ws: Any) -> None:
        response = ws._sock  # aiohttp's WebSocketResponse
        send_text, send_bytes = response.send_str, response.send_bytes
        transport = frames.plain(ws)
        task = asyncio.current_task()
        assert task is not None
        while True:
            try:
                packets = await self._poll(task)
            except eio_exceptions.QueueEmpty:
                break
            if not packets:  # closed
                break
            try:
                # the batch in one system call where it may go directly (server/frames.py)
                if transport is None or not frames.write_batch(response, transport, packets):
                    for pkt in packets:
                        encoded = pkt.encode()
                        await (send_bytes if isinstance(encoded, bytes) else send_text)(encoded)
                        del pkt, encoded
            except (Exception, asyncio.CancelledError):
                break
            # nothing of the batch is kept while the next is awaited: an idle socket would
            # hold its last message (and its encoding: MiB, for a newcomer's offers)
            del packets
        await ws.close()

    # --- the deadlines ---------------------------------------------------------------------

    def _deadline(self) -> float:
        return float(self.server.ping_interval + self.server.ping_timeout)

    async def _timed(self, awaitable: Awaitable[T], task: asyncio.Task[Any]) -> T:
        """``awaitable``'s result in ``task`` (the one awaiting it); :class:`TimeoutError`
        when it takes the whole deadline."""
        loop = self._loop
        if loop is None or self._waits is None:
            self._loop = loop = asyncio.get_running_loop()
            self._waits = {}
        self._waits[task] = now = loop.time()
        if self._watchdog is None:
            self._watchdog = loop.call_at(now + self._deadline(), self._watch)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if not self._overdue or task not in self._overdue:
                raise
            raise TimeoutError("nothing within engine.io's deadline") from None
        finally:
            self._waits.pop(task, None)
            overdue = self._overdue
            if overdue and task in overdue:  # the watchdog's cancel is spent here, not left
                overdue.discard(task)
                task.uncancel()

    def _watch(self) -> None:
        self._watchdog = None
        if not self._waits and self._done():
            return  # nothing waits, and nothing will: the socket has gone
        if self._waits is None:
            return
        loop = self._loop
        assert loop is not None
        now, deadline = loop.time(), self._deadline()
        overdue = self._overdue or set()
        for task, since in list(self._waits.items()):
            if now - since >= deadline and task not in overdue:
                overdue.add(task)
                task.cancel()
        if overdue:
            self._overdue = overdue
        waiting = [since for task, since in self._waits.items() if task not in overdue]
        # back when the oldest wait would be overdue; none (busy): a deadline from now
        when = min(waiting) + deadline if waiting else now + deadline
        self._watchdog = loop.call_at(when, self._watch)

    def _done(self) -> bool:
        """Closed, or engine.io has forgotten it."""
        return bool(self.closed) or self.server.sockets.get(self.sid) is not self

    def _stop_watching(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None


def put_each(sockets: dict[str, Any], sids: list[str], parts: list[Any]) -> list[str]:
    """Queue ``parts`` to each socket of ``sids`` (a broadcast's recipients, or one ack)
    where :meth:`Socket.send` would queue them without waiting, in one loop, no coroutine
    each; the sids whose socket did not take them (not a :class:`Socket`, gone, closed, or
    its pong overdue): :meth:`Socket.send` them (it raises, or closes the socket)."""
    refused: list[str] = []
    now = time.time()
    for sid in sids:
        sock = sockets.get(sid)
        if sock.__class__ is not Socket or sock.closed:
            refused.append(sid)
            continue
        last_ping = sock.last_ping
        if last_ping and now - last_ping > sock.server.ping_timeout:
            refused.append(sid)
            continue
        put = sock.queue.put_nowait
        for part in parts:
            put(part)
    return refused


def adopt(sock: Any) -> None:
    """Give an engine.io socket :class:`Socket`'s waits (it has no state of its own until it
    first waits)."""
    if type(sock) is AsyncSocket:
        sock.__class__ = Socket
