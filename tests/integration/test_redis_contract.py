"""The store's and the mailbox's rules, on Redis: the switchboard's and the mailbox's unit
scenarios (tests/unit) run again here with a RedisStore / RedisMailbox on a real
redis-server, each test under a key prefix of its own."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from callbox.signaling import ErrorCode, SignalingError, StoreUnavailable, Switchboard
from callbox.signaling.mailbox import At, MailboxLimits, Posted
from callbox.signaling.redis import RedisMailbox, RedisStore
from callbox.signaling.redis.scripts import check
from tests.unit import test_mailbox, test_switchboard
from tests.unit.boards import BySid
from tests.unit.test_mailbox import opened  # noqa: F401 - a fixture the scenarios use
from tests.unit.test_switchboard import board  # noqa: F401 - a fixture the scenarios use

# the same scenarios, collected here too (fixtures below give them Redis)
for _module in (test_switchboard, test_mailbox):
    for _name in dir(_module):
        if _name.startswith("test_") and _name not in {
            # these read MemoryStore's own table sizes or build MemoryStores inline
            "test_leave_withdraws_waiting_offer",
            "test_leave_during_call_ends_it_for_the_peer",
            "test_renegotiation_state_goes_with_the_call",
            "test_close_forgets_everything",
            "test_the_core_imports_no_transport",
        }:
            globals()[_name] = getattr(_module, _name)


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def store(redis_client: Redis, prefix: str) -> RedisStore:
    return RedisStore(redis_client, prefix)


@pytest.fixture
def make_box(redis_client: Redis, prefix: str) -> Callable[..., RedisMailbox]:
    def make(limits: MailboxLimits | None = None) -> RedisMailbox:
        return RedisMailbox(redis_client, prefix, limits)

    return make


async def test_redis_stats_count_sessions_offers_and_calls(store: RedisStore) -> None:
    sb = BySid(Switchboard(store))
    await test_switchboard.join(sb, "a", "alice")
    await test_switchboard.join(sb, "b", "bob")
    await test_switchboard.join(sb, "c", "carol")
    await sb.new_offer("a", test_switchboard.OFFER)
    await sb.new_offer("c", test_switchboard.OFFER)
    session = await store.get_session("b")
    assert session is not None
    [first, _] = await sb.waiting_views(session)
    await sb.answer("b", {"offerId": first["offerId"], "answer": test_switchboard.ANSWER})
    stats = await store.stats()
    assert (stats.sessions, stats.waiting_offers, stats.calls) == (3, 1, 1)
    await store.ping()
    await sb.leave("a")
    assert (await store.stats()).calls == 0


async def test_a_redis_that_is_down_is_unavailable_not_a_crash() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    store = RedisStore(redis)
    box = RedisMailbox(redis)
    try:
        for call in (
            store.ping(),
            store.get_session("x"),
            store.current_offer_id("x"),
            store.stats(),
            store.remove_offer("x"),
            box.read("x", 0),
            box.held_from("ip"),
            box.sessions_on("n"),
            box.held_count(),
        ):
            with pytest.raises(StoreUnavailable):
                await call
    finally:
        await redis.aclose()


def test_script_refusals_become_signaling_errors() -> None:
    assert check(b"ok") == "ok"
    with pytest.raises(SignalingError) as info:
        check("E:busy|waiting_offers:room full: try later")
    assert (info.value.code, info.value.limit, info.value.message) == (
        ErrorCode.BUSY,
        "waiting_offers",
        "room full: try later",
    )


async def test_redis_expires_only_waiting_offers_older_than_the_cut(store: RedisStore) -> None:
    clock = [1000.0]
    sb = BySid(Switchboard(store, clock=lambda: clock[0]))
    for sid in ("a", "b", "c"):
        await test_switchboard.join(sb, sid, sid)
    await sb.new_offer("a", test_switchboard.OFFER)
    clock[0] = 1100.0
    await sb.new_offer("b", test_switchboard.OFFER)
    session = await store.get_session("c")
    assert session is not None
    [_, second] = await sb.waiting_views(session)
    await sb.answer("c", {"offerId": second["offerId"], "answer": test_switchboard.ANSWER})
    clock[0] = 1000.0 + 601
    [removed] = await sb.expire_offers(600)
    assert removed.payload["reason"] == "expired"  # type: ignore[index]
    assert await sb.expire_offers(600) == []  # answered calls never expire


async def test_a_relayed_candidate_is_posted_in_the_step_that_routes_it(
    redis_client: Redis, prefix: str
) -> None:
    box = RedisMailbox(redis_client, prefix, node="n1")
    store = RedisStore(redis_client, prefix, mailbox=box)
    sb = BySid(Switchboard(store))
    await test_switchboard.join(sb, "a", "alice")
    await test_switchboard.join(sb, "b", "bob")
    await box.open("a", At("n1", "sa"), resumable=True, address="10.0.0.1", identity=None)
    await box.open("b", At("n2", "sb"), resumable=False, address="10.0.0.2", identity=None)
    offered = await sb.new_offer("a", test_switchboard.OFFER)
    held = await sb.ice_candidate("b", {"iceCandidate": test_switchboard.cand(0)})
    assert held.deliveries == []  # the answerer's candidate waits for its answer
    waiting = await sb.ice_candidate("a", {"iceCandidate": test_switchboard.cand(1)})
    assert waiting.deliveries == []  # buffered with the offer: nobody to post it to
    offer_id = offered.ack["offerId"]  # type: ignore[index]
    await sb.answer("b", {"offerId": offer_id, "answer": test_switchboard.ANSWER})
    [to_b] = (await sb.ice_candidate("a", {"iceCandidate": test_switchboard.cand(2)})).deliveries
    [to_a] = (
        await sb.ice_candidate("b", {"iceCandidate": test_switchboard.cand(3), "didIOffer": False})
    ).deliveries
    # posted already, numbered in each target's log, and told where its socket is
    assert (to_b.to_sid, to_b.posted) == ("b", Posted(1, At("n2", "sb"), False))
    assert (to_a.to_sid, to_a.posted) == ("a", Posted(1, At("n1", "sa"), True))
    [letter] = await box.read("a", 0)
    assert (letter.event, letter.payload) == ("receivedIceCandidateFromServer", to_a.payload)
    # a target whose mailbox is gone: routed, posted nowhere, nothing for the router to do
    await box.drop("b")
    [late] = (await sb.ice_candidate("a", {"iceCandidate": test_switchboard.cand(4)})).deliveries
    assert (late.to_sid, late.posted) == ("b", Posted(0, None, False))
