"""Script calls go to Redis together: one batch at a time, in one round trip each.

Every protocol step is one Lua script (see scripts.py), and most of what a node spends on
Redis is the client's own work per command (taking a connection, timers, packing, one round
trip): measured here, ~75 us of CPU for one ``EVALSHA`` through redis-py, ~30 us each in a
pipeline of four. So the calls made in one turn of the event loop go together in the next,
and while a batch is on its way the calls made meanwhile gather for the one after it: under
load, fewer and bigger batches. A batch is written at once on one connection of the pool
and its replies read in order: a non-transactional pipeline, packed here rather than by
redis-py's ``Pipeline`` (whose per-command bookkeeping, per-reply timers and health checks
were ~0.8 ms of a lobby handshake's 5.2 ms in bench/). Each script stays atomic by itself
(Redis runs a script whole), and the calls run in the order they were made; one socket's
events are handled one after the other (``async_handlers=False``), so a socket never has
two calls in flight. Plain commands (the bus's ``PUBLISH``) go in the same batches.

A script Redis does not have (it restarted, or its script cache was flushed) is loaded and
the calls that missed it are run again, in order. redis-py's public ``Connection`` does the
I/O and the parsing (hiredis): its ``send_packed_command`` and ``read_response``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: calls per pipeline, so one huge turn (a dead node's sessions taken over) is sent in parts
MAX_BATCH = 256
#: seconds for one batch, every reply included: then its calls fail (Redis is hung)
DEADLINE = 10.0


Arg = str | bytes | int | float


@dataclass(slots=True)
class _Call:
    #: None: a plain command, ``args[0]`` its name
    script: AsyncScript | None
    args: tuple[Arg, ...]
    done: asyncio.Future[Any]


class Batcher:
    def __init__(self, client: Redis) -> None:
        self.client = client
        self._queued: list[_Call] = []
        #: what the sender sends now: failed with it if it is cancelled
        self._in_flight: list[_Call] = []
        self._sender: asyncio.Task[None] | None = None

    async def run(self, script: AsyncScript, args: tuple[Arg, ...]) -> Any:
        """The script's result; a Redis failure is raised as redis-py raised it."""
        return await self._queue(script, args)

    async def command(self, *args: Arg) -> Any:
        """A plain command (``PUBLISH``, ...) in the same round trip as the scripts queued
        with it: its reply as hiredis parsed it."""
        return await self._queue(None, args)

    def _queue(self, script: AsyncScript | None, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        call = _Call(script, args, loop.create_future())
        self._queued.append(call)
        if self._sender is None:  # it starts in the next turn, with this turn's calls
            self._sender = loop.create_task(self._send_queued())
            self._sender.add_done_callback(self._sent)
        return call.done

    async def _send_queued(self) -> None:
        """Batch after batch until nothing waits: while one is on its way, the calls made
        meanwhile gather for the next (under load, fewer and bigger batches)."""
        while self._queued:
            self._in_flight = self._queued[:MAX_BATCH]
            del self._queued[:MAX_BATCH]
            await self._send(self._in_flight)
        self._in_flight = []
        self._sender = None  # in the same step as the check: a call queued later starts one

    def _sent(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            return
        # cancelled (the node shuts down), even before it started: no caller is left waiting
        # (it never reached its own ``self._sender = None``)
        self._sender = None
        calls = [*self._in_flight, *self._queued]
        self._in_flight, self._queued = [], []
        _fail(calls, asyncio.CancelledError())

    async def _send(self, calls: list[_Call]) -> None:
        try:
            results = await self._pipeline(calls)
        except BaseException as e:  # the connection failed, or the node is shutting down
            _fail(calls, e)
            if not isinstance(e, Exception):
                raise
            # Redis is down (redis-py retried already): what queued meanwhile fails now too
            # rather than wait its turn to fail the same way, batch after batch
            queued, self._queued = self._queued, []
            _fail(queued, e)
            return
        for call, result in zip(calls, results, strict=True):
            if call.done.done():  # its caller gave up (cancelled)
                continue
            if isinstance(result, Exception):
                call.done.set_exception(result)
            else:
                call.done.set_result(result)

    async def _pipeline(self, calls: list[_Call]) -> list[Any]:
        """The calls' results, in one deadline: the scripts' pool has no per-read timeout
        (cluster.py: redis-py would set up a timer for every reply), so a hung Redis is
        given up on here, once for the whole batch."""
        try:
            async with asyncio.timeout(DEADLINE):
                results = await self._execute(calls)
                missed = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
                if missed:  # loaded, then run again, in one more round trip
                    lost = {id(s): s for i in missed if (s := calls[i].script) is not None}
                    loop = asyncio.get_running_loop()
                    loads = [
                        _Call(None, ("SCRIPT", "LOAD", _source(s)), loop.create_future())
                        for s in lost.values()
                    ]
                    again = await self._execute([*loads, *(calls[i] for i in missed)])
                    for i, result in zip(missed, again[len(loads) :], strict=True):
                        results[i] = result
        except TimeoutError as e:
            raise RedisTimeoutError(f"no reply from Redis in {DEADLINE:g} s") from e
        return results

    async def _execute(self, calls: list[_Call]) -> list[Any]:
        """One round trip: every call written at once, then each reply read; retried where
        the pool's ``retry`` says (a connection Redis closed), as redis-py retries its own
        commands. Cut short (the deadline), redis-py has closed the connection: it is not
        reused mid-reply."""
        pool = self.client.connection_pool
        connection: Connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            results: list[Any] = await connection.retry.call_with_retry(
                lambda: _round_trip(connection, calls), lambda _: connection.disconnect()
            )
        finally:
            await pool.release(connection)
        return results


async def _round_trip(connection: Connection, calls: list[_Call]) -> list[Any]:
    # no PING first (redis-py does one after 10 s idle): a connection Redis closed fails
    # its read at once and the batch is retried on a fresh one, unrun (see _execute)
    await connection.send_packed_command(_packed(calls), check_health=False)
    results: list[Any] = []
    for _ in calls:
        try:
            results.append(await connection.read_response())
        except ResponseError as e:  # this script's own error: the next replies still follow
            results.append(e)
    return results


def _packed(calls: list[_Call]) -> bytes:
    """The calls as Redis's protocol: ``EVALSHA sha 0 args...`` for a script."""
    out: list[bytes] = []
    for call in calls:
        if call.script is None:
            out.append(b"*%d\r\n" % len(call.args))
        else:
            out.append(
                b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n0\r\n"
                % (len(call.args) + 3, call.script.sha.encode())
            )
        for arg in call.args:
            data = arg if isinstance(arg, bytes) else _text(arg)
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _source(script: AsyncScript) -> bytes | str:
    source = script.script
    return bytes(source) if isinstance(source, memoryview) else source


def _text(arg: str | int | float) -> bytes:
    # as redis-py encodes them: UTF-8, and numbers by repr
    return arg.encode() if isinstance(arg, str) else repr(arg).encode()


def _fail(calls: list[_Call], error: BaseException) -> None:
    for call in calls:
        if call.done.done():
            continue
        if isinstance(error, asyncio.CancelledError):
            call.done.cancel()
        else:
            call.done.set_exception(error)
