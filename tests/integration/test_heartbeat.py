"""A node's heartbeat is one script call (``beat.lua``) on a real redis-server: it writes the
beat by Redis's clock, reports the epoch and whether another node declared this one dead, and
claims each dead node for exactly one beating node; a take-over that fails is tried again on
the next beat; beats that come too far apart are logged."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import pytest
from redis.asyncio import Redis

from callbox.server.lifecycle import Hub
from callbox.server.nodes import Nodes
from callbox.signaling import StoreUnavailable
from callbox.signaling.redis.scripts import Scripts


@pytest.fixture
def prefix() -> str:
    return f"hb{uuid.uuid4().hex[:10]}:"


def texts(result: Any) -> list[Any]:
    return [x.decode() if isinstance(x, bytes) else x for x in result]


async def beat(scripts: Scripts, node: str, epoch: str = "e1") -> list[Any]:
    return texts(await scripts.run("beat", node, "10.0", epoch))


async def redis_now(redis_client: Redis) -> float:
    seconds, micros = await redis_client.time()
    return seconds + micros / 1e6


async def test_a_beat_is_written_by_redis_clock_and_reports_the_epoch(
    redis_client: Redis, prefix: str
) -> None:
    scripts = Scripts(redis_client, prefix)
    before = await redis_now(redis_client)
    assert await beat(scripts, "a", epoch="first") == ["first", 0]  # new: not yet in the set
    after = await redis_now(redis_client)
    score = await redis_client.zscore(f"{prefix}nodes", "a")
    assert score is not None and before - 1e-5 <= score <= after + 1e-5
    # the epoch is set once; the next beats report it, whatever they would set
    assert await beat(scripts, "a", epoch="second") == ["first", 1]
    assert await beat(scripts, "b", epoch="third") == ["first", 0]
    await redis_client.delete(f"{prefix}epoch")  # Redis lost its data
    assert (await beat(scripts, "a", epoch="fourth"))[0] == "fourth"


async def test_each_dead_node_is_claimed_by_one_beat_only(redis_client: Redis, prefix: str) -> None:
    scripts = Scripts(redis_client, prefix)
    now = await redis_now(redis_client)
    # x and y fell silent long ago, z 9 s ago (not dead yet at 10 s)
    await redis_client.zadd(f"{prefix}nodes", {"x": 0, "y": now - 11, "z": now - 9})
    results = await asyncio.gather(*(beat(scripts, n) for n in ("a", "b", "c", "d")))
    claimed = sorted(dead for result in results for dead in result[2:])
    assert claimed == ["x", "y"]
    assert await redis_client.zrange(f"{prefix}nodes", 0, -1) == [b"z", b"a", b"b", b"c", b"d"]
    # a node found dead and removed learns it on its next beat
    assert (await beat(scripts, "y"))[1] == 0


class FailingOnce(Nodes):
    """A take-over that fails the first time (Redis went away between the two calls)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.taken: list[str] = []
        self.failures = 1

    async def take_over(self, dead: str) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable()
        self.taken.append(dead)


def nodes_of(
    redis_client: Redis, prefix: str, node: str, clock: Callable[[], float] = time.monotonic
) -> FailingOnce:
    hub = cast(Hub, SimpleNamespace(node=node))
    scripts = Scripts(redis_client, prefix)
    return FailingOnce(redis_client, scripts, prefix, hub, end_session, clock=clock)


async def end_session(session_id: str) -> None:
    raise AssertionError(f"no session ends here ({session_id})")


async def test_a_claimed_node_whose_take_over_failed_is_taken_over_on_the_next_beat(
    redis_client: Redis, prefix: str
) -> None:
    nodes = nodes_of(redis_client, prefix, "a")
    await redis_client.zadd(f"{prefix}nodes", {"x": 0, "y": 0})
    with pytest.raises(StoreUnavailable):
        await nodes._beat()
    # both are out of the set: no other node will take them; this one still owes them
    assert await redis_client.zrange(f"{prefix}nodes", 0, -1) == [b"a"]
    await nodes._beat()
    assert nodes.taken == ["x", "y"]
    await nodes._beat()
    assert nodes.taken == ["x", "y"]  # each once


async def test_beats_too_far_apart_are_logged(
    redis_client: Redis, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = [1000.0]
    nodes = nodes_of(redis_client, prefix, "a", clock=lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="callbox.server.nodes")
    await nodes._beat()
    clock[0] += 4.9  # under half of the 10 s after which other nodes take it for dead
    await nodes._beat()
    assert caplog.messages == []
    clock[0] += 5.1
    await nodes._beat()
    assert caplog.messages == [
        "node=a: heartbeat 5.1 s after the last one (its round trip 0.0 s): the event loop or "
        "Redis is overloaded; after 10 s other nodes take this node for dead"
    ]
