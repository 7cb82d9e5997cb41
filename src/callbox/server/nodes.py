"""Nodes on one Redis: heartbeats, the death of a node, and the loss of Redis's data.

- Every node writes its heartbeat (``<prefix>nodes``, a sorted set of node -> last beat) every
  ``HEARTBEAT`` seconds. A node whose last beat is older than ``DEAD_AFTER`` is dead: the
  first live node to remove it from the set takes over its sessions (one node only, by the
  atomic ZREM): a session that can resume is held for the grace period (its client will
  reconnect to a live node), the others end at once (their peers get ``callEnded``, their
  waiting offers leave every room). Dead within ``DEAD_AFTER`` + ``HEARTBEAT`` = 12 s.
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
from callbox.signaling import SignalingError

log = logging.getLogger(__name__)

HEARTBEAT = 2.0
DEAD_AFTER = 10.0


class Nodes:
    def __init__(
        self,
        client: Redis,
        prefix: str,
        hub: Hub,
        end_session: Callable[[str], Awaitable[None]],
        *,
        heartbeat: float = HEARTBEAT,
        dead_after: float = DEAD_AFTER,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.hub = hub
        self._end_session = end_session
        self.heartbeat = heartbeat
        self.dead_after = dead_after
        self._epoch: str | None = None
        self._task: asyncio.Task[None] | None = None
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
                await self._bury_the_dead()
            except (RedisError, OSError) as e:
                if self.reachable:
                    log.warning("node=%s: Redis unreachable (%s)", self.hub.node, e)
                self.reachable = False
            except Exception:
                log.exception("node=%s: heartbeat failed", self.hub.node)

    async def _beat(self) -> None:
        node = self.hub.node
        epoch = await self.client.get(f"{self.prefix}epoch")
        if epoch is None:
            await self.client.set(f"{self.prefix}epoch", secrets.token_hex(8), nx=True)
            epoch = await self.client.get(f"{self.prefix}epoch")
        text = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        lost = self._epoch is not None and text != self._epoch
        self._epoch = text
        declared_dead = await self.client.zscore(self._nodes, node) is None and self.reachable
        await self.client.zadd(self._nodes, {node: time.time()})
        self.reachable = True
        if lost:
            log.warning("node=%s: Redis lost its data: every call here ends", node)
            await self._start_over()
        elif declared_dead and self._task is not None:
            log.warning("node=%s: declared dead by another node: reconnecting every client", node)
            await self.hub.sio.reconnect_everyone(grace=1.0)

    async def _start_over(self) -> None:
        hub = self.hub
        for local in list(hub.sessions.by_session.values()):
            if local.offer_id is not None:
                payload = {"offerId": local.offer_id, "reason": "server-shutdown", "by": ""}
                await hub.sio.emit("callEnded", payload, to=local.at.sid)
        await hub.sio.reconnect_everyone(grace=1.0)

    async def _bury_the_dead(self) -> None:
        cutoff = time.time() - self.dead_after
        for raw in await self.client.zrangebyscore(self._nodes, "-inf", cutoff):
            dead = raw.decode() if isinstance(raw, bytes) else str(raw)
            if dead == self.hub.node or not await self.client.zrem(self._nodes, dead):
                continue  # ourselves (stalled), or another node took it first
            await self.take_over(dead)

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
