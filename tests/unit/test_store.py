"""MemoryStore's atomic steps and the core's remaining edges, directly."""

from __future__ import annotations

import pytest

from callbox.signaling import (
    Auth,
    Candidate,
    Description,
    ErrorCode,
    Limits,
    MemoryStore,
    Offer,
    Session,
    SignalingError,
    StoreUnavailable,
    Switchboard,
    parse_auth,
)
from callbox.signaling.limits import ConnectionCounter, RateLimiter
from callbox.signaling.store import StoreStats
from tests.unit.boards import BySid

ANSWER = Description("answer", "v=0\r\n")
CAND = Candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host", "0", 0, None)


def offer(offer_id: str = "o1", sid: str = "a") -> Offer:
    return Offer(offer_id, "lobby", sid, sid, Description("offer", "v=0\r\n"), 1.0)


async def code_of(coro: object) -> ErrorCode:
    with pytest.raises(SignalingError) as info:
        await coro  # type: ignore[misc]
    return info.value.code


LIMITS = Limits()


async def with_sessions(*sids: str, room: str = "lobby") -> MemoryStore:
    store = MemoryStore()
    for sid in sids:
        assert await store.add_session(Session(sid, sid, room))
    return store


async def test_claim_refuses_missing_offers_and_busy_answerers() -> None:
    store = await with_sessions("a", "b")
    bob = Session("b", "b", "lobby")
    claim = store.claim_offer(bob, ANSWER, offer_id="nope", offerer_user_name=None)
    assert await code_of(claim) == ErrorCode.NOT_FOUND
    await store.add_offer(offer("o1", "a"), LIMITS)
    await store.add_offer(offer("o2", "b"), LIMITS)
    claim = store.claim_offer(bob, ANSWER, offer_id="o1", offerer_user_name=None)
    assert await code_of(claim) == ErrorCode.BUSY
    stranger = Session("x", "x", "lobby")
    claim = store.claim_offer(stranger, ANSWER, offer_id="o1", offerer_user_name=None)
    assert await code_of(claim) == ErrorCode.UNAUTHORIZED
    assert await store.remove_offer("nope") is None


async def test_a_session_that_is_gone_cannot_offer_or_trickle() -> None:
    store = MemoryStore()
    assert await code_of(store.add_offer(offer(), LIMITS)) == ErrorCode.UNAUTHORIZED
    route = store.route_candidate("a", CAND, caller=None, offer_id=None, limits=LIMITS)
    assert await code_of(route) == ErrorCode.UNAUTHORIZED


async def test_snapshots_are_immutable_and_do_not_alias_the_store() -> None:
    store = await with_sessions("a")
    await store.add_offer(offer(), LIMITS)
    first = await store.get_offer("o1")
    await store.route_candidate("a", CAND, caller=True, offer_id="o1", limits=LIMITS)
    again = await store.get_offer("o1")
    assert first is not None and first.offer_ice_candidates == ()
    assert again is not None and again.offer_ice_candidates == (CAND,)
    with pytest.raises(AttributeError):
        again.offer_ice_candidates = ()  # type: ignore[misc]


async def test_buffers_are_bounded_in_characters_too() -> None:
    store = await with_sessions("a", "b")
    small = Limits(
        max_buffered_candidate_bytes=2 * CAND.size, max_pending_candidate_bytes=CAND.size
    )
    await store.add_offer(offer(), small)
    for _ in range(2):
        await store.route_candidate("a", CAND, caller=True, offer_id=None, limits=small)
    route = store.route_candidate("a", CAND, caller=True, offer_id=None, limits=small)
    assert await code_of(route) == ErrorCode.TOO_LARGE
    await store.route_candidate("b", CAND, caller=False, offer_id=None, limits=small)
    route = store.route_candidate("b", CAND, caller=False, offer_id=None, limits=small)
    assert await code_of(route) == ErrorCode.TOO_LARGE


async def test_a_room_is_bounded_in_the_characters_of_its_waiting_offers() -> None:
    store = await with_sessions("a", "b", "c")
    sdp = "v=0\r\n" + "x" * 1000
    big = Offer("o1", "lobby", "a", "a", Description("offer", sdp), 1.0)
    room = Limits(max_room_offer_bytes=big.size + CAND.size)
    await store.add_offer(big, room)
    await store.route_candidate("a", CAND, caller=True, offer_id=None, limits=room)
    route = store.route_candidate("a", CAND, caller=True, offer_id=None, limits=room)
    assert await code_of(route) == ErrorCode.TOO_LARGE
    second = Offer("o2", "lobby", "b", "b", Description("offer", "v=0\r\n"), 2.0)
    with pytest.raises(SignalingError) as info:
        await store.add_offer(second, room)
    assert (info.value.code, info.value.limit) == (ErrorCode.BUSY, "room_offer_bytes")
    # answered, the big offer no longer weighs on its room
    claimed = await store.claim_offer(
        Session("c", "c", "lobby"), ANSWER, offer_id="o1", offerer_user_name=None
    )
    assert claimed.offer.offer_ice_candidates == (CAND,)
    await store.add_offer(second, room)


async def test_close_empties_every_table() -> None:
    store = await with_sessions("a", "b")
    await store.add_offer(offer(), LIMITS)
    await store.route_candidate("b", CAND, caller=None, offer_id=None, limits=LIMITS)
    await store.close()
    assert set(store.counts().values()) == {0}


async def test_stats_count_sessions_waiting_offers_and_calls() -> None:
    store = await with_sessions("a", "b", "c")
    await store.add_offer(offer("o1", "a"), LIMITS)
    await store.add_offer(offer("o2", "b"), LIMITS)
    await store.claim_offer(
        Session("c", "c", "lobby"), ANSWER, offer_id="o1", offerer_user_name=None
    )
    assert await store.stats() == StoreStats(sessions=3, waiting_offers=1, calls=1)
    await store.ping()


async def test_look_alike_names_cannot_share_a_room() -> None:
    store = MemoryStore()
    assert await store.add_session(Session("a", "alice", "lobby"))
    for spoof in ("аlice", "ALICE", "ａｌｉｃｅ", "alice"):  # Cyrillic а, capitals, fullwidth
        assert not await store.add_session(Session("x", spoof, "lobby"))
    assert await store.add_session(Session("b", "alice", "other"))  # other rooms are apart
    assert await store.add_session(Session("c", "Ian", "lobby"))
    assert not await store.add_session(Session("d", "lan", "lobby"))
    left = await store.leave("a")
    assert left.session is not None and left.offer is None
    assert await store.add_session(Session("e", "аlice", "lobby"))  # free again


async def test_a_room_full_of_one_name_is_busy() -> None:
    # 40, not the default 1000: each join tries the names in turn, so filling a room costs
    # the square of the limit (1000 took 7.5 s alone and 99 s in a busy suite)
    store = MemoryStore()
    board = BySid(Switchboard(store, limits=Limits(max_same_name=40)))
    joined = [await board.join(f"s{n}", Auth("sam", None, "lobby")) for n in range(40)]
    assert [s.user_name for s, _ in joined] == ["sam", *(f"sam-{n}" for n in range(2, 41))]
    with pytest.raises(SignalingError) as info:
        await board.join("one-more", Auth("sam", None, "lobby"))
    assert info.value.code == ErrorCode.BUSY
    await board.join("other", Auth("samuel", None, "lobby"))  # only that name is full
    assert Limits().max_same_name == 1000


async def test_ending_an_offer_twice_delivers_nothing_the_second_time() -> None:
    store = MemoryStore()
    board = BySid(Switchboard(store))
    await board.join("a", Auth("alice", None, "lobby"))
    await board.new_offer("a", {"type": "offer", "sdp": "v=0\r\n"})
    assert (await board.leave("a"))[0].event == "offerRemoved"
    assert await board.leave("a") == []


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


def test_resume_true_declares_a_resumable_client() -> None:
    assert parse_auth({"resume": True}).resumable
    assert parse_auth({"resume": True}).resume is None
    assert not parse_auth({"resume": False}).resumable
    assert not parse_auth({}).resumable
    assert parse_auth({"resume": "tok"}).resumable


def test_resume_fields_parse() -> None:
    parsed = parse_auth({"resume": "tok", "lastSeq": 12})
    assert (parsed.resume, parsed.last_seq) == ("tok", 12)
