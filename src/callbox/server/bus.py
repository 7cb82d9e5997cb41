"""How the nodes on one Redis reach each other: a channel per node and one per room.

- ``<prefix>to:<node>``: letters for the sessions whose socket is on that node. The mailbox's
  post script publishes them there itself; each node decodes only its own channel.
- ``<prefix>room:<room>``: room broadcasts (``newOfferAwaiting``, ``offerRemoved``); a node
  subscribes to the rooms it has sockets in, and skips what it published itself.

Pub/sub is at-most-once: what is published while a node's subscription is down is lost. So
letters are also in the sessions' logs, and when the subscription comes back the node catches
up every local session from its log and resynchronises the offer lists of its rooms with the
store (announcing what appeared, withdrawing what went, reason ``gone``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from callbox.jsontext import dumps, loads
from callbox.server.routing import LocalSessions, Router
from callbox.signaling import SignalingError, Switchboard
from callbox.signaling.redis.batch import Batcher
from callbox.signaling.redis.mailbox import letter_from

log = logging.getLogger(__name__)

_BACKOFF = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisBus:
    def __init__(
        self,
        client: Redis,
        prefix: str,
        node: str,
        router: Router,
        sessions: LocalSessions,
        switchboard: Switchboard,
        *,
        batcher: Batcher,
        subscriber: Redis | None = None,
    ) -> None:
        self.batcher = batcher
        #: the client the subscription runs on (default: ``client``)
        self.subscriber = subscriber or client
        self.prefix = prefix
        self.node = node
        self.router = router
        self.sessions = sessions
        self.switchboard = switchboard
        self.inbox = f"{prefix}to:{node}"
        #: how a room message this node published begins (it comes back: not decoded)
        self._own = dumps({"o": node})[:-1] + ","
        self._rooms: Counter[str] = Counter()
        #: per room, the waiting offers this node last told its sockets about
        self._announced: dict[str, dict[str, str | None]] = {}
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        #: set while subscribed (the health check and tests read it)
        self.listening = asyncio.Event()

    # --- what the router and the lifecycle call -----------------------------------------

    async def to_room(self, room: str, event: str, payload: object, skip: str | None) -> None:
        message = dumps({"o": self.node, "e": event, "p": payload, "s": skip})
        try:
            # in the round trip of this turn's scripts (a plain PUBLISH costs a pooled
            # connection, a timer and a task of its own)
            await self.batcher.command("PUBLISH", self._room_channel(room), message)
        except RedisError as e:
            log.warning("room=%s: %s not published (%s)", room, event, type(e).__name__)

    def noted(self, room: str, event: str, payload: object) -> None:
        """A room broadcast went out here: remember the room's offers as its sockets know
        them (to resynchronise after a lost subscription)."""
        known = self._announced.setdefault(room, {})
        if event == "newOfferAwaiting" and isinstance(payload, list):
            for view in payload:
                if isinstance(view, dict) and "offerId" in view:
                    known[str(view["offerId"])] = None
        elif event == "offerRemoved" and isinstance(payload, dict):
            known.pop(str(payload.get("offerId")), None)

    async def join(self, room: str) -> None:
        self._rooms[room] += 1
        if self._rooms[room] == 1 and self._pubsub is not None:
            with contextlib.suppress(RedisError):
                await self._pubsub.subscribe(self._room_channel(room))

    async def leave(self, room: str) -> None:
        self._rooms[room] -= 1
        if self._rooms[room] <= 0:
            del self._rooms[room]
            self._announced.pop(room, None)
            if self._pubsub is not None:
                with contextlib.suppress(RedisError):
                    await self._pubsub.unsubscribe(self._room_channel(room))

    # --- the subscription ---------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="callbox-bus")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        attempt = 0
        first = True
        while True:
            pubsub = self.subscriber.pubsub()
            try:
                await pubsub.subscribe(self.inbox, *(self._room_channel(r) for r in self._rooms))
                self._pubsub = pubsub
                self.listening.set()
                if not first:
                    log.info("node=%s: subscription back: catching up", self.node)
                    await self.catch_up()
                first, attempt = False, 0
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        await self._dispatch(_text(message["channel"]), _text(message["data"]))
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                log.warning("node=%s: subscription lost (%s): retrying", self.node, e)
            except Exception:
                log.exception("node=%s: bus failed: retrying", self.node)
            finally:
                self.listening.clear()
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]
            await asyncio.sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
            attempt += 1

    async def _dispatch(self, channel: str, data: str) -> None:
        if channel == self.inbox:
            session_id, _numbered, letter = data.split(" ", 2)
            await self.router.to_session(session_id, letter_from(letter))
            return
        if data.startswith(self._own):
            return  # emitted here already
        room = channel[len(self.prefix) + len("room:") :]
        message = loads(data)
        self.noted(room, message["e"], message["p"])
        await self.router.to_room(room, message["e"], message["p"], message.get("s"))

    async def catch_up(self) -> None:
        """After a gap in the subscription: every local session gets what its log holds past
        what it was sent, and every local room's offer list is brought in line."""
        for local in list(self.sessions.by_session.values()):
            try:
                await self.router.catch_up(local)
            except SignalingError as e:  # Redis gone again: the next reconnect catches up
                log.warning("session=%s: catch-up failed: %s", local.session_id, e.message)
                return
            except Exception:
                log.exception("session=%s: catch-up failed", local.session_id)
        for room in list(self._rooms):
            try:
                await self._resync(room)
            except SignalingError as e:
                log.warning("room=%s: resync failed: %s", room, e.message)
                return
            except Exception:
                log.exception("room=%s: resync failed", room)

    async def _resync(self, room: str) -> None:
        offers = {o.offer_id: o for o in await self.switchboard.store.waiting_offers(room)}
        known = self._announced.setdefault(room, {})
        for offer_id in [o for o in known if o not in offers]:
            payload = {"offerId": offer_id, "reason": "gone"}
            self.noted(room, "offerRemoved", payload)
            await self.router.to_room(room, "offerRemoved", payload, None)
        for offer_id, offer in offers.items():
            if offer_id not in known:
                views = [offer.view()]
                self.noted(room, "newOfferAwaiting", views)
                await self.router.to_room(room, "newOfferAwaiting", views, offer.offerer_sid)

    def _room_channel(self, room: str) -> str:
        return f"{self.prefix}room:{room}"
