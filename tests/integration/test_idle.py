"""What an idle connection costs a real `callbox serve`: its asyncio tasks, its ping timer
and its Python objects, counted through /metrics (issue 8's idle target; the kilobytes are
measured in bench/, "idle"). Each connection is a websocket that joined a room of two and
then only answers engine.io's pings."""

from __future__ import annotations

import asyncio

from tests.conftest import RunningServer, StartServer
from tests.integration.raw import Raw
from tests.integration.server_proc import metric

CONNECTIONS = 20
#: aiohttp's connection task and its request handler's (which reads the websocket: engine.io's
#: reader), and engine.io's writer. Not a task for engine.io's ping (a timer:
#: server/pings.py), nor for a wait to send or to receive (one timer per socket:
#: server/eiosocket.py; engine.io's own loop made a task for every receive).
TASKS_PER_CONNECTION = 3
#: measured 105.5 at aiohttp 3.14, python-engineio 4.15, python-socketio 5.18; 120-122 with
#: engine.io's websocket loop, 148 before that (asyncio.Queue, a ping task per socket, a
#: middleware): room for the libraries' next versions, not for a task per wait coming back
OBJECTS_PER_CONNECTION = 116
SCRAPES = 5


async def _counts(server: RunningServer) -> tuple[float, float, float]:
    """The steady state: each count's least of a few scrapes. A task that comes and goes
    (with Redis, a batch of commands on its way, such as a node's heartbeat every 2 s: a task
    per batch, signaling/redis/batch.py) is in some scrapes only; a task kept per connection
    is in every one. CI once counted 61 for 60."""
    scrapes = []
    for _ in range(SCRAPES):
        scrapes.append(
            (
                metric(server, "callbox_asyncio_tasks", 'kind="other"'),
                metric(server, "callbox_asyncio_tasks", 'kind="ping"'),
                metric(server, "callbox_python_objects"),
            )
        )
        await asyncio.sleep(0.05)
    tasks, pings, objects = zip(*scrapes, strict=True)
    return min(tasks), min(pings), min(objects)


async def _join(server: RunningServer, n: int) -> Raw:
    raw = await Raw(server).open()
    reply = await raw.connect(userName=f"idle{n}", room=f"idle-room{n // 2}")
    assert reply.startswith("0{"), reply
    return raw


async def test_an_idle_connection_costs_three_tasks_one_ping_timer_and_few_objects(
    start_server: StartServer,
) -> None:
    server = start_server("--http", "--debug-metrics")
    warm = await _join(server, CONNECTIONS)  # lazily built state: before the first count
    raws: list[Raw] = [warm]
    try:
        await asyncio.sleep(0.5)
        tasks_before, pings_before, objects_before = await _counts(server)
        raws += [await _join(server, n) for n in range(CONNECTIONS)]
        await asyncio.sleep(0.5)  # welcome and availableOffers written
        tasks, pings, objects = await _counts(server)
    finally:
        await asyncio.gather(*(r.close() for r in raws), return_exceptions=True)
    assert tasks - tasks_before == TASKS_PER_CONNECTION * CONNECTIONS
    assert pings - pings_before == CONNECTIONS
    per_connection = (objects - objects_before) / CONNECTIONS
    assert 0 < per_connection <= OBJECTS_PER_CONNECTION, per_connection
