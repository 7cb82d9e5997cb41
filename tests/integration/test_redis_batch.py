"""Script calls of one turn of the event loop go to Redis as one pipeline (batch.py), on a
real redis-server: in order, each with its own result or error, scripts Redis lost loaded
again, a failed connection failing every call of its batch and nothing else."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ConstantBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from callbox.signaling.redis import batch
from callbox.signaling.redis.batch import MAX_BATCH, Batcher
from tests.redis_server import RedisServer

PUSH = "return redis.call('RPUSH', ARGV[1], ARGV[2])"
FAIL_ON_X = "if ARGV[2] == 'x' then return redis.error_reply('no x') end return ARGV[2]"


@pytest.fixture
def key() -> str:
    return f"batch{uuid.uuid4().hex[:10]}"


class Counting(Batcher):
    """Counts the pipelines it sends (and their sizes)."""

    def __init__(self, redis_client: Redis) -> None:
        super().__init__(redis_client)
        self.pipelines: list[int] = []

    async def _execute(self, calls: list[Any]) -> list[Any]:
        self.pipelines.append(len(calls))
        return await super()._execute(calls)


async def counting_with_push(redis_client: Redis) -> tuple[Counting, AsyncScript]:
    """A counting batcher, and the PUSH script already in Redis (else a first batch misses
    it and is sent again)."""
    push = redis_client.register_script(PUSH)
    await redis_client.script_load(PUSH)
    return Counting(redis_client), push


async def test_calls_of_one_turn_go_in_one_pipeline_in_order(redis_client: Redis, key: str) -> None:
    batcher, push = await counting_with_push(redis_client)
    results = await asyncio.gather(*(batcher.run(push, (key, str(i))) for i in range(40)))
    assert results == list(range(1, 41))  # each call's own result
    assert batcher.pipelines == [40]
    assert await redis_client.lrange(key, 0, -1) == [str(i).encode() for i in range(40)]


async def test_a_call_alone_is_sent_alone_and_later_turns_in_batches_of_their_own(
    redis_client: Redis, key: str
) -> None:
    batcher, push = await counting_with_push(redis_client)
    assert await batcher.run(push, (key, "a")) == 1
    assert batcher.pipelines == [1]  # a batch of one is one EVALSHA
    first = asyncio.gather(*(batcher.run(push, (key, f"b{i}")) for i in range(3)))
    await asyncio.sleep(0)  # the next turn sends the first three
    second = asyncio.gather(*(batcher.run(push, (key, f"c{i}")) for i in range(2)))
    await first
    await second
    assert batcher.pipelines == [1, 3, 2]
    names = [b"a", b"b0", b"b1", b"b2", b"c0", b"c1"]
    assert await redis_client.lrange(key, 0, -1) == names


async def test_plain_commands_go_in_the_same_round_trip_in_order(
    redis_client: Redis, key: str
) -> None:
    batcher, push = await counting_with_push(redis_client)
    results = await asyncio.gather(
        batcher.run(push, (key, "script")),
        batcher.command("RPUSH", key, b"bytes"),
        batcher.command("PUBLISH", f"{key}:nobody", "hello"),
        batcher.run(push, (key, 7)),
    )
    assert list(results) == [1, 2, 0, 3]  # PUBLISH: no subscriber
    assert batcher.pipelines == [4]
    assert await redis_client.lrange(key, 0, -1) == [b"script", b"bytes", b"7"]


async def test_an_error_reply_fails_only_its_own_call(redis_client: Redis) -> None:
    batcher = Batcher(redis_client)
    script = redis_client.register_script(FAIL_ON_X)
    outcomes = await asyncio.gather(
        *(batcher.run(script, ("k", v)) for v in ("a", "x", "b")), return_exceptions=True
    )
    assert outcomes[0] == b"a" and outcomes[2] == b"b"
    assert isinstance(outcomes[1], ResponseError) and "no x" in str(outcomes[1])


async def test_scripts_redis_lost_are_loaded_again_and_run_in_order(
    redis_client: Redis, key: str
) -> None:
    batcher, push = await counting_with_push(redis_client)
    await batcher.run(push, (key, "before"))
    await redis_client.script_flush()  # what a restarted Redis has: no scripts
    assert await redis_client.script_exists(push.sha) == [False]
    results = await asyncio.gather(*(batcher.run(push, (key, str(i))) for i in range(5)))
    assert results == [2, 3, 4, 5, 6]
    # "before"; the batch that missed; the script loaded and the same calls again
    assert batcher.pipelines == [1, 5, 1 + 5]
    expected = [b"before", *(str(i).encode() for i in range(5))]
    assert await redis_client.lrange(key, 0, -1) == expected


async def test_a_caller_that_gives_up_does_not_break_the_others(
    redis_client: Redis, key: str
) -> None:
    batcher = Batcher(redis_client)
    push = redis_client.register_script(PUSH)
    calls = [asyncio.ensure_future(batcher.run(push, (key, str(i)))) for i in range(3)]
    await asyncio.sleep(0)
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert done[0] == 1 and done[2] == 3
    assert isinstance(done[1], asyncio.CancelledError)


async def test_a_dead_connection_fails_every_call_of_its_batch(tmp_path: Any) -> None:
    own = RedisServer(tmp_path).start()
    # retried as cluster.py's pools are: the first batch is still retrying when more come
    redis = Redis.from_url(own.url, retry=Retry(ConstantBackoff(0.2), 2))
    try:
        batcher = Counting(redis)
        push = redis.register_script(PUSH)
        await redis.script_load(PUSH)
        assert await batcher.run(push, ("k", "up")) == 1
        own.stop()
        first = [asyncio.ensure_future(batcher.run(push, ("k", str(i)))) for i in range(4)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first four are on their way (redis-py retrying)
        later = [asyncio.ensure_future(batcher.run(push, ("k", str(i)))) for i in range(3)]
        outcomes = await asyncio.gather(*first, *later, return_exceptions=True)
        assert all(isinstance(o, RedisConnectionError) for o in outcomes), outcomes
        assert batcher.pipelines == [1, 4]  # the later three failed with them, not after
        own.start()
        assert await batcher.run(push, ("k", "back")) == 1  # a new Redis, empty
    finally:
        await redis.aclose()
        own.stop()


async def test_a_huge_turn_is_sent_in_parts_still_in_order(redis_client: Redis, key: str) -> None:
    batcher, push = await counting_with_push(redis_client)
    count = MAX_BATCH + 44
    results = await asyncio.gather(*(batcher.run(push, (key, str(i))) for i in range(count)))
    assert results == list(range(1, count + 1))
    assert batcher.pipelines == [MAX_BATCH, 44]


async def test_calls_of_a_send_cancelled_before_it_began_are_cancelled_not_left_waiting(
    redis_client: Redis, key: str
) -> None:
    batcher = Batcher(redis_client)
    push = redis_client.register_script(PUSH)
    calls = [asyncio.ensure_future(batcher.run(push, (key, str(i)))) for i in range(MAX_BATCH + 5)]
    [sending] = await flushed(batcher)  # one task sends both parts
    sending.cancel()  # before it even started
    done = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
    assert all(isinstance(d, asyncio.CancelledError) for d in done), done


async def flushed(batcher: Batcher) -> list[asyncio.Task[None]]:
    """The calls' tasks run (one turn), then the flush they scheduled (the next)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batcher._sender is not None
    return [batcher._sender]


async def test_calls_of_a_send_cancelled_midway_are_cancelled_not_left_waiting(
    tmp_path: Any,
) -> None:
    own = RedisServer(tmp_path).start()
    redis = Redis.from_url(own.url)
    pauser = Redis.from_url(own.url)
    try:
        batcher = Batcher(redis)
        push = redis.register_script(PUSH)
        await redis.script_load(PUSH)
        # Redis holds every redis_client's commands for 2 s: the first part's replies do not come
        await pauser.client_pause(2000, all=True)
        calls = [asyncio.ensure_future(batcher.run(push, ("k", str(i)))) for i in range(300)]
        [sending] = await flushed(batcher)
        await asyncio.sleep(0.2)  # it has sent the first part and waits for its replies
        sending.cancel()
        done = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 10)
        assert all(isinstance(d, asyncio.CancelledError) for d in done), done
        # the connection was left mid-reply: the next batch gets its own replies, not those
        echo = redis.register_script(FAIL_ON_X)
        await pauser.client_unpause()
        assert await batcher.run(echo, ("k", "after")) == b"after"
    finally:
        await redis.aclose()
        await pauser.aclose()
        own.stop()


async def test_a_hung_redis_fails_the_batch_at_its_deadline_then_calls_work_again(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scripts' pool has no per-read timeout (cluster.py): the batch's deadline is what
    gives up on a Redis that accepts commands and never answers."""
    monkeypatch.setattr(batch, "DEADLINE", 0.5)
    own = RedisServer(tmp_path).start()
    redis = Redis.from_url(own.url, socket_timeout=None)
    pauser = Redis.from_url(own.url)
    try:
        batcher = Batcher(redis)
        push = redis.register_script(PUSH)
        await redis.script_load(PUSH)
        await pauser.client_pause(3000, all=True)
        outcomes = await asyncio.wait_for(
            asyncio.gather(*(batcher.run(push, ("k", str(i))) for i in range(3)),
                           return_exceptions=True),
            10,
        )  # fmt: skip
        assert all(isinstance(o, RedisTimeoutError) for o in outcomes), outcomes
        await pauser.client_unpause()
        assert await batcher.run(push, ("k", "after")) >= 1
    finally:
        await redis.aclose()
        await pauser.aclose()
        own.stop()
