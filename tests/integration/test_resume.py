"""Resume after a dropped socket, and renegotiation, against a real `callbox serve`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import socketio

from tests.conftest import StartServer
from tests.integration.sio_client import ANSWER, OFFER, Client, Clients, cand

RESTART_OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\ns=restart\r\n"}
RESTART_ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 5 IN IP4 127.0.0.1\r\ns=restart\r\n"}


async def drop(client: Client) -> None:
    """Cut the client's websocket without a socket.io goodbye: the server sees a drop."""
    assert client.sio is not None
    await client.sio.eio.ws.close()
    async with asyncio.timeout(5):
        await client.disconnected.wait()


async def in_call(clients: Clients) -> tuple[Client, Client, str]:
    alice = await clients(userName="alice", resume=True)
    bob = await clients(userName="bob", resume=True)
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.wait_for("answerResponse")
    return alice, bob, ack["offerId"]


async def test_resume_keeps_the_call_and_delivers_what_was_missed_in_order(
    shared_clients: Clients,
) -> None:
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    assert isinstance(token, str) and len(token) >= 32
    await drop(alice)
    for n in range(6):  # bob trickles while alice is away: all acknowledged, all kept
        reply = await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
        assert reply == {"ok": True}
    back = await shared_clients(
        resume=token, lastSeq=alice.last_seq, userName="someone-else", room="elsewhere"
    )
    welcome = back.events["welcome"][0]
    assert welcome["resumed"] is True and welcome["offerId"] == offer_id
    assert (welcome["userName"], welcome["room"]) == ("alice", shared_clients.room)
    assert welcome["resume"] != token
    await back.wait_for("receivedIceCandidateFromServer", 6)
    # messages sent after the resume come after the kept ones
    await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(6)})
    await back.wait_for("receivedIceCandidateFromServer", 7)
    await asyncio.sleep(0.3)
    assert back.events["receivedIceCandidateFromServer"] == [cand(n) for n in range(7)]
    assert bob.events["callEnded"] == []
    # the resumed session is the caller still: its candidates reach bob, its hangup too
    await back.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(50)})
    assert await bob.wait_for("receivedIceCandidateFromServer") == cand(50)
    assert await back.call("hangup", {"offerId": offer_id}) == {"ok": True}
    ended = await bob.wait_for("callEnded")
    assert ended == {"offerId": offer_id, "reason": "hangup", "by": "alice"}


async def test_hangup_while_away_is_delivered_on_resume(shared_clients: Clients) -> None:
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    await drop(alice)
    await bob.call("hangup", {"offerId": offer_id})
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    ended = await back.wait_for("callEnded")
    assert ended == {"offerId": offer_id, "reason": "hangup", "by": "bob"}


async def test_waiting_offer_survives_a_drop_and_its_answer_waits(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice", resume=True)
    ack = await alice.call("newOffer", OFFER)
    token = alice.events["welcome"][0]["resume"]
    await drop(alice)
    bob = await shared_clients(userName="bob", resume=True)
    [[view]] = bob.events["availableOffers"]
    assert view["offerId"] == ack["offerId"]  # still listed while alice is away
    assert await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}) == []
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    response = await back.wait_for("answerResponse")
    assert response["answer"] == ANSWER and response["answererUserName"] == "bob"


async def test_used_and_unknown_tokens_are_unauthorized(shared_clients: Clients) -> None:
    alice, _, _ = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    await drop(alice)
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    assert back.user_name == "alice"
    await drop(back)
    with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
        await shared_clients(resume=token)  # single use: the first welcome's token is spent
    with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
        await shared_clients(resume="x" * 43)


async def test_resume_replaces_a_socket_whose_death_went_unnoticed(shared_clients: Clients) -> None:
    """A Wi-Fi change leaves the old socket looking alive on the server: the resume takes
    the session over and the old socket is dropped. A thief with a spent token gets nothing,
    and the evicted socket can't come back with its own (spent) token either."""
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    assert back.events["welcome"][0]["offerId"] == offer_id
    async with asyncio.timeout(5):
        await alice.disconnected.wait()  # the old socket was closed by the server
    await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(3)})
    assert await back.wait_for("receivedIceCandidateFromServer") == cand(3)
    assert bob.events["callEnded"] == []
    with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
        await shared_clients(resume=token)


async def test_after_the_grace_period_the_peer_is_told_and_the_token_expires(
    start_server: StartServer,
) -> None:
    server = start_server("--resume-grace", "1")
    clients = Clients(server)
    try:
        alice, bob, offer_id = await in_call(clients)
        token = alice.events["welcome"][0]["resume"]
        await drop(alice)
        await asyncio.sleep(0.5)
        assert bob.events["callEnded"] == []  # not before the grace period
        ended = await bob.wait_for("callEnded", wait=5)
        assert ended == {"offerId": offer_id, "reason": "peer-disconnected", "by": "alice"}
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await clients(resume=token)
        again = await clients(userName="alice", resume=True)  # the name is free again
        assert again.user_name == "alice"
    finally:
        await clients.close()


async def test_grace_zero_ends_at_once(start_server: StartServer) -> None:
    server = start_server("--resume-grace", "0")
    clients = Clients(server)
    try:
        alice, bob, offer_id = await in_call(clients)
        await drop(alice)
        ended = await bob.wait_for("callEnded", wait=3)
        assert ended["reason"] == "peer-disconnected"
    finally:
        await clients.close()


async def test_a_client_that_cannot_resume_is_ended_at_once_with_seed_payloads(
    clients: Clients,
) -> None:
    """Without auth.resume the client is the seed's page: no token, no trailing numbers, and
    a dropped socket ends its call at once (its peer is not kept waiting)."""
    alice = await clients(userName="alice")
    bob = await clients(userName="bob", resume=True)
    assert alice.events["welcome"][0]["resume"] is None
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.wait_for("answerResponse")
    assert alice.last_seq == 0  # the answerResponse came without a sequence number
    await drop(alice)
    ended = await bob.wait_for("callEnded", wait=3)
    assert ended["reason"] == "peer-disconnected"
    assert bob.last_seq > 0  # a client that can resume gets numbered events


async def test_an_idle_session_that_can_resume_is_held_too(shared_clients: Clients) -> None:
    idle = await shared_clients(userName="idle", resume=True)
    token = idle.events["welcome"][0]["resume"]
    await drop(idle)
    await asyncio.sleep(0.3)
    back = await shared_clients(resume=token)
    assert back.user_name == "idle" and back.events["welcome"][0]["resumed"] is True


async def test_renegotiate_relays_the_restart_offer_and_answer(shared_clients: Clients) -> None:
    alice, bob, offer_id = await in_call(shared_clients)
    reply = await alice.call("renegotiate", {"offerId": offer_id, "description": RESTART_OFFER})
    assert reply == {"ok": True}
    got = await bob.wait_for("renegotiate")
    assert got == {"offerId": offer_id, "description": RESTART_OFFER, "from": "alice"}
    assert await bob.call("renegotiate", {"description": RESTART_ANSWER}) == {"ok": True}
    got = await alice.wait_for("renegotiate")
    assert got == {"offerId": offer_id, "description": RESTART_ANSWER, "from": "bob"}
    # the answerer may renegotiate too (screen share); the caller answers
    assert await bob.call("renegotiate", {"description": RESTART_OFFER}) == {"ok": True}
    got = await alice.wait_for("renegotiate", count=2)
    assert got == {"offerId": offer_id, "description": RESTART_OFFER, "from": "bob"}
    assert await alice.call("renegotiate", {"description": RESTART_ANSWER}) == {"ok": True}
    got = await bob.wait_for("renegotiate", count=2)
    assert got["description"] == RESTART_ANSWER
    # new candidates after the restart are relayed as usual
    await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(9)})
    assert await bob.wait_for("receivedIceCandidateFromServer") == cand(9)


BAD_RENEGOTIATIONS: list[tuple[str, Any, str]] = [
    ("alice", {"description": RESTART_ANSWER}, "forbidden"),  # nobody asked for an answer
    ("bob", {"description": RESTART_ANSWER}, "forbidden"),
    ("alice", {"offerId": "other", "description": RESTART_OFFER}, "forbidden"),
    ("alice", {"description": {"type": "pranswer", "sdp": "v=0"}}, "invalid_payload"),
    ("alice", {"description": {"type": "offer", "sdp": "nope"}}, "invalid_payload"),
    ("alice", {"description": None}, "invalid_payload"),
    ("alice", "offer", "invalid_payload"),
    ("alice", {"description": {"type": "offer", "sdp": "v=0" + "x" * 70_000}}, "too_large"),
]


@pytest.mark.parametrize(("who", "payload", "code"), BAD_RENEGOTIATIONS)
async def test_bad_renegotiation_is_refused_and_not_relayed(
    shared_clients: Clients, who: str, payload: Any, code: str
) -> None:
    alice, bob, _ = await in_call(shared_clients)
    sender, other = (alice, bob) if who == "alice" else (bob, alice)
    reply = await sender.call("renegotiate", payload)
    assert reply["error"]["code"] == code
    await asyncio.sleep(0.2)
    assert other.events["renegotiate"] == []


async def test_renegotiate_outside_a_call_is_not_in_call(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice", resume=True)
    reply = await alice.call("renegotiate", {"description": RESTART_OFFER})
    assert reply["error"]["code"] == "not_in_call"
    await alice.call("newOffer", OFFER)  # a waiting offer is not a call yet
    reply = await alice.call("renegotiate", {"description": RESTART_OFFER})
    assert reply["error"]["code"] == "not_in_call"


async def test_events_lost_on_a_dying_socket_are_sent_again_after_last_seq(
    shared_clients: Clients,
) -> None:
    """A socket can die before the server notices: what it emitted meanwhile is lost. The
    client says the last event it got (auth.lastSeq) and receives everything after it."""
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(0)})
    await alice.wait_for("receivedIceCandidateFromServer")
    seen = alice.last_seq
    assert seen > 0
    alice.deaf = True  # from here the connection loses what the server sends
    for n in range(1, 5):
        await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
    await asyncio.sleep(0.3)  # emitted by the server into the dying socket
    await drop(alice)
    await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(5)})
    back = await shared_clients(resume=token, lastSeq=seen)
    await back.wait_for("receivedIceCandidateFromServer", 5)
    await asyncio.sleep(0.3)
    assert back.events["receivedIceCandidateFromServer"] == [cand(n) for n in range(1, 6)]
    assert back.last_seq == seen + 5


async def test_bad_last_seq_is_invalid(shared_clients: Clients) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError, match="lastSeq"):
        await shared_clients(resume="x" * 43, lastSeq="7")


async def test_a_message_sent_again_after_a_resume_is_answered_once_and_run_once(
    shared_clients: Clients,
) -> None:
    """The client numbers its messages (payload.seq); one whose ack was lost with the
    socket is sent again after the resume: the server answers it again, runs it once."""
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    first = await alice.call(
        "sendIceCandidateToSignalingServer", {"iceCandidate": cand(1), "seq": 1}
    )
    await drop(alice)  # pretend that ack was lost on the way
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    again = await back.call(
        "sendIceCandidateToSignalingServer", {"iceCandidate": cand(1), "seq": 1}
    )
    assert again == first == {"ok": True}
    hangup = await back.call("hangup", {"offerId": offer_id, "seq": 2})
    assert await back.call("hangup", {"offerId": offer_id, "seq": 2}) == hangup == {"ok": True}
    await bob.wait_for("callEnded")
    await asyncio.sleep(0.3)
    assert bob.events["receivedIceCandidateFromServer"] == [cand(1)]  # once
    assert len(bob.events["callEnded"]) == 1
    # a new number runs as usual
    assert "offerId" in await back.call("newOffer", {**OFFER, "seq": 3})


async def test_a_call_ended_while_the_socket_was_dying_is_told_on_resume(
    shared_clients: Clients,
) -> None:
    """The peer hangs up before the server noticed the drop: the callEnded went into the dead
    socket and the session has no call any more, yet it is held and the resume tells it."""
    alice, bob, offer_id = await in_call(shared_clients)
    token = alice.events["welcome"][0]["resume"]
    alice.deaf = True  # the connection is dying: what the server sends now is lost
    await bob.call("hangup", {"offerId": offer_id})
    await asyncio.sleep(0.3)
    await drop(alice)
    back = await shared_clients(resume=token, lastSeq=alice.last_seq)
    ended = await back.wait_for("callEnded")
    assert ended == {"offerId": offer_id, "reason": "hangup", "by": "bob"}
    assert back.events["welcome"][0]["offerId"] is None
