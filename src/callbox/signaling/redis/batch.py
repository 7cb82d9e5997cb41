"""Script calls made in one turn of the event loop go to Redis together, in one round trip.

Every protocol step is one Lua script (see scripts.py), and most of what a node spends on
Redis is the client's own work per command (taking a connection, timers, packing, one round
trip): measured here, ~75 us of CPU for one ``EVALSHA`` through redis-py, ~30 us each in a
pipeline of four. Under load many sockets' handlers call scripts in the same turn of the
loop, so the calls are gathered and, in the next turn, written at once on one connection of
the pool and their replies read in order: a non-transactional pipeline, packed here rather
than by redis-py's ``Pipeline`` (whose per-command bookkeeping, per-reply timers and health
checks were ~0.8 ms of a handshake's 5.2 ms in bench/). Each script stays atomic by itself
(Redis runs a script whole), and the scripts of one batch run in the order they were
called; one socket's events are handled one after the other (``async_handlers=False``), so
a socket never has two calls in flight.

A script Redis does not have (it restarted, or its script cache was flushed) is loaded and
the calls that missed it are run again, in order. redis-py's public ``Connection`` does the
I/O and the parsing (hiredis): its ``send_packed_command`` and ``read_response``.
"""

from __future__ import annotations

import asyncio
import functools
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
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, script: AsyncScript, args: tuple[Arg, ...]) -> Any:
        """The script's result; a Redis failure is raised as redis-py raised it."""
        return await self._queue(script, args)

    async def command(self, *args: Arg) -> Any:
        """A plain command (``PUBLISH``, ...) in the same round trip as the scripts of its
        turn: its reply as hiredis parsed it."""
        return await self._queue(None, args)

    def _queue(self, script: AsyncScript | None, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        call = _Call(script, args, loop.create_future())
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.append(call)
        return call.done

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
