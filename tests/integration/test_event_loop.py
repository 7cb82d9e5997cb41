"""`callbox serve --http` (behind a TLS proxy) runs on uvloop by default, and on asyncio's
own loop when asked; with its own TLS on asyncio's loop (the send budget needs it, server/
sio.py): a whole offer -> answer -> candidates round on each, and the garbage collector
paced for many connections on each."""

from __future__ import annotations

import pytest

from callbox.server.gcpace import YOUNG
from tests.conftest import StartServer
from tests.integration.sio_client import ANSWER, OFFER, Clients, cand


# the loop is below the backend: one of them is enough
@pytest.mark.parametrize("backend", ["memory"])
@pytest.mark.parametrize(
    ("flags", "loop"),
    [
        (("--http",), "uvloop.Loop"),
        (("--http", "--event-loop", "asyncio"), "asyncio."),
        ((), "asyncio."),
    ],
)
async def test_serve_runs_on_the_chosen_loop(
    start_server: StartServer, flags: tuple[str, ...], loop: str
) -> None:
    server = start_server(*flags)
    clients = Clients(server)
    try:
        alice = await clients(userName="alice")
        offer_id = (await alice.call("newOffer", OFFER))["offerId"]
        bob = await clients(userName="bob")
        await bob.call("newAnswer", {"offerId": offer_id, "answer": ANSWER})
        assert (await alice.wait_for("answerResponse"))["answer"] == ANSWER
        payload = {"iceCandidate": cand(1), "iceUserName": "bob", "didIOffer": False}
        await bob.call("sendIceCandidateToSignalingServer", payload)
        assert await alice.wait_for("receivedIceCandidateFromServer") == cand(1)
    finally:
        await clients.close()
    assert server.stop() == 0
    line = next(x for x in server.log().splitlines() if "event loop:" in x)
    assert f"event loop: {loop}" in line, line
    # and on every loop, the collector's pace for many connections (server/gcpace.py)
    assert f"gc: young objects collected every {YOUNG} allocations" in server.log()
