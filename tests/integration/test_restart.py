"""Stopping and restarting `callbox serve` (issue 7, "Restarts strand users"): SIGTERM ends
within its bound whatever clients do, tells the parties of the calls that end, and closes
sockets so that clients reconnect by themselves."""

from __future__ import annotations

import asyncio
import signal
import ssl
import subprocess
import time
import urllib.request
from typing import Any

import aiohttp
import pytest
import socketio

from tests.conftest import RunningServer, StartServer
from tests.integration.sio_client import ANSWER, OFFER, Clients


def _stop_within(server: RunningServer, bound: float) -> float:
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        server.process.kill()
        raise AssertionError(f"callbox serve still running {bound}s after SIGTERM") from None
    return time.monotonic() - started


def test_sigterm_with_a_half_open_handshake_exits_within_the_bound(
    start_server: StartServer,
) -> None:
    """An engine.io polling handshake whose client never polls again used to keep the
    server from exiting at all."""
    server = start_server("--drain-timeout", "4")
    context = server.ssl_context()
    url = server.url + "/socket.io/?EIO=4&transport=polling"
    with urllib.request.urlopen(url, context=context, timeout=5) as r:
        assert r.read().startswith(b"0{")  # the handshake, and then silence
    # the bound is the drain timeout (4 s) and the runner's own cleanup; generous for CI
    _stop_within(server, bound=30)
    assert server.process.returncode == 0
    assert "Traceback" not in server.log()


async def test_sigterm_tells_the_parties_and_closes_like_a_dropped_network(
    start_server: StartServer, backend: str
) -> None:
    """Alone, the node ends every call and tells both parties. One of many (Redis), it holds
    alice, who can resume, for another node: only bob's call ends now, and alice hears of it
    when she resumes (tests/integration/test_nodes.py follows her there)."""
    server = start_server()
    clients = Clients(server)
    try:
        alice = await clients(userName="alice", resume=True)
        bob = await clients(userName="bob")
        ack = await alice.call("newOffer", OFFER)
        await bob.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
        await alice.wait_for("answerResponse")
        reasons: list[Any] = []
        assert alice.sio is not None

        def gone(reason: Any = None) -> None:
            reasons.append(reason)
            alice.disconnected.set()

        alice.sio.on("disconnect", gone)
        await asyncio.to_thread(_stop_within, server, 30)
        told = (alice, bob) if backend == "memory" else (bob,)
        for who in told:
            ended = await who.wait_for("callEnded", wait=10)
            assert ended == {"offerId": ack["offerId"], "reason": "server-shutdown", "by": ""}
        await asyncio.wait_for(alice.disconnected.wait(), 10)
        if alice not in told:
            assert alice.events["callEnded"] == []  # held: it waits in her log
        # a transport that closed (python-socketio says "transport error", browsers "transport
        # close"), not "server disconnect" (socket.io's DISCONNECT), after which clients stay
        # away for good
        assert reasons and reasons[0] in ("transport close", "transport error"), reasons
    finally:
        await clients.close()


async def test_clients_reconnect_by_themselves_after_a_graceful_restart(
    start_server: StartServer,
) -> None:
    server = start_server()
    context = ssl.create_default_context(cafile=str(server.ca_path))
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
    sio = socketio.AsyncClient(
        http_session=http, reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1
    )
    welcomes: list[Any] = []
    second = asyncio.Event()

    def welcome(data: Any) -> None:
        welcomes.append(data)
        if len(welcomes) == 2:
            second.set()

    sio.on("welcome", welcome)
    try:
        await sio.connect(server.url, auth={"userName": "carol"}, transports=["websocket"])
        await asyncio.to_thread(_stop_within, server, 30)
        await asyncio.to_thread(start_server, port=server.port)  # a new process, same port
        await asyncio.wait_for(second.wait(), 30)
        assert welcomes[1]["userName"] == "carol"
    finally:
        await sio.disconnect()
        await http.close()


@pytest.mark.parametrize("flag", [[], ["--resume-grace", "0"]])
def test_sigterm_with_nobody_connected_is_quick_and_clean(
    start_server: StartServer, flag: list[str]
) -> None:
    server = start_server(*flag)
    _stop_within(server, bound=20)
    assert server.process.returncode == 0
    assert "callbox stopped." in server.log()
