"""RedisStore: the :class:`~callbox.signaling.store.Store` protocol on one Redis shared by
every node. Each method is one Lua script (``lua/``), so the rules hold across nodes: one
answerer, one offer per session, a caller candidate buffered or relayed never both, room
limits. Every key expires (``ttl``, refreshed on write), so what a crash leaves behind goes
by itself.

Key layout (``<prefix>`` defaults to ``callbox:``): ``s:<sid>`` session hash, ``n:<room>``
name keys, ``o:<id>`` offer hash and ``oc:<id>`` its buffered candidates, ``w:<room>`` and
``wall`` waiting offers by creation time, ``wb:<room>`` the room's weight, ``byname:<room>``,
``b:<sid>`` the session's offer or call, ``p:<sid>`` / ``pb:<sid>`` candidates held before an
answer, ``r:<id>`` unanswered renegotiation offers, ``count:*``.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from callbox.jsontext import dumps, loads
from callbox.signaling import names
from callbox.signaling.mailbox import Posted
from callbox.signaling.model import (
    Candidate,
    Description,
    ErrorCode,
    Limits,
    Offer,
    Session,
    SignalingError,
    StoreUnavailable,
)
from callbox.signaling.redis.mailbox import BOX_TTL, RedisMailbox, body_of, posted_from
from callbox.signaling.redis.scripts import Scripts, unavailable
from callbox.signaling.store import Claimed, Left, StoreStats

#: seconds a record lives without being written (a call idle longer than this is forgotten)
RECORD_TTL = 24 * 3600


def _candidate(text: str) -> Candidate:
    raw = loads(text)
    return Candidate(
        raw.get("candidate", ""), raw.get("sdpMid"), raw.get("sdpMLineIndex"),
        raw.get("usernameFragment"),
    )  # fmt: skip


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []  # Lua's cjson writes {} for []


def offer_from(raw: dict[str, Any]) -> Offer:
    answerer = raw.get("answerer") or None
    return Offer(
        offer_id=raw["id"],
        room=raw["room"],
        offerer_sid=raw["offerer"],
        offerer_user_name=raw["oname"],
        offer=Description(raw["otype"], raw["osdp"]),
        created_at=float(raw["created"]),
        offer_ice_candidates=tuple(_candidate(c) for c in _list(raw.get("candidates"))),
        answerer_sid=answerer,
        answerer_user_name=raw.get("aname") or None,
        answer=Description(raw["atype"], raw["asdp"]) if answerer else None,
    )


def _offer(text: str) -> Offer | None:
    return offer_from(loads(text)) if text else None


class RedisStore:
    """``mailbox``: the :class:`RedisMailbox` on the same Redis, if any; with it a relayed
    candidate is posted in the script that routes it (one round trip, not two)."""

    def __init__(
        self,
        client: Redis,
        prefix: str = "callbox:",
        *,
        ttl: int = RECORD_TTL,
        mailbox: RedisMailbox | None = None,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        # one set of scripts (and one batch per turn of the loop) with the mailbox
        shared = mailbox is not None and mailbox.prefix == prefix and mailbox.client is client
        self.scripts = (
            mailbox.scripts if mailbox is not None and shared else Scripts(client, prefix)
        )
        self.mailbox = mailbox

    async def add_session(self, session: Session) -> bool:
        first, second = names.keys(session.user_name)
        added = await self.scripts.run(
            "add_session",
            session.sid,
            session.user_name,
            session.room,
            session.identity or "",
            first,
            second,
            self.ttl,
        )
        return int(added) == 1

    async def get_session(self, sid: str) -> Session | None:
        try:
            raw = await self.client.hmget(f"{self.prefix}s:{sid}", "name", "room", "identity")
        except RedisError as e:
            raise unavailable(e) from e
        if raw[0] is None:
            return None
        name, room, identity = (v.decode() if isinstance(v, bytes) else str(v or "") for v in raw)
        return Session(sid, name, room, identity or None)

    async def leave(self, sid: str) -> Left:
        raw = loads(await self.scripts.run("leave", sid))
        s = raw.get("session")
        session = Session(sid, s["name"], s["room"], s.get("identity") or None) if s else None
        offer = raw.get("offer")
        return Left(session, offer_from(offer) if offer else None)

    async def current_offer_id(self, sid: str) -> str | None:
        try:
            value = await self.client.get(f"{self.prefix}b:{sid}")
        except RedisError as e:
            raise unavailable(e) from e
        return value.decode() if isinstance(value, bytes) else value

    async def add_offer(self, offer: Offer, limits: Limits) -> None:
        await self.scripts.run(
            "add_offer",
            offer.offer_id,
            offer.room,
            offer.offerer_sid,
            offer.offerer_user_name,
            offer.offer.type,
            offer.offer.sdp,
            repr(offer.created_at),
            len(offer.offer.sdp),
            limits.max_waiting_offers,
            limits.max_room_offer_bytes,
            self.ttl,
        )

    async def get_offer(self, offer_id: str) -> Offer | None:
        return _offer(await self.scripts.run("get_offer", offer_id))

    async def waiting_offers(self, room: str) -> list[Offer]:
        return [offer_from(o) for o in _list(loads(await self.scripts.run("waiting", room)))]

    async def route_candidate(
        self,
        sid: str,
        candidate: Candidate,
        *,
        caller: bool | None,
        offer_id: str | None,
        limits: Limits,
    ) -> str | None:
        result = await self._route(sid, candidate, caller, offer_id, limits, ())
        return result[3:] if result.startswith("to:") else None

    async def relay_candidate(
        self,
        sid: str,
        candidate: Candidate,
        *,
        caller: bool | None,
        offer_id: str | None,
        limits: Limits,
        letter: tuple[str, object],
    ) -> tuple[str | None, Posted | None]:
        box = self.mailbox
        if box is None:
            target = await self.route_candidate(
                sid, candidate, caller=caller, offer_id=offer_id, limits=limits
            )
            return target, None
        body = body_of(*letter)
        post = (body, len(body), box.node, box.limits.log_entries, box.limits.log_bytes, BOX_TTL)
        result = await self._route(sid, candidate, caller, offer_id, limits, post)
        if not result.startswith("to:"):
            return None, None
        target, _, where = result[3:].partition(" ")
        # an empty 'where': the target's mailbox is gone; nothing waits for the letter
        return target, posted_from(where) or Posted(0, None, False)

    async def _route(
        self,
        sid: str,
        candidate: Candidate,
        caller: bool | None,
        offer_id: str | None,
        limits: Limits,
        post: tuple[str | int, ...],
    ) -> str:
        result: str = await self.scripts.run(
            "route",
            sid,
            dumps(candidate.to_wire()),
            candidate.size,
            "" if caller is None else ("1" if caller else "0"),
            offer_id or "",
            limits.max_pending_candidates,
            limits.max_pending_candidate_bytes,
            limits.max_buffered_candidates,
            limits.max_buffered_candidate_bytes,
            limits.max_room_offer_bytes,
            self.ttl,
            *(post or ("",)),
        )
        return result

    async def claim_offer(
        self,
        answerer: Session,
        answer: Description,
        *,
        offer_id: str | None,
        offerer_user_name: str | None,
    ) -> Claimed:
        raw = loads(
            await self.scripts.run(
                "claim",
                answerer.sid,
                answerer.user_name,
                answerer.room,
                answer.type,
                answer.sdp,
                offer_id or "",
                offerer_user_name or "",
                self.ttl,
            )
        )
        held = tuple(_candidate(c) for c in _list(raw.get("held")))
        return Claimed(offer_from(raw["offer"]), held)

    async def renegotiation(self, sid: str, kind: str, *, offer_id: str | None) -> tuple[str, str]:
        result = await self.scripts.run("renegotiate", sid, kind, offer_id or "")
        call, other = str(result).split(" ", 1)
        return call, other

    async def remove_offer(self, offer_id: str) -> Offer | None:
        return _offer(await self.scripts.run("remove_offer", offer_id))

    async def end(self, sid: str, *, offer_id: str | None) -> Offer:
        removed = _offer(await self.scripts.run("end", sid, offer_id or ""))
        if removed is None:  # pragma: no cover - the script refuses rather than return none
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot hang up: no offer or call")
        return removed

    async def expire_offers(self, created_before: float) -> list[Offer]:
        raw = loads(await self.scripts.run("expire", repr(created_before)))
        return [offer_from(o) for o in _list(raw)]

    async def stats(self) -> StoreStats:
        p = self.prefix
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(f"{p}count:sessions")
                pipe.zcard(f"{p}wall")
                pipe.get(f"{p}count:calls")
                sessions, waiting, calls = await pipe.execute()
        except RedisError as e:
            raise unavailable(e) from e
        return StoreStats(int(sessions or 0), int(waiting or 0), int(calls or 0))

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except RedisError as e:
            raise StoreUnavailable(f"signaling store unreachable ({type(e).__name__})") from e

    async def close(self) -> None:
        """The client is shared with the mailbox and the bus: the app closes it."""
