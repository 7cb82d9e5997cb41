"""The seed's flow and the protocol's rules against a real `callbox serve` process."""

from __future__ import annotations

import asyncio
import ssl

import pytest
import socketio

from tests.conftest import RunningServer, StartServer
from tests.integration.sio_client import ANSWER, OFFER, Client, Clients, cand


async def test_seed_flow_with_late_joiner(clients: Clients) -> None:
    """Steps 1-23: offer and candidates held, a late joiner answers, both ways relayed."""
    alice = await clients(userName="alice", password="x")
    # the seed's client: no acks on newOffer or candidates, identity fields in payloads
    await alice.emit("newOffer", OFFER)
    for n in range(3):
        await alice.emit(
            "sendIceCandidateToSignalingServer",
            {"iceCandidate": cand(n), "iceUserName": "alice", "didIOffer": True},
        )
    await asyncio.sleep(0.2)
    bob = await clients(userName="bob", password="x")
    [offer] = bob.events["availableOffers"][0]
    assert offer["offererUserName"] == "alice" and offer["offer"] == OFFER
    assert offer["offerIceCandidates"] == [cand(n) for n in range(3)]
    # the seed's answerer sends the whole offer record back with the answer set
    buffered = await bob.call("newAnswer", {**offer, "answer": ANSWER})
    assert buffered == [cand(n) for n in range(3)]
    response = await alice.wait_for("answerResponse")
    assert response["answer"] == ANSWER and response["answererUserName"] == "bob"
    # live relay, both ways, in order
    for n in range(3, 8):
        await alice.emit(
            "sendIceCandidateToSignalingServer",
            {"iceCandidate": cand(n), "iceUserName": "alice", "didIOffer": True},
        )
    await bob.emit(
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(100), "iceUserName": "bob", "didIOffer": False},
    )
    await bob.wait_for("receivedIceCandidateFromServer", 5)
    assert bob.events["receivedIceCandidateFromServer"] == [cand(n) for n in range(3, 8)]
    assert await alice.wait_for("receivedIceCandidateFromServer") == cand(100)
    await asyncio.sleep(0.2)
    assert len(bob.events["receivedIceCandidateFromServer"]) == 5  # nothing twice
    assert alice.events["signalingError"] == bob.events["signalingError"] == []


async def test_early_joiner_gets_new_offer_awaiting(shared_clients: Clients) -> None:
    bob = await shared_clients(userName="bob")
    assert bob.events["availableOffers"] == [[]]
    alice = await shared_clients(userName="alice")
    ack = await alice.call("newOffer", OFFER)
    [view] = await bob.wait_for("newOfferAwaiting")
    assert view["offerId"] == ack["offerId"] and view["offererUserName"] == "alice"
    assert alice.events["newOfferAwaiting"] == []  # not echoed to the offerer
    assert await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}) == []
    await alice.wait_for("answerResponse")
    removed = await bob.wait_for("offerRemoved")
    assert removed == {"offerId": ack["offerId"], "reason": "answered"}
    await asyncio.sleep(0.3)  # a room event told twice (on Redis: echoed back by the bus)
    assert len(bob.events["newOfferAwaiting"]) == len(bob.events["offerRemoved"]) == 1


async def test_answerer_candidates_before_answer_reach_caller_after_answer(
    shared_clients: Clients,
) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    for n in (1, 2):
        assert await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)}) == {
            "ok": True
        }
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.wait_for("receivedIceCandidateFromServer", 2)
    assert alice.events["receivedIceCandidateFromServer"] == [cand(1), cand(2)]
    assert alice.events["answerResponse"]  # the answer came first (checked by arrival above)


async def test_spoofed_ice_user_name_is_forbidden(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    mallory = await shared_clients(userName="mallory")
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    reply = await mallory.call(
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(66), "iceUserName": "alice", "didIOffer": True},
    )
    assert reply["error"]["code"] == "forbidden"
    # without an ack (the seed's way), the refusal comes as signalingError
    await mallory.emit(
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(67), "iceUserName": "bob", "didIOffer": False},
    )
    error = await mallory.wait_for("signalingError")
    assert error["code"] == "forbidden" and error["event"] == "sendIceCandidateToSignalingServer"
    await asyncio.sleep(0.3)
    assert alice.events["receivedIceCandidateFromServer"] == []
    assert bob.events["receivedIceCandidateFromServer"] == []


async def test_false_did_i_offer_is_forbidden(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    reply = await bob.call(
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(5), "iceUserName": "bob", "didIOffer": True},
    )
    assert reply["error"]["code"] == "forbidden"
    reply = await alice.call(
        "sendIceCandidateToSignalingServer", {"iceCandidate": cand(6), "didIOffer": False}
    )
    assert reply["error"]["code"] == "forbidden"
    await asyncio.sleep(0.3)
    assert alice.events["receivedIceCandidateFromServer"] == []
    assert bob.events["receivedIceCandidateFromServer"] == []


async def test_twenty_concurrent_answers_one_wins(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    answerers = [await shared_clients(userName=f"bob{n}") for n in range(20)]
    ack = await alice.call("newOffer", OFFER)
    for n in range(3):
        await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
    replies = await asyncio.gather(
        *(b.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}) for b in answerers)
    )
    winners = [r for r in replies if isinstance(r, list)]
    losers = [r for r in replies if isinstance(r, dict)]
    assert winners == [[cand(0), cand(1), cand(2)]]
    assert len(losers) == 19 and {r["error"]["code"] for r in losers} == {"offer_taken"}
    await alice.wait_for("answerResponse")
    await asyncio.sleep(0.2)
    assert len(alice.events["answerResponse"]) == 1


async def test_caller_disconnect_before_answer_withdraws_offer(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.wait_for("newOfferAwaiting")
    await alice.close()
    removed = await bob.wait_for("offerRemoved")
    assert removed == {"offerId": ack["offerId"], "reason": "disconnected"}
    reply = await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert reply["error"]["code"] == "not_found"
    carol = await shared_clients(userName="carol")
    assert carol.events["availableOffers"] == [[]]


async def test_caller_disconnect_after_answer_ends_call_for_answerer(
    shared_clients: Clients,
) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.close()
    ended = await bob.wait_for("callEnded")
    assert ended == {"offerId": ack["offerId"], "reason": "peer-disconnected", "by": "alice"}
    # bob is free again
    assert "offerId" in await bob.call("newOffer", OFFER)


async def test_hangup_ends_call_and_both_can_call_again(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert await bob.call("hangup", {"offerId": ack["offerId"]}) == {"ok": True}
    ended = await alice.wait_for("callEnded")
    assert ended == {"offerId": ack["offerId"], "reason": "hangup", "by": "bob"}
    assert bob.events["callEnded"] == []
    again = await alice.call("newOffer", OFFER)
    assert again["offerId"] != ack["offerId"]
    assert isinstance(
        await bob.call("newAnswer", {"offerId": again["offerId"], "answer": ANSWER}), list
    )


LONG = "x" * 100_000
MALFORMED: list[tuple[str, object, str]] = [
    ("newOffer", None, "invalid_payload"),
    ("newOffer", "v=0", "invalid_payload"),
    ("newOffer", [OFFER], "invalid_payload"),
    ("newOffer", {"type": "offer"}, "invalid_payload"),
    ("newOffer", {"type": "answer", "sdp": OFFER["sdp"]}, "invalid_payload"),
    ("newOffer", {"type": "offer", "sdp": 42}, "invalid_payload"),
    ("newOffer", {"type": "offer", "sdp": "v=0" + LONG}, "too_large"),
    ("sendIceCandidateToSignalingServer", None, "invalid_payload"),
    ("sendIceCandidateToSignalingServer", {"iceCandidate": 1}, "invalid_payload"),
    ("sendIceCandidateToSignalingServer", {"iceCandidate": {"candidate": True}}, "invalid_payload"),
    (
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": {**cand(1), "sdpMLineIndex": "0"}},
        "invalid_payload",
    ),
    (
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": {**cand(1), "candidate": "candidate:" + LONG}},
        "too_large",
    ),
    (
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(1), "iceUserName": LONG},
        "too_large",
    ),
    (
        "sendIceCandidateToSignalingServer",
        {"iceCandidate": cand(1), "didIOffer": "true"},
        "invalid_payload",
    ),
    ("newAnswer", None, "invalid_payload"),
    ("newAnswer", {"offerId": "x"}, "invalid_payload"),
    ("newAnswer", {"offerId": ["x"], "answer": ANSWER}, "invalid_payload"),
    ("newAnswer", {"answer": ANSWER}, "invalid_payload"),
    ("newAnswer", {"offerId": LONG, "answer": ANSWER}, "too_large"),
    ("newAnswer", {"offerId": "x", "answer": {"type": "answer", "sdp": "v=0" + LONG}}, "too_large"),
    ("hangup", "now", "invalid_payload"),
    ("hangup", {"offerId": 5}, "invalid_payload"),
    ("noSuchEvent", {"a": 1}, "invalid_payload"),
]


@pytest.mark.parametrize(("event", "payload", "code"), MALFORMED)
async def test_malformed_payloads_get_an_error_and_change_nothing(
    shared_clients: Clients, event: str, payload: object, code: str
) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    ack = await alice.call("newOffer", OFFER)
    await bob.wait_for("newOfferAwaiting")
    # with an ack: an error ack
    reply = await bob.call(event, payload)
    assert reply["error"]["code"] == code, reply
    # without an ack: a signalingError naming the event
    await bob.emit(event, payload)
    error = await bob.wait_for("signalingError")
    assert error["code"] == code and error["event"] == event
    # nothing changed and nothing reached anyone else
    carol = await shared_clients(userName="carol")
    [[view]] = carol.events["availableOffers"]
    assert view["offerId"] == ack["offerId"] and view["offerIceCandidates"] == []
    assert alice.events["answerResponse"] == alice.events["signalingError"] == []
    assert alice.events["receivedIceCandidateFromServer"] == []
    # and the server still works for an honest answer
    assert await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}) == []


async def test_extra_arguments_are_refused(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    assert alice.sio is not None
    reply = await alice.sio.call("newOffer", (OFFER, OFFER), timeout=5)
    assert reply["error"]["code"] == "invalid_payload"


async def test_password_on(start_server: StartServer) -> None:
    server = start_server("--password", "s3cret")
    clients = Clients(server)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await clients(userName="eve", password="wrong")
        with pytest.raises(socketio.exceptions.ConnectionError, match="unauthorized"):
            await clients(userName="eve")
        ok = await clients(userName="alice", password="s3cret")
        assert ok.user_name == "alice"
    finally:
        await clients.close()


async def test_password_off_accepts_any(shared_clients: Clients) -> None:
    a = await shared_clients(userName="alice", password="anything")
    b = await shared_clients(userName="bob")
    assert (a.user_name, b.user_name) == ("alice", "bob")


async def test_rooms_isolate_offers(shared_clients: Clients) -> None:
    # rooms of this test only: the server is shared
    red_room, blue_room = f"{shared_clients.room}-red", f"{shared_clients.room}-blue"
    alice = await shared_clients(userName="alice", room=red_room)
    blue = await shared_clients(userName="bob", room=blue_room)
    red = await shared_clients(userName="carol", room=red_room)
    ack = await alice.call("newOffer", OFFER)
    await red.wait_for("newOfferAwaiting")
    await asyncio.sleep(0.2)
    assert blue.events["newOfferAwaiting"] == []
    reply = await blue.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    assert reply["error"]["code"] == "not_found"
    late_blue = await shared_clients(userName="dave", room=blue_room)
    assert late_blue.events["availableOffers"] == [[]]
    assert isinstance(
        await red.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}), list
    )


async def test_bad_room_or_name_is_refused(shared_clients: Clients) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError, match="room"):
        await shared_clients(userName="x", room="no spaces")
    with pytest.raises(socketio.exceptions.ConnectionError, match="userName"):
        await shared_clients(userName="n" * 65)


async def test_duplicate_names_get_a_suffix(clients: Clients) -> None:
    first = await clients(userName="sam")
    second = await clients(userName="sam")
    assert (first.user_name, second.user_name) == ("sam", "sam-2")
    welcome = second.events["welcome"][0]
    assert welcome["room"] == "lobby" and welcome["iceServers"] == []


async def test_ice_servers_reach_config_and_welcome(start_server: StartServer) -> None:
    server = start_server(
        "--ice-server",
        "stun:127.0.0.1:3478",
        "--ice-server",
        "turn:u:p@127.0.0.1:3478?transport=udp",
    )
    expected = [
        {"urls": "stun:127.0.0.1:3478"},
        {"urls": "turn:127.0.0.1:3478?transport=udp", "username": "u", "credential": "p"},
    ]
    import json

    status, body, _ = server.get("/config")  # an open server: anyone may connect anyway
    assert status == 200 and json.loads(body) == {"iceServers": expected, "ttl": None}
    clients = Clients(server)
    try:
        client = await clients(userName="alice")
        welcome = client.events["welcome"][0]
        assert welcome["iceServers"] == expected and welcome["iceServersTtl"] is None
    finally:
        await clients.close()


async def test_config_hides_credentials_from_whoever_cannot_connect(
    start_server: StartServer,
) -> None:
    import json
    import urllib.error
    import urllib.request

    server = start_server(
        "--password",
        "s3cret",
        "--ice-server",
        "stun:127.0.0.1:3478",
        "--ice-server",
        "turn:u:p@127.0.0.1:3478?transport=udp",
    )
    stun = {"urls": "stun:127.0.0.1:3478"}
    turn = {"urls": "turn:127.0.0.1:3478?transport=udp", "username": "u", "credential": "p"}

    def config(authorization: str | None) -> object:
        request = urllib.request.Request(server.url + "/config")
        if authorization is not None:
            request.add_header("Authorization", authorization)
        with urllib.request.urlopen(request, context=server.ssl_context(), timeout=5) as r:
            return json.loads(r.read())

    assert config(None) == {"iceServers": [stun], "ttl": None}
    assert config("Bearer wrong") == {"iceServers": [stun], "ttl": None}
    assert config("Basic s3cret") == {"iceServers": [stun], "ttl": None}
    assert config("Bearer s3cret") == {"iceServers": [stun, turn], "ttl": None}
    clients = Clients(server)
    try:
        client = await clients(userName="alice", password="s3cret")
        assert client.events["welcome"][0]["iceServers"] == [stun, turn]
        assert await client.call("iceServers", {}) == {"iceServers": [stun, turn], "ttl": None}
    finally:
        await clients.close()


async def test_decline_tells_the_caller_and_the_offer_stays(shared_clients: Clients) -> None:
    alice = await shared_clients(userName="alice")
    bob = await shared_clients(userName="bob")
    carol = await shared_clients(userName="carol")
    offer_id = (await alice.call("newOffer", OFFER))["offerId"]
    await bob.wait_for("newOfferAwaiting")
    assert await bob.call("decline", {"offerId": offer_id}) == {"ok": True}
    assert await alice.wait_for("offerDeclined") == {"offerId": offer_id, "by": "bob"}
    # carol can still answer it
    await carol.call(
        "newAnswer", {"offerId": offer_id, "offererUserName": "alice", "answer": ANSWER}
    )
    await alice.wait_for("answerResponse")
    assert (await bob.call("decline", {"offerId": offer_id}))["error"]["code"] == "not_found"


def test_ca_certificate_and_phone_page_are_served(shared_server: RunningServer) -> None:
    status, body, headers = shared_server.get("/ca.pem")
    assert status == 200 and body == shared_server.ca_path.read_bytes()
    assert b"PRIVATE KEY" not in body
    status, body, _ = shared_server.get("/phone")
    assert status == 200 and b'href="/ca.pem"' in body and b"Android" in body


async def test_tls_is_verified_against_the_generated_ca(shared_server: RunningServer) -> None:
    # the default trust store does not know our CA: a verifying client must refuse
    client = Client(shared_server)
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(shared_server.url + "/healthz")
    context = ssl.create_default_context(cafile=str(shared_server.ca_path))
    async with aiohttp.ClientSession() as session:
        for host in ("127.0.0.1", "localhost"):
            url = f"https://{host}:{shared_server.port}/healthz"
            async with session.get(url, ssl=context) as response:
                assert response.status == 200
    await client.close()


async def test_cross_origin_socket_is_refused(shared_server: RunningServer) -> None:
    import aiohttp

    context = ssl.create_default_context(cafile=str(shared_server.ca_path))
    url = shared_server.url.replace("https", "wss") + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(url, ssl=context, headers={"Origin": "https://evil.example"})
        same = shared_server.url
        async with session.ws_connect(url, ssl=context, headers={"Origin": same}) as ws:
            message = await ws.receive(timeout=5)
            assert message.data.startswith("0{")  # engine.io open packet


def test_http_endpoints(shared_server: RunningServer) -> None:
    import json

    status, body, headers = shared_server.get("/")
    assert status == 200 and b'type="module"' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    status, body, _ = shared_server.get("/healthz")
    assert json.loads(body)["status"] == "ok"
    status, body, headers = shared_server.get("/vendor/socket.io.esm.min.js")
    assert status == 200 and b"export" in body
    status, body, _ = shared_server.get("/metrics")
    assert b"callbox_sessions" in body


async def test_metrics_count_events_and_errors(clients: Clients) -> None:
    alice = await clients(userName="alice")
    await alice.call("newOffer", OFFER)
    await alice.call("newOffer", {"bad": 1})
    _, body, _ = clients.server.get("/metrics")
    text = body.decode()
    assert 'callbox_events_total{event="newOffer"} 2.0' in text
    assert 'callbox_errors_total{code="invalid_payload"} 1.0' in text
    assert "callbox_sessions 1.0" in text


def test_sigterm_stops_cleanly(callbox_server: RunningServer) -> None:
    assert callbox_server.stop() == 0
    assert "callbox stopped." in callbox_server.log()
    assert "Traceback" not in callbox_server.log()
