"""Python peers through a real `callbox serve`: aiortc <-> aiortc, and the CLI's exit codes."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aioice.ice
import av
import pytest

from callbox.certs import create_ca
from callbox.peer.call import Call, EndReason
from callbox.peer.errors import ServerRefused, TlsUntrusted
from callbox.peer.media import Sink, open_source
from callbox.peer.signaling_client import AnswerReceived, SignalingClient
from callbox.signaling.model import ErrorCode
from tests.conftest import BACKEND_FREE, RunningServer, StartServer

WIDTH, HEIGHT = 320, 240


@pytest.fixture(autouse=True)
def loopback_ice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """aioice leaves out 127.0.0.1; on a loopback-only machine, give it back (this process)."""
    original = aioice.ice.get_host_addresses

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found: list[str] = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return found if found or not use_ipv4 else ["127.0.0.1"]

    monkeypatch.setattr(aioice.ice, "get_host_addresses", with_loopback)
    yield


def callbox(*args: str, timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callbox", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def popen_callbox(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "callbox", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_one_clean_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def frames_received(stdout: str) -> tuple[int, int]:
    found = re.search(r"frames received: video=(\d+) audio=(\d+)", stdout)
    assert found, stdout
    return int(found[1]), int(found[2])


def decoded_video(path: Path) -> tuple[int, set[tuple[int, int]]]:
    with av.open(str(path)) as container:
        sizes = set()
        count = 0
        for frame in container.decode(video=0):
            count += 1
            sizes.add((frame.width, frame.height))
    return count, sizes


async def test_python_caller_and_answerer_exchange_frames_and_record(
    shared_server: RunningServer, room: str, tmp_path: Path
) -> None:
    record = tmp_path / "bob.mkv"
    url, ca = shared_server.url, shared_server.ca_path
    async with (
        SignalingClient(url, room=room, name="alice", ca=ca) as alice_client,
        SignalingClient(url, room=room, name="bob", ca=ca) as bob_client,
        Call(alice_client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        Call(bob_client, open_source("testsrc", width=WIDTH, height=HEIGHT), Sink(record)) as bob,
    ):
        placing = asyncio.create_task(alice.place(answer_within=10))
        offer = await bob_client.wait_for_offer(from_user="alice", within=10)
        await bob.answer(offer)
        await placing
        await asyncio.gather(alice.wait_connected(within=15), bob.wait_connected(within=15))
        assert (alice.state, bob.state) == ("connected", "connected")
        async with asyncio.timeout(10):
            for call in (alice, bob):
                await call.sink.wait_for("video", 30)
                await call.sink.wait_for("audio", 30)
        assert alice.sink.video_size() == bob.sink.video_size() == (WIDTH, HEIGHT)
        await alice.hangup()
        outcome = await bob.run(duration=10)
        assert outcome.reason is EndReason.REMOTE_HANGUP
        assert outcome.by == "alice"
    count, sizes = decoded_video(record)
    assert count >= 20
    assert sizes == {(WIDTH, HEIGHT)}


@BACKEND_FREE
async def test_wrong_password_raises_unauthorized(start_server: StartServer) -> None:
    server = start_server("--password", "right")
    with pytest.raises(ServerRefused) as caught:
        async with SignalingClient(server.url, password="wrong", ca=server.ca_path):
            pass
    assert caught.value.code is ErrorCode.UNAUTHORIZED


async def test_second_offer_is_refused_busy(shared_server: RunningServer, room: str) -> None:
    async with SignalingClient(shared_server.url, room=room, ca=shared_server.ca_path) as client:
        await client.offer("v=0\r\n")
        with pytest.raises(ServerRefused) as caught:
            await client.offer("v=0\r\n")
    assert caught.value.code is ErrorCode.BUSY


@BACKEND_FREE
async def test_foreign_ca_is_not_trusted(shared_server: RunningServer, tmp_path: Path) -> None:
    other = create_ca(tmp_path / "other").cert_path
    with pytest.raises(TlsUntrusted):
        async with SignalingClient(shared_server.url, ca=other):
            pass


# --- the CLI, as real subprocesses -----------------------------------------------------------


def test_cli_call_and_answer_both_exit_0_and_record(
    shared_server: RunningServer, room: str, tmp_path: Path
) -> None:
    url, ca = shared_server.url, str(shared_server.ca_path)
    record = tmp_path / "answer.mp4"
    caller = popen_callbox(
        "call", url, "--room", room, "--name", "cam", "--ca", ca, "--duration", "3"
    )
    answer = callbox(
        "answer", url, "--room", room, "--from", "cam", "--ca", ca, "--record", str(record)
    )
    out, err = caller.communicate(timeout=30)
    assert caller.returncode == 0, err
    assert answer.returncode == 0, answer.stderr
    assert min(frames_received(out)) > 0
    assert min(frames_received(answer.stdout)) > 0
    assert err == ""
    assert assert_one_clean_line(answer.stderr) == "callbox: cam hung up"
    count, sizes = decoded_video(record)
    assert count > 0
    assert sizes == {(640, 480)}


@BACKEND_FREE
def test_cli_wrong_password_exits_1(start_server: StartServer) -> None:
    server = start_server("--password", "right")
    result = callbox("answer", server.url, "--password", "wrong", "--ca", str(server.ca_path))
    assert result.returncode == 1
    line = assert_one_clean_line(result.stderr)
    assert "unauthorized" in line


@BACKEND_FREE
def test_cli_untrusted_certificate_exits_1(shared_server: RunningServer, tmp_path: Path) -> None:
    other = create_ca(tmp_path / "other").cert_path
    result = callbox("call", shared_server.url, "--ca", str(other))
    assert result.returncode == 1
    line = assert_one_clean_line(result.stderr)
    assert "not trusted" in line


@BACKEND_FREE
def test_cli_no_offer_within_wait_exits_1(shared_server: RunningServer, room: str) -> None:
    result = callbox("answer", shared_server.url, "--room", room,
                     "--ca", str(shared_server.ca_path), "--wait", "0.5")  # fmt: skip
    assert result.returncode == 1
    line = assert_one_clean_line(result.stderr)
    assert "no offer within 0.5 s" in line
    assert result.stdout == ""


@BACKEND_FREE
def test_cli_usage_error_exits_2(shared_server: RunningServer) -> None:
    result = callbox("call", "ftp://example.org")
    assert result.returncode == 2
    assert "URL must be http(s)" in assert_one_clean_line(result.stderr)
    result = callbox("call", shared_server.url, "--send", "/no/such/file.mp4")
    assert result.returncode == 2
    assert "no such file" in assert_one_clean_line(result.stderr)


@BACKEND_FREE
def test_cli_ctrl_c_while_waiting_exits_0_quietly(shared_server: RunningServer, room: str) -> None:
    # -v: the info line "connected to ..." says when it waits for an offer
    answer = popen_callbox(
        "-v", "answer", shared_server.url, "--room", room, "--ca", str(shared_server.ca_path)
    )
    try:
        assert answer.stderr is not None
        seen: list[str] = []
        while not any("connected to" in line for line in seen):
            line = answer.stderr.readline()
            assert line, seen  # it did not exit before connecting
            seen.append(line)
        answer.send_signal(signal.SIGINT)
        out, err = answer.communicate(timeout=15)
    finally:
        answer.kill()
    assert (answer.returncode, out) == (0, "")
    said = [*seen, *err.splitlines()]
    assert not [line for line in said if " INFO " not in line], said  # nothing but info


async def test_cli_remote_hangup_mid_call_exits_0_with_one_line(
    shared_server: RunningServer,
    room: str,
) -> None:
    url, ca = shared_server.url, shared_server.ca_path
    answer = popen_callbox(
        "answer", url, "--room", room, "--ca", str(ca), "--from", "alice", "--wait", "20"
    )
    try:
        async with (
            SignalingClient(url, room=room, name="alice", ca=ca) as client,
            Call(client, open_source("testsrc", width=WIDTH, height=HEIGHT)) as alice,
        ):
            await alice.place(answer_within=20)
            await alice.wait_connected(within=15)
            async with asyncio.timeout(10):
                await alice.sink.wait_for("video", 10)
            await asyncio.sleep(0.5)  # our frames reach the answerer too
            await alice.hangup()
        out, err = await asyncio.to_thread(answer.communicate, timeout=20)
    finally:
        answer.kill()
    assert answer.returncode == 0, err
    assert assert_one_clean_line(err) == "callbox: alice hung up"
    assert min(frames_received(out)) > 0


async def test_cli_remote_hangup_before_media_exits_1(
    shared_server: RunningServer, room: str
) -> None:
    url, ca = shared_server.url, shared_server.ca_path
    answer = popen_callbox(
        "answer", url, "--room", room, "--ca", str(ca), "--from", "alice", "--wait", "20"
    )
    try:
        async with (
            SignalingClient(url, room=room, name="alice", ca=ca) as client,
            Call(client, open_source("none")) as alice,
        ):
            # post an offer but never apply the answer: no media can flow; hang up on it
            alice.pc.addTransceiver("video", direction="recvonly")
            await alice.pc.setLocalDescription(await alice.pc.createOffer())
            offer_id = await client.offer(alice.pc.localDescription.sdp)
            async with asyncio.timeout(20):
                while not isinstance(await client.next_event(), AnswerReceived):
                    pass
            await client.hangup(offer_id)
        # a bound, not a speed: under a CPU hog with four workers the answerer once took
        # longer than 20 s to close its peer connection and exit
        out, err = await asyncio.to_thread(answer.communicate, timeout=60)
    finally:
        answer.kill()
    assert answer.returncode == 1
    line = assert_one_clean_line(err)
    assert "alice ended the call" in line and "before media flowed" in line
    assert out == ""
