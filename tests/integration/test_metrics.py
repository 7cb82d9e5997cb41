"""The operator's view (issue 10): /metrics counts a scripted call exactly, on both
backends; /healthz says what the node is (the 503 and back is in test_nodes.py, where Redis
is stopped and started)."""

from __future__ import annotations

import json

from tests.conftest import RunningServer
from tests.integration.server_proc import metric
from tests.integration.sio_client import ANSWER, OFFER, Clients, cand


def counters(server: RunningServer, name: str, label: str) -> dict[str, float]:
    _, body, _ = server.get("/metrics")
    out: dict[str, float] = {}
    prefix = f"{name}{{{label}="
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            key = line[len(prefix) + 1 : line.index('"', len(prefix) + 1)]
            out[key] = float(line.rsplit(" ", 1)[1])
    return out


async def test_a_scripted_call_is_counted_exactly(clients: Clients) -> None:
    server = clients.server
    alice = await clients(userName="alice", room="metrics")
    bob = await clients(userName="bob", room="metrics")
    ack = await alice.call("newOffer", OFFER)
    for n in range(3):
        await alice.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(n)})
    assert metric(server, "callbox_waiting_offers") == 1
    await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await alice.wait_for("answerResponse")
    for n in range(2):
        await bob.call("sendIceCandidateToSignalingServer", {"iceCandidate": cand(10 + n)})
    await alice.wait_for("receivedIceCandidateFromServer", 2)
    assert metric(server, "callbox_active_calls") == 1
    assert metric(server, "callbox_waiting_offers") == 0
    await alice.call("hangup", None)
    await bob.wait_for("callEnded")
    await alice.call("newOffer", {"type": "nope"})  # one refusal, counted by its code
    assert counters(server, "callbox_events_total", "event") == {
        "newOffer": 2,
        "sendIceCandidateToSignalingServer": 5,
        "newAnswer": 1,
        "hangup": 1,
    }
    assert counters(server, "callbox_deliveries_total", "event") == {
        "newOfferAwaiting": 1,  # a broadcast counts once
        "answerResponse": 1,
        "offerRemoved": 1,
        "receivedIceCandidateFromServer": 2,
        "callEnded": 1,
    }
    assert counters(server, "callbox_errors_total", "code") == {"invalid_payload": 1}
    assert metric(server, "callbox_answer_seconds_count") == 1
    assert metric(server, "callbox_active_calls") == 0
    assert metric(server, "callbox_sessions") == 2


def test_healthz_says_which_node_store_and_version(callbox_server: RunningServer) -> None:
    status, body, headers = callbox_server.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["status"] == "ok" and health["storeReachable"] is True
    assert health["store"] in ("memory", "redis") and health["node"] and health["version"]
    assert health["uptime"] >= 0 and headers["Cache-Control"] == "no-store"
