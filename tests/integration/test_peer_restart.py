"""Python peers whose call outlives the signaling server: `callbox serve` is stopped
(SIGTERM) or killed (SIGKILL) mid-call, then started again on the same port and data dir.
The media keeps flowing, both peers reconnect by themselves as new sessions, and a hang-up
afterwards reaches the other side over the call's data channel."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from callbox.peer.call import Call, EndReason
from callbox.peer.errors import SignalingLost
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient
from tests.conftest import RunningServer, StartServer, _wait_ready
from tests.integration.test_peer import (
    loopback_ice,  # noqa: F401 - autouse fixture
    popen_callbox,
)
from tests.integration.test_peer_renegotiate import connected_pair, more_frames, until
from tests.tcp_proxy import TcpProxy

#: a client whose socket was refused for a while comes back within two of socket.io's
#: reconnection delays (at most 5 s each, +-50% at random: 15 s), its attempt to resume in
#: between, each attempt a TLS handshake through the proxy: seconds each on a busy machine
BACK_WITHIN = 45

WIDTH, HEIGHT = 160, 120

Restart = Callable[[RunningServer], RunningServer]


@pytest.fixture
def serve_again(tmp_path: Path) -> Iterator[Restart]:
    """Start `callbox serve` again on a stopped server's port and data dir."""
    started: list[RunningServer] = []

    def restart(old: RunningServer) -> RunningServer:
        assert old.process.poll() is not None, "stop the old server first"
        log_path = tmp_path / f"serve-{len(started)}.log"
        argv = [sys.executable, "-m", "callbox", "-v", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(old.port), "--data-dir", str(old.data_dir)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("CALLBOX_PASSWORD", None)
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env)
        server = RunningServer(old.url, old.port, old.data_dir, process, log_path)
        started.append(server)
        _wait_ready(server)
        return server

    yield restart
    for server in started:
        server.stop()


#: A restart in these tests is a server that comes back without its state (one process, in
#: memory): `serve_again` starts it without the backend's arguments. On Redis the state
#: outlives a node, which tests/integration/test_nodes.py covers (a node killed, restarted).
STATE_LOST = pytest.mark.parametrize("backend", ["memory"])


def stop(server: RunningServer, how: signal.Signals) -> None:
    server.process.send_signal(how)
    server.process.wait(timeout=20)


@STATE_LOST
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_call_outlives_a_server_restart_and_a_later_hangup_arrives(
    start_server: StartServer, serve_again: Restart, how: signal.Signals
) -> None:
    server = start_server()
    url, ca = server.url, server.ca_path
    notices: dict[str, list[str]] = {"alice": [], "bob": []}
    async with (
        SignalingClient(url, name="alice", ca=ca) as alice_client,
        SignalingClient(url, name="bob", ca=ca) as bob_client,
        Call(
            alice_client,
            open_source("testsrc", width=WIDTH, height=HEIGHT),
            notice=notices["alice"].append,
        ) as alice,
        Call(
            bob_client,
            open_source("testsrc", width=WIDTH, height=HEIGHT),
            notice=notices["bob"].append,
        ) as bob,
    ):
        await connected_pair(alice, bob, bob_client)
        await until(lambda: alice.peer_on_channel and bob.peer_on_channel, within=10)
        welcomes = (alice_client.welcome, bob_client.welcome)

        await asyncio.to_thread(stop, server, how)
        await until(lambda: not alice_client.online and not bob_client.online, within=10)
        await more_frames(alice, bob, by=1)  # nobody to talk to: the call goes on between the peers
        await asyncio.sleep(1.5)
        assert not alice.ended and not bob.ended

        await asyncio.to_thread(serve_again, server)
        # both come back by themselves, as new sessions of the new server
        await until(
            lambda: (
                alice_client.online
                and bob_client.online
                and alice_client.welcome is not welcomes[0]
                and bob_client.welcome is not welcomes[1]
            ),
            within=30,
        )
        assert alice_client.welcome is not None and not alice_client.welcome.resumed
        assert bob_client.welcome is not None and not bob_client.welcome.resumed
        await until(lambda: not alice.server_has_call and not bob.server_has_call, within=10)
        for who in ("alice", "bob"):
            assert len(notices[who]) == 1, notices
            assert notices[who][0].endswith("media still flows: the call goes on peer-to-peer")
        await more_frames(alice, bob)
        assert (alice.state, bob.state) == ("connected", "connected")

        # the new server knows nothing of the call: the hang-up goes over the data channel
        await alice.hangup()
        outcome = await bob.run(duration=10)
        assert outcome.reason is EndReason.REMOTE_HANGUP
        assert outcome.by == "alice"


@STATE_LOST
async def test_a_call_whose_media_stopped_ends_when_the_server_restarts(
    start_server: StartServer, serve_again: Restart
) -> None:
    server = start_server()
    url, ca = server.url, server.ca_path
    caller = popen_callbox("call", url, "--ca", str(ca), "--name", "cam", "--wait", "20")
    try:
        async with (
            SignalingClient(url, name="bob", ca=ca) as bob_client,
            Call(bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as bob,
        ):
            await bob.answer(await bob_client.wait_for_offer(from_user="cam", within=20))
            await bob.wait_connected(within=15)
            await until(lambda: bob.peer_on_channel and bob.sink.frames("video") > 10, 10)
            caller.kill()  # gone without a word: no hang-up, no goodbye, nothing flows
            await asyncio.to_thread(caller.communicate, timeout=10)
            await until(lambda: not bob.media_flowing(), within=15)
            assert not bob.ended  # the server holds cam's session for a resume meanwhile
            await asyncio.to_thread(stop, server, signal.SIGKILL)
            await asyncio.to_thread(serve_again, server)
            outcome = await bob.run(duration=30)
        assert outcome.reason is EndReason.SIGNALING_LOST
        assert isinstance(outcome.error, SignalingLost)
        assert "the call ended on the server" in str(outcome.error)
        assert bob.server_has_call  # never went on peer-to-peer
    finally:
        caller.kill()
        caller.communicate(timeout=10)


async def test_a_peer_the_server_lost_but_still_on_the_data_channel_keeps_its_call(
    start_server: StartServer,
) -> None:
    server = start_server("--resume-grace", "2")
    ca = server.ca_path
    notices: list[str] = []
    async with TcpProxy("127.0.0.1", server.port) as proxy:
        via_proxy = f"https://127.0.0.1:{proxy.port}"
        async with (
            SignalingClient(via_proxy, name="alice", ca=ca) as alice_client,
            SignalingClient(server.url, name="bob", ca=ca) as bob_client,
            Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
            Call(
                bob_client,
                open_source("testsrc", width=WIDTH, height=HEIGHT),
                notice=notices.append,
            ) as bob,
        ):
            await connected_pair(alice, bob, bob_client)
            await until(lambda: alice.peer_on_channel and bob.peer_on_channel, within=10)
            # alice's signaling breaks for longer than the grace period; her media does not
            proxy.refuse(True)
            await proxy.cut()
            await until(lambda: notices, within=15)  # the server told bob alice is gone
            assert notices == ["the server lost alice; media still flows: the call goes on "
                               "peer-to-peer"]  # fmt: skip
            assert not bob.ended and not bob.server_has_call
            proxy.refuse(False)  # alice comes back as a new session, and keeps her call too
            await until(
                lambda: alice_client.online and not alice.server_has_call, within=BACK_WITHIN
            )
            await more_frames(alice, bob)
            await bob.hangup()
            outcome = await alice.run(duration=10)
            assert outcome.reason is EndReason.REMOTE_HANGUP and outcome.by == "bob"


async def test_a_client_without_resume_comes_back_as_a_new_session_and_keeps_its_call(
    start_server: StartServer,
) -> None:
    server = start_server()
    ca = server.ca_path
    async with TcpProxy("127.0.0.1", server.port) as proxy:
        via_proxy = f"https://127.0.0.1:{proxy.port}"
        async with (
            SignalingClient(via_proxy, name="alice", ca=ca, resume=False) as alice_client,
            SignalingClient(server.url, name="bob", ca=ca) as bob_client,
            Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
            Call(bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as bob,
        ):
            assert not alice_client.resumable and bob_client.resumable
            await connected_pair(alice, bob, bob_client)
            await until(lambda: alice.peer_on_channel and bob.peer_on_channel, within=10)
            first = alice_client.welcome
            proxy.refuse(True)
            await proxy.cut()
            await asyncio.sleep(1)
            proxy.refuse(False)
            # no token to resume with: a new session, and the call goes on without the server
            await until(
                lambda: alice_client.online and alice_client.welcome is not first,
                within=BACK_WITHIN,
            )
            assert alice_client.welcome is not None and not alice_client.welcome.resumed
            await until(lambda: not alice.server_has_call, within=10)
            await more_frames(bob)
            await alice.hangup()
            outcome = await bob.run(duration=10)
            assert outcome.reason is EndReason.REMOTE_HANGUP and outcome.by == "alice"
