"""500 concurrent sessions doing the full handshake against a real server: nothing lost,
nothing twice, no error, and the server's memory back near its starting level afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.conftest import RunningServer
from tests.integration.loadgen import LoadResult, rss, run_load
from tests.integration.server_proc import launch, metric

SESSIONS = 500
HANDSHAKES = 2
CANDIDATES = 5
ROUNDS = 3
# The first round takes the server from cold (~90 MiB RSS) to ~260 MiB, and the allocator keeps
# that memory after the sessions leave (freed, not returned to the OS: later rounds reuse it).
# So "back to its starting level" is judged against the level after that warm-up round (ping
# timers drained). Measured: two more rounds of 500 sessions add ~11 MiB (~11 KiB per session;
# not yet explained: allocator fragmentation or a slow leak). The margin, 24 MiB, catches any
# leak of more than ~24 KiB per session.
WARM_MARGIN = 24 * 1024 * 1024
# Leaking one object per session and round would add 1000 here.
OBJECT_MARGIN = 1000


@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = launch(
        tmp_path_factory.mktemp("load-data"),
        tmp_path_factory.mktemp("load-log"),
        "--max-connections-per-ip", str(SESSIONS + 10), "--debug-metrics",
    )  # fmt: skip
    yield server
    assert server.stop() == 0


def _idle(server: RunningServer) -> None:
    """Wait until every session, offer and engine.io ping timer is gone. A closed socket's
    ping timer (and the socket it holds) lives out its 25 s sleep, so this takes up to 30 s."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if (
            metric(server, "callbox_sessions") == 0
            and metric(server, "callbox_store_entries", 'table="offers"') == 0
            and metric(server, "callbox_asyncio_tasks", 'kind="ping"') == 0
        ):
            return
        time.sleep(0.5)
    raise AssertionError("sessions, offers or sockets left behind")


@pytest.mark.slow
def test_500_sessions_full_handshakes_no_loss_and_memory_returns(
    load_server: RunningServer,
) -> None:
    start = rss(load_server.get("/metrics")[1].decode())
    rounds: list[tuple[LoadResult, float]] = []
    objects: list[float] = []
    for _ in range(ROUNDS):
        result = asyncio.run(
            run_load(load_server.url, load_server.ca_path, SESSIONS, HANDSHAKES, CANDIDATES)
        )
        if not rounds or len(rounds) == ROUNDS - 1:  # measured after the first and the last
            _idle(load_server)
        rounds.append((result, rss(load_server.get("/metrics")[1].decode())))
        objects.append(metric(load_server, "callbox_python_objects"))
    for result, _ in rounds:
        assert result.errors == []
        assert result.handshakes == SESSIONS // 2 * HANDSHAKES
        assert (result.lost, result.duplicated, result.out_of_order) == (0, 0, 0)
        assert result.candidates_received == result.candidates_sent
    mib = 1024 * 1024
    print(
        f"\nload: {SESSIONS} sessions x {HANDSHAKES} handshakes x {ROUNDS} rounds, {CANDIDATES}"
        " candidates each way before and after the answer; seconds per round "
        + " / ".join(f"{r.seconds:.1f}" for r, _ in rounds)
        + f"; RSS MiB at start {start / mib:.1f}, after each round "
        + " / ".join(f"{m / mib:.1f}" for _, m in rounds)
        + "; Python objects after each round "
        + " / ".join(f"{n:.0f}" for n in objects)
    )
    assert metric(load_server, "callbox_errors_total", 'code="unavailable"') == 0
    assert rounds[-1][1] - rounds[0][1] < WARM_MARGIN
    # the objects the server holds are back to the warm level: nothing per session is kept
    assert objects[-1] - objects[0] < OBJECT_MARGIN
