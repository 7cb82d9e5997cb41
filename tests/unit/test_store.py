"""MemoryStore's atomic steps and the core's remaining edges, directly."""

from __future__ import annotations

import pytest

from callbox.signaling import (
    Auth,
    Candidate,
    Description,
    ErrorCode,
    MemoryStore,
    Offer,
    Session,
    SignalingError,
    StoreUnavailable,
    Switchboard,
    parse_auth,
)
from callbox.signaling.limits import ConnectionCounter, RateLimiter

ANSWER = Description("answer", "v=0\r\n")
CAND = Candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host", "0", 0, None)


def offer(offer_id: str = "o1", sid: str = "a") -> Offer:
    return Offer(offer_id, "lobby", sid, sid, Description("offer", "v=0\r\n"), 1.0)


async def code_of(coro: object) -> ErrorCode:
    with pytest.raises(SignalingError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


async def test_claim_refuses_missing_offers_and_busy_answerers() -> None:
    store = MemoryStore()
    bob = Session("b", "bob", "lobby")
    assert await code_of(store.claim_offer("nope", bob, ANSWER)) == ErrorCode.NOT_FOUND
    await store.add_offer(offer("o1", "a"))
    await store.add_offer(offer("o2", "b"))
    assert await code_of(store.claim_offer("o1", bob, ANSWER)) == ErrorCode.BUSY
    assert await code_of(store.add_caller_candidate("nope", CAND, 5)) == ErrorCode.NOT_FOUND
    assert await store.remove_offer("nope") is None


async def test_snapshots_do_not_alias_the_store() -> None:
    store = MemoryStore()
    await store.add_offer(offer())
    copy = await store.get_offer("o1")
    assert copy is not None
    copy.offer_ice_candidates.append(CAND)
    again = await store.get_offer("o1")
    assert again is not None and again.offer_ice_candidates == []


async def test_close_empties_every_table() -> None:
    store = MemoryStore()
    await store.reserve_name(Session("a", "alice", "lobby"))
    await store.add_offer(offer())
    await store.add_pending_candidate("a", CAND, 5)
    await store.close()
    assert set(store.counts().values()) == {0}


async def test_a_room_full_of_one_name_is_busy() -> None:
    store = MemoryStore()
    board = Switchboard(store)
    for n in range(1000):
        await board.join(f"s{n}", Auth("sam", None, "lobby"))
    with pytest.raises(SignalingError) as info:
        await board.join("one-more", Auth("sam", None, "lobby"))
    assert info.value.code == ErrorCode.BUSY


async def test_offer_gone_between_reads_is_not_in_call() -> None:
    class Vanishing(MemoryStore):
        """A fault: the call ends between two reads of the switchboard."""

        async def get_offer(self, offer_id: str) -> Offer | None:
            return None

    board = Switchboard(Vanishing())
    await board.join("a", Auth("alice", None, "lobby"))
    await board.new_offer("a", {"type": "offer", "sdp": "v=0\r\n"})
    payload = {"iceCandidate": CAND.to_wire()}
    assert await code_of(board.ice_candidate("a", payload)) == ErrorCode.NOT_IN_CALL


async def test_ending_an_offer_twice_delivers_nothing_the_second_time() -> None:
    store = MemoryStore()
    board = Switchboard(store)
    await board.join("a", Auth("alice", None, "lobby"))
    await board.new_offer("a", {"type": "offer", "sdp": "v=0\r\n"})
    offer_id = await store.current_offer_id("a")
    assert offer_id is not None
    assert await board._end("a", offer_id, "hangup", "cancelled")
    assert await board._end("a", offer_id, "hangup", "cancelled") == []


def test_store_unavailable_is_the_unavailable_code() -> None:
    error = StoreUnavailable()
    assert error.to_wire() == {"code": "unavailable", "message": "signaling store unavailable"}


def test_limits_reject_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
    with pytest.raises(ValueError):
        ConnectionCounter(0)


@pytest.mark.parametrize(
    ("auth", "code"),
    [
        ({"resume": 5}, ErrorCode.INVALID_PAYLOAD),
        ({"resume": "r" * 300}, ErrorCode.TOO_LARGE),
        ({"resume": "r", "lastSeq": -1}, ErrorCode.INVALID_PAYLOAD),
        ({"resume": "r", "lastSeq": True}, ErrorCode.INVALID_PAYLOAD),
        ({"resume": "r", "lastSeq": 2.5}, ErrorCode.INVALID_PAYLOAD),
    ],
)
def test_bad_resume_fields_are_refused(auth: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(SignalingError) as info:
        parse_auth(auth)
    assert info.value.code == code


def test_resume_fields_parse() -> None:
    parsed = parse_auth({"resume": "tok", "lastSeq": 12})
    assert (parsed.resume, parsed.last_seq) == ("tok", 12)
