"""Python peers (aiortc) through a real `callbox serve`: a call that survives its signaling
socket dropping (resume), and what an aiortc answerer does with renegotiation offers."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import pytest

from callbox.peer.call import ICE_RESTART_UNSUPPORTED, Call, EndReason, ice_ufrags
from callbox.peer.errors import SignalingLost
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient
from callbox.signaling.model import Candidate, Description
from tests.conftest import RunningServer
from tests.integration.test_peer import loopback_ice  # noqa: F401 - autouse fixture
from tests.tcp_proxy import TcpProxy

WIDTH, HEIGHT = 160, 120


async def until(condition: Callable[[], object], within: float) -> None:
    """Wait until `condition()` is true (polled: what it watches has no event to await)."""
    for _ in range(int(within / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not true within {within} s")


async def more_frames(*calls: Call, by: int = 10, within: float = 10) -> None:
    """Wait until each call has received ``by`` more video frames than it had now: media
    still flows both ways."""
    start = [c.sink.frames("video") for c in calls]
    await until(
        lambda: all(c.sink.frames("video") > n + by for c, n in zip(calls, start, strict=True)),
        within=within,
    )


async def connected_pair(alice: Call, bob: Call, bob_client: SignalingClient) -> None:
    placing = asyncio.create_task(alice.place(answer_within=10))
    offer = await bob_client.wait_for_offer(from_user="alice", within=10)
    await bob.answer(offer)
    await placing
    await asyncio.gather(alice.wait_connected(within=15), bob.wait_connected(within=15))
    async with asyncio.timeout(10):
        for call in (alice, bob):
            await call.sink.wait_for("video", 5)


async def test_socket_drop_mid_call_resumes_and_a_later_hangup_arrives(
    shared_server: RunningServer,
    room: str,
) -> None:
    ca = shared_server.ca_path
    async with TcpProxy("127.0.0.1", shared_server.port) as proxy:
        via_proxy = f"https://127.0.0.1:{proxy.port}"
        async with (
            SignalingClient(via_proxy, room=room, name="alice", ca=ca) as alice_client,
            SignalingClient(shared_server.url, room=room, name="bob", ca=ca) as bob_client,
            Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
            Call(bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as bob,
        ):
            await connected_pair(alice, bob, bob_client)
            first_token = alice_client.welcome.resume if alice_client.welcome else None

            proxy.refuse(True)
            assert await proxy.cut() == 1
            await more_frames(alice, by=1)  # media does not need signaling
            await asyncio.sleep(1.5)  # nor does the call: nothing ends it while the server is away
            assert not alice.ended and not bob.ended
            proxy.refuse(False)

            await until(
                lambda: proxy.connections and alice_client.welcome and alice_client.welcome.resumed,
                within=15,
            )
            back = alice_client.welcome
            assert back is not None and back.user_name == "alice"
            assert back.offer_id == alice.offer_id
            assert back.resume not in (None, first_token)
            assert not alice.ended

            # bob's hang-up reaches alice over her resumed socket
            await bob.hangup()
            outcome = await alice.run(duration=10)
            assert outcome.reason is EndReason.REMOTE_HANGUP
            assert outcome.by == "bob"


async def test_aiortc_answerer_answers_a_renegotiation_but_declines_an_ice_restart(
    shared_server: RunningServer, room: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="callbox.peer.call")
    url, ca = shared_server.url, shared_server.ca_path
    notices: list[str] = []
    async with (
        SignalingClient(url, room=room, name="alice", ca=ca) as alice_client,
        SignalingClient(url, room=room, name="bob", ca=ca) as bob_client,
        Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        Call(
            bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT), notice=notices.append
        ) as bob,
    ):
        await connected_pair(alice, bob, bob_client)
        before = ice_ufrags(bob.pc.remoteDescription.sdp)

        # The same ICE credentials (no restart): aiortc can apply it, so bob answers.
        again = await alice.pc.createOffer()
        await alice_client.renegotiate(Description("offer", again.sdp), alice.offer_id)
        await until(lambda: "answered a renegotiation" in caplog.text, within=10)
        assert notices == []

        # New ICE credentials, as a browser's restartIce() makes: bob says it can't, and
        # keeps the call on the current path.
        restart = re.sub(r"a=ice-ufrag:\S+", "a=ice-ufrag:Rst1", again.sdp)
        restart = re.sub(r"a=ice-pwd:\S+", "a=ice-pwd:restartrestartrestart12", restart)
        await alice_client.renegotiate(Description("offer", restart), alice.offer_id)
        await until(lambda: notices, within=10)
        assert notices == [ICE_RESTART_UNSUPPORTED]
        assert ice_ufrags(bob.pc.remoteDescription.sdp) == before
        await more_frames(alice, bob, by=1)
        assert (alice.state, bob.state) == ("connected", "connected")
        assert caplog.text.count("answered a renegotiation") == 1


def lose_the_first(client: SignalingClient, event: str) -> list[object]:
    """A fault: the first packet of ``event`` the client sends leaves but never arrives (the
    socket is dying). Returns the list the lost packet goes into."""
    sio = client._sio
    assert sio is not None
    send_packet = sio._send_packet
    lost: list[object] = []

    async def lose(pkt: object) -> None:
        if not lost and event in str(getattr(pkt, "data", "")):
            lost.append(pkt)
            return
        await send_packet(pkt)

    sio._send_packet = lose
    return lost


async def test_a_message_lost_with_the_dying_socket_is_sent_again_after_the_resume(
    shared_server: RunningServer,
    room: str,
) -> None:
    ca = shared_server.ca_path
    async with TcpProxy("127.0.0.1", shared_server.port) as proxy:
        via_proxy = f"https://127.0.0.1:{proxy.port}"
        async with (
            SignalingClient(
                via_proxy, room=room, name="alice", ca=ca, ack_timeout=2
            ) as alice_client,
            SignalingClient(shared_server.url, room=room, name="bob", ca=ca) as bob_client,
            Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
            Call(bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as bob,
        ):
            await connected_pair(alice, bob, bob_client)
            lost = lose_the_first(alice_client, "hangup")
            hanging_up = asyncio.create_task(alice_client.hangup(alice.offer_id))
            await until(lambda: lost, within=5)
            assert '"seq"' in str(lost[0].data) or "'seq'" in str(lost[0].data)  # type: ignore[attr-defined]
            proxy.refuse(True)
            await proxy.cut()
            await asyncio.sleep(0.5)
            assert not bob.ended  # bob never heard it
            proxy.refuse(False)
            await asyncio.wait_for(hanging_up, 15)  # acked after the re-send
            await until(lambda: bob.ended, within=10)


async def test_a_message_lost_with_a_session_the_server_did_not_keep_is_signaling_lost(
    shared_server: RunningServer,
    room: str,
) -> None:
    """The socket dies with a message in flight and the client comes back as a new session:
    the message belongs to a session that is gone, so sending it says the signaling was lost
    (a call goes on peer-to-peer), never that the server was too slow to reply."""
    ca = shared_server.ca_path
    async with TcpProxy("127.0.0.1", shared_server.port) as proxy:
        via_proxy = f"https://127.0.0.1:{proxy.port}"
        async with SignalingClient(
            via_proxy, room=room, name="alice", ca=ca, ack_timeout=3, resume=False
        ) as client:
            lost = lose_the_first(client, "sendIceCandidate")
            candidate = Candidate("candidate:1 1 udp 1 192.0.2.1 9 typ host", "0", 0, None)
            sending = asyncio.create_task(client.send_candidate(candidate, None))
            await until(lambda: lost, within=5)
            await proxy.cut()
            with pytest.raises(SignalingLost, match="ended the session"):
                await asyncio.wait_for(sending, 30)
            assert client.online  # connected again, as a new session
