"""The switchboard's rules, on a MemoryStore, no sockets."""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys

import pytest

from callbox.signaling import (
    Auth,
    Delivery,
    ErrorCode,
    Limits,
    MemoryStore,
    SignalingError,
    Switchboard,
    parse_auth,
)
from tests.unit.boards import BySid

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\n"}


def cand(n: int, mid: str = "0") -> dict[str, object]:
    return {
        "candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {40000 + n} typ host",
        "sdpMid": mid,
        "sdpMLineIndex": 0,
        "usernameFragment": "abcd",
    }


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def board(store: MemoryStore) -> BySid:
    ids = (f"offer{n}" for n in itertools.count(1))
    return BySid(Switchboard(store, clock=lambda: 1000.0, new_id=lambda: next(ids)))


async def join(board: BySid, sid: str, name: str | None = None, room: str = "lobby") -> str:
    session, _ = await board.join(sid, Auth(user_name=name, password=None, room=room))
    return session.user_name


async def code_of(coro: object) -> ErrorCode:
    with pytest.raises(SignalingError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


def events(deliveries: list[Delivery]) -> list[tuple[str, str | None, str | None]]:
    return [(d.event, d.to_sid, d.to_room) for d in deliveries]


async def test_offer_is_announced_to_the_room_but_not_the_offerer(board: BySid) -> None:
    await join(board, "a", "alice")
    outcome = await board.new_offer("a", OFFER)
    assert outcome.ack == {"offerId": "offer1"}
    [d] = outcome.deliveries
    assert (d.event, d.to_room, d.skip_sid) == ("newOfferAwaiting", "lobby", "a")
    assert isinstance(d.payload, list)
    [view] = d.payload
    assert isinstance(view, dict)
    assert view["offererUserName"] == "alice" and view["offer"] == OFFER
    assert view["answer"] is None and view["offerIceCandidates"] == []


async def test_late_joiner_sees_waiting_offer_with_buffered_candidates_in_order(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    for n in range(5):
        outcome = await board.ice_candidate("a", {"iceCandidate": cand(n), "didIOffer": True})
        assert outcome.ack == {"ok": True} and outcome.deliveries == []
    _, offers = await board.join("b", Auth("bob", None, "lobby"))
    [view] = offers
    assert [c["candidate"] for c in view["offerIceCandidates"]] == [
        cand(n)["candidate"] for n in range(5)
    ]


async def test_answer_hands_over_buffered_candidates_once_then_relays_live(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    for n in range(3):
        await board.ice_candidate("a", {"iceCandidate": cand(n)})
    outcome = await board.answer(
        "b", {"offerId": "offer1", "offererUserName": "alice", "answer": ANSWER}
    )
    assert [c["candidate"] for c in outcome.ack] == [cand(n)["candidate"] for n in range(3)]  # type: ignore[attr-defined]
    assert events(outcome.deliveries) == [
        ("answerResponse", "a", None),
        ("offerRemoved", None, "lobby"),
    ]
    response = outcome.deliveries[0].payload
    assert response["answer"] == ANSWER and response["answererUserName"] == "bob"  # type: ignore[index]
    live = await board.ice_candidate("a", {"iceCandidate": cand(3)})
    assert events(live.deliveries) == [("receivedIceCandidateFromServer", "b", None)]
    assert live.deliveries[0].payload == cand(3)
    back = await board.ice_candidate("b", {"iceCandidate": cand(9), "didIOffer": False})
    assert events(back.deliveries) == [("receivedIceCandidateFromServer", "a", None)]


async def test_answerer_candidates_sent_before_the_answer_follow_the_answer(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    for n in (7, 8):
        early = await board.ice_candidate(
            "b", {"iceCandidate": cand(n), "iceUserName": "bob", "didIOffer": False}
        )
        assert early.deliveries == []
    outcome = await board.answer("b", {"offererUserName": "alice", "answer": ANSWER})
    assert events(outcome.deliveries) == [
        ("answerResponse", "a", None),
        ("receivedIceCandidateFromServer", "a", None),
        ("receivedIceCandidateFromServer", "a", None),
        ("offerRemoved", None, "lobby"),
    ]
    assert [d.payload for d in outcome.deliveries[1:3]] == [cand(7), cand(8)]


async def test_pending_candidates_are_bounded(store: MemoryStore) -> None:
    board = BySid(Switchboard(store, limits=Limits(max_pending_candidates=2)))
    await join(board, "b", "bob")
    for n in range(2):
        await board.ice_candidate("b", {"iceCandidate": cand(n)})
    assert await code_of(board.ice_candidate("b", {"iceCandidate": cand(3)})) == ErrorCode.TOO_LARGE


async def test_buffered_candidates_are_bounded(store: MemoryStore) -> None:
    board = BySid(Switchboard(store, limits=Limits(max_buffered_candidates=2)))
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    for n in range(2):
        await board.ice_candidate("a", {"iceCandidate": cand(n)})
    assert await code_of(board.ice_candidate("a", {"iceCandidate": cand(3)})) == ErrorCode.TOO_LARGE


async def test_exactly_one_of_many_concurrent_answerers_wins(board: BySid) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    for n in range(20):
        await join(board, f"b{n}", f"bob{n}")
    results = await asyncio.gather(
        *(
            board.answer(
                f"b{n}", {"offerId": "offer1", "offererUserName": "alice", "answer": ANSWER}
            )
            for n in range(20)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, SignalingError)]
    assert len(winners) == 1
    assert len(losers) == 19 and all(e.code == ErrorCode.OFFER_TAKEN for e in losers)


async def test_spoofed_ice_user_name_is_forbidden_and_not_relayed(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "m", "mallory")
    await board.new_offer("a", OFFER)
    code = await code_of(
        board.ice_candidate(
            "m", {"iceCandidate": cand(1), "iceUserName": "alice", "didIOffer": True}
        )
    )
    assert code == ErrorCode.FORBIDDEN
    offer = await board.store.get_offer("offer1")
    assert offer is not None and offer.offer_ice_candidates == ()


async def test_false_did_i_offer_is_forbidden(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "offererUserName": "alice", "answer": ANSWER})
    assert (
        await code_of(board.ice_candidate("b", {"iceCandidate": cand(1), "didIOffer": True}))
        == ErrorCode.FORBIDDEN
    )
    assert (
        await code_of(board.ice_candidate("a", {"iceCandidate": cand(1), "didIOffer": False}))
        == ErrorCode.FORBIDDEN
    )
    # a session without any offer claiming to be an offerer
    await join(board, "c", "carol")
    assert (
        await code_of(board.ice_candidate("c", {"iceCandidate": cand(1), "didIOffer": True}))
        == ErrorCode.FORBIDDEN
    )


async def test_candidate_naming_another_offer_is_forbidden(board: BySid) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    code = await code_of(board.ice_candidate("a", {"iceCandidate": cand(1), "offerId": "other"}))
    assert code == ErrorCode.FORBIDDEN


async def test_one_offer_or_call_per_session(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    assert await code_of(board.new_offer("a", OFFER)) == ErrorCode.BUSY
    await board.new_offer("b", OFFER)
    code = await code_of(
        board.answer("b", {"offerId": "offer1", "offererUserName": "alice", "answer": ANSWER})
    )
    assert code == ErrorCode.BUSY


async def test_cannot_answer_own_offer_or_a_missing_one(board: BySid) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    assert (
        await code_of(board.answer("a", {"offerId": "offer1", "answer": ANSWER}))
        == ErrorCode.FORBIDDEN
    )
    await join(board, "b", "bob")
    assert (
        await code_of(board.answer("b", {"offerId": "nope", "answer": ANSWER}))
        == ErrorCode.NOT_FOUND
    )
    assert (
        await code_of(board.answer("b", {"offererUserName": "nobody", "answer": ANSWER}))
        == ErrorCode.NOT_FOUND
    )
    code = await code_of(
        board.answer("b", {"offerId": "offer1", "offererUserName": "zed", "answer": ANSWER})
    )
    assert code == ErrorCode.INVALID_PAYLOAD


async def test_rooms_isolate_offers(board: BySid) -> None:
    await join(board, "a", "alice", room="red")
    await board.new_offer("a", OFFER)
    _, offers = await board.join("b", Auth("bob", None, "blue"))
    assert offers == []
    assert (
        await code_of(board.answer("b", {"offerId": "offer1", "answer": ANSWER}))
        == ErrorCode.NOT_FOUND
    )
    assert (
        await code_of(board.answer("b", {"offererUserName": "alice", "answer": ANSWER}))
        == ErrorCode.NOT_FOUND
    )
    _, offers = await board.join("c", Auth("carol", None, "red"))
    assert [o["offerId"] for o in offers] == ["offer1"]


async def test_names_are_made_unique_per_room_and_guests_get_a_name(board: BySid) -> None:
    assert await join(board, "a", "alice") == "alice"
    assert await join(board, "b", "Alice") == "Alice-2"
    assert await join(board, "c", "alice", room="other") == "alice"
    guest = await join(board, "d")
    assert guest.startswith("guest-") and len(guest) == len("guest-") + 4
    await board.leave("a")
    assert await join(board, "e", "alice") == "alice"


async def test_hangup_of_a_waiting_offer_withdraws_it(board: BySid) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    outcome = await board.hangup("a", {"offerId": "offer1"})
    assert outcome.ack == {"ok": True}
    [d] = outcome.deliveries
    assert (d.event, d.payload, d.to_room) == (
        "offerRemoved",
        {"offerId": "offer1", "reason": "cancelled"},
        "lobby",
    )
    assert await board.store.waiting_offers("lobby") == []
    assert await code_of(board.hangup("a", None)) == ErrorCode.NOT_IN_CALL


async def test_hangup_in_a_call_tells_the_other_party_only(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    assert await code_of(board.hangup("b", {"offerId": "other"})) == ErrorCode.NOT_FOUND
    outcome = await board.hangup("b", {})
    assert [(d.event, d.to_sid, d.payload) for d in outcome.deliveries] == [
        ("callEnded", "a", {"offerId": "offer1", "reason": "hangup", "by": "bob"})
    ]
    # both are free again: a new call works
    await board.new_offer("b", OFFER)
    await board.answer("a", {"offererUserName": "bob", "answer": ANSWER})


async def test_caller_hangup_names_the_caller(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    outcome = await board.hangup("a", None)
    assert [(d.event, d.to_sid, d.payload) for d in outcome.deliveries] == [
        ("callEnded", "b", {"offerId": "offer1", "reason": "hangup", "by": "alice"})
    ]


async def test_leave_withdraws_waiting_offer(board: BySid, store: MemoryStore) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    deliveries = await board.leave("a")
    assert [(d.event, d.payload) for d in deliveries] == [
        ("offerRemoved", {"offerId": "offer1", "reason": "disconnected"})
    ]
    assert store.counts() == {
        "sessions": 0,
        "names": 0,
        "offers": 0,
        "bound": 0,
        "pending": 0,
        "rooms": 0,
    }


async def test_leave_during_call_ends_it_for_the_peer(board: BySid, store: MemoryStore) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    deliveries = await board.leave("b")
    assert [(d.event, d.to_sid, d.payload) for d in deliveries] == [
        ("callEnded", "a", {"offerId": "offer1", "reason": "peer-disconnected", "by": "bob"})
    ]
    assert await board.leave("a") == []
    assert await board.leave("a") == []  # twice is harmless
    assert store.counts() == {
        "sessions": 0,
        "names": 0,
        "offers": 0,
        "bound": 0,
        "pending": 0,
        "rooms": 0,
    }


async def test_candidate_after_call_ended_is_not_in_call(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    await board.hangup("a", None)
    # b has no call any more: a candidate is held as "before an answer", nothing relayed
    outcome = await board.ice_candidate("b", {"iceCandidate": cand(1)})
    assert outcome.deliveries == []


async def test_unknown_session_is_unauthorized(board: BySid) -> None:
    assert await code_of(board.new_offer("ghost", OFFER)) == ErrorCode.UNAUTHORIZED


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "offer",
        [],
        {},
        {"type": "answer", "sdp": "v=0"},
        {"type": "offer"},
        {"type": "offer", "sdp": 5},
        {"type": "offer", "sdp": "hello"},
        {"type": 1, "sdp": "v=0"},
    ],
)
async def test_malformed_offer_is_invalid_and_changes_nothing(
    board: BySid, payload: object
) -> None:
    await join(board, "a", "alice")
    assert await code_of(board.new_offer("a", payload)) == ErrorCode.INVALID_PAYLOAD
    assert await board.store.current_offer_id("a") is None


async def test_huge_sdp_is_too_large(board: BySid) -> None:
    await join(board, "a", "alice")
    huge = {"type": "offer", "sdp": "v=0" + "x" * 70_000}
    assert await code_of(board.new_offer("a", huge)) == ErrorCode.TOO_LARGE


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"iceCandidate": None},
        {"iceCandidate": "candidate:1"},
        {"iceCandidate": {"candidate": 5}},
        {"iceCandidate": {"candidate": "nonsense", "sdpMid": "0"}},
        {"iceCandidate": {"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host"}},
        {"iceCandidate": {"candidate": "candidate:1\r\na=x", "sdpMid": "0"}},
        {"iceCandidate": {"candidate": "candidate:1\na=x", "sdpMid": "0"}},
        {"iceCandidate": {"candidate": "candidate:1\ra=x", "sdpMid": "0"}},
        {"iceCandidate": {"candidate": "candidate:1\0", "sdpMid": "0"}},
        {"iceCandidate": {"candidate": "", "sdpMLineIndex": -1}},
        {"iceCandidate": {"candidate": "", "sdpMLineIndex": True}},
        {"iceCandidate": {"candidate": "", "sdpMid": "0"}, "didIOffer": "yes"},
        {"iceCandidate": {"candidate": "", "sdpMid": "0"}, "iceUserName": 3},
    ],
)
async def test_malformed_candidate_is_invalid(board: BySid, payload: object) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    assert await code_of(board.ice_candidate("a", payload)) == ErrorCode.INVALID_PAYLOAD
    offer = await board.store.get_offer("offer1")
    assert offer is not None and offer.offer_ice_candidates == ()


@pytest.mark.parametrize(
    "payload",
    [None, {}, {"answer": ANSWER}, {"offerId": "offer1"}, {"offerId": "offer1", "answer": OFFER}],
)
async def test_malformed_answer_is_invalid(board: BySid, payload: object) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    assert await code_of(board.answer("b", payload)) == ErrorCode.INVALID_PAYLOAD
    assert len(await board.store.waiting_offers("lobby")) == 1


async def test_malformed_hangup_is_invalid(board: BySid) -> None:
    await join(board, "a", "alice")
    assert await code_of(board.hangup("a", "x")) == ErrorCode.INVALID_PAYLOAD
    assert await code_of(board.hangup("a", {"offerId": 1})) == ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ("x", ErrorCode.INVALID_PAYLOAD),
        ({"userName": 5}, ErrorCode.INVALID_PAYLOAD),
        ({"userName": "a\x00b"}, ErrorCode.INVALID_PAYLOAD),
        ({"userName": "n" * 65}, ErrorCode.TOO_LARGE),
        ({"room": "has space"}, ErrorCode.INVALID_PAYLOAD),
        ({"room": 7}, ErrorCode.INVALID_PAYLOAD),
        ({"password": 7}, ErrorCode.INVALID_PAYLOAD),
    ],
)
def test_bad_auth_is_refused(auth: object, code: ErrorCode) -> None:
    with pytest.raises(SignalingError) as info:
        parse_auth(auth)
    assert info.value.code == code


def test_auth_defaults_and_trims() -> None:
    assert parse_auth(None) == Auth(None, None, "lobby")
    assert parse_auth({"userName": "  Ann   Lee ", "room": "", "password": "p"}) == Auth(
        "Ann Lee", "p", "lobby"
    )
    assert parse_auth({"userName": "   "}).user_name is None
    assert parse_auth({"userName": "<img src=x onerror=alert(1)>"}).user_name == (
        "<img src=x onerror=alert(1)>"
    )


async def test_end_of_candidates_marker_is_relayed(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    end = {"candidate": "", "sdpMid": None, "sdpMLineIndex": 0, "usernameFragment": None}
    outcome = await board.ice_candidate("a", {"iceCandidate": end})
    assert outcome.deliveries[0].payload == end


def test_the_core_imports_no_transport() -> None:
    code = (
        "import sys, callbox.signaling; "
        "bad = [m for m in ('socketio', 'engineio', 'aiohttp', 'aiortc') if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


async def test_losing_answerer_candidates_are_dropped(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await join(board, "c", "carol")
    await board.new_offer("a", OFFER)
    await board.ice_candidate("c", {"iceCandidate": cand(5)})  # carol trickles early...
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    code = await code_of(board.answer("c", {"offerId": "offer1", "answer": ANSWER}))
    assert code == ErrorCode.OFFER_TAKEN  # ...and loses
    await join(board, "d", "dave")
    await board.new_offer("d", OFFER)
    outcome = await board.answer("c", {"offerId": "offer2", "answer": ANSWER})
    assert events(outcome.deliveries) == [
        ("answerResponse", "d", None),
        ("offerRemoved", None, "lobby"),
    ]


RESTART = {"type": "offer", "sdp": "v=0\r\no=- 1 3 IN IP4 127.0.0.1\r\n"}
RESTART_ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 5 IN IP4 127.0.0.1\r\n"}


async def test_renegotiate_relays_offers_from_either_side_and_answers_to_the_offerer(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    assert await code_of(board.renegotiate("a", {"description": RESTART})) == ErrorCode.NOT_IN_CALL
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    outcome = await board.renegotiate("a", {"offerId": "offer1", "description": RESTART})
    assert [(d.event, d.to_sid, d.payload) for d in outcome.deliveries] == [
        ("renegotiate", "b", {"offerId": "offer1", "description": RESTART, "from": "alice"})
    ]
    outcome = await board.renegotiate("b", {"description": RESTART_ANSWER})
    assert [(d.event, d.to_sid) for d in outcome.deliveries] == [("renegotiate", "a")]
    # the answerer may offer too (e.g. to share its screen); the caller answers it
    outcome = await board.renegotiate("b", {"description": RESTART})
    assert [(d.event, d.to_sid, d.payload) for d in outcome.deliveries] == [
        ("renegotiate", "a", {"offerId": "offer1", "description": RESTART, "from": "bob"})
    ]
    outcome = await board.renegotiate("a", {"description": RESTART_ANSWER})
    assert [(d.event, d.to_sid) for d in outcome.deliveries] == [("renegotiate", "b")]
    code = await code_of(board.renegotiate("a", {"offerId": "x", "description": RESTART}))
    assert code == ErrorCode.FORBIDDEN
    code = await code_of(board.renegotiate("a", {"description": {"type": "rollback"}}))
    assert code == ErrorCode.INVALID_PAYLOAD


async def test_an_answer_nobody_asked_for_is_refused_and_not_relayed(board: BySid) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    for sid in ("a", "b"):
        code = await code_of(board.renegotiate(sid, {"description": RESTART_ANSWER}))
        assert code == ErrorCode.FORBIDDEN
    await board.renegotiate("a", {"description": RESTART})
    await board.renegotiate("b", {"description": RESTART_ANSWER})
    # one offer, one answer: a second answer to the same offer is refused
    assert await code_of(board.renegotiate("b", {"description": RESTART_ANSWER})) == (
        ErrorCode.FORBIDDEN
    )


async def test_glare_both_offers_are_relayed_and_the_polite_answer_settles_it(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    first = await board.renegotiate("a", {"description": RESTART})
    second = await board.renegotiate("b", {"description": RESTART})
    assert [d.to_sid for d in first.deliveries + second.deliveries] == ["b", "a"]
    # bob (the answerer, polite) rolls back and answers alice's offer
    outcome = await board.renegotiate("b", {"description": RESTART_ANSWER})
    assert [d.to_sid for d in outcome.deliveries] == ["a"]


async def test_renegotiation_state_goes_with_the_call(store: MemoryStore) -> None:
    board = BySid(Switchboard(store, new_id=lambda: "call"))
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "call", "answer": ANSWER})
    await board.renegotiate("a", {"description": RESTART})
    await board.hangup("b", None)
    with pytest.raises(SignalingError) as info:
        await store.renegotiation("b", "answer", offer_id=None)
    assert info.value.code == ErrorCode.NOT_IN_CALL
    assert store.counts()["offers"] == 0


async def test_decline_tells_the_offerer_and_leaves_the_offer_waiting(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await join(board, "c", "carol", room="other")
    await board.new_offer("a", OFFER)
    outcome = await board.decline("b", {"offerId": "offer1"})
    assert outcome.ack == {"ok": True}
    assert [(d.event, d.to_sid, d.payload) for d in outcome.deliveries] == [
        ("offerDeclined", "a", {"offerId": "offer1", "by": "bob"})
    ]
    session = await board.store.get_session("b")
    assert session is not None
    assert [v["offerId"] for v in await board.waiting_views(session)] == ["offer1"]
    assert await code_of(board.decline("a", {"offerId": "offer1"})) == ErrorCode.FORBIDDEN
    assert await code_of(board.decline("c", {"offerId": "offer1"})) == ErrorCode.NOT_FOUND
    assert await code_of(board.decline("b", {"offerId": "nope"})) == ErrorCode.NOT_FOUND
    assert await code_of(board.decline("b", {})) == ErrorCode.INVALID_PAYLOAD
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    assert await code_of(board.decline("b", {"offerId": "offer1"})) == ErrorCode.NOT_FOUND


async def test_waiting_views_exclude_own_offer(board: BySid) -> None:
    await join(board, "a", "alice")
    await board.new_offer("a", OFFER)
    session = await board.store.get_session("a")
    assert session is not None
    assert await board.waiting_views(session) == []


async def test_a_server_shutdown_tells_both_parties_and_withdraws_quietly(
    board: BySid,
) -> None:
    await join(board, "a", "alice")
    await join(board, "b", "bob")
    await join(board, "c", "carol")
    await board.new_offer("a", OFFER)
    await board.answer("b", {"offerId": "offer1", "answer": ANSWER})
    await board.new_offer("c", OFFER)
    deliveries = await board.leave("b", "server-shutdown")
    assert [(d.event, d.to_sid, d.payload) for d in deliveries] == [
        ("callEnded", party, {"offerId": "offer1", "reason": "server-shutdown", "by": ""})
        for party in ("a", "b")
    ]
    assert await board.leave("a", "server-shutdown") == []  # told once
    [withdrawn] = await board.leave("c", "server-shutdown")
    assert withdrawn.event == "offerRemoved"
