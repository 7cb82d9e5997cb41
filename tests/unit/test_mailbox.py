"""MemoryMailbox: numbering, the bounded log and ack cache, holds, resume and its tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from callbox.signaling import ErrorCode, SignalingError
from callbox.signaling.mailbox import At, Mailbox, MailboxLimits, MemoryMailbox, token_key

HERE = At("n1", "s1")
THERE = At("n1", "s2")

Opener = Callable[..., Awaitable[Mailbox]]

#: makes an empty mailbox (tests/integration/test_redis_contract.py makes Redis ones)
MakeBox = Callable[..., Mailbox]


@pytest.fixture
def make_box() -> MakeBox:
    return MemoryMailbox


@pytest.fixture
def opened(make_box: MakeBox) -> Opener:
    async def open_one(limits: MailboxLimits | None = None, resumable: bool = True) -> Mailbox:
        box = make_box(limits)
        token = await box.open("a", HERE, resumable=resumable, address="10.0.0.1", identity=None)
        assert (token is not None) == resumable
        return box

    return open_one


async def test_posts_are_numbered_and_say_where_to_emit(opened: Opener) -> None:
    box = await opened()
    first = await box.post("a", "e", {"n": 1}, 10)
    second = await box.post("a", "e", {"n": 2}, 10)
    assert first is not None and second is not None
    assert (first.seq, second.seq, first.to, first.numbered) == (1, 2, HERE, True)
    assert await box.post("nobody", "e", {}, 1) is None
    assert [letter.seq for letter in await box.read("a", 1)] == [2]
    assert await box.read("nobody", 0) == []


async def test_a_client_that_cannot_resume_gets_no_token_and_is_never_held(opened: Opener) -> None:
    box = await opened(resumable=False)
    posted = await box.post("a", "e", {}, 1)
    assert posted is not None and not posted.numbered
    assert await box.detach("a", HERE, hold_until=100.0, rate=None)
    assert await box.post("a", "e", {}, 1) is None  # gone at once
    assert await box.held_from("10.0.0.1") == 0


async def test_the_log_is_bounded_in_entries_and_in_bytes(opened: Opener) -> None:
    box = await opened(MailboxLimits(log_entries=3, log_bytes=100))
    for n in range(5):
        await box.post("a", "e", n, 10)
    assert [x.seq for x in await box.read("a", 0)] == [3, 4, 5]
    await box.post("a", "big", "x", 95)  # one letter may exceed alone; older ones go
    assert [x.seq for x in await box.read("a", 0)] == [6]
    await box.post("a", "huge", "x", 1000)
    assert [x.seq for x in await box.read("a", 0)] == [7]


async def test_resume_hands_over_what_came_after_last_seq_and_rotates_the_token(
    make_box: MakeBox,
) -> None:
    box = make_box()
    token = await box.open("a", HERE, resumable=True, address="ip", identity="alice", room="r")
    assert token is not None
    for n in range(4):
        await box.post("a", "e", n, 1)
    assert await box.detach("a", HERE, hold_until=50.0, rate=(3.0, 7.0))
    assert await box.held_from("ip") == 1
    posted = await box.post("a", "e", 4, 1)
    assert posted is not None and posted.to is None  # held: kept for the resume
    for who, room in (("mallory", None), ("alice", "elsewhere")):
        with pytest.raises(SignalingError) as refused:
            await box.resume(token, THERE, last_seq=2, identity=who, room=room)
        assert refused.value.code is ErrorCode.FORBIDDEN  # and the token still works:
    ticket = await box.resume(token, THERE, last_seq=2, identity="alice", room="r")
    assert [x.seq for x in ticket.letters] == [3, 4, 5] and ticket.next_seq == 6
    assert (ticket.rate, ticket.identity, ticket.address, ticket.lost) == (
        (3.0, 7.0),
        "alice",
        "ip",
        False,
    )
    assert ticket.token != token and await box.held_from("ip") == 0
    with pytest.raises(SignalingError) as info:
        await box.resume(token, HERE, None, identity="alice")  # single use
    assert info.value.code is ErrorCode.UNAUTHORIZED
    # without last_seq: everything since the drop was noticed
    assert await box.detach("a", THERE, hold_until=50.0, rate=None)
    await box.post("a", "e", 5, 1)
    again = await box.resume(ticket.token, HERE, last_seq=None, identity="alice")
    assert [x.seq for x in again.letters] == [6]


async def test_resume_of_a_silently_dead_socket_names_it_and_a_late_detach_is_ignored(
    make_box: MakeBox,
) -> None:
    box = make_box()
    token = await box.open("a", HERE, resumable=True, address="ip", identity=None)
    assert token is not None
    await box.post("a", "e", 1, 1)
    ticket = await box.resume(token, THERE, last_seq=None)
    assert ticket.replaced == HERE and ticket.letters == []
    # the old socket's close arrives later: it no longer holds the session
    assert not await box.detach("a", HERE, hold_until=None, rate=None)
    posted = await box.post("a", "e", 2, 1)
    assert posted is not None and posted.to == THERE


async def test_a_resume_from_before_what_the_log_keeps_is_lost(make_box: MakeBox) -> None:
    box = make_box(MailboxLimits(log_entries=2))
    token = await box.open("a", HERE, resumable=True, address="ip", identity=None)
    assert token is not None
    for n in range(5):
        await box.post("a", "e", n, 1)
    await box.detach("a", HERE, hold_until=9.0, rate=None)
    ticket = await box.resume(token, THERE, last_seq=1)
    assert ticket.lost and [x.seq for x in ticket.letters] == [4, 5]
    later = await box.resume(ticket.token, HERE, last_seq=99)  # claims more than was sent
    assert later.letters == [] and not later.lost


async def test_expired_holds_are_claimed_once_and_their_tokens_stop_working(
    make_box: MakeBox,
) -> None:
    box = make_box()
    token = await box.open("a", HERE, resumable=True, address="ip", identity=None)
    await box.open("b", THERE, resumable=True, address="ip", identity=None)
    assert token is not None
    await box.detach("a", HERE, hold_until=10.0, rate=None)
    await box.detach("b", THERE, hold_until=20.0, rate=None)
    assert await box.expired(15.0) == ["a"]
    assert await box.expired(15.0) == []
    with pytest.raises(SignalingError):
        await box.resume(token, HERE, None)
    await box.drop("a")
    await box.drop("a")  # twice is harmless
    assert await box.held_from("ip") == 1
    assert await box.post("a", "e", {}, 1) is None  # dropped for good


async def test_acks_are_remembered_bounded_and_refused_when_forgotten(opened: Opener) -> None:
    box = await opened(MailboxLimits(ack_entries=2, ack_bytes=100))
    assert await box.cached_ack("a", 1) == (False, None)
    await box.remember_ack("a", 1, {"ok": 1}, 10)
    await box.remember_ack("a", 2, {"ok": 2}, 10)
    await box.remember_ack("a", 2, {"ok": 2}, 10)  # the same again: counted once
    await box.remember_ack("a", 3, {"ok": 3}, 10)
    assert await box.cached_ack("a", 3) == (True, {"ok": 3})
    done, ack = await box.cached_ack("a", 1)  # forgotten, but known to be handled
    assert done and ack == {"error": {"code": "invalid_payload", "message": ANY_HANDLED}}
    await box.remember_ack("a", 4, "x", 500)  # too big alone: the older ones go first
    assert await box.cached_ack("a", 4) == (True, "x")
    assert await box.cached_ack("a", 5) == (False, None)
    await box.remember_ack("nobody", 1, "x", 1)
    assert await box.cached_ack("nobody", 1) == (False, None)


class _Handled(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.endswith("was handled already")

    __hash__ = str.__hash__


ANY_HANDLED = _Handled()


async def test_sessions_on_a_node_and_hashed_tokens(make_box: MakeBox) -> None:
    box = make_box()
    token = await box.open("a", At("n1", "s1"), resumable=True, address="ip", identity=None)
    await box.open("b", At("n2", "s2"), resumable=False, address="ip", identity=None)
    assert await box.sessions_on("n2") == ["b"]
    assert token is not None and token_key(token) != token and len(token_key(token)) == 64


async def test_close_forgets_everything() -> None:
    box = MemoryMailbox()
    await box.open("a", HERE, resumable=True, address="ip", identity=None)
    await box.detach("a", HERE, hold_until=5.0, rate=None)
    assert box.counts() == {"mailboxes": 1, "tokens": 1, "held": 1, "letters": 0}
    await box.close()
    assert set(box.counts().values()) == {0}


async def test_the_sessions_of_a_dead_node_are_held_or_ended(make_box: MakeBox) -> None:
    box = make_box()
    await box.open("a", At("dead", "s1"), resumable=True, address="ip", identity=None)
    await box.open("b", At("dead", "s2"), resumable=False, address="ip", identity=None)
    await box.open("c", At("alive", "s3"), resumable=True, address="ip", identity=None)
    assert await box.release("a", "dead", hold_until=50.0) == "held"
    assert await box.release("b", "dead", hold_until=50.0) == "ended"
    assert await box.release("c", "dead", hold_until=50.0) == ""  # not on that node
    assert await box.release("a", "dead", hold_until=50.0) == ""  # taken over already
    assert await box.sessions_on("dead") == []
    assert await box.expired(60.0) == ["a"]
