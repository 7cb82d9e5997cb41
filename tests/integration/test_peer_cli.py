"""`callbox call` / `callbox answer` as real subprocesses against a real `callbox serve`:
chat over the call's data channel (--say, printed lines), a declined offer, and a call that
goes on while the server is killed and started again.

Two CLI peers reach each other over the machine's interface address (aioice leaves out
127.0.0.1); an in-process peer gets loopback from the autouse fixture."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys

import pytest

from callbox.peer.call import Call, EndReason
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient
from tests.conftest import BACKEND_FREE, RunningServer, StartServer
from tests.integration.test_peer import (
    assert_one_clean_line,
    callbox,
    frames_received,
    loopback_ice,  # noqa: F401 - autouse fixture
    popen_callbox,
)
from tests.integration.test_peer_renegotiate import more_frames, until
from tests.integration.test_peer_restart import (  # noqa: F401
    STATE_LOST,
    Restart,
    serve_again,
    stop,
)

WIDTH, HEIGHT = 160, 120


def test_cli_peers_chat_over_the_data_channel_and_print_it_as_text(
    shared_server: RunningServer,
    room: str,
) -> None:
    url, ca = shared_server.url, str(shared_server.ca_path)
    markup = "hello <b>bob</b> & co"
    escape = "\x1b[31mred\nline\u202e"
    caller = popen_callbox(
        "call", url, "--room", room, "--name", "cam", "--ca", ca, "--duration", "4",
        "--say", markup, "--say", escape,
    )  # fmt: skip
    answer = callbox("answer", url, "--room", room, "--from", "cam", "--name", "bob", "--ca", ca,
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


@BACKEND_FREE
def test_cli_say_too_long_is_a_usage_error(shared_server: RunningServer) -> None:
    result = callbox("call", shared_server.url, "--say", "x" * 2001)
    assert result.returncode == 2
    assert result.stderr.strip() == "callbox: error: --say: a chat line has 1 to 2000 characters"


async def test_cli_caller_is_told_who_declined(shared_server: RunningServer, room: str) -> None:
    url, ca = shared_server.url, shared_server.ca_path
    # the caller's wait runs from its offer; bob must decline inside it, on a busy machine too
    caller = popen_callbox(
        "call", url, "--room", room, "--name", "cam", "--ca", str(ca), "--wait", "12"
    )
    try:
        async with SignalingClient(url, room=room, name="bob", ca=ca) as bob:
            offer = await bob.wait_for_offer(from_user="cam", within=20)
            await bob.decline(offer.offer_id)
            out, err = await asyncio.to_thread(caller.communicate, timeout=30)
    finally:
        caller.kill()
    assert caller.returncode == 1
    assert err.splitlines() == [
        "callbox: bob declined the call; it stays open for others",
        "callbox: error: nobody answered within 12 s",
    ]
    assert out == ""


@STATE_LOST
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
            await more_frames(alice)
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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--duration", "abc"], "not a number of seconds: 'abc'"),
        (["--wait", "0"], "must be more than 0 seconds: '0'"),
        (["--ca", "/no/such/ca.pem"], "--ca /no/such/ca.pem: no such file"),
        (["--record", "/no/such/dir/in.mkv"], "directory /no/such/dir does not exist"),
    ],
)
@BACKEND_FREE
def test_cli_bad_arguments_are_one_line_and_exit_2(
    shared_server: RunningServer, extra: list[str], message: str
) -> None:
    result = callbox("answer", shared_server.url, *extra)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]  # argparse's usage may come first
    assert last.startswith("callbox") and message in last, result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@BACKEND_FREE
def test_cli_trusts_the_data_dirs_ca_for_a_server_on_this_machine(
    shared_server: RunningServer, room: str, host: str
) -> None:
    url = f"https://{host}:{shared_server.port}"
    env = {**os.environ, "CALLBOX_DATA_DIR": str(shared_server.data_dir)}
    result = subprocess.run(
        [sys.executable, "-m", "callbox", "answer", url, "--room", room, "--wait", "0.5"],
        capture_output=True, text=True, timeout=40, env=env, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    # TLS was verified with the data dir's CA: what failed is the wait, not the certificate
    assert assert_one_clean_line(result.stderr) == "callbox: error: no offer within 0.5 s"


def popen_with_stderr(args: list[str], stderr: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "callbox", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, text=True)


@BACKEND_FREE
async def test_cli_on_a_terminal_shows_a_live_status_line_and_chat(
    shared_server: RunningServer,
    room: str,
) -> None:
    url, ca = shared_server.url, shared_server.ca_path
    leader, follower = os.openpty()
    argv = ["answer", url, "--room", room, "--ca", str(ca), "--from", "alice", "--wait", "20"]
    argv += ["--duration", "4"]
    answer = popen_with_stderr(argv, follower)
    os.close(follower)
    seen = bytearray()

    def read_terminal() -> None:
        with contextlib.suppress(OSError):  # EIO once the process closed the terminal
            while chunk := os.read(leader, 4096):
                seen.extend(chunk)

    reader = asyncio.create_task(asyncio.to_thread(read_terminal))
    try:
        async with (
            SignalingClient(url, room=room, name="alice", ca=ca) as client,
            Call(client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        ):
            await alice.place(answer_within=20)
            await alice.wait_connected(within=15)
            alice.say("hi there")
            outcome = await alice.run(duration=20)
        out, _ = await asyncio.to_thread(answer.communicate, timeout=30)
        await asyncio.wait_for(reader, 10)
    finally:
        answer.kill()
        os.close(leader)
    assert answer.returncode == 0
    assert outcome.reason is EndReason.REMOTE_HANGUP
    terminal = seen.decode(errors="replace")
    assert re.search(r"\r\x1b\[Kconnected \| rtt [^|]+ \| in [0-9.]+ [kM]bit/s \| out ", terminal)
    assert "alice: hi there" in out.splitlines()
    assert "Traceback" not in terminal


async def test_cli_ctrl_c_mid_call_hangs_up_and_exits_0_with_a_summary(
    shared_server: RunningServer,
    room: str,
) -> None:
    url, ca = shared_server.url, shared_server.ca_path
    answer = popen_callbox(
        "answer", url, "--room", room, "--ca", str(ca), "--from", "alice",
        "--name", "answerer", "--wait", "20",
    )  # fmt: skip
    try:
        async with (
            SignalingClient(url, room=room, name="alice", ca=ca) as client,
            Call(client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        ):
            await alice.place(answer_within=20)
            await alice.wait_connected(within=15)
            await until(lambda: alice.peer_on_channel, within=10)
            await until(lambda: alice.sink.frames("video") > 10, within=10)
            answer.send_signal(signal.SIGINT)
            outcome = await alice.run(duration=20)
        out, err = await asyncio.to_thread(answer.communicate, timeout=30)
    finally:
        answer.kill()
    assert (answer.returncode, err) == (0, "")
    assert outcome.reason is EndReason.REMOTE_HANGUP and outcome.by == "answerer"
    assert re.match(r"call \S+ with alice: hung up after [0-9.]+ s", out), out
