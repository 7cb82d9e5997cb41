"""A raw engine.io / socket.io client for attacks: it speaks the wire format by hand, so it
can send what no library would (binary attachments, repeated CONNECTs, garbage) and can stop
reading its socket. Also: the honest call the hardening tests run alongside each attack, and
the server's RSS."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from typing import Any

import aiohttp

from tests.conftest import RunningServer
from tests.integration.server_proc import metric
from tests.integration.sio_client import ANSWER, OFFER, Clients, cand

#: the honest clients connect from here, the attackers from 127.0.0.1: other addresses
HONEST = "127.0.0.2"
MIB = 1024 * 1024


def rss(server: RunningServer) -> float:
    return metric(server, "process_resident_memory_bytes")


def ws_url(server: RunningServer) -> str:
    base = server.url.replace("https://", "wss://").replace("http://", "ws://")
    return base + "/socket.io/?EIO=4&transport=websocket"


class Raw:
    """One engine.io websocket, driven by hand."""

    def __init__(self, server: RunningServer, source: str | None = None) -> None:
        self.server = server
        context: ssl.SSLContext | bool = False if server.http else server.ssl_context()
        local = (source, 0) if source else None
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, local_addr=local)
        )
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self, *, read_buffer: int | None = None) -> Raw:
        """The engine.io handshake (the server's OPEN packet is read)."""
        self.ws = await self._http.ws_connect(ws_url(self.server), max_msg_size=0)
        if read_buffer is not None:  # a client that does not read: keep its window small
            sock = self.ws.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, read_buffer)
        first = await self.ws.receive(timeout=10)
        assert isinstance(first.data, str) and first.data.startswith("0{"), first
        return self

    async def connect(self, **auth: Any) -> str:
        """A socket.io CONNECT; returns the server's answer packet (``40{...}`` or ``44...``)."""
        await self.send("40" + json.dumps(auth))
        while True:  # the server's welcome events may come before its CONNECT answer
            packet = await self.packet()
            if packet[:1] in ("0", "4"):
                return packet

    async def send(self, data: str | bytes) -> None:
        assert self.ws is not None
        if isinstance(data, bytes):
            await self.ws.send_bytes(data)
        else:
            await self.ws.send_str(data)

    async def packet(self, wait: float = 10) -> str:
        """The next socket.io packet (engine.io pings are answered and skipped)."""
        assert self.ws is not None
        while True:
            message = await self.ws.receive(timeout=wait)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"closed: {message.type.name}")
            text = str(message.data)
            if text == "2":
                await self.ws.send_str("3")
                continue
            return text[1:] if text.startswith("4") else text

    async def closed(self, wait: float = 15) -> bool:
        """Read until the server closes the connection; True if it did within ``wait``."""
        assert self.ws is not None
        try:
            async with asyncio.timeout(wait):
                while True:
                    message = await self.ws.receive()
                    if message.type in (
                        aiohttp.WSMsgType.CLOSE,
                        aiohttp.WSMsgType.CLOSED,
                        aiohttp.WSMsgType.CLOSING,
                        aiohttp.WSMsgType.ERROR,
                    ):
                        return True
        except (TimeoutError, aiohttp.ClientError, ConnectionError):
            return self.ws.closed
        return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        await self._http.close()


async def deaf_joiner(server: RunningServer, auth: dict[str, Any]) -> asyncio.StreamWriter:
    """A client that joins (engine.io handshake and socket.io CONNECT over a websocket it
    writes by hand) and then never reads: its receive window is a few KiB from the start,
    so what the server sends it piles up on the server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    tls = None if server.http else server.ssl_context()
    reader, writer = await asyncio.open_connection(
        sock=sock, ssl=tls, server_hostname="localhost" if tls else None
    )
    writer.write(
        b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = ("40" + json.dumps(auth)).encode()
    mask = b"\x01\x02\x03\x04"
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    writer.write(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    await writer.drain()
    return writer


async def honest_call(server: RunningServer, room: str = "honest") -> None:
    """A whole call between two clients from another address: offer, candidates both ways,
    answer, hang-up. Raises if any step fails or is refused."""
    clients = Clients(server, source=HONEST)
    try:
        alice = await clients(userName="alice", room=room, resume=True)
        bob = await clients(userName="bob", room=room, resume=True)
        ack = await alice.call("newOffer", OFFER, wait=20)
        offer_id = ack["offerId"]
        for n in range(3):
            reply = await alice.call(
                "sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)}, wait=20
            )
            assert reply == {"ok": True}, reply
        buffered = await bob.call("newAnswer", {"offerId": offer_id, "answer": ANSWER}, wait=20)
        assert [c["candidate"] for c in buffered] == [cand(n)["candidate"] for n in range(3)]
        await alice.wait_for("answerResponse", wait=20)
        await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(9)}, wait=20)
        assert await alice.wait_for("receivedIceCandidateFromServer", wait=20) == cand(9)
        assert await alice.call("hangup", {"offerId": offer_id}, wait=20) == {"ok": True}
        assert (await bob.wait_for("callEnded", wait=20))["reason"] == "hangup"
    finally:
        await clients.close()
