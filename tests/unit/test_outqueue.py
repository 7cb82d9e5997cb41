"""An engine.io socket's outgoing queue (server/outqueue.py): what engine.io's socket does
with it, in its own code (``AsyncSocket.send`` / ``poll`` / ``close``)."""

from __future__ import annotations

import asyncio

import pytest
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from callbox.server.engine import EngineServer
from callbox.server.outqueue import OutQueue


def _message(text: str) -> eio_packet.Packet:
    return eio_packet.Packet(eio_packet.MESSAGE, text)


async def test_engineio_sockets_get_one_and_poll_in_order() -> None:
    server = EngineServer(async_mode="aiohttp")
    sock = AsyncSocket(server, "sid")
    assert isinstance(sock.queue, OutQueue)
    for text in ("a", "b", "c"):
        await sock.send(_message(text))
    assert [p.data for p in await sock.poll()] == ["a", "b", "c"]
    assert sock.queue.qsize() == 0
    await sock.queue.join()  # every packet taken was marked done by poll


async def test_a_waiting_poll_gets_what_is_put_then_the_rest() -> None:
    sock = AsyncSocket(EngineServer(async_mode="aiohttp"), "sid")
    poll = asyncio.ensure_future(sock.poll())
    await asyncio.sleep(0)
    assert not poll.done()
    sock.queue.put_nowait(_message("first"))
    sock.queue.put_nowait(_message("second"))
    assert [p.data for p in await poll] == ["first", "second"]


async def test_none_ends_the_poll_and_stays_for_the_next() -> None:
    # engine.io's writer stops on None; poll() puts it back for whoever polls next
    sock = AsyncSocket(EngineServer(async_mode="aiohttp"), "sid")
    await sock.queue.put(_message("last"))
    await sock.queue.put(None)
    assert [p.data for p in await sock.poll()] == ["last"]
    assert await sock.poll() == []


async def test_a_get_that_timed_out_is_skipped_and_nothing_is_lost() -> None:
    queue = OutQueue()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(queue.get(), 0.01)
    queue.put_nowait("x")
    assert queue.qsize() == 1 and queue.pending() == ("x",)
    assert await asyncio.wait_for(queue.get(), 1) == "x"
    assert queue.pending() == ()


async def test_getters_are_served_in_turn() -> None:
    queue = OutQueue()
    first, second = queue.get(), queue.get()
    second_too = queue.get()
    second.cancel()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert (await first, await second_too) == (1, 2)
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_join_waits_for_every_item_to_be_done() -> None:
    queue = OutQueue()
    await queue.join()  # nothing put: at once
    queue.put_nowait("a")
    joined = asyncio.ensure_future(queue.join())
    assert queue.get_nowait() == "a"
    await asyncio.sleep(0)
    assert not joined.done()  # taken but not done
    queue.task_done()
    await asyncio.wait_for(joined, 1)
    with pytest.raises(ValueError, match="too many"):
        queue.task_done()


async def test_engineio_never_asks_for_a_bounded_queue() -> None:
    with pytest.raises(TypeError, match="no arguments"):
        EngineServer(async_mode="aiohttp").create_queue(10)
