"""Script calls made in one turn of the event loop go to Redis together, as one pipeline.

Every protocol step is one Lua script (see scripts.py), and most of what a node spends on
Redis is redis-py's own work per command (taking a connection, timeouts, packing, one
round trip): measured here, ~75 us of CPU for one ``EVALSHA``, ~30 us each in a pipeline of
four. Under load many sockets' handlers call scripts in the same turn of the loop, so the
calls are gathered and sent as one non-transactional pipeline in the next turn. Each script
stays atomic by itself (Redis runs a script whole), and the scripts of one batch run in the
order they were called; one socket's events are handled one after the other
(``async_handlers=False``), so a socket never has two calls in flight.

A batch of one is an ordinary call. A script Redis does not have (it restarted, or its
script cache was flushed) is loaded and the calls that missed it are run again, in order.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

#: calls per pipeline, so one huge turn (a dead node's sessions taken over) is sent in parts
MAX_BATCH = 256


@dataclass(slots=True)
class _Call:
    script: AsyncScript
    args: tuple[str | int | float, ...]
    done: asyncio.Future[Any]


class Batcher:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._queued: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, args: tuple[str | int | float, ...]) -> Any:
        """The script's result; a Redis failure is raised as redis-py raised it."""
        loop = asyncio.get_running_loop()
        call = _Call(script, args, loop.create_future())
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(call)
        return await call.done

    def _flush(self) -> None:
        queued, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send_parts(queued))
        self._sending.add(task)
        task.add_done_callback(functools.partial(self._sent, queued))

    async def _send_parts(self, calls: list[_Call]) -> None:
        """One part after the other (in parallel, a later part could run first)."""
        for start in range(0, len(calls), MAX_BATCH):
            await self._send(calls[start : start + MAX_BATCH])

    def _sent(self, calls: list[_Call], task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if task.cancelled():  # even before it started: no caller is left waiting
            _fail(calls, asyncio.CancelledError())

    async def _send(self, calls: list[_Call]) -> None:
        try:
            if len(calls) == 1:
                call = calls[0]
                results: list[Any] = [await call.script(args=list(call.args))]
            else:
                results = await self._pipeline(calls)
        except BaseException as e:  # the connection failed, or the node is shutting down
            _fail(calls, e)
            if not isinstance(e, Exception):
                raise
            return
        for call, result in zip(calls, results, strict=True):
            if call.done.done():  # its caller gave up (cancelled)
                continue
            if isinstance(result, Exception):
                call.done.set_exception(result)
            else:
                call.done.set_result(result)

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        results = await self._execute(calls)
        missed = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missed:
            for script in {id(calls[i].script): calls[i].script for i in missed}.values():
                await self.client.script_load(script.script)
            again = await self._execute([calls[i] for i in missed])
            for i, result in zip(missed, again, strict=True):
                results[i] = result
        return results

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for call in calls:
                pipe.evalsha(call.script.sha, 0, *call.args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        return results


def _fail(calls: list[_Call], error: BaseException) -> None:
    for call in calls:
        if call.done.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            call.done.cancel()
        else:
            call.done.set_exception(error)
