"""engine.io's websocket loop as server/eiosocket.py runs it, over a real websocket on
loopback (an aiohttp server with python-engineio, an aiohttp client speaking engine.io v4):
messages both ways in order, pings answered keep a socket open past its deadlines, a silent
client is dropped, a client's close ends the socket, an upgrade from long-polling works."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import engineio
import pytest
from aiohttp import web

from callbox.server import frames
from callbox.server.eiosocket import Socket, adopt
from tests.aiohttp_site import serve


@dataclass
class Engine:
    eio: engineio.AsyncServer
    url: str
    received: asyncio.Queue[tuple[str, str]] = field(default_factory=asyncio.Queue)
    gone: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


async def start(ping_interval: float, ping_timeout: float) -> tuple[Engine, web.AppRunner]:
    eio = engineio.AsyncServer(
        async_mode="aiohttp", ping_interval=ping_interval, ping_timeout=ping_timeout
    )
    app = web.Application()
    eio.attach(app)
    runner, base = await serve(app)
    engine = Engine(eio, f"{base}/engine.io/?EIO=4")

    async def connect(sid: str, environ: dict[str, Any]) -> None:
        adopt(eio.sockets[sid])

    async def message(sid: str, data: str) -> None:
        await engine.received.put((sid, data))

    async def disconnect(sid: str, reason: Any) -> None:
        await engine.gone.put(sid)

    eio.on("connect", connect)
    eio.on("message", message)
    eio.on("disconnect", disconnect)
    return engine, runner


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    engine, runner = await start(ping_interval=0.4, ping_timeout=1.6)
    yield engine
    await runner.cleanup()


async def open_websocket(
    session: aiohttp.ClientSession, engine: Engine
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    ws = await session.ws_connect(engine.url + "&transport=websocket")
    opened = await ws.receive_str()
    assert opened.startswith("0")
    return ws, json.loads(opened[1:])["sid"]


async def messages(ws: aiohttp.ClientWebSocketResponse, count: int, *, pong: bool) -> list[str]:
    """The next ``count`` engine.io messages; pings answered when ``pong``."""
    got: list[str] = []
    while len(got) < count:
        text = await asyncio.wait_for(ws.receive_str(), 10)
        if text == "2":
            if pong:
                await ws.send_str("3")
        elif text.startswith("4"):
            got.append(text[1:])
    return got


async def test_messages_go_both_ways_in_order(engine: Engine) -> None:
    async with aiohttp.ClientSession() as session:
        ws, sid = await open_websocket(session, engine)
        assert type(engine.eio.sockets[sid]) is Socket
        for n in range(200):
            await ws.send_str(f"4up{n}")
        got = [await asyncio.wait_for(engine.received.get(), 10) for _ in range(200)]
        assert got == [(sid, f"up{n}") for n in range(200)]
        for n in range(200):
            await engine.eio.send(sid, f"down{n}")
        assert await messages(ws, 200, pong=True) == [f"down{n}" for n in range(200)]
        await ws.close()
    assert await asyncio.wait_for(engine.gone.get(), 10) == sid  # the client's close ends it


async def test_pings_answered_keep_a_socket_open_past_its_deadlines(engine: Engine) -> None:
    async with aiohttp.ClientSession() as session:
        ws, sid = await open_websocket(session, engine)
        deadline = engine.eio.ping_interval + engine.eio.ping_timeout
        loop = asyncio.get_running_loop()
        until = loop.time() + 2.2 * deadline  # pings and pongs only, both ways
        while loop.time() < until:
            try:
                text = await asyncio.wait_for(ws.receive_str(), until - loop.time())
            except TimeoutError:
                break
            assert text == "2"
            await ws.send_str("3")
        assert sid in engine.eio.sockets and engine.gone.empty()
        await engine.eio.send(sid, "still here")
        assert await messages(ws, 1, pong=True) == ["still here"]
        await ws.send_str("4and me")
        assert await asyncio.wait_for(engine.received.get(), 10) == (sid, "and me")


async def test_a_silent_client_is_dropped(engine: Engine) -> None:
    async with aiohttp.ClientSession() as session:
        ws, sid = await open_websocket(session, engine)
        assert await asyncio.wait_for(engine.gone.get(), 30) == sid  # it never answers pings
        while (await asyncio.wait_for(ws.receive(), 30)).type not in (
            aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING
        ):  # fmt: skip
            pass
    sock = engine.eio.sockets.get(sid)
    assert sock is None or sock.closed


async def test_an_upgrade_from_long_polling_keeps_engineio_handshake(engine: Engine) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(engine.url + "&transport=polling") as response:
            opened = await response.text()
        sid = json.loads(opened[1:])["sid"]
        assert type(engine.eio.sockets[sid]) is Socket
        ws = await session.ws_connect(engine.url + f"&transport=websocket&sid={sid}")
        await ws.send_str("2probe")
        assert await ws.receive_str() == "3probe"
        await ws.send_str("5")  # upgrade
        await ws.send_str("4over the websocket")
        assert await asyncio.wait_for(engine.received.get(), 10) == (sid, "over the websocket")
        await engine.eio.send(sid, "back")
        assert await messages(ws, 1, pong=True) == ["back"]
        await ws.close()
    assert await asyncio.wait_for(engine.gone.get(), 10) == sid


class BatchSpy:
    """Watches server/frames.py's ``write_batch`` (the real one runs): each call's batch
    size and whether its frames went directly."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[int, bool]] = []
        real = frames.write_batch

        def watched(response: Any, transport: Any, packets: list[Any]) -> bool:
            went = real(response, transport, packets)
            self.calls.append((len(packets), went))
            return went

        monkeypatch.setattr(frames, "write_batch", watched)


#: engine.io payloads ("4" + text) on both sides of each header size (RFC 6455 5.2: 7 bits,
#: 16 bits, 64 bits), an empty message, and text that is not ASCII
TEXTS = ["", "a" * 124, "b" * 125, "c" * 65534, "d" * 65535, "e" * 200_000, "ü€" * 40_000]


@pytest.mark.parametrize("compress", [0, 15], ids=["plain", "deflate"])
async def test_a_batch_arrives_whole_and_in_order_in_one_write_unless_compressed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, compress: int
) -> None:
    spy = BatchSpy(monkeypatch)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(engine.url + "&transport=websocket", compress=compress)
        sid = json.loads((await ws.receive_str())[1:])["sid"]
        assert ws.compress == compress
        for text in TEXTS:  # queued in one go: the writer wakes to all of them
            await engine.eio.send(sid, text)
        assert await messages(ws, len(TEXTS), pong=True) == TEXTS
        await ws.close()
    # the frames went in one writev (engine.io's OPEN went before, in its own batch); with
    # deflate negotiated, aiohttp's writer sent them all
    if compress:
        assert spy.calls == []
    else:
        assert spy.calls[-1] == (len(TEXTS), True)


async def test_a_client_slow_to_read_gets_the_rest_through_aiohttps_flow_control(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = BatchSpy(monkeypatch)
    chunk = "x" * (1 << 16)
    async with aiohttp.ClientSession() as session:
        ws, sid = await open_websocket(session, engine)
        for n in range(40):  # 40 batches of 4 x 64 KiB, while the client reads nothing
            for k in range(4):
                await engine.eio.send(sid, f"{n}.{k}:{chunk}")
            await asyncio.sleep(0.02)
        got = await messages(ws, 160, pong=True)
        assert [g.split(":")[0] for g in got] == [f"{n}.{k}" for n in range(40) for k in range(4)]
        assert all(g.endswith(chunk) for g in got)
    # the first went directly; once the transport held unsent bytes, aiohttp's writer sent
    # them (it waits for the transport to drain)
    assert (4, True) in spy.calls
    assert any(not went for _, went in spy.calls)


async def test_socketio_packets_and_other_messages_arrive_alike(engine: Engine) -> None:
    """A message that carries a socket.io packet ("4" then its type digit) is handed to the
    message event directly; any other goes through engine.io's packet and receive: both
    arrive as engine.io would hand them, in order."""
    sent = ['2["newOffer",{"sdp":"v=0"}]', "hello", '21["x"]', '{"a":1}', "", "٣"]
    async with aiohttp.ClientSession() as session:
        ws, sid = await open_websocket(session, engine)
        for text in sent:
            await ws.send_str("4" + text)
        await ws.send_str("4done")
        got: list[tuple[str, Any]] = []
        while not got or got[-1] != (sid, "done"):
            got.append(await asyncio.wait_for(engine.received.get(), 10))
    # engine.io decodes a payload that is JSON and not a number ('{"a":1}' -> a dict)
    expected: list[Any] = [*sent[:3], {"a": 1}, *sent[4:], "done"]
    assert got == [(sid, e) for e in expected]
