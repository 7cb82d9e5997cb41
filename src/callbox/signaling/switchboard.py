"""The call state machine: offer, candidates, answer, hang-up, leave.

Pure async methods over a :class:`~callbox.signaling.store.Store`. Each takes the sender's
session id and the untrusted payload, and returns an :class:`Outcome`: the ack for the sender
and the deliveries (who gets which event) for the transport to emit, in order. It knows nothing
about sockets: the transport maps ``Delivery.to_room`` to its own notion of a room.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from callbox.signaling.model import (
    DEFAULT_LIMITS,
    JSON,
    Auth,
    Candidate,
    ErrorCode,
    Limits,
    Offer,
    Session,
    SignalingError,
    parse_answer_message,
    parse_candidate_message,
    parse_description,
    parse_hangup,
    parse_offer_id,
    parse_renegotiate,
)
from callbox.signaling.store import Store

log = logging.getLogger(__name__)

_MAX_NAME_SUFFIX = 1000


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to emit: to a session (``to_sid``) or to everyone in a room (``to_room``),
    optionally skipping one session."""

    event: str
    payload: object
    to_sid: str | None = None
    to_room: str | None = None
    skip_sid: str | None = None


@dataclass(slots=True)
class Outcome:
    ack: object
    deliveries: list[Delivery] = field(default_factory=list)


OK: JSON = {"ok": True}


def _new_id() -> str:
    return secrets.token_urlsafe(12)


class Switchboard:
    def __init__(
        self,
        store: Store,
        *,
        limits: Limits = DEFAULT_LIMITS,
        clock: Callable[[], float] = time.time,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self.store = store
        self.limits = limits
        self._clock = clock
        self._new_id = new_id

    async def join(self, sid: str, auth: Auth) -> tuple[Session, list[JSON]]:
        """Register a connected client; returns its session (name made unique in the room)
        and the room's waiting offers as OfferViews."""
        base = auth.user_name or f"guest-{secrets.token_hex(2)}"
        for n in range(1, _MAX_NAME_SUFFIX + 1):
            name = base if n == 1 else f"{base}-{n}"
            session = Session(sid=sid, user_name=name, room=auth.room)
            if await self.store.reserve_name(session):
                break
        else:
            raise SignalingError(ErrorCode.BUSY, f"too many users named {base!r} in this room")
        log.info("sid=%s joined room=%s as %r", sid, session.room, session.user_name)
        return session, await self.waiting_views(session)

    async def waiting_views(self, session: Session) -> list[JSON]:
        """The OfferViews of the session's room that others made and nobody answered."""
        offers = await self.store.waiting_offers(session.room)
        return [o.view() for o in offers if o.offerer_sid != session.sid]

    async def leave(self, sid: str) -> list[Delivery]:
        """The client is gone: withdraw its waiting offer or end its call, forget it."""
        session = await self.store.remove_session(sid)
        offer_id = await self.store.current_offer_id(sid)
        deliveries: list[Delivery] = []
        if offer_id is not None:
            deliveries = await self._end(sid, offer_id, "peer-disconnected", "disconnected")
        if session is not None:
            log.info("sid=%s left room=%s", sid, session.room)
        return deliveries

    async def new_offer(self, sid: str, data: object) -> Outcome:
        description = parse_description(data, "offer", self.limits)
        session = await self._session(sid)
        offer = Offer(
            offer_id=self._new_id(),
            room=session.room,
            offerer_sid=sid,
            offerer_user_name=session.user_name,
            offer=description,
            created_at=self._clock(),
        )
        await self.store.add_offer(offer, self.limits.max_waiting_offers)
        log.info("sid=%s offer=%s waiting in room=%s", sid, offer.offer_id, session.room)
        return Outcome(
            {"offerId": offer.offer_id},
            [Delivery("newOfferAwaiting", [offer.view()], to_room=session.room, skip_sid=sid)],
        )

    async def ice_candidate(self, sid: str, data: object) -> Outcome:
        msg = parse_candidate_message(data, self.limits)
        session = await self._session(sid)
        if msg.ice_user_name is not None and msg.ice_user_name != session.user_name:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "iceUserName does not match this session's user name"
            )
        offer_id = await self.store.current_offer_id(sid)
        if offer_id is None:
            if msg.did_i_offer:
                raise SignalingError(ErrorCode.FORBIDDEN, "didIOffer is true but there is no offer")
            # An answerer trickles as soon as its local description is set, which can be before
            # its answer reached us (the seed's client does): hold these until the answer.
            await self.store.add_pending_candidate(
                sid, msg.candidate, self.limits.max_pending_candidates
            )
            return Outcome(OK)
        offer = await self.store.get_offer(offer_id)
        if offer is None:  # ended between the two reads
            raise SignalingError(ErrorCode.NOT_IN_CALL, "the call has ended")
        is_offerer = offer.offerer_sid == sid
        if msg.did_i_offer is not None and msg.did_i_offer != is_offerer:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "didIOffer does not match this session's role"
            )
        if msg.offer_id is not None and msg.offer_id != offer_id:
            raise SignalingError(
                ErrorCode.FORBIDDEN, f"offer {msg.offer_id} is not this session's call"
            )
        if is_offerer:
            target = await self.store.add_caller_candidate(
                offer_id, msg.candidate, self.limits.max_buffered_candidates
            )
        else:
            target = offer.offerer_sid
        if target is None:
            return Outcome(OK)
        return Outcome(OK, [self._relay(target, msg.candidate)])

    async def answer(self, sid: str, data: object) -> Outcome:
        msg = parse_answer_message(data, self.limits)
        session = await self._session(sid)
        offer: Offer | None
        if msg.offer_id is not None:
            offer = await self.store.get_offer(msg.offer_id)
        else:  # the parser guarantees one of the two
            offer = await self.store.find_offer(session.room, msg.offerer_user_name or "")
        if offer is None or offer.room != session.room:
            raise SignalingError(ErrorCode.NOT_FOUND, "cannot answer: no such offer in this room")
        if msg.offerer_user_name is not None and msg.offerer_user_name != offer.offerer_user_name:
            raise SignalingError(
                ErrorCode.INVALID_PAYLOAD, "offererUserName does not match the offer's owner"
            )
        if offer.offerer_sid == sid:
            raise SignalingError(ErrorCode.FORBIDDEN, "cannot answer your own offer")
        try:
            claimed = await self.store.claim_offer(offer.offer_id, session, msg.answer)
        except SignalingError:
            # the candidates held for this answer belong to a peer connection that lost:
            # they must never reach the caller of a later call
            await self.store.take_pending_candidates(sid)
            raise
        held = await self.store.take_pending_candidates(sid)
        log.info("sid=%s answered offer=%s", sid, claimed.offer_id)
        deliveries = [
            Delivery("answerResponse", claimed.view(), to_sid=claimed.offerer_sid),
            *(self._relay(claimed.offerer_sid, c) for c in held),
            Delivery(
                "offerRemoved",
                {"offerId": claimed.offer_id, "reason": "answered"},
                to_room=claimed.room,
            ),
        ]
        return Outcome([c.to_wire() for c in claimed.offer_ice_candidates], deliveries)

    async def renegotiate(self, sid: str, data: object) -> Outcome:
        """Relay a new offer or its answer inside a call, from either party (screen share, a
        new track, an ICE restart). An answer goes through only to a party whose offer is
        unanswered; glare (both offer at once) is settled by the clients (docs/protocol.md:
        the answerer of the call is the polite side)."""
        msg = parse_renegotiate(data, self.limits)
        session = await self._session(sid)
        offer_id = await self.store.current_offer_id(sid)
        if offer_id is None:
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot renegotiate: not in a call")
        if msg.offer_id is not None and msg.offer_id != offer_id:
            raise SignalingError(ErrorCode.FORBIDDEN, f"offer {msg.offer_id} is not your call")
        other = await self.store.renegotiation(offer_id, sid, msg.description.type)
        log.info("sid=%s call=%s renegotiates (%s)", sid, offer_id, msg.description.type)
        payload = {
            "offerId": offer_id,
            "description": msg.description.to_wire(),
            "from": session.user_name,
        }
        return Outcome(OK, [Delivery("renegotiate", payload, to_sid=other)])

    async def decline(self, sid: str, data: object) -> Outcome:
        """Someone in the room will not answer a waiting offer: its offerer is told; the offer
        stays waiting for the others."""
        offer_id = parse_offer_id(data, self.limits)
        session = await self._session(sid)
        offer = await self.store.get_offer(offer_id)
        if offer is None or offer.room != session.room or offer.answered:
            raise SignalingError(ErrorCode.NOT_FOUND, "cannot decline: no such waiting offer")
        if offer.offerer_sid == sid:
            raise SignalingError(ErrorCode.FORBIDDEN, "cannot decline your own offer")
        log.info("sid=%s declined offer=%s", sid, offer_id)
        payload = {"offerId": offer_id, "by": session.user_name}
        return Outcome(OK, [Delivery("offerDeclined", payload, to_sid=offer.offerer_sid)])

    async def hangup(self, sid: str, data: object) -> Outcome:
        wanted = parse_hangup(data, self.limits)
        await self._session(sid)
        offer_id = await self.store.current_offer_id(sid)
        if offer_id is None:
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot hang up: no offer or call")
        if wanted is not None and wanted != offer_id:
            raise SignalingError(ErrorCode.NOT_FOUND, f"cannot hang up: {wanted} is not your call")
        return Outcome(OK, await self._end(sid, offer_id, "hangup", "cancelled"))

    async def expire_offers(self, ttl: float) -> list[Delivery]:
        """Withdraw every waiting offer older than ``ttl`` seconds (by the injected clock).

        The whole room, the offerer included, gets ``offerRemoved`` reason ``expired``; the
        offerer is then free to offer again."""
        expired = await self.store.expire_offers(self._clock() - ttl)
        for offer in expired:
            log.info("sid=%s offer=%s expired", offer.offerer_sid, offer.offer_id)
        return [
            Delivery("offerRemoved", {"offerId": o.offer_id, "reason": "expired"}, to_room=o.room)
            for o in expired
        ]

    async def _end(
        self, sid: str, offer_id: str, call_reason: str, wait_reason: str
    ) -> list[Delivery]:
        offer = await self.store.remove_offer(offer_id)
        if offer is None:
            return []
        if offer.answerer_sid is None:
            log.info("sid=%s offer=%s withdrawn (%s)", sid, offer_id, wait_reason)
            payload: JSON = {"offerId": offer_id, "reason": wait_reason}
            return [Delivery("offerRemoved", payload, to_room=offer.room, skip_sid=sid)]
        if sid == offer.offerer_sid:
            other, by = offer.answerer_sid, offer.offerer_user_name
        else:
            other, by = offer.offerer_sid, offer.answerer_user_name or ""
        log.info("sid=%s call=%s ended (%s)", sid, offer_id, call_reason)
        payload = {"offerId": offer_id, "reason": call_reason, "by": by}
        return [Delivery("callEnded", payload, to_sid=other)]

    async def _session(self, sid: str) -> Session:
        session = await self.store.get_session(sid)
        if session is None:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        return session

    @staticmethod
    def _relay(to_sid: str, candidate: Candidate) -> Delivery:
        return Delivery("receivedIceCandidateFromServer", candidate.to_wire(), to_sid=to_sid)
