"""Two aiortc peers through a real `callbox serve`: the call's data channel (hello, media,
chat, hang-up; what is ignored) and renegotiations from either side, over the server's
`renegotiate` and over the data channel, answered or declined."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from callbox.peer.call import ICE_RESTART_UNSUPPORTED, Call, EndReason
from callbox.peer.channel import FEATURES, Chat, Hello, MediaState, RemoteDescription
from callbox.peer.media import TestPatternTrack, open_source
from callbox.peer.signaling_client import SignalingClient
from callbox.signaling.model import Description
from tests.conftest import RunningServer
from tests.integration.test_peer import loopback_ice  # noqa: F401 - autouse fixture
from tests.integration.test_peer_renegotiate import connected_pair, more_frames, until

WIDTH, HEIGHT = 160, 120
SHARE = (320, 240)  # the added track's size: unlike the camera's


@dataclass
class Pair:
    alice: Call  # the caller
    bob: Call  # the answerer
    notices: dict[str, list[str]] = field(default_factory=dict)
    chats: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@pytest.fixture
async def pair(shared_server: RunningServer, room: str) -> AsyncIterator[Pair]:
    """alice calls bob; both connected, video flowing, both present on the data channel."""
    url, ca = shared_server.url, shared_server.ca_path
    notices: dict[str, list[str]] = {"alice": [], "bob": []}
    chats: dict[str, list[tuple[str, str]]] = {"alice": [], "bob": []}

    def call(client: SignalingClient, who: str) -> Call:
        return Call(
            client,
            open_source("testsrc", width=WIDTH, height=HEIGHT),
            notice=notices[who].append,
            on_chat=lambda name, text: chats[who].append((name, text)),
        )

    async with (
        SignalingClient(url, room=room, name="alice", ca=ca) as alice_client,
        SignalingClient(url, room=room, name="bob", ca=ca) as bob_client,
        call(alice_client, "alice") as alice,
        call(bob_client, "bob") as bob,
    ):
        await connected_pair(alice, bob, bob_client)
        await until(lambda: alice.peer_on_channel and bob.peer_on_channel, within=10)
        yield Pair(alice, bob, notices, chats)


async def test_both_sides_say_hello_and_their_media_then_chat_both_ways(pair: Pair) -> None:
    alice, bob = pair.alice, pair.bob
    assert alice.channel is not None and bob.channel is not None
    assert alice.channel.peer == Hello("bob", FEATURES)
    assert bob.channel.peer == Hello("alice", FEATURES)
    await until(lambda: alice.remote_media and bob.remote_media, within=5)
    assert alice.remote_media == bob.remote_media == MediaState(True, True, False)

    markup = '<img src=x onerror="alert(1)"> & \x1b[31m'
    alice.say(markup)
    bob.say("hi alice 👋")
    await until(lambda: pair.chats["bob"] and pair.chats["alice"], within=5)
    assert pair.chats["bob"] == [("alice", markup)]
    assert pair.chats["alice"] == [("bob", "hi alice 👋")]
    with pytest.raises(ValueError):
        alice.say("x" * 2001)
    with pytest.raises(ValueError):
        alice.say("")


async def test_unknown_malformed_and_oversized_messages_are_ignored(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="callbox.peer.channel")
    alice, bob = pair.alice, pair.bob
    assert alice.channel is not None
    raw = alice.channel.channel
    for junk in (
        json.dumps({"type": "teleport", "to": "mars"}),
        "not json",
        "[1, 2]",
        json.dumps({"type": "chat", "id": "1", "text": "x" * 2001}),
        json.dumps({"type": "chat", "id": "1"}),
        json.dumps({"type": "media", "audio": "yes", "video": True, "screen": False}),
        json.dumps({"type": "description", "description": {"type": "rollback", "sdp": ""}}),
        json.dumps({"type": "chat", "id": "big", "text": "y" * 1000, "pad": "z" * 65536}),
        b"\x00binary",
        json.dumps({"type": "hello", "name": "mallory", "features": []}),  # a second hello
    ):
        raw.send(junk)
    bob_said = Chat("last", "still listening")
    alice.channel.send(bob_said)
    await until(lambda: pair.chats["bob"], within=5)
    assert pair.chats["bob"] == [("alice", "still listening")]
    ignored = [r.getMessage() for r in caplog.records if "ignored" in r.getMessage()]
    assert len(ignored) == 10, ignored
    assert any("unknown type 'teleport'" in line for line in ignored)
    assert any("larger than 65536 bytes" in line for line in ignored)
    assert bob.channel is not None and bob.channel.peer == Hello("alice", FEATURES)
    assert not bob.ended and bob.state == "connected"


async def test_hangup_over_the_data_channel_ends_the_other_side(pair: Pair) -> None:
    # the server is told too; the channel is faster: either way bob learns it from alice
    await pair.bob.hangup()
    outcome = await pair.alice.run(duration=10)
    assert outcome.reason is EndReason.REMOTE_HANGUP
    assert outcome.by == "bob"


async def offer_a_new_track(call: Call, *, over_channel: bool) -> None:
    """What a browser does to share its screen: add a track, offer, send the offer."""
    call.pc.addTrack(TestPatternTrack(*SHARE))
    await call.pc.setLocalDescription(await call.pc.createOffer())
    offer = Description("offer", call.pc.localDescription.sdp)
    if over_channel:
        assert call.channel is not None and call.channel.send(RemoteDescription(offer))
    else:
        await call.client.renegotiate(offer, call.offer_id)


@pytest.mark.parametrize("over_channel", [True, False], ids=["data-channel", "server"])
@pytest.mark.parametrize("who", ["caller", "answerer"])
async def test_a_track_added_by_either_side_is_answered_and_received(
    pair: Pair, who: str, over_channel: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callbox.peer.call")
    offerer, answerer = (pair.alice, pair.bob) if who == "caller" else (pair.bob, pair.alice)
    tracks = len(answerer.sink.tracks)
    await offer_a_new_track(offerer, over_channel=over_channel)
    path = "data channel" if over_channel else "server"
    await until(lambda: f"answered a renegotiation (over the {path})" in caplog.text, within=10)
    await until(lambda: offerer.pc.signalingState == "stable", within=10)
    await until(lambda: len(answerer.sink.tracks) == tracks + 1, within=10)
    added = answerer.sink.tracks[-1]
    assert added.kind == "video"
    await until(lambda: added.frames >= 5, within=15)
    assert added.sizes == [SHARE]
    name = "alice" if offerer is pair.alice else "bob"
    other = "bob" if name == "alice" else "alice"
    assert pair.notices[other] == [f"{name} added a video track"]
    # the call goes on, both ways
    frames = offerer.sink.frames("video")
    await until(lambda: offerer.sink.frames("video") > frames + 5, within=10)
    assert (pair.alice.state, pair.bob.state) == ("connected", "connected")


@pytest.mark.parametrize("over_channel", [True, False], ids=["data-channel", "server"])
async def test_the_caller_declines_an_ice_restart_and_keeps_the_call(
    pair: Pair, over_channel: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callbox.peer.call")
    alice, bob = pair.alice, pair.bob
    restart = (await bob.pc.createOffer()).sdp  # not set locally: bob offers nothing real
    restart = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:Rst1", restart)
    restart = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:restartrestartrestart12", restart)
    offer = Description("offer", restart)
    if over_channel:
        assert bob.channel is not None and bob.channel.send(RemoteDescription(offer))
    else:
        # the server relays an offer from either party
        await bob.client.renegotiate(offer, bob.offer_id)
    await until(lambda: pair.notices["alice"], within=10)
    assert pair.notices["alice"] == [ICE_RESTART_UNSUPPORTED]
    declined = [r for r in caplog.records if "renegotiation declined" in r.getMessage()]
    assert len(declined) == 1 and declined[0].levelno == logging.WARNING
    assert "answered a renegotiation" not in caplog.text
    assert alice.pc.signalingState == "stable"
    await more_frames(alice, bob, by=1)  # polled, not timed: a busy machine may stall media
    assert not alice.ended and not bob.ended
