"""Presence: sockets to sessions, kept events and remembered acks (no sockets involved)."""

from __future__ import annotations

from callbox.server.presence import ACK_LOG_SIZE, Presence
from callbox.signaling import Delivery


def test_acks_are_remembered_then_forgotten_oldest_first() -> None:
    presence = Presence()
    presence.attach("s1")
    assert presence.cached_ack("s1", 1) == (False, None)
    for seq in range(1, ACK_LOG_SIZE + 2):
        presence.cache_ack("s1", seq, {"ok": seq})
    assert presence.cached_ack("s1", ACK_LOG_SIZE + 1) == (True, {"ok": ACK_LOG_SIZE + 1})
    done, ack = presence.cached_ack("s1", 1)  # too old to be kept: refused, never run again
    assert done and ack == {
        "error": {"code": "invalid_payload", "message": "message #1 was handled already"}
    }
    assert presence.cached_ack("s1", ACK_LOG_SIZE + 2) == (False, None)
    presence.drop("s1")
    assert set(presence.counts().values()) == {0}


def test_resume_hands_over_what_came_after_last_seq() -> None:
    presence = Presence()
    token = presence.attach("s1")
    first = presence.record("s1", Delivery("e", 1, to_sid="s1"))
    presence.record("s1", Delivery("e", 2, to_sid="s1"))
    assert presence.detach("s1") == "s1"
    presence.hold("s1")
    assert presence.resume("wrong", "s2") is None
    assert presence.resume(token, "s2", last_seq=first) == "s1"
    assert presence.resume(token, "s3") is None  # single use
    opened = presence.flush("s1")
    assert opened is not None
    sid, missed = opened
    assert sid == "s2" and [d.payload for _, d in missed] == [2]
    assert presence.socket_of("s1") == "s2"
