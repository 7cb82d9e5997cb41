"""`callbox check URL` against a real `callbox serve` and a real coturn: relay available, a
wrong secret, no coturn at all (nothing listening, or something swallowing the packets)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.conftest import RunningServer, StartServer
from tests.coturn import Coturn, coturn, free_udp_tcp_port
from tests.integration.test_turn import secret_file

__all__ = ["coturn"]

WAIT = "3"  # seconds per ICE server: the "timeout" case waits this long


def check(server: RunningServer, *extra: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-m", "callbox", "check", server.url, "--ca", str(server.ca_path)]
        + ["--timeout", WAIT, *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


def line_of(lines: list[str], start: str) -> str:
    found = [line for line in lines if line.startswith(start)]
    assert len(found) == 1, lines
    return found[0]


def with_turn(
    start_server: StartServer, tmp_path: Path, secret: str, *urls: str, extra: tuple[str, ...] = ()
) -> RunningServer:
    argv = [arg for url in urls for arg in ("--turn-url", url)]
    return start_server(*argv, "--turn-secret-file", secret_file(tmp_path, secret), *extra)


def test_relay_available_over_udp_and_tcp(
    start_server: StartServer, coturn: Coturn, tmp_path: Path
) -> None:
    server = with_turn(
        start_server,
        tmp_path,
        coturn.secret,
        coturn.url("udp"),
        coturn.url("tcp"),
        extra=("--ice-server", coturn.stun_url),
    )
    code, lines = check(server)
    assert code == 0, lines
    assert lines[0].startswith("signaling: connected as ")
    assert "TURN credentials valid for" in line_of(lines, "ICE servers: 3 URLs")
    assert "STUN works" in line_of(lines, coturn.stun_url + ":")
    for transport in ("udp", "tcp"):
        line = line_of(lines, coturn.url(transport) + ":")
        assert "relay 127.0.0.1:" in line and "TURN works and data passes through it" in line
    assert lines[-1].startswith("result: TURN works (2 of 2 TURN URLs)")


def test_wrong_secret_fails_and_says_why(
    start_server: StartServer, coturn: Coturn, tmp_path: Path
) -> None:
    server = with_turn(start_server, tmp_path, "not-coturns-secret", coturn.url())
    code, lines = check(server)
    assert code == 1, lines
    line = line_of(lines, coturn.url() + ":")
    assert "no relay: wrong credentials (401 Unauthorized)" in line and "static-auth-secret" in line
    assert lines[-1].startswith("result: TURN is configured but no relay could be allocated")


@pytest.fixture
def swallower() -> Iterator[int]:
    """A port where something takes UDP datagrams and TCP connections and never answers,
    like a firewall that drops them."""
    port = free_udp_tcp_port()
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
    ):
        udp.bind(("127.0.0.1", port))
        tcp.bind(("127.0.0.1", port))
        tcp.listen(8)
        yield port


def test_no_coturn_fails_and_says_why(
    start_server: StartServer, tmp_path: Path, swallower: int
) -> None:
    nobody = free_udp_tcp_port()
    urls = [
        f"turn:127.0.0.1:{nobody}?transport=udp",
        f"turn:127.0.0.1:{nobody}?transport=tcp",
        f"turn:127.0.0.1:{swallower}?transport=udp",
        f"turn:127.0.0.1:{swallower}?transport=tcp",
    ]
    server = with_turn(start_server, tmp_path, "some-secret", *urls)
    started = time.monotonic()
    code, lines = check(server)
    assert code == 1, lines
    for url in urls[:2]:
        assert "no relay: unreachable: nothing listens on" in line_of(lines, url + ":")
    for url in urls[2:]:
        assert f"no relay: timeout: no answer from {url.split('=')[1].upper()}" in line_of(
            lines, url + ":"
        )
    assert lines[-1].startswith("result: TURN is configured but no relay could be allocated")
    # the servers are probed at once, not one after another (4 x 3 s)
    assert time.monotonic() - started < 60


def test_without_turn_it_says_what_works_and_exits_0(start_server: StartServer) -> None:
    code, lines = check(start_server())
    assert code == 0, lines
    assert lines[-1].startswith("result: no STUN or TURN server configured")


def test_the_servers_password_and_token(
    start_server: StartServer, coturn: Coturn, tmp_path: Path
) -> None:
    server = with_turn(
        start_server, tmp_path, coturn.secret, coturn.url(), extra=("--password", "sesame")
    )
    code, lines = check(server, "--password", "wrong")
    assert code == 1 and "unauthorized" in lines[-1], lines
    code, lines = check(server, "--password", "sesame")
    assert code == 0 and "TURN works" in lines[-1], lines
    (tmp_path / "jwt").mkdir()
    key = "k" * 32
    jwt_server = with_turn(
        start_server, tmp_path / "jwt", coturn.secret, coturn.url(), extra=("--jwt-secret", key)
    )
    token = jwt.encode({"sub": "checker", "exp": int(time.time()) + 600}, key, algorithm="HS256")
    code, lines = check(jwt_server, "--token", token)
    assert code == 0 and lines[0] == "signaling: connected with the token as checker in lobby"
    assert "TURN works" in lines[-1]
    assert token not in "\n".join(lines)
    code, lines = check(jwt_server, "--token", "not-a-token")
    assert code == 1 and "invalid token" in lines[-1], lines


def test_bad_arguments_exit_2() -> None:
    for argv in (["ftp://host"], ["https://127.0.0.1:1", "--ca", "/nonexistent.pem"]):
        done = subprocess.run(
            [sys.executable, "-m", "callbox", "check", *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2 and done.stderr.startswith("callbox: error:"), done.stderr
