"""engine.io's socket with one timer per socket for its wait (server/eiosocket.py): what
``poll`` returns and raises is python-engineio's own, and its deadline still holds. Deadlines
are checked on the loop's clock, as lower bounds only (a busy machine makes them late, never
early)."""

from __future__ import annotations

import asyncio
import gc
import time
import weakref
from typing import Any

import aiohttp
import engineio
import pytest
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from callbox.server.eiosocket import Socket, adopt, put_each
from callbox.server.outqueue import OutQueue
from callbox.server.sio import Budget, CallboxSocketServer

#: ping_interval + ping_timeout: the wait's deadline
DEADLINE = 0.3


def make_socket(sid: str = "s1") -> Socket:
    server = engineio.AsyncServer(async_mode="aiohttp", ping_interval=0.1, ping_timeout=0.2)
    sock = AsyncSocket(server, sid)
    server.sockets[sid] = sock
    adopt(sock)
    assert isinstance(sock, Socket)
    return sock


def message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


async def test_queued_packets_come_together_and_a_close_ends_the_next_poll() -> None:
    sock = make_socket()
    for text in ("a", "b", "c"):
        await sock.queue.put(message(text))
    await sock.queue.put(None)
    assert [p.data for p in await sock.poll()] == ["a", "b", "c"]
    assert await sock.poll() == []
    assert sock.queue.qsize() == 0


async def test_a_wait_ends_with_the_packet_that_comes() -> None:
    sock = make_socket()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, sock.queue.put_nowait, message("late"))
    assert [p.data for p in await sock.poll()] == ["late"]


async def test_no_packet_within_the_deadline_is_queue_empty_and_leaves_the_task_uncancelled() -> (
    None
):
    sock = make_socket()
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(eio_exceptions.QueueEmpty):
        await sock.poll()
    assert loop.time() - began >= DEADLINE
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # and the task goes on, not cancelled


async def test_the_deadline_counts_from_each_wait_not_the_first() -> None:
    sock = make_socket()
    loop = asyncio.get_running_loop()
    # the watchdog was set for the first wait's deadline; the second wait began later and
    # its packet comes before its own deadline (but after the first wait's)
    loop.call_later(0.2, sock.queue.put_nowait, message("one"))
    loop.call_later(0.2 + DEADLINE * 0.8, sock.queue.put_nowait, message("two"))
    assert [p.data for p in await sock.poll()] == ["one"]
    assert [p.data for p in await sock.poll()] == ["two"]


@pytest.mark.parametrize("queue", ["asyncio.Queue", "OutQueue"])
async def test_a_packet_that_comes_as_the_deadline_passes_is_sent_not_dropped(queue: str) -> None:
    """A loop that runs late (a busy machine) runs the put and the watchdog in one go: the
    wait was overdue, but a packet is there (OutQueue hands it to the waiting future)."""
    sock = make_socket()
    if queue == "OutQueue":
        sock.queue = OutQueue()
    loop = asyncio.get_running_loop()
    loop.call_later(DEADLINE * 0.3, time.sleep, DEADLINE * 1.2)  # the loop stalls
    loop.call_later(DEADLINE * 0.9, sock.queue.put_nowait, message("late"))
    assert [p.data for p in await sock.poll()] == ["late"]
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_writer_busy_past_the_deadline_is_not_cancelled_when_it_waits_again() -> None:
    sock = make_socket()
    await sock.queue.put(message("one"))
    assert [p.data for p in await sock.poll()] == ["one"]
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, sock.queue.put_nowait, message("two"))
    await asyncio.sleep(DEADLINE * 1.5)  # sending, not waiting, past a deadline
    assert [p.data for p in await sock.poll()] == ["two"]


async def test_a_cancelled_wait_is_queue_empty_as_in_engineio() -> None:
    sock = make_socket()

    async def writer() -> Any:
        try:
            return await sock.poll()
        except eio_exceptions.QueueEmpty:
            return "queue empty"

    task = asyncio.create_task(writer())
    await asyncio.sleep(0.01)
    task.cancel()
    assert await task == "queue empty"


async def test_the_watchdog_stops_once_nothing_waits_on_a_gone_socket() -> None:
    sock = make_socket()
    poll = asyncio.create_task(sock.poll())
    await asyncio.sleep(0.01)
    del sock.server.sockets[sock.sid]  # forgotten while its writer waits
    with pytest.raises(eio_exceptions.QueueEmpty):  # that wait still has its deadline
        await poll
    await asyncio.sleep(DEADLINE * 1.5)
    assert sock._watchdog is None


async def test_close_stops_the_watchdog_when_nothing_waits() -> None:
    sock = make_socket()
    await sock.queue.put(message("a"))
    poll = asyncio.create_task(sock.poll())
    await asyncio.sleep(0.01)
    assert [p.data for p in await poll] == ["a"]
    second = asyncio.create_task(sock.poll())
    await asyncio.sleep(0.01)
    assert sock._watchdog is not None
    await sock.close(wait=False, abort=True)
    assert sock._watchdog is not None  # a wait is still on: its deadline holds
    await sock.queue.put(None)
    assert await second == []
    await sock.close(wait=False, abort=True)
    assert sock._watchdog is None


class Refusing:
    async def engine_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        return False

    def engine_disconnect(self, eio_sid: str) -> None:
        pass

    def refused(self, eio_sid: str, kind: str, detail: str) -> None:
        pass


async def test_the_server_gives_each_socket_the_class_at_its_connect() -> None:
    server = CallboxSocketServer(
        guard=Refusing(), budget=Budget(1 << 20, 1 << 22), connect_deadline=5,
        async_mode="aiohttp",
    )  # fmt: skip
    sock = AsyncSocket(server.eio, "s1")
    server.eio.sockets["s1"] = sock
    assert await server._handle_eio_connect("s1", {}) is False
    assert type(sock) is Socket
    adopt(sock)  # once only
    assert type(sock) is Socket


async def test_send_queues_refuses_when_closed_and_closes_when_a_ping_went_unanswered() -> None:
    sock = make_socket()
    await sock.send(message("a"))
    assert [p.data for p in await sock.poll()] == ["a"]
    sock.last_ping = time.time()  # a ping out, not yet overdue: still sent
    await sock.send(message("b"))
    assert [p.data for p in await sock.poll()] == ["b"]
    sock.last_ping = time.time() - 10  # its pong is overdue: the client is gone
    await sock.send(message("c"))
    assert sock.closed and sock.queue.empty()  # not sent (nor is CLOSE, as in engine.io)
    with pytest.raises(eio_exceptions.SocketIsClosedError):
        await sock.send(message("d"))


class Text(str):
    """A message that can be watched with a weak reference."""


class FakeWebsocket:
    """engine.io's websocket wrapper as `_websocket_handler` uses it: ``_sock``'s send
    methods and ``receive``, ``close``."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.incoming: asyncio.Queue[str | None] = asyncio.Queue()
        self._sock = self

    async def send_str(self, text: str) -> None:
        self.sent.append(text)

    async def send_bytes(self, data: bytes) -> None:
        raise AssertionError("no binary packets here")

    async def receive(self) -> aiohttp.WSMessage:
        """As aiohttp's: a text message, or CLOSED (no data) once ``None`` is queued."""
        data = await self.incoming.get()
        if data is None:
            return aiohttp.WSMessage(aiohttp.WSMsgType.CLOSED, None, None)
        return aiohttp.WSMessage(aiohttp.WSMsgType.TEXT, data, None)

    async def close(self) -> None:
        pass


async def test_an_idle_socket_keeps_neither_its_last_packet_nor_its_last_message() -> None:
    """A newcomer's offers weigh MiB: the writer and the reader, waiting for what comes
    next, must not still hold what went before."""
    sock = make_socket()
    received: list[Any] = []

    async def receive(pkt: eio_packet.Packet) -> None:
        received.append(pkt.packet_type)

    sock.receive = receive
    ws = FakeWebsocket()
    handler = asyncio.create_task(sock._websocket_handler(ws))
    out = message("offers" * 1000)
    gone_out = weakref.ref(out)
    await sock.send(out)
    incoming = Text("3")  # a PONG
    gone_in = weakref.ref(incoming)
    ws.incoming.put_nowait(incoming)
    del out, incoming
    for _ in range(20):
        await asyncio.sleep(0)
    assert ws.sent == ["4" + "offers" * 1000] and received == [eio_packet.PONG]
    gc.collect()
    assert gone_out() is None and gone_in() is None  # both still wait, holding nothing
    ws.incoming.put_nowait(None)  # the client goes
    await handler


async def test_put_each_queues_where_send_would_at_once_and_names_the_others() -> None:
    open_, pinged, overdue, closed = (make_socket(s) for s in ("s1", "s2", "s3", "s4"))
    pinged.last_ping = time.time()  # a ping out, not yet overdue: queued
    overdue.last_ping = time.time() - 10  # its pong is overdue: send must close it
    await closed.close(wait=False, abort=True)
    sockets: dict[str, Any] = {s.sid: s for s in (open_, pinged, overdue, closed)}
    sockets["plain"] = AsyncSocket(open_.server, "plain")  # not adopted: engine.io's send
    parts = [message("a"), message("b")]
    sids = ["s1", "s2", "s3", "s4", "plain", "gone"]
    assert put_each(sockets, sids, parts) == ["s3", "s4", "plain", "gone"]
    for sock in (open_, pinged):
        assert [p.data for p in await sock.poll()] == ["a", "b"]
    assert overdue.queue.empty() and closed.queue.empty()
