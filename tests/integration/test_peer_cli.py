"""`callbox call` / `callbox answer` as real subprocesses against a real `callbox serve`:
chat over the call's data channel (--say, printed lines), a declined offer, and a call that
goes on while the server is killed and started again.

Two CLI peers reach each other over the machine's interface address (aioice leaves out
127.0.0.1); an in-process peer gets loopback from the autouse fixture."""

from __future__ import annotations

import asyncio
import signal

from callbox.peer.call import Call
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient
from tests.conftest import RunningServer, StartServer
from tests.integration.test_peer import (
    callbox,
    frames_received,
    loopback_ice,  # noqa: F401 - autouse fixture
    popen_callbox,
)
from tests.integration.test_peer_renegotiate import until
from tests.integration.test_peer_restart import Restart, serve_again, stop  # noqa: F401

WIDTH, HEIGHT = 160, 120


def test_cli_peers_chat_over_the_data_channel_and_print_it_as_text(
    callbox_server: RunningServer,
) -> None:
    url, ca = callbox_server.url, str(callbox_server.ca_path)
    markup = "hello <b>bob</b> & co"
    escape = "\x1b[31mred\nline\u202e"
    caller = popen_callbox(
        "call", url, "--name", "cam", "--ca", ca, "--duration", "4",
        "--say", markup, "--say", escape,
    )  # fmt: skip
    answer = callbox("answer", url, "--from", "cam", "--name", "bob", "--ca", ca,
                     "--say", "hi cam 👋")  # fmt: skip
    out, err = caller.communicate(timeout=30)
    assert caller.returncode == 0, err
    assert answer.returncode == 0, answer.stderr
    heard = answer.stdout.splitlines()
    assert f"cam: {markup}" in heard
    assert "cam: \\x1b[31mred\\nline\\u202e" in heard  # shown, never interpreted
    assert "\x1b" not in answer.stdout
    assert "bob: hi cam 👋" in out.splitlines()
    assert min(frames_received(out)) > 0 and min(frames_received(answer.stdout)) > 0


def test_cli_say_too_long_is_a_usage_error(callbox_server: RunningServer) -> None:
    result = callbox("call", callbox_server.url, "--say", "x" * 2001)
    assert result.returncode == 2
    assert result.stderr.strip() == "callbox: error: --say: a chat line has 1 to 2000 characters"


async def test_cli_caller_is_told_who_declined(callbox_server: RunningServer) -> None:
    url, ca = callbox_server.url, callbox_server.ca_path
    caller = popen_callbox("call", url, "--name", "cam", "--ca", str(ca), "--wait", "6")
    try:
        async with SignalingClient(url, name="bob", ca=ca) as bob:
            offer = await bob.wait_for_offer(from_user="cam", within=20)
            await bob.decline(offer.offer_id)
            out, err = await asyncio.to_thread(caller.communicate, timeout=30)
    finally:
        caller.kill()
    assert caller.returncode == 1
    assert err.splitlines() == [
        "callbox: bob declined the call; it stays open for others",
        "callbox: error: nobody answered within 6 s",
    ]
    assert out == ""


async def test_cli_answer_keeps_its_call_through_a_server_kill_and_restart(
    start_server: StartServer,
    serve_again: Restart,  # noqa: F811 - the fixture
) -> None:
    server = start_server()
    url, ca = server.url, server.ca_path
    answer = popen_callbox("answer", url, "--ca", str(ca), "--from", "alice", "--wait", "20")
    try:
        async with (
            SignalingClient(url, name="alice", ca=ca) as client,
            Call(client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        ):
            await alice.place(answer_within=20)
            await alice.wait_connected(within=15)
            await until(lambda: alice.peer_on_channel, within=10)
            await asyncio.to_thread(stop, server, signal.SIGKILL)
            await asyncio.to_thread(serve_again, server)
            await until(lambda: client.online and not alice.server_has_call, within=30)
            frames = alice.sink.frames("video")
            await until(lambda: alice.sink.frames("video") > frames + 10, within=10)
            await alice.hangup()
        out, err = await asyncio.to_thread(answer.communicate, timeout=30)
    finally:
        answer.kill()
    assert answer.returncode == 0, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert lines[-1] == "callbox: alice hung up"
    told = [line for line in lines if line.startswith("callbox: ")]
    assert len(told) == 2, err
    assert told[0].endswith("media still flows: the call goes on peer-to-peer")
    assert min(frames_received(out)) > 0
