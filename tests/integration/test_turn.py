"""TURN credentials minted by a real `callbox serve` for a real coturn (``use-auth-secret``):
what each session gets in ``welcome``, the ``iceServers`` ack and ``GET /config``, and what
coturn makes of them."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import RunningServer, StartServer
from tests.coturn import Coturn, allocate, coturn, rest_password
from tests.integration.server_proc import metric
from tests.integration.sio_client import OFFER, Clients, disconnect_cleanly

__all__ = ["coturn"]

USERNAME = re.compile(r"(?P<expiry>[0-9]+):(?P<id>[A-Za-z0-9_-]+)")


def secret_file(tmp_path: Path, secret: str) -> str:
    path = tmp_path / "turn-secret"
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return str(path)


def turn_server(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, *extra: str, secret: str = ""
) -> RunningServer:
    """callbox serve minting credentials for ``coturn`` (with its secret unless told)."""
    return start_server(
        "--turn-url",
        coturn.url("udp"),
        "--turn-url",
        coturn.url("tcp"),
        "--turn-secret-file",
        secret_file(tmp_path, secret or coturn.secret),
        *extra,
    )


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    """Test clients of the servers a test starts (``clients(server, **auth)``)."""
    made = Clients(cast(RunningServer, None))
    yield made
    await made.close()


def minted(servers: list[dict[str, Any]]) -> dict[str, Any]:
    """The one entry with minted TURN credentials."""
    entries = [s for s in servers if USERNAME.fullmatch(str(s.get("username", "")))]
    assert len(entries) == 1, servers
    return entries[0]


def get_config(server: RunningServer, bearer: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(server.url + "/config")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    with urllib.request.urlopen(request, context=server.ssl_context(), timeout=5) as r:
        config: dict[str, Any] = json.loads(r.read())
    return config


async def test_each_session_gets_its_own_credentials_valid_for_the_ttl(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, clients: Clients
) -> None:
    server = turn_server(
        start_server, coturn, tmp_path, "--turn-ttl", "600", "--ice-server", "stun:192.0.2.1:3478"
    )
    before = time.time()
    alice = await clients(server, userName="alice: the first")
    bob = await clients(server, userName="bob")
    welcomes = [c.events["welcome"][0] for c in (alice, bob)]
    ids = set()
    for welcome in welcomes:
        servers = welcome["iceServers"]
        assert {"urls": "stun:192.0.2.1:3478"} in servers  # static entries stay
        entry = minted(servers)
        assert entry["urls"] == [coturn.url("udp"), coturn.url("tcp")]
        found = USERNAME.fullmatch(entry["username"])
        assert found is not None
        # the name (arbitrary Unicode, maybe with a ':') is not in it: the session's id is
        assert "alice" not in entry["username"]
        assert before + 600 - 1 <= int(found["expiry"]) <= time.time() + 600
        assert entry["credential"] == rest_password(coturn.secret, entry["username"])
        assert 590 <= welcome["iceServersTtl"] <= 600
        ids.add(found["id"])
    assert len(ids) == 2

    # asking again gives fresh credentials for the same session
    ack = await alice.call("iceServers", {})
    again = minted(ack["iceServers"])
    assert 590 <= ack["ttl"] <= 600
    first = USERNAME.fullmatch(minted(welcomes[0]["iceServers"])["username"])
    found = USERNAME.fullmatch(again["username"])
    assert first is not None and found is not None and found["id"] == first["id"]
    assert again["credential"] == rest_password(coturn.secret, again["username"])

    # a resumed session gets credentials again in its new welcome, for the same id
    await alice.call("newOffer", OFFER)  # a session with an offer is held when it drops
    token = welcomes[0]["resume"]
    assert alice.sio is not None
    await alice.sio.eio.ws.close()  # dropped, not a goodbye: the session is held
    async with asyncio.timeout(5):
        await alice.disconnected.wait()
    back = await clients(server, resume=token, lastSeq=alice.last_seq)
    welcome = back.events["welcome"][0]
    assert welcome["resumed"] is True
    resumed = USERNAME.fullmatch(minted(welcome["iceServers"])["username"])
    assert resumed is not None and resumed["id"] == first["id"]
    # welcome x2, iceServers, welcome on resume
    assert metric(server, "callbox_turn_credentials_issued_total") == 4


async def test_coturn_relays_with_minted_credentials_and_refuses_another_secret(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, clients: Clients
) -> None:
    server = turn_server(start_server, coturn, tmp_path)
    (tmp_path / "wrong").mkdir()
    wrong = turn_server(start_server, coturn, tmp_path / "wrong", secret="not-coturns-secret")
    good = minted((await clients(server)).events["welcome"][0]["iceServers"])
    for transport in ("udp", "tcp"):
        result = await allocate(
            coturn.host, coturn.port, good["username"], good["credential"], transport=transport
        )
        assert result.relayed is not None, result
    bad = minted((await clients(wrong)).events["welcome"][0]["iceServers"])
    result = await allocate(coturn.host, coturn.port, bad["username"], bad["credential"])
    assert result.relayed is None and result.code == 401, result


async def test_config_gives_credentials_only_to_who_passes_auth(
    start_server: StartServer, coturn: Coturn, tmp_path: Path
) -> None:
    server = turn_server(
        start_server,
        coturn,
        tmp_path,
        "--password",
        "open sesame",
        "--ice-server",
        "turn:static-user:static-pass@192.0.2.1:3478",
        "--ice-server",
        "stun:192.0.2.1:3478",
    )
    for bearer in (None, "wrong", ""):
        config = get_config(server, bearer)
        assert config == {"iceServers": [{"urls": "stun:192.0.2.1:3478"}], "ttl": None}
    assert metric(server, "callbox_turn_credentials_issued_total") == 0
    config = get_config(server, "open sesame")
    entry = minted(config["iceServers"])
    assert entry["credential"] == rest_password(coturn.secret, entry["username"])
    static = {"urls": "turn:192.0.2.1:3478", "username": "static-user", "credential": "static-pass"}
    assert static in config["iceServers"]
    assert config["ttl"] > 80000  # the default TTL, a day
    assert metric(server, "callbox_turn_credentials_issued_total") == 1
    # with a password, static TURN credentials are not handed to anyone: no warning
    assert "static TURN credentials" not in server.log()


def test_static_turn_credentials_without_auth_are_warned_about_once(
    start_server: StartServer,
) -> None:
    server = start_server("--ice-server", "turn:user:pass@192.0.2.1:3478")
    lines = [line for line in server.log().splitlines() if "static TURN credentials" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and "--password" in lines[0], lines
    assert "pass@" not in lines[0]


async def test_the_secret_is_never_logged_nor_shown(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, clients: Clients
) -> None:
    secret = "s3cret-" + "x" * 20
    server = start_server(
        "--turn-url", coturn.url(), "--turn-secret-file", secret_file(tmp_path, secret)
    )
    client = await clients(server)
    await client.call("iceServers", {})
    assert client.sio is not None
    await disconnect_cleanly(client.sio)
    server.stop()
    assert secret not in server.log()


def test_the_secret_is_not_in_errors_nor_help() -> None:
    secret = "s3cret-" + "y" * 20
    # a configuration error (a secret without --turn-url) names the problem, not the value
    env = {"CALLBOX_TURN_SECRET": secret, "PATH": "/usr/bin:/bin"}
    for argv in (
        ["-vv", "serve", "--turn-secret", secret],
        ["-vv", "serve", "--port", "0"],
        ["serve", "--help"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "callbox", *argv],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert secret not in done.stdout + done.stderr, argv
        if argv[-1] != "--help":
            assert done.returncode == 2 and "--turn-url" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--turn-url", "turn:h:3478"], "needs coturn's secret"),
        (["--turn-url", "turn:u:p@h:3478", "--turn-secret", "s"], "no credentials in the URL"),
        (["--turn-url", "turns:h:5349?transport=udp", "--turn-secret", "s"], "TLS"),
        (["--turn-url", "http://h", "--turn-secret", "s"], "write turn:HOST:PORT"),
        (["--turn-url", "turn:h", "--turn-secret", "s", "--turn-ttl", "5"], "10-604800"),
        (["--turn-url", "turn:h", "--turn-secret-file", "/nonexistent/f"], "cannot read"),
        (["--stun-port", "70000"], "1-65535"),
        (["--stun-host", "h:1"], "without a port"),
    ],
)
def test_bad_turn_settings_are_one_line_and_exit_2(argv: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "callbox", "serve", *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and message in lines[0], done.stderr
