"""The lower findings of issue 7, against a real `callbox serve`: malformed packets, error
pages, proxies, /metrics, JWT resumes, look-alike names."""

from __future__ import annotations

import asyncio
import time
import urllib.error

import jwt
import pytest
import socketio

from tests.conftest import RunningServer, StartServer
from tests.integration.raw import Raw
from tests.integration.server_proc import metric
from tests.integration.sio_client import Clients, own_address


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server()


@pytest.mark.parametrize("garbage", ["4", "42[", '42{"no":"list"}', "4x", "49", '42["a",'])
async def test_a_malformed_packet_closes_the_socket_with_one_line_not_a_traceback(
    shared_server: RunningServer, garbage: str
) -> None:
    # the worker's server, one test at a time: what this test adds to its log and metrics is
    # what comes after these marks
    server, log_start = shared_server, len(shared_server.log())
    dropped = metric(server, "callbox_connections_dropped_total", 'why="malformed"')
    raw = await Raw(server, source=own_address()).open()
    try:
        await raw.connect()
        await raw.send(garbage)
        assert await raw.closed()
    finally:
        await raw.close()
    await asyncio.sleep(0.2)
    log = server.log()[log_start:]
    assert "Traceback" not in log
    assert metric(server, "callbox_connections_dropped_total", 'why="malformed"') >= dropped + 1


async def test_a_flood_of_malformed_packets_is_logged_a_few_times_only(
    server: RunningServer,
) -> None:
    for _ in range(30):
        raw = await Raw(server).open()
        try:
            await raw.send("4garbage")
            await raw.closed()
        finally:
            await raw.close()
    await asyncio.sleep(0.2)
    assert metric(server, "callbox_connections_dropped_total", 'why="malformed"') == 30
    assert server.log().count("closed: ") <= 6  # five lines a minute per kind and address


def test_error_pages_carry_the_security_headers(shared_server: RunningServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as info:
        shared_server.get("/no-such-page")
    headers = info.value.headers
    assert info.value.code == 404
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


async def test_forwarded_for_counts_only_from_a_trusted_proxy(start_server: StartServer) -> None:
    async def two_behind_one_proxy(server: RunningServer) -> bool:
        """Two clients whose requests say X-Forwarded-For: two addresses; True if both got
        in (the limit is one session per address)."""
        made = [Clients(server, headers={"X-Forwarded-For": a}) for a in ("192.0.2.1", "192.0.2.2")]
        try:
            for n, clients in enumerate(made):
                await clients(userName=f"u{n}")
            return True
        except socketio.exceptions.ConnectionError:
            return False
        finally:
            for clients in made:
                await clients.close()

    plain = start_server("--http", "--max-connections-per-ip", "1")
    assert not await two_behind_one_proxy(plain)  # anyone can write the header: ignored
    proxied = start_server(
        "--http", "--max-connections-per-ip", "1", "--trusted-proxy", "127.0.0.1"
    )
    assert await two_behind_one_proxy(proxied)


def test_metrics_follow_the_servers_auth_and_do_not_walk_the_heap(
    start_server: StartServer,
) -> None:
    server = start_server("--password", "s3cret", metrics_token=None)
    with pytest.raises(urllib.error.HTTPError) as info:
        server.get("/metrics", headers={})
    assert info.value.code == 401
    with pytest.raises(urllib.error.HTTPError):
        server.get("/metrics", headers={"Authorization": "Bearer wrong"})
    status, body, _ = server.get("/metrics", headers={"Authorization": "Bearer s3cret"})
    assert status == 200 and b"callbox_sessions" in body
    assert b"callbox_python_objects" not in body  # only with --debug-metrics


async def test_a_jwt_resume_must_be_the_same_user(start_server: StartServer) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    server = start_server("--jwt-secret", secret)

    def token(sub: str) -> str:
        return jwt.encode({"sub": sub, "exp": int(time.time()) + 60}, secret, "HS256")

    clients = Clients(server)
    try:
        alice = await clients(token=token("alice"), resume=True)
        resume = alice.events["welcome"][0]["resume"]
        assert alice.sio is not None
        await alice.sio.eio.ws.close()
        await asyncio.sleep(0.3)
        with pytest.raises(socketio.exceptions.ConnectionError, match="forbidden"):
            await clients(token=token("mallory"), resume=resume)
        back = await clients(token=token("alice"), resume=resume)
        assert back.events["welcome"][0]["resumed"] is True
    finally:
        await clients.close()


async def test_a_look_alike_name_cannot_sit_beside_the_real_one(shared_clients: Clients) -> None:
    assert (await shared_clients(userName="alice")).user_name == "alice"
    spoof = await shared_clients(userName="аlice")  # Cyrillic а
    assert spoof.user_name == "аlice-2"  # shown as typed, made distinct
    with pytest.raises(socketio.exceptions.ConnectionError, match="invisible"):
        await shared_clients(userName="\u3164")
