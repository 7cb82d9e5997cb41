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

from callbox.signaling.mailbox import Posted
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


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event to emit: to a session (``to_sid``) or to everyone in a room (``to_room``),
    optionally skipping one session."""

    event: str
    payload: object
    to_sid: str | None = None
    to_room: str | None = None
    skip_sid: str | None = None
    #: posted to ``to_sid``'s mailbox already, by the store in the step that decided it
    posted: Posted | None = None


@dataclass(slots=True)
class Outcome:
    ack: object
    deliveries: list[Delivery] = field(default_factory=list)


OK: JSON = {"ok": True}
PEER_DISCONNECTED = "peer-disconnected"
#: the event a relayed candidate travels as (the seed's name)
RELAYED = "receivedIceCandidateFromServer"
SERVER_SHUTDOWN = "server-shutdown"


def _new_id() -> str:
    return secrets.token_urlsafe(12)


class Switchboard:
    """The protocol's decisions. Every method takes the sender's :class:`Session` (which the
    transport keeps from the connect: identity never comes from a payload) and the raw
    payload; the store applies each decision in one atomic step."""

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
        for n in range(1, self.limits.max_same_name + 1):
            name = base if n == 1 else f"{base}-{n}"
            session = Session(sid=sid, user_name=name, room=auth.room, identity=auth.identity)
            if await self.store.add_session(session):
                break
        else:
            raise SignalingError(ErrorCode.BUSY, f"too many users named {base!r} in this room")
        log.info("sid=%s joined room=%s as %r", sid, session.room, session.user_name)
        return session, await self.waiting_views(session)

    async def waiting_views(self, session: Session) -> list[JSON]:
        """The OfferViews of the session's room that others made and nobody answered."""
        offers = await self.store.waiting_offers(session.room)
        return [o.view() for o in offers if o.offerer_sid != session.sid]

    async def leave(self, sid: str, reason: str = PEER_DISCONNECTED) -> list[Delivery]:
        """The client is gone: withdraw its waiting offer or end its call, forget it.
        ``reason`` is the ``callEnded`` reason its peer gets. With ``server-shutdown`` (the
        node is stopping and nobody will carry the call on) both parties are told, the
        session itself too, and ``by`` is empty: the server ended it."""
        left = await self.store.leave(sid)
        deliveries = self._ended(sid, left.offer, reason, "disconnected")
        offer = left.offer
        if reason == SERVER_SHUTDOWN and offer is not None and offer.answerer_sid is not None:
            payload = {"offerId": offer.offer_id, "reason": reason, "by": ""}
            deliveries = [
                Delivery("callEnded", payload, to_sid=party)
                for party in (offer.offerer_sid, offer.answerer_sid)
            ]
        if left.session is not None:
            log.info("sid=%s left room=%s", sid, left.session.room)
        return deliveries

    async def new_offer(self, session: Session, data: object) -> Outcome:
        description = parse_description(data, "offer", self.limits)
        offer = Offer(
            offer_id=self._new_id(),
            room=session.room,
            offerer_sid=session.sid,
            offerer_user_name=session.user_name,
            offer=description,
            created_at=self._clock(),
        )
        await self.store.add_offer(offer, self.limits)
        log.info("sid=%s offer=%s waiting in room=%s", session.sid, offer.offer_id, session.room)
        return Outcome(
            {"offerId": offer.offer_id},
            [
                Delivery(
                    "newOfferAwaiting", [offer.view()], to_room=session.room, skip_sid=session.sid
                )
            ],
        )

    async def ice_candidate(self, session: Session, data: object) -> Outcome:
        msg = parse_candidate_message(data, self.limits)
        if msg.ice_user_name is not None and msg.ice_user_name != session.user_name:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "iceUserName does not match this session's user name"
            )
        wire = msg.candidate.to_wire()
        target, posted = await self.store.relay_candidate(
            session.sid,
            msg.candidate,
            caller=msg.did_i_offer,
            offer_id=msg.offer_id,
            limits=self.limits,
            letter=(RELAYED, wire),
        )
        if target is None:
            return Outcome(OK)
        return Outcome(OK, [Delivery(RELAYED, wire, to_sid=target, posted=posted)])

    async def answer(self, session: Session, data: object) -> Outcome:
        msg = parse_answer_message(data, self.limits)
        claimed = await self.store.claim_offer(
            session, msg.answer, offer_id=msg.offer_id, offerer_user_name=msg.offerer_user_name
        )
        answered = claimed.offer
        log.info("sid=%s answered offer=%s", session.sid, answered.offer_id)
        deliveries = [
            Delivery("answerResponse", answered.view(), to_sid=answered.offerer_sid),
            *(self._relay(answered.offerer_sid, c) for c in claimed.held),
            Delivery(
                "offerRemoved",
                {"offerId": answered.offer_id, "reason": "answered"},
                to_room=answered.room,
            ),
        ]
        return Outcome([c.to_wire() for c in answered.offer_ice_candidates], deliveries)

    async def renegotiate(self, session: Session, data: object) -> Outcome:
        """Relay a new offer or its answer inside a call, from either party (screen share, a
        new track, an ICE restart). An answer goes through only to a party whose offer is
        unanswered; glare (both offer at once) is settled by the clients (docs/protocol.md:
        the answerer of the call is the polite side)."""
        msg = parse_renegotiate(data, self.limits)
        offer_id, other = await self.store.renegotiation(
            session.sid, msg.description.type, offer_id=msg.offer_id
        )
        log.info("sid=%s call=%s renegotiates (%s)", session.sid, offer_id, msg.description.type)
        payload = {
            "offerId": offer_id,
            "description": msg.description.to_wire(),
            "from": session.user_name,
        }
        return Outcome(OK, [Delivery("renegotiate", payload, to_sid=other)])

    async def decline(self, session: Session, data: object) -> Outcome:
        """Someone in the room will not answer a waiting offer: its offerer is told; the offer
        stays waiting for the others."""
        offer_id = parse_offer_id(data, self.limits)
        offer = await self.store.get_offer(offer_id)
        if offer is None or offer.room != session.room or offer.answered:
            raise SignalingError(ErrorCode.NOT_FOUND, "cannot decline: no such waiting offer")
        if offer.offerer_sid == session.sid:
            raise SignalingError(ErrorCode.FORBIDDEN, "cannot decline your own offer")
        log.info("sid=%s declined offer=%s", session.sid, offer_id)
        payload = {"offerId": offer_id, "by": session.user_name}
        return Outcome(OK, [Delivery("offerDeclined", payload, to_sid=offer.offerer_sid)])

    async def hangup(self, session: Session, data: object) -> Outcome:
        wanted = parse_hangup(data, self.limits)
        offer = await self.store.end(session.sid, offer_id=wanted)
        return Outcome(OK, self._ended(session.sid, offer, "hangup", "cancelled"))

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

    @staticmethod
    def _ended(sid: str, offer: Offer | None, call_reason: str, wait_reason: str) -> list[Delivery]:
        """What the others are told when ``sid`` ends ``offer`` (None: nothing to end)."""
        if offer is None:
            return []
        if offer.answerer_sid is None:
            log.info("sid=%s offer=%s withdrawn (%s)", sid, offer.offer_id, wait_reason)
            payload: JSON = {"offerId": offer.offer_id, "reason": wait_reason}
            return [Delivery("offerRemoved", payload, to_room=offer.room, skip_sid=sid)]
        if sid == offer.offerer_sid:
            other, by = offer.answerer_sid, offer.offerer_user_name
        else:
            other, by = offer.offerer_sid, offer.answerer_user_name or ""
        log.info("sid=%s call=%s ended (%s)", sid, offer.offer_id, call_reason)
        payload = {"offerId": offer.offer_id, "reason": call_reason, "by": by}
        return [Delivery("callEnded", payload, to_sid=other)]

    @staticmethod
    def _relay(to_sid: str, candidate: Candidate) -> Delivery:
        return Delivery(RELAYED, candidate.to_wire(), to_sid=to_sid)
