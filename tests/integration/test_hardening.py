"""Attacks on a real `callbox serve` with default settings (issue 7): each one bounded in
count, each asserting the refusal, a memory budget, and an honest call made during it.

The attackers connect from 127.0.0.1, the honest clients from 127.0.0.2 (another address:
per-address limits must not touch them). Figures (RSS before, during, after) are printed for
the record; the assertion is the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import pytest
import socketio

from tests.conftest import BACKEND_FREE, RunningServer, StartServer
from tests.integration.raw import HONEST, MIB, Raw, deaf_joiner, honest_call, rss
from tests.integration.server_proc import metric
from tests.integration.sio_client import ANSWER, OFFER, Client, Clients

BUDGET = 50 * MIB
DROPPED = "callbox_connections_dropped_total"


@pytest.fixture
def server(start_server: StartServer) -> RunningServer:
    return start_server()


@pytest.fixture
async def attackers(server: RunningServer) -> AsyncIterator[list[Raw]]:
    made: list[Raw] = []
    yield made
    await asyncio.gather(*(r.close() for r in made), return_exceptions=True)


def report(name: str, before: float, during: float, after: float) -> None:
    print(
        f"\n{name}: RSS {before / MIB:.1f} MiB before, {during / MIB:.1f} during, "
        f"{after / MIB:.1f} after"
    )


@BACKEND_FREE
async def test_binary_attachments_are_refused_at_the_header(
    server: RunningServer, attackers: list[Raw]
) -> None:
    before = rss(server)
    raw = await Raw(server).open()
    attackers.append(raw)
    assert (await raw.connect()).startswith("0{")
    # a BINARY_EVENT announcing 9,999,999 attachments, then 1 MB frames
    await raw.send('59999999-["x",{"_placeholder":true,"num":0}]')
    sent = 0
    try:
        for _ in range(300):
            await raw.send(b"\x00" * 1_000_000)
            sent += 1
            await asyncio.sleep(0)
    except (ConnectionError, RuntimeError, OSError):
        pass
    assert await raw.closed()
    plain = await Raw(server).open()  # a binary frame without any header: refused too
    attackers.append(plain)
    await plain.connect()
    await plain.send(b"\x01\x02\x03")
    assert await plain.closed()
    during = rss(server)
    await honest_call(server)
    after = rss(server)
    report(f"binary attachments ({sent} MB sent before the close)", before, during, after)
    assert metric(server, DROPPED, 'why="binary"') == 2
    assert during - before < BUDGET


@BACKEND_FREE
async def test_events_before_the_connect_or_to_another_namespace_go_nowhere(
    server: RunningServer, attackers: list[Raw]
) -> None:
    raw = await Raw(server).open()
    attackers.append(raw)
    offer = json.dumps(OFFER)
    await raw.send(f'421["newOffer",{offer}]')  # no socket.io session yet
    assert (await raw.connect()).startswith("0{")
    await raw.send(f'42/elsewhere,2["newOffer",{offer}]')  # a namespace it never joined
    await raw.send(f'423["newOffer",{offer}]')
    packets = [await raw.packet()]
    while not packets[-1].startswith("3"):  # events (welcome, offers) until the first ack
        packets.append(await raw.packet())
    assert packets[-1].startswith('33[{"offerId":'), packets  # #3's: #1 and #2 went nowhere
    assert metric(server, "callbox_events_total", 'event="newOffer"') == 1
    await honest_call(server)


async def _pair(clients: Clients, n: int) -> tuple[Client, Client]:
    a = await clients(userName=f"a{n}", room=f"log{n}", resume=True)
    b = await clients(userName=f"b{n}", room=f"log{n}", resume=True)
    ack = await a.call("newOffer", OFFER)
    await b.call("newAnswer", {"offerId": ack["offerId"], "answer": ANSWER})
    await a.wait_for("answerResponse")
    return a, b


async def test_the_resume_log_is_bounded_in_bytes_and_a_replay_by_it(
    server: RunningServer,
) -> None:
    """Two sessions of one attacker in a call with each other send 60 KiB renegotiation
    offers at the allowed rate; every resume with lastSeq 0 replays at most the log."""
    before = rss(server)
    clients = Clients(server)
    big = {"type": "offer", "sdp": "v=0\r\n" + "a" * 60_000}
    try:
        pairs = [await _pair(clients, n) for n in range(4)]

        async def flood(sender: Client) -> int:
            sent = 0
            for _ in range(150):
                reply = await sender.call("renegotiate", {"description": big}, wait=20)
                sent += reply == {"ok": True}
            return sent

        sent = await asyncio.gather(*(flood(c) for pair in pairs for c in pair))
        during = rss(server)
        # resuming "from the beginning" replays nothing: the log kept only the newest
        # 256 KiB, so the session cannot be resumed exactly and ends
        victim, other = pairs[0][1], pairs[0][0]
        assert victim.sio is not None
        await victim.sio.eio.ws.close()  # dropped without a goodbye: held
        with pytest.raises(socketio.exceptions.ConnectionError, match="events it missed"):
            await clients(resume=victim.events["welcome"][0]["resume"], lastSeq=0)
        assert (await other.wait_for("callEnded"))["reason"] == "peer-disconnected"
        # an honest resume after the flood replays what came while away, no more
        second, peer = pairs[1][1], pairs[1][0]
        assert second.sio is not None
        await second.sio.eio.ws.close()
        await peer.call("renegotiate", {"description": big}, wait=20)
        back = await clients(resume=second.events["welcome"][0]["resume"], lastSeq=second.last_seq)
        assert len(await back.wait_for("renegotiate") and back.events["renegotiate"]) == 1
        await honest_call(server)
        after = rss(server)
    finally:
        await clients.close()
    report(f"resume log flood ({sum(sent)} big offers relayed)", before, during, after)
    assert sum(sent) >= 8 * 100  # the burst at least went through: the logs were fed
    assert during - before < BUDGET


async def test_the_event_rate_does_not_refill_on_a_resume(start_server: StartServer) -> None:
    # a slow refill (1 event/s after the burst of 100), so that however slow the machine,
    # a bucket saved with the session stays far from what fresh buckets would let through
    server = start_server("--event-rate", "1")
    clients = Clients(server)
    try:
        mallory = await clients(userName="mallory", resume=True)
        accepted = 0
        started = time.monotonic()
        for _ in range(3):
            for _ in range(150):
                reply = await mallory.call("hangup", None)
                accepted += reply["error"]["code"] != "rate_limited"
            token = mallory.events["welcome"][0]["resume"]
            assert mallory.sio is not None
            await mallory.sio.eio.ws.close()
            mallory = await clients(resume=token, lastSeq=mallory.last_seq)
        elapsed = time.monotonic() - started
        await honest_call(server)
    finally:
        await clients.close()
    # one burst of 100, then 1 per second for the time it took; a fresh bucket per socket
    # would have let 300 through (3 bursts)
    assert accepted <= 100 + 1 * elapsed + 5, (accepted, elapsed)
    assert accepted < 300


async def test_held_sessions_and_idle_sockets_count_against_their_address(
    start_server: StartServer,
) -> None:
    # the deadline must outlast opening the 30 idle sockets below: with 2 s on a busy machine
    # the first were closed before the last came, and 19 were accepted
    server = start_server("--max-connections-per-ip", "10", "--connect-timeout", "8")
    before = rss(server)
    clients = Clients(server)
    idle: list[Raw] = []
    try:
        held = [await clients(userName=f"h{n}", resume=True) for n in range(10)]
        for client in held:
            assert client.sio is not None
            await client.sio.eio.ws.close()  # dropped: held for a resume
        await asyncio.sleep(0.5)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients(userName="one-more")
        await honest_call(server)
        # engine.io sockets that never send CONNECT, from another address: at most the
        # limit (and a little slack) are accepted, and those are closed at the deadline
        accepted = 0
        for _ in range(30):
            raw = Raw(server, source="127.0.0.3")
            idle.append(raw)
            try:
                await raw.open()
                accepted += 1
            except Exception:
                pass
        assert 10 <= accepted <= 18, accepted
        closed = await asyncio.gather(*(r.closed(wait=20) for r in idle if r.ws is not None))
        assert all(closed)
        during = rss(server)
    finally:
        await clients.close()
        await asyncio.gather(*(r.close() for r in idle), return_exceptions=True)
    report("held sessions and idle engine.io sockets", before, during, rss(server))
    assert metric(server, "callbox_limit_exceeded_total", 'limit="connections_per_ip"') >= 1
    assert metric(server, DROPPED, 'why="connect_deadline"') >= 10
    assert during - before < BUDGET


@BACKEND_FREE
async def test_tls_connections_that_never_send_a_request_are_closed(
    start_server: StartServer,
) -> None:
    # the deadline must outlast opening all 40 (TLS handshakes on a busy machine took over
    # 2 s: the first ones were closed before the last came, and fewer were over the limit)
    server = start_server("--max-connections-per-ip", "10", "--connect-timeout", "8")
    before = rss(server)
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    refused = 0
    try:
        for _ in range(40):
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1",
                    server.port,
                    ssl=server.ssl_context(),
                    server_hostname="localhost",
                    local_addr=("127.0.0.4", 0),
                )
                opened.append((reader, writer))
            except (ConnectionError, OSError):
                refused += 1
        await honest_call(server)

        async def gone(reader: asyncio.StreamReader) -> bool:
            try:
                async with asyncio.timeout(30):
                    return await reader.read(1) == b""
            except (ConnectionError, OSError):
                return True

        results = await asyncio.gather(*(gone(r) for r, _ in opened))
        during = rss(server)
    finally:
        for _, writer in opened:
            writer.close()
    report("TLS connections without a request", before, during, rss(server))
    # past 10 sessions + 16 other connections per address the server drops them at once;
    # the others are closed at the deadline (8 s) for not sending a request
    assert all(results)
    assert metric(server, DROPPED, 'why="tcp_per_ip"') + refused >= 40 - 26
    assert during - before < BUDGET


async def test_clients_that_do_not_read_are_disconnected_past_their_budget(
    server: RunningServer, backend: str
) -> None:
    """A room with 16 large offers (about 2 MB to each newcomer) and 45 joiners that never
    read their socket: what waits for them is bounded per socket and per address."""
    # On Redis each newcomer's ~2 MB of offers is also read from Redis and copied several
    # times on the way (reply buffer, bytes, text, objects), and RSS keeps the high-water
    # mark of those copies. What this phase adds (during - offered), measured at 0e35340:
    # memory +10 to +12 MiB; Redis +22 to +29 quiet, up to +38 with two CPU hogs, +45.9 once
    # in CI. Without the send budget (both budgets set to 1 GiB): memory +88, Redis +105 and
    # +109. Redis's 60 MiB sits between the two; a broken budget still fails it.
    await deaf_joiners_are_bounded(server, slack=BUDGET / 2 if backend == "memory" else 60 * MIB)


# the send budget reads the transports under the event loop: behind a proxy (--http) that is
# uvloop's, with callbox's own TLS asyncio's (server/runner.py); the backend is not involved
@pytest.mark.parametrize("backend", ["memory"])
async def test_behind_a_proxy_on_uvloop_clients_that_do_not_read_are_bounded_too(
    start_server: StartServer,
) -> None:
    server = start_server("--http")
    assert "event loop: uvloop" in server.log()
    await deaf_joiners_are_bounded(server, slack=BUDGET / 2)


async def deaf_joiners_are_bounded(server: RunningServer, slack: float) -> None:
    before = rss(server)
    offerers = Clients(server, source="127.0.0.5")
    deaf: list[asyncio.StreamWriter] = []
    sdp = "v=0\r\n" + "b" * 60_000
    try:
        for n in range(16):
            o = await offerers(userName=f"o{n}", room="big")
            await o.call("newOffer", {"type": "offer", "sdp": sdp})
            for _ in range(50):
                candidate = {"candidate": "candidate:" + "c" * 1000, "sdpMid": "0"}
                await o.emit("sendIceCandidateToSignalingServer", {"iceCandidate": candidate})
        await asyncio.sleep(1)
        offered = rss(server)
        for _ in range(45):
            # refused when the address is past its budget
            with contextlib.suppress(ConnectionError, OSError, AssertionError):
                deaf.append(await deaf_joiner(server, {"room": "big"}))
        await asyncio.sleep(3)
        during = rss(server)
        await honest_call(server, room="big")
        after = rss(server)
    finally:
        await offerers.close()
        for writer in deaf:
            writer.transport.abort()
    report("45 joiners that never read, 16 big offers", before, during, after)
    print(f"  (of which the 16 offers themselves: {(offered - before) / MIB:.1f} MiB)")
    assert metric(server, DROPPED, 'why="send_budget"') >= 30
    # The offers are the room as it is (issue 7 measured from there: 138 -> 560 MiB); what
    # the 45 joiners add is what the budgets bound: 8 MiB queued per address, and their
    # connections. Without the send budget this phase adds about 90 MiB.
    assert during - offered < slack


@BACKEND_FREE
async def test_password_guessing_is_throttled_per_address(start_server: StartServer) -> None:
    server = start_server("--password", "s3cret")
    raw = await Raw(server).open()
    try:
        answers = []
        for n in range(5):  # repeated CONNECTs on one socket: the socket is closed
            try:
                answers.append(await raw.connect(password=f"guess{n}"))
            except ConnectionError:
                break
        assert len(answers) <= 3
        assert await raw.closed()
    finally:
        await raw.close()
    checked = throttled = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        guesser = Raw(server)
        try:
            await guesser.open()
            answer = await guesser.connect(password="wrong")
            checked += '"unauthorized"' in answer
            throttled += '"rate_limited"' in answer
        except Exception:
            pass
        finally:
            await guesser.close()
    clients = Clients(server, source=HONEST)
    try:
        assert (await clients(userName="ok", password="s3cret")).user_name == "ok"
    finally:
        await clients.close()
    # 5 free failures, then 1 s, 2 s, ... of waiting: a handful of real checks in 3 s,
    # against hundreds per second without the backoff
    assert checked <= 12, checked
    assert throttled >= 1
    assert server.log().count("refused") <= 20
