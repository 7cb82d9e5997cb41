"""What coturn does when TURN REST credentials expire during an allocation.

Found in coturn's source (4.6.1, src/server/ns_turn_server.c ``check_stun_auth``, and
src/apps/relay/userdb.c ``get_user_key``) and pinned here against the real thing: the
username's expiry is checked only when coturn derives the session's key, i.e. on the first
authenticated request of an allocation (the Allocate). Later Refresh, CreatePermission and
ChannelBind requests of that allocation are checked against the key it keeps, so an
allocation made with valid credentials lives on past their expiry for as long as it is
refreshed; only a new allocation needs fresh credentials. (The username may not change within
an allocation either: 441/437.) So a client need not restart ICE when it refreshes its
credentials; it must use fresh ones for its next allocation (an ICE restart, a new call).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import cast

import pytest

from tests.conftest import RunningServer, StartServer
from tests.coturn import Coturn, allocate, open_relay, running_coturn
from tests.integration.sio_client import Clients
from tests.integration.test_turn import minted, secret_file

# coturn grants at most this lifetime, so aioice must refresh the allocation (at 5/6 of it)
ALLOCATION_LIFETIME = 15
TTL = 10  # callbox's smallest --turn-ttl


@pytest.fixture
def short_lived_coturn() -> Iterator[Coturn]:
    with running_coturn(options=[f"max-allocate-lifetime={ALLOCATION_LIFETIME}"]) as server:
        yield server


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    made = Clients(cast(RunningServer, None))
    yield made
    await made.close()


class Peer(asyncio.DatagramProtocol):
    """A plain UDP peer of the relay: answers every datagram with ``pong``."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.put_nowait((data, addr))
        assert self.transport is not None
        self.transport.sendto(b"pong", addr)


async def test_an_allocation_outlives_its_credentials_but_a_new_one_needs_fresh_ones(
    start_server: StartServer,
    short_lived_coturn: Coturn,
    tmp_path: Path,
    clients: Clients,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aioice.turn")
    coturn = short_lived_coturn
    server = start_server(
        "--turn-url",
        coturn.url(),
        "--turn-secret-file",
        secret_file(tmp_path, coturn.secret),
        "--turn-ttl",
        str(TTL),
    )
    entry = minted((await clients(server)).events["welcome"][0]["iceServers"])
    expiry = int(entry["username"].split(":")[0])
    loop = asyncio.get_running_loop()
    peer_transport, peer = await loop.create_datagram_endpoint(Peer, local_addr=("127.0.0.1", 0))
    peer_addr = peer_transport.get_extra_info("sockname")
    try:
        async with open_relay(coturn.host, coturn.port, entry["username"], entry["credential"]) as (
            relay,
            received,
        ):
            relayed = relay.get_extra_info("sockname")
            # past the credentials' expiry, and past the lifetime coturn first granted
            await asyncio.sleep(max(expiry + 1 - time.time(), ALLOCATION_LIFETIME + 1.5))
            assert time.time() > expiry
            again = await allocate(coturn.host, coturn.port, entry["username"], entry["credential"])
            assert again.relayed is None and again.code == 401, again
            # the old allocation was refreshed with the expired credentials and still relays:
            # its first send now needs a ChannelBind (or CreatePermission), accepted too
            relay.sendto(b"ping", peer_addr)
            async with asyncio.timeout(10):
                data, source = await peer.got.get()
                answer, sender = await received.received.get()
            assert (data, source) == (b"ping", relayed)
            assert (answer, sender) == (b"pong", peer_addr)
    finally:
        peer_transport.close()
    refreshes = [r.getMessage() for r in caplog.records if "refresh" in r.getMessage()]
    assert any("refreshed" in m for m in refreshes), refreshes
    assert not any("failed" in m for m in refreshes), refreshes
