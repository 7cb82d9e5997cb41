"""Python peers and TURN credentials minted by callbox (PLAN decision 7), against a real
coturn: the session's ICE servers are asked for again before the call and at half their
TTL, and a relay-only call between two aiortc peers goes on past the credentials' expiry
(coturn checks them when an allocation is made, not when it is refreshed)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callbox.peer.call import Call
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient
from tests.conftest import StartServer
from tests.coturn import Coturn, running_coturn
from tests.integration.test_peer_renegotiate import more_frames, until
from tests.integration.test_turn import minted, turn_server

WIDTH, HEIGHT = 160, 120
TTL = 10  # callbox's smallest --turn-ttl
# coturn grants at most this, so aioice refreshes each allocation at 5/6 of it: after the TTL
ALLOCATION_LIFETIME = 15


@pytest.fixture
def backend() -> str:
    """What is tested here (coturn's relays, credentials refreshed through `iceServers`) does
    not depend on where the server keeps its state: the in-memory backend only (test_turn.py
    runs on both)."""
    return "memory"


@pytest.fixture
def short_lived_coturn() -> Iterator[Coturn]:
    with running_coturn(options=[f"max-allocate-lifetime={ALLOCATION_LIFETIME}"]) as server:
        yield server


def expiry(servers: tuple[dict[str, object], ...]) -> int:
    """The unix expiry in the minted TURN username."""
    found = re.match(r"(\d+):", str(minted(list(servers))["username"]))
    assert found, servers
    return int(found[1])


async def test_relay_only_call_outlives_its_turn_credentials_and_they_are_refreshed(
    start_server: StartServer,
    short_lived_coturn: Coturn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aioice.turn")
    server = turn_server(start_server, short_lived_coturn, tmp_path, "--turn-ttl", str(TTL))
    url, ca = server.url, server.ca_path
    async with (
        SignalingClient(url, name="alice", ca=ca) as alice_client,
        SignalingClient(url, name="bob", ca=ca) as bob_client,
        Call(
            alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT), relay_only=True
        ) as alice,
        Call(
            bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT), relay_only=True
        ) as bob,
    ):
        assert alice_client.ice_servers_ttl is not None
        assert 0 < alice_client.ice_servers_ttl <= TTL
        placing = asyncio.create_task(alice.place(answer_within=20))
        offer = await bob_client.wait_for_offer(from_user="alice", within=20)
        await bob.answer(offer)
        await placing
        # each asked for fresh credentials right before making its peer connection
        assert alice_client.ice_refreshes >= 1 and bob_client.ice_refreshes >= 1
        for call in (alice, bob):
            types = re.findall(r"typ (\w+)", call.pc.localDescription.sdp)
            assert types and set(types) == {"relay"}, types  # every path goes through coturn
        await asyncio.gather(alice.wait_connected(within=20), bob.wait_connected(within=20))
        started = time.time()
        first = expiry(alice_client.ice_servers)

        # at half the TTL the client asks again: credentials that expire later
        await until(lambda: expiry(alice_client.ice_servers) > first, within=TTL)
        assert alice_client.ice_refreshes >= 2

        # past the expiry of the credentials the call was made with, and past coturn's
        # refresh of the allocations (at 5/6 of their lifetime), media still flows both ways
        await until(lambda: time.time() > max(first, started + ALLOCATION_LIFETIME) + 1, 30)
        await more_frames(alice, bob)
        assert (alice.state, bob.state) == ("connected", "connected")
        assert not alice.ended and not bob.ended
        # coturn took the allocations' refreshes with the expired credentials
        refreshed = [r.getMessage() for r in caplog.records if r.name == "aioice.turn"]
        assert any("TURN allocation refreshed" in line for line in refreshed), refreshed
        assert not any("refresh failed" in line for line in refreshed), refreshed
