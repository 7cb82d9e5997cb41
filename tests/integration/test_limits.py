"""Every limit and auth mode against a real `callbox serve`: refused with its code, counted in
/metrics, and never felt by the other clients."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import socketio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.conftest import RunningServer, StartServer
from tests.integration.server_proc import metric
from tests.integration.sio_client import ANSWER, OFFER, Clients, cand

SECRET = "integration-secret-long-enough-for-hs256-keys"
LIMITS = "callbox_limit_exceeded_total"
ERRORS = "callbox_errors_total"


@pytest.fixture
async def on(start_server: StartServer) -> AsyncIterator[object]:
    """``await on(*flags)`` starts a server and returns a Clients factory bound to it."""
    made: list[Clients] = []

    async def start(*flags: str) -> Clients:
        clients = Clients(start_server(*flags))
        made.append(clients)
        return clients

    yield start
    for clients in made:
        await clients.close()


async def _honest_call(clients: Clients, room: str = "lobby") -> None:
    """A short call that must work whatever the others do."""
    caller = await clients(userName=f"caller-{time.monotonic_ns()}", room=room)
    callee = await clients(userName=f"callee-{time.monotonic_ns()}", room=room)
    ack = await caller.call("newOffer", OFFER)
    assert "offerId" in ack, ack
    assert await caller.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(1)}) == {
        "ok": True
    }
    buffered = await callee.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert buffered == [cand(1)]
    await callee.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(2)})
    assert await caller.wait_for("receivedIceCandidateFromServer") == cand(2)
    assert await caller.call("hangup") == {"ok": True}
    await callee.wait_for("callEnded")
    assert caller.events["signalingError"] == callee.events["signalingError"] == []
    await caller.close()
    await callee.close()


async def test_whole_message_limit_answers_too_large_and_keeps_the_socket(on: object) -> None:
    clients: Clients = await on("--max-message-bytes", "4096")  # type: ignore[operator]
    mallory = await clients(userName="mallory")
    big = {"type": "offer", "sdp": "v=0" + "a" * 5000}  # under the SDP limit, over the message
    reply = await mallory.call("newOffer", big)
    assert reply["error"]["code"] == "too_large" and "bytes" in reply["error"]["message"]
    nested = {"iceCandidate": cand(1), "junk": [[["é" * 2000]]]}
    reply = await mallory.call("sendIceCandidateToSignalingServer", nested)
    assert reply["error"]["code"] == "too_large"
    await mallory.emit("newAnswer", {"x": "y" * 10_000})
    error = await mallory.wait_for("signalingError")
    assert error == {**error, "code": "too_large", "event": "newAnswer"}
    assert metric(clients.server, LIMITS, 'limit="message"') == 3
    assert metric(clients.server, ERRORS, 'code="too_large"') == 3
    # the same socket still works, and so does everyone else
    assert "offerId" in await mallory.call("newOffer", OFFER)
    await _honest_call(clients)


async def test_message_over_the_engine_buffer_drops_only_that_client(
    callbox_server: RunningServer,
) -> None:
    clients = Clients(callbox_server)
    try:
        bob = await clients(userName="bob")
        mallory = await clients(userName="mallory")
        # under engine.io's buffer: a too_large ack, the socket stays
        reply = await mallory.call("newOffer", {"type": "offer", "sdp": "v=0" + "a" * 200_000})
        assert reply["error"]["code"] == "too_large"
        assert metric(callbox_server, LIMITS, 'limit="message"') == 1
        # over it: engine.io closes that one connection
        assert mallory.sio is not None
        await mallory.emit("newOffer", {"type": "offer", "sdp": "v=0" + "a" * 2_000_000})
        async with asyncio.timeout(5):
            while mallory.sio.connected:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        assert bob.sio is not None and bob.sio.connected
        await _honest_call(clients)
    finally:
        await clients.close()


async def test_size_limits_of_fields_are_counted_by_name(clients: Clients) -> None:
    alice = await clients(userName="alice")
    await alice.call("newOffer", {"type": "offer", "sdp": "v=0" + "a" * 70_000})
    long_cand = {**cand(1), "candidate": "candidate:" + "1" * 2000}
    await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": long_cand})
    await alice.call("hangup", {"offerId": "o" * 300})
    with pytest.raises(socketio.exceptions.ConnectionError, match="userName"):
        await clients(userName="n" * 65)
    for limit in ("sdp", "candidate", "field", "user_name"):
        assert metric(clients.server, LIMITS, f'limit="{limit}"') == 1, limit
    assert metric(clients.server, ERRORS, 'code="too_large"') == 4


async def test_buffered_candidates_per_offer_are_limited(on: object) -> None:
    clients: Clients = await on("--event-burst", "1000")  # type: ignore[operator]
    alice = await clients(userName="alice")
    bob = await clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    for n in range(256):  # Limits.max_buffered_candidates
        assert (await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)}))[
            "ok"
        ]
    reply = await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(999)})
    assert reply["error"]["code"] == "too_large"
    assert metric(clients.server, LIMITS, 'limit="buffered_candidates"') == 1
    buffered = await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert buffered == [cand(n) for n in range(256)]


async def test_waiting_offers_per_room_get_busy(on: object) -> None:
    clients: Clients = await on("--max-waiting-offers", "2")  # type: ignore[operator]
    a, b, c = [await clients(userName=n) for n in ("a", "b", "c")]
    assert "offerId" in await a.call("newOffer", OFFER)
    assert "offerId" in await b.call("newOffer", OFFER)
    reply = await c.call("newOffer", OFFER)
    assert reply["error"]["code"] == "busy" and "waiting offers" in reply["error"]["message"]
    assert metric(clients.server, LIMITS, 'limit="waiting_offers"') == 1
    await _honest_call(clients, room="elsewhere")  # another room is not affected
    await a.call("hangup")
    assert "offerId" in await c.call("newOffer", OFFER)


async def test_event_rate_per_session_is_limited(on: object) -> None:
    # a token every 5 s: the 9 events below must come before one (at 2/s a busy CI machine
    # took over 0.5 s for them, and a refilled token let one more through)
    clients: Clients = await on("--event-rate", "0.2", "--event-burst", "5")  # type: ignore[operator]
    mallory = await clients(userName="mallory")
    replies = [await mallory.call("hangup") for _ in range(8)]
    codes = [r["error"]["code"] for r in replies]
    assert codes[:5] == ["not_in_call"] * 5 and codes[5:] == ["rate_limited"] * 3
    await mallory.emit("noSuchEvent")  # unknown events count too
    assert (await mallory.wait_for("signalingError"))["code"] == "rate_limited"
    assert metric(clients.server, LIMITS, 'limit="event_rate"') == 4
    # the others have buckets of their own
    await _honest_call(clients)
    await asyncio.sleep(5.2)  # refilled at 0.2/s
    assert (await mallory.call("hangup"))["error"]["code"] == "not_in_call"


async def test_connections_per_ip_are_limited(on: object) -> None:
    clients: Clients = await on("--max-connections-per-ip", "2")  # type: ignore[operator]
    first = await clients(userName="one")
    await clients(userName="two")
    with pytest.raises(socketio.exceptions.ConnectionError, match="rate_limited"):
        await clients(userName="three")
    assert metric(clients.server, LIMITS, 'limit="connections_per_ip"') == 1
    assert metric(clients.server, "callbox_sessions") == 2
    await first.close()
    await asyncio.sleep(0.2)
    assert (await clients(userName="three")).user_name == "three"


def _token(key: object, algorithm: str = "HS256", **claims: object) -> str:
    payload: dict[str, object] = {"sub": "alice", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(payload, key, algorithm=algorithm)  # type: ignore[arg-type]


async def test_jwt_hs256(on: object) -> None:
    clients: Clients = await on("--jwt-secret", SECRET)  # type: ignore[operator]
    alice = await clients(userName="ignored", token=_token(SECRET))
    assert alice.user_name == "alice" and alice.events["welcome"][0]["room"] == "lobby"
    refused: list[dict[str, Any]] = [
        {},
        {"userName": "eve", "password": SECRET},
        {"token": _token(SECRET, exp=int(time.time()) - 120)},
        {"token": _token(SECRET + "-wrong")},
        {"token": "garbage"},
    ]
    for auth in refused:
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await clients(**auth)
    assert metric(clients.server, ERRORS, 'code="unauthorized"') == len(refused)


async def test_jwt_room_claim_restricts_the_room(on: object) -> None:
    clients: Clients = await on("--jwt-secret", SECRET)  # type: ignore[operator]
    token = _token(SECRET, sub="bob", room="red")
    with pytest.raises(socketio.exceptions.ConnectionError, match="forbidden"):
        await clients(token=token, room="blue")
    bob = await clients(token=token)
    assert bob.events["welcome"][0] == {**bob.events["welcome"][0], "room": "red"}
    carol = await clients(token=_token(SECRET, sub="carol", room="red"), room="red")
    ack = await bob.call("newOffer", OFFER)
    [view] = await carol.wait_for("newOfferAwaiting")
    assert view["offerId"] == ack["offerId"] and view["offererUserName"] == "bob"
    assert metric(clients.server, ERRORS, 'code="forbidden"') == 1


@pytest.mark.parametrize("kind", ["RS256", "ES256"])
async def test_jwt_public_key(on: object, tmp_path: Path, kind: str) -> None:
    def private_key() -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
        if kind == "RS256":
            return rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return ec.generate_private_key(ec.SECP256R1())

    key, other = private_key(), private_key()
    path = tmp_path / "jwt.pub"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    clients: Clients = await on("--jwt-public-key", str(path))  # type: ignore[operator]
    alice = await clients(token=_token(key, kind))
    assert alice.user_name == "alice"
    for token in (_token(other, kind), _token(key, kind, exp=int(time.time()) - 120), None):
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await clients(token=token)


async def _ws_open(server: RunningServer, origin: str) -> bool:
    context = ssl.create_default_context(cafile=str(server.ca_path))
    url = server.url.replace("https", "wss") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url, ssl=context, headers={"Origin": origin}) as ws:
                message = await ws.receive(timeout=5)
                return str(message.data).startswith("0{")
        except aiohttp.WSServerHandshakeError:
            return False


async def test_allowed_origin_extends_same_origin(start_server: StartServer) -> None:
    plain = start_server()
    assert await _ws_open(plain, plain.url)
    assert not await _ws_open(plain, "https://app.example")
    server = start_server("--allowed-origin", "https://app.example")
    assert await _ws_open(server, server.url)
    assert await _ws_open(server, "https://app.example")
    assert not await _ws_open(server, "https://evil.example")
    assert not await _ws_open(server, "http://app.example")
    assert metric(server, LIMITS, 'limit="origin"') == 2


async def test_reserved_event_names_are_unknown_events(clients: Clients) -> None:
    alice = await clients(userName="alice")
    bob = await clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    for name in ("connect", "disconnect", "connect_error", "*", "\x00reserved"):
        reply = await alice.call(name, {"userName": "x", "room": "other"})
        assert reply["error"]["code"] == "invalid_payload", name
    # alice's session is intact: her offer is still answerable and she gets the answer
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.wait_for("answerResponse")
    assert metric(clients.server, "callbox_sessions") == 2


async def test_offers_expire_after_the_ttl(on: object) -> None:
    clients: Clients = await on("--offer-ttl", "1")  # type: ignore[operator]
    alice = await clients(userName="alice")
    bob = await clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.wait_for("newOfferAwaiting")
    expired = {"offerId": ack["offerId"], "reason": "expired"}
    assert await bob.wait_for("offerRemoved", wait=5) == expired
    assert await alice.wait_for("offerRemoved", wait=5) == expired  # the offerer is told too
    reply = await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert reply["error"]["code"] == "not_found"
    again = await alice.call("newOffer", OFFER)  # free to offer again
    assert await bob.call("newAnswer", {"offerId": again["offerId"], "answer": ANSWER}) == []
    await asyncio.sleep(1.5)  # an answered call does not expire
    assert [e for e in alice.events["offerRemoved"] if e["reason"] == "expired"] == [expired]
    assert alice.events["callEnded"] == []
