"""What a socket's waits cost, per packet: python-engineio's ``AsyncSocket`` against callbox's
``Socket`` (src/callbox/server/eiosocket.py), on uvloop and on asyncio's own loop.

- *send*: the writer's ``poll()`` for one packet at a time (the next is put once the last
  was taken: what a socket sees when its packets come apart; packets that come together are
  taken by one ``poll`` in both);
- *receive*: the websocket reader's wait for one message, as engine.io writes it (a task and
  a ``wait_for`` per message) and as ``Socket`` does (``_timed``: one timer per socket).

    .venv/bin/python bench/waits.py [--packets 200000]

CPU time (``time.process_time``) per packet; a table, then a JSON line. Alternated, 3 rounds,
medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import engineio
import uvloop
from engineio.async_socket import AsyncSocket

from callbox.server.eiosocket import Socket, adopt


def _socket(ours: bool) -> Any:
    server = engineio.AsyncServer(async_mode="aiohttp")  # deadline 25 + 20 s: never reached
    sock = AsyncSocket(server, "bench")
    server.sockets["bench"] = sock
    if ours:
        adopt(sock)
        assert isinstance(sock, Socket)
    return sock


async def _per_packet(consume: Callable[[Any, list[int]], Awaitable[None]], packets: int) -> float:
    """CPU us per packet: one packet at a time, the next put once ``consume(queue, done)``
    has taken the last (``done[0]`` counts them), as a socket sees packets that come apart."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    done = [0]
    consumer = asyncio.ensure_future(consume(queue, done))
    await asyncio.sleep(0)
    began = time.process_time()
    for n in range(packets):
        queue.put_nowait(n)
        while done[0] <= n:  # noqa: ASYNC110 (an Event would add its own cost to each packet)
            await asyncio.sleep(0)
    await consumer
    return (time.process_time() - began) / packets * 1e6


def _sender(ours: bool, packets: int) -> Callable[[Any, list[int]], Awaitable[None]]:
    sock = _socket(ours)

    async def consume(queue: asyncio.Queue[Any], done: list[int]) -> None:
        sock.queue = queue  # the writer's queue: what the benchmark puts packets in
        while done[0] < packets:
            done[0] += len(await sock.poll())

    return consume


def _receiver(ours: bool, packets: int) -> Callable[[Any, list[int]], Awaitable[None]]:
    sock = _socket(ours)
    deadline = 45.0

    async def consume(queue: asyncio.Queue[Any], done: list[int]) -> None:
        async def wait() -> Any:  # engine.io's websocket_wait(): the next message
            return await queue.get()

        task = asyncio.current_task()
        assert task is not None
        for _ in range(packets):
            if ours:
                await sock._timed(wait(), task)
            else:  # python-engineio 4's reader loop, per message
                await asyncio.wait_for(asyncio.ensure_future(wait()), deadline)
            done[0] += 1

    return consume


def _run(loop_name: str, coro: Awaitable[float]) -> float:
    if loop_name == "uvloop":
        return uvloop.run(coro)  # type: ignore[arg-type]
    return asyncio.run(coro)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for loop_name in ("uvloop", "asyncio"):
            for what, make in (("send", _sender), ("receive", _receiver)):
                for ours in (False, True):
                    key = f"{what}, {loop_name}, {'callbox' if ours else 'engine.io'}"
                    cost = _run(loop_name, _per_packet(make(ours, args.packets), args.packets))
                    results.setdefault(key, []).append(cost)
    medians = {key: statistics.median(values) for key, values in results.items()}
    print(f"{'wait':<32} {'us/packet':>10} {'callbox / engine.io':>20}")
    for key, value in medians.items():
        ratio = ""
        if key.endswith("callbox"):
            ratio = f"{value / medians[key.replace('callbox', 'engine.io')]:.2f}x"
        print(f"{key:<32} {value:>10.2f} {ratio:>20}")
    print(json.dumps({"packets": args.packets, "rounds": args.rounds, "us_per_packet": medians}))


if __name__ == "__main__":
    main()
