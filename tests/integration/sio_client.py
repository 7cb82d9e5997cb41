"""A test client over python-socketio: records every event, TLS verified against our CA."""

from __future__ import annotations

import asyncio
import itertools
import ssl
import uuid
from collections import defaultdict
from typing import Any

import aiohttp
import socketio

from callbox.peer.signaling_client import say_goodbye
from tests.conftest import RunningServer

SEED_EVENTS = (
    "welcome",
    "availableOffers",
    "newOfferAwaiting",
    "answerResponse",
    "receivedIceCandidateFromServer",
    "offerRemoved",
    "callEnded",
    "signalingError",
    "renegotiate",
    "offerDeclined",
)

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}


def cand(n: int) -> dict[str, Any]:
    return {
        "candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {40000 + n} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    }


async def disconnect_cleanly(sio: socketio.AsyncClient) -> None:
    """Disconnect so the server sees a deliberate leave, not a dropped socket."""
    await say_goodbye(sio)
    await sio.disconnect()


class Client:
    """One connected test client; ``events[name]`` lists payloads in arrival order."""

    def __init__(
        self,
        server: RunningServer,
        source: str | None = None,
        headers: dict[str, str] | None = None,
        transports: list[str] | None = None,
    ) -> None:
        self.server = server
        #: the local address to connect from (127.0.0.2: another client address than 127.0.0.1)
        self.source = source
        #: extra HTTP headers of the connection (e.g. X-Forwarded-For)
        self.headers = headers or {}
        self.transports = transports or ["websocket"]
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._changed = asyncio.Event()
        self.disconnected = asyncio.Event()
        #: the sequence number of the last targeted event received (for ``auth.lastSeq``)
        self.last_seq = 0
        #: while True, arriving events are dropped as if lost in transit
        self.deaf = False
        self._http: aiohttp.ClientSession | None = None
        self.sio: socketio.AsyncClient | None = None
        self.user_name = ""

    async def connect(self, wait: float = 10, **auth: Any) -> Client:
        context: ssl.SSLContext | bool = (
            False
            if self.server.http
            else ssl.create_default_context(cafile=str(self.server.ca_path))
        )
        local = (self.source, 0) if self.source else None
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, local_addr=local)
        )
        self.sio = socketio.AsyncClient(http_session=self._http, reconnection=False)
        for name in SEED_EVENTS:
            self.sio.on(name, self._recorder(name))
        self.sio.on("disconnect", lambda *_: self.disconnected.set())
        refused: list[Any] = []
        self.sio.on("connect_error", refused.append)
        try:
            await self.sio.connect(
                self.server.url,
                auth=auth,
                transports=self.transports,
                wait_timeout=wait,
                headers=self.headers,
            )
        except socketio.exceptions.ConnectionError as e:
            await self.close()
            # the server's reason (e.g. {"message": "unauthorized"}) arrives as connect_error
            raise socketio.exceptions.ConnectionError(f"refused: {refused}") from e
        except BaseException:
            await self.close()
            raise
        welcome = await self.wait_for("welcome")
        self.user_name = welcome["userName"]
        await self.wait_for("availableOffers")
        return self

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None, *rest: Any) -> None:
            if self.deaf:  # an injected fault: this event is lost on its way
                return
            if rest and isinstance(rest[0], int):  # the sequence number of a targeted event
                self.last_seq = rest[0]
            self.events[name].append(data)
            self._changed.set()

        return record

    async def wait_for(self, name: str, count: int = 1, wait: float = 15) -> Any:
        """Wait until ``count`` events ``name`` arrived; return the last of them."""
        async with asyncio.timeout(wait):
            while len(self.events[name]) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events[name][count - 1]

    async def call(self, event: str, data: Any = None, wait: float = 15) -> Any:
        assert self.sio is not None
        return await self.sio.call(event, data, timeout=wait)

    async def emit(self, event: str, data: Any = None) -> None:
        assert self.sio is not None
        await self.sio.emit(event, data)

    async def close(self) -> None:
        if self.sio is not None:
            await disconnect_cleanly(self.sio)
            await self.sio.eio.disconnect()  # also after a refused namespace connect
        if self._http is not None:
            await self._http.close()
            self._http = None
            # aiohttp's TLS transports finish closing on a later loop turn
            await asyncio.sleep(0.1)


_addresses = itertools.count()


def own_address() -> str:
    """A loopback address no other client of this process has used (127.1.0.1, 127.1.0.2,
    ...; Linux answers all of 127/8): what a server limits per client address (sessions,
    held ones included, failed attempts, queued bytes) is then this test's own."""
    n = next(_addresses)
    return f"127.{1 + n // 62500 % 254}.{n // 250 % 250}.{n % 250 + 1}"


def own_room() -> str:
    return f"t-{uuid.uuid4().hex[:16]}"


class Clients:
    """Creates clients for a test and closes them all at the end."""

    def __init__(
        self,
        server: RunningServer,
        source: str | None = None,
        headers: dict[str, str] | None = None,
        transports: list[str] | None = None,
        room: str | None = None,
    ) -> None:
        self.server = server
        #: the local address to connect from (127.0.0.2: another client address than 127.0.0.1)
        self.source = source
        self.headers = headers
        self.transports = transports
        #: ``auth.room`` of a new session that does not name one (None: the server's default)
        self.room = room
        self.all: list[Client] = []

    async def __call__(self, server: RunningServer | None = None, **auth: Any) -> Client:
        client = Client(server or self.server, self.source, self.headers, self.transports)
        self.all.append(client)
        if self.room is not None and "room" not in auth and not isinstance(auth.get("resume"), str):
            auth["room"] = self.room  # a resume sends what the test says: its room is kept
        return await client.connect(**auth)

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.all), return_exceptions=True)
