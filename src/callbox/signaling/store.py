"""Where the switchboard keeps sessions and offers.

Each :class:`Store` method is one atomic step of the protocol: the rules that must hold under
concurrency (one offer per session, exactly one answerer, a caller candidate either buffered on
the offer or relayed, never both) are checked and applied inside a single call, so a store
backed by a shared database can give the same guarantees with one transaction or script per
method. Values returned are snapshots: mutating them never changes the store.
"""

from __future__ import annotations

import copy
from typing import Protocol

from callbox.signaling.model import (
    Candidate,
    Description,
    ErrorCode,
    Offer,
    Session,
    SignalingError,
)


class Store(Protocol):
    async def reserve_name(self, session: Session) -> bool:
        """Add ``session`` if its name is free in its room; False if taken."""
        ...

    async def get_session(self, sid: str) -> Session | None: ...

    async def remove_session(self, sid: str) -> Session | None:
        """Forget the session, its name and its pending candidates; returns what was removed."""
        ...

    async def current_offer_id(self, sid: str) -> str | None:
        """The offer this session made or answered, if any."""
        ...

    async def add_offer(self, offer: Offer, max_waiting: int | None = None) -> None:
        """Store a new waiting offer and bind it to its offerer; ``busy`` if already bound, or
        if its room already holds ``max_waiting`` waiting offers."""
        ...

    async def get_offer(self, offer_id: str) -> Offer | None: ...

    async def find_offer(self, room: str, offerer_user_name: str) -> Offer | None:
        """The offer (waiting or answered) of the named user in ``room``."""
        ...

    async def waiting_offers(self, room: str) -> list[Offer]:
        """Offers of ``room`` nobody has answered yet, oldest first."""
        ...

    async def claim_offer(self, offer_id: str, answerer: Session, answer: Description) -> Offer:
        """Make ``answerer`` the one answerer of the offer, atomically.

        Raises ``not_found``, ``offer_taken`` or ``busy``; returns the answered offer with the
        candidates buffered so far (they are handed to the answerer, never relayed again).
        """
        ...

    async def add_caller_candidate(
        self, offer_id: str, candidate: Candidate, limit: int
    ) -> str | None:
        """Buffer a caller's candidate on a waiting offer (returns None), or, once the offer is
        answered, return the answerer's sid so the candidate is relayed instead.
        ``too_large`` when the buffer holds ``limit`` candidates already."""
        ...

    async def renegotiation(self, offer_id: str, sid: str, kind: str) -> str:
        """A ``renegotiate`` description of type ``kind`` from party ``sid`` of the call:
        returns the other party's sid to relay it to. An offer is always relayed and
        recorded as unanswered; an answer only when the other party has an unanswered offer
        out (which it then clears), else ``forbidden``. ``not_in_call`` when the call is
        gone or not answered yet, or ``sid`` is not one of its parties."""
        ...

    async def remove_offer(self, offer_id: str) -> Offer | None:
        """Remove the offer and unbind both parties; only one concurrent caller gets it."""
        ...

    async def expire_offers(self, created_before: float) -> list[Offer]:
        """Remove and return every *waiting* offer created before ``created_before``, in any
        room, unbinding their offerers. An offer answered meanwhile is never removed."""
        ...

    async def add_pending_candidate(self, sid: str, candidate: Candidate, limit: int) -> None:
        """Hold a candidate an answerer sent before its answer was accepted."""
        ...

    async def take_pending_candidates(self, sid: str) -> list[Candidate]:
        """Return and forget the held candidates of ``sid``."""
        ...

    async def close(self) -> None: ...


class MemoryStore:
    """The default store: plain dicts in one process. Every method completes without
    suspending, so each is atomic with respect to the other tasks of the event loop."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._offers: dict[str, Offer] = {}
        self._bound: dict[str, str] = {}
        self._pending: dict[str, list[Candidate]] = {}
        #: per answered call, the parties with a renegotiate offer the other has not answered
        self._renegotiating: dict[str, set[str]] = {}

    async def reserve_name(self, session: Session) -> bool:
        key = (session.room, session.user_name.casefold())
        if key in self._names:
            return False
        self._names[key] = session.sid
        self._sessions[session.sid] = session
        return True

    async def get_session(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    async def remove_session(self, sid: str) -> Session | None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            self._names.pop((session.room, session.user_name.casefold()), None)
        self._pending.pop(sid, None)
        return session

    async def current_offer_id(self, sid: str) -> str | None:
        return self._bound.get(sid)

    async def add_offer(self, offer: Offer, max_waiting: int | None = None) -> None:
        if offer.offerer_sid in self._bound:
            raise SignalingError(ErrorCode.BUSY, "cannot offer: this session already has a call")
        if max_waiting is not None:
            waiting = sum(
                1 for o in self._offers.values() if o.room == offer.room and not o.answered
            )
            if waiting >= max_waiting:
                raise SignalingError(
                    ErrorCode.BUSY,
                    f"cannot offer: room {offer.room} already has {max_waiting} waiting offers",
                    limit="waiting_offers",
                )
        self._offers[offer.offer_id] = copy.deepcopy(offer)
        self._bound[offer.offerer_sid] = offer.offer_id
        self._pending.pop(offer.offerer_sid, None)

    async def get_offer(self, offer_id: str) -> Offer | None:
        offer = self._offers.get(offer_id)
        return copy.deepcopy(offer) if offer else None

    async def find_offer(self, room: str, offerer_user_name: str) -> Offer | None:
        for offer in self._offers.values():
            if offer.room == room and offer.offerer_user_name == offerer_user_name:
                return copy.deepcopy(offer)
        return None

    async def waiting_offers(self, room: str) -> list[Offer]:
        found = [o for o in self._offers.values() if o.room == room and not o.answered]
        return [copy.deepcopy(o) for o in sorted(found, key=lambda o: o.created_at)]

    async def claim_offer(self, offer_id: str, answerer: Session, answer: Description) -> Offer:
        offer = self._offers.get(offer_id)
        if offer is None:
            raise SignalingError(ErrorCode.NOT_FOUND, f"cannot answer: offer {offer_id} is gone")
        if offer.answered:
            raise SignalingError(
                ErrorCode.OFFER_TAKEN, f"cannot answer: offer {offer_id} already taken"
            )
        if answerer.sid in self._bound:
            raise SignalingError(ErrorCode.BUSY, "cannot answer: this session already has a call")
        offer.answerer_sid = answerer.sid
        offer.answerer_user_name = answerer.user_name
        offer.answer = answer
        self._bound[answerer.sid] = offer_id
        return copy.deepcopy(offer)

    async def add_caller_candidate(
        self, offer_id: str, candidate: Candidate, limit: int
    ) -> str | None:
        offer = self._offers.get(offer_id)
        if offer is None:
            raise SignalingError(ErrorCode.NOT_FOUND, f"offer {offer_id} is gone")
        if offer.answerer_sid is not None:
            return offer.answerer_sid
        if len(offer.offer_ice_candidates) >= limit:
            raise SignalingError(
                ErrorCode.TOO_LARGE,
                f"offer {offer_id} already holds {limit} candidates",
                limit="buffered_candidates",
            )
        offer.offer_ice_candidates.append(candidate)
        return None

    async def renegotiation(self, offer_id: str, sid: str, kind: str) -> str:
        offer = self._offers.get(offer_id)
        if (
            offer is None
            or offer.answerer_sid is None
            or sid
            not in (
                offer.offerer_sid,
                offer.answerer_sid,
            )
        ):
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot renegotiate: not in a call")
        other = offer.answerer_sid if sid == offer.offerer_sid else offer.offerer_sid
        waiting = self._renegotiating.setdefault(offer_id, set())
        if kind == "offer":
            waiting.add(sid)
        elif other in waiting:
            waiting.discard(other)
        else:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "cannot renegotiate: no offer from the other side to answer"
            )
        return other

    async def remove_offer(self, offer_id: str) -> Offer | None:
        offer = self._offers.pop(offer_id, None)
        self._renegotiating.pop(offer_id, None)
        if offer is None:
            return None
        for sid in (offer.offerer_sid, offer.answerer_sid):
            if sid is not None and self._bound.get(sid) == offer_id:
                del self._bound[sid]
        return offer

    async def expire_offers(self, created_before: float) -> list[Offer]:
        old = [o for o in self._offers.values() if not o.answered and o.created_at < created_before]
        for offer in old:
            await self.remove_offer(offer.offer_id)
        return old

    async def add_pending_candidate(self, sid: str, candidate: Candidate, limit: int) -> None:
        held = self._pending.setdefault(sid, [])
        if len(held) >= limit:
            raise SignalingError(
                ErrorCode.TOO_LARGE,
                f"already holding {limit} candidates sent before an answer",
                limit="pending_candidates",
            )
        held.append(candidate)

    async def take_pending_candidates(self, sid: str) -> list[Candidate]:
        return self._pending.pop(sid, [])

    async def close(self) -> None:
        self._sessions.clear()
        self._names.clear()
        self._offers.clear()
        self._bound.clear()
        self._pending.clear()
        self._renegotiating.clear()

    def counts(self) -> dict[str, int]:
        """Sizes of the internal tables (for leak checks and metrics)."""
        return {
            "sessions": len(self._sessions),
            "names": len(self._names),
            "offers": len(self._offers),
            "bound": len(self._bound),
            "pending": len(self._pending),
        }
