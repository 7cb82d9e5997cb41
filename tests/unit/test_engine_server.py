"""callbox's engine.io server (server/engine.py's ``EngineServer``) in this process.

Pings from timers (server/pings.py), with short intervals: they come at the interval, each
after the client's pong, no task sleeps per socket, and a client that stops answering is
dropped. And an upgrade from long-polling: its websocket's request is remembered (the send
budget reads that connection's transport from then on)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket

from callbox.server.engine import EngineServer
from tests.aiohttp_site import serve

INTERVAL = 0.3
TIMEOUT = 0.5


@pytest.fixture
async def engine() -> AsyncIterator[tuple[EngineServer, str]]:
    server = EngineServer(async_mode="aiohttp", ping_interval=INTERVAL, ping_timeout=TIMEOUT)
    app = web.Application()
    server.attach(app)
    runner, base = await serve(app)
    yield server, f"{base}/engine.io/?EIO=4&transport=websocket"
    await server.shutdown()
    await runner.cleanup()


def _ws(url: str) -> str:
    return url.replace("http://", "ws://", 1)


def _ping_tasks() -> list[asyncio.Task[object]]:
    return [
        t
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "AsyncSocket._send_ping"
    ]


async def test_pings_come_at_the_interval_after_each_pong_from_a_timer(
    engine: tuple[EngineServer, str],
) -> None:
    server, url = engine
    async with aiohttp.ClientSession() as http, http.ws_connect(_ws(url)) as ws:
        opened = await ws.receive(timeout=5)
        assert str(opened.data).startswith("0{")
        assert server.pings.waiting == 1 and _ping_tasks() == []
        ponged: float | None = None
        for _ in range(3):
            assert (await ws.receive(timeout=5)).data == "2"
            if ponged is not None:  # a lower bound only: a busy machine makes it later
                assert time.monotonic() - ponged >= INTERVAL * 0.9
            assert server.pings.waiting == 0  # fired; the next one waits for the pong
            sock: AsyncSocket = next(iter(server.sockets.values()))
            assert sock.last_ping is not None
            await ws.send_str("3")
            ponged = time.monotonic()
            await asyncio.sleep(0.05)
            assert server.pings.waiting == 1 and _ping_tasks() == []


async def test_a_client_that_stops_answering_pings_is_dropped(
    engine: tuple[EngineServer, str],
) -> None:
    server, url = engine
    async with aiohttp.ClientSession() as http, http.ws_connect(_ws(url)) as ws:
        await ws.receive(timeout=5)
        assert (await ws.receive(timeout=5)).data == "2"  # not answered
        closed = await ws.receive(timeout=INTERVAL + TIMEOUT + 5)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), closed
    for _ in range(100):  # the handler forgets the socket once its websocket has closed
        if not server.sockets:
            break
        await asyncio.sleep(0.05)
    assert server.sockets == {} and server.pings.waiting == 0


async def test_other_background_tasks_still_run_as_tasks() -> None:
    server = EngineServer(async_mode="aiohttp")
    ran: list[int] = []

    async def work(n: int) -> None:
        ran.append(n)

    task = server.start_background_task(work, 7)
    assert isinstance(task, asyncio.Task)
    await task
    assert ran == [7] and server.pings.waiting == 0


async def test_an_upgrade_remembers_its_websocket_and_says_so(
    engine: tuple[EngineServer, str],
) -> None:
    server, url = engine
    upgraded: list[str] = []
    server.upgraded = upgraded.append
    polling = url.replace("transport=websocket", "transport=polling")
    async with aiohttp.ClientSession() as http:
        async with http.get(polling) as opened:
            body = await opened.text()
        sid = json.loads(body[body.index("{") :])["sid"]
        assert server.websocket_requests == {} and upgraded == []
        async with http.ws_connect(_ws(url) + f"&sid={sid}") as ws:
            await ws.send_str("2probe")
            assert (await ws.receive(timeout=5)).data == "3probe"
            await ws.send_str("5")
            await asyncio.sleep(0.05)
            assert upgraded == [sid]
            request = server.websocket_requests[sid]
            assert "transport=websocket" in request.query_string
            assert server.sockets[sid].upgraded


async def test_sockets_waiting_together_are_each_pinged_once_and_closed_ones_skipped() -> None:
    server = EngineServer(async_mode="aiohttp", ping_interval=INTERVAL)
    socks = [AsyncSocket(server, f"s{n}") for n in range(4)]
    socks[1].closed = True  # closed or closing while it waits: no ping
    for n, sock in enumerate(socks):
        assert server.pings.start(sock._send_ping)
        assert sock.queue.qsize() == 0  # never before its interval
        if n == 2:
            sock.closing = True
        await asyncio.sleep(INTERVAL / 8)
    for _ in range(100):
        if server.pings.waiting == 0:
            break
        await asyncio.sleep(0.05)
    assert server.pings.waiting == 0
    pinged = [[p.packet_type for p in sock.queue.pending()] for sock in socks]
    assert pinged == [[eio_packet.PING], [], [], [eio_packet.PING]]
