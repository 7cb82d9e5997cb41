"""Nodes on one Redis: heartbeats, the death of a node, and the loss of Redis's data.

- Every node writes its heartbeat (``<prefix>nodes``, a sorted set of node -> last beat) every
  ``HEARTBEAT`` seconds, by Redis's clock, in one round trip (the ``beat`` script). A node
  whose last beat is older than ``DEAD_AFTER`` is dead: the beat that finds it removes it
  from the set, atomically, and its node takes over the dead one's sessions (one node only):
  a session that can resume is held for the grace period (its client will reconnect to a
  live node), the others end at once (their peers get ``callEnded``, their waiting offers
  leave every room). Dead within ``DEAD_AFTER`` + ``HEARTBEAT`` = 12 s.
- A node that finds it was declared dead (it stalled longer than ``DEAD_AFTER``) closes its
  sockets: their sessions were handed over, its clients reconnect and resume.
- ``<prefix>epoch`` is a random value set once; a node that finds it gone or changed knows
  Redis lost its data (restarted empty): every local session in a call is told its call
  ended (``server-shutdown``) and every socket is closed, so clients start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callbox.server.lifecycle import Hub
from callbox.signaling import SignalingError, StoreUnavailable
from callbox.signaling.redis.scripts import Scripts

log = logging.getLogger(__name__)

HEARTBEAT = 2.0
DEAD_AFTER = 10.0


class Nodes:
    def __init__(
        self,
        client: Redis,
        scripts: Scripts,
        prefix: str,
        hub: Hub,
        end_session: Callable[[str], Awaitable[None]],
        *,
        heartbeat: float = HEARTBEAT,
        dead_after: float = DEAD_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.scripts = scripts
        self.prefix = prefix
        self.hub = hub
        self._end_session = end_session
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self._clock = clock
        self._epoch: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_beat: float | None = None
        #: dead nodes this node claimed and has not yet taken over
        self._claimed: list[str] = []
        #: Redis answered the last heartbeat (for /healthz)
        self.reachable = True

    @property
    def _nodes(self) -> str:
        return f"{self.prefix}nodes"

    async def start(self) -> None:
        await self._beat()
        await self.start_loop()

    async def start_loop(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="callbox-nodes")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        # a beat from long ago: the next live node takes over whatever is still ours now
        # (sessions the drain did not hand over), instead of waiting to find us dead
        with contextlib.suppress(RedisError):
            await self.client.zadd(self._nodes, {self.hub.node: 0})

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            try:
                await self._beat()
            except (StoreUnavailable, RedisError, OSError) as e:
                if self.reachable:
                    log.warning("node=%s: Redis unreachable (%s)", self.hub.node, e)
                self.reachable = False
                self._last_beat = None  # the next beat is late for this reason, not a busy loop
            except Exception:
                log.exception("node=%s: heartbeat failed", self.hub.node)

    async def _beat(self) -> None:
        """One round trip (the ``beat`` script): our beat, the epoch, whether another node
        declared us dead, and the dead nodes this beat claimed; then what follows from it."""
        node = self.hub.node
        started = self._clock()
        result = await self.scripts.run("beat", node, repr(self.dead_after), secrets.token_hex(8))
        self._late(started)
        epoch, known, *dead = (x.decode() if isinstance(x, bytes) else x for x in result)
        lost = self._epoch is not None and epoch != self._epoch
        self._epoch = str(epoch)
        declared_dead = not known and self.reachable
        self.reachable = True
        if lost:
            log.warning("node=%s: Redis lost its data: every call here ends", node)
            await self._start_over()
        elif declared_dead and self._task is not None:
            log.warning("node=%s: declared dead by another node: reconnecting every client", node)
            await self.hub.sio.reconnect_everyone(grace=1.0)
        # claimed (out of the set) by this beat: ours to take over, until that is done
        self._claimed.extend(str(other) for other in dead if other != node)
        while self._claimed:
            await self.take_over(self._claimed[0])  # a failure: again after the next beat
            del self._claimed[0]

    def _late(self, started: float) -> None:
        """A warning when this node's beats come so far apart that others may take it for
        dead: its event loop (or Redis) is too busy."""
        now = self._clock()
        if self._last_beat is not None and now - self._last_beat > self.dead_after / 2:
            log.warning(
                "node=%s: heartbeat %.1f s after the last one (its round trip %.1f s): the "
                "event loop or Redis is overloaded; after %.0f s other nodes take this node "
                "for dead",
                self.hub.node, now - self._last_beat, now - started, self.dead_after,
            )  # fmt: skip
        self._last_beat = now

    async def _start_over(self) -> None:
        hub = self.hub
        for local in list(hub.sessions.by_session.values()):
            if local.offer_id is not None:
                payload = {"offerId": local.offer_id, "reason": "server-shutdown", "by": ""}
                await hub.sio.emit("callEnded", payload, to=local.at.sid)
        await hub.sio.reconnect_everyone(grace=1.0)

    async def take_over(self, dead: str) -> None:
        """The sessions of a dead node: held for a resume, or ended."""
        hub = self.hub
        sessions = await hub.mailbox.sessions_on(dead)
        log.warning(
            "node=%s: node %s is dead: taking over %d sessions", hub.node, dead, len(sessions)
        )
        until = time.time() + hub.settings.resume_grace
        for session_id in sessions:
            try:
                outcome = await hub.mailbox.release(session_id, dead, hold_until=until)
                if outcome == "ended":
                    await self._end_session(session_id)
            except SignalingError as e:
                log.warning("session=%s: take-over failed: %s", session_id, e.message)
