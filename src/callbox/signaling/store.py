"""Where the switchboard keeps sessions and offers.

Each :class:`Store` method is one atomic step of the protocol: the rules that must hold under
concurrency (one offer per session, exactly one answerer, a caller candidate either buffered on
the offer or relayed, never both, room limits) are checked and applied inside a single call,
so a store backed by a shared database gives the same guarantees with one script per method
(:mod:`callbox.signaling.redis`). A method that refuses changes nothing. Values returned are
immutable snapshots.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Protocol

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
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """An answer that won: the answered offer (with the caller's buffered candidates, handed
    to the answerer and never relayed again) and the answerer's own candidates held until
    now (to relay to the caller after the answer)."""

    offer: Offer
    held: tuple[Candidate, ...]


@dataclass(frozen=True, slots=True)
class Left:
    """What a session left behind: itself, and its offer or call (now removed)."""

    session: Session | None
    offer: Offer | None


@dataclass(frozen=True, slots=True)
class StoreStats:
    sessions: int
    waiting_offers: int
    calls: int


class Store(Protocol):
    async def add_session(self, session: Session) -> bool:
        """Add ``session`` if no name in its room looks like its name
        (:func:`callbox.signaling.names.keys`); False if one does."""
        ...

    async def get_session(self, sid: str) -> Session | None: ...

    async def leave(self, sid: str) -> Left:
        """Forget the session, its name and held candidates, and remove its offer or call."""
        ...

    async def current_offer_id(self, sid: str) -> str | None:
        """The offer this session made or answered, if any."""
        ...

    async def add_offer(self, offer: Offer, limits: Limits) -> None:
        """Store a new waiting offer of its offerer's session. ``unauthorized`` when that
        session is gone; ``busy`` when it already has an offer or call, or its room already
        holds ``limits.max_waiting_offers`` waiting offers or ``max_room_offer_bytes``."""
        ...

    async def get_offer(self, offer_id: str) -> Offer | None: ...

    async def waiting_offers(self, room: str) -> list[Offer]:
        """Offers of ``room`` nobody has answered yet, oldest first."""
        ...

    async def route_candidate(
        self,
        sid: str,
        candidate: Candidate,
        *,
        caller: bool | None,
        offer_id: str | None,
        limits: Limits,
    ) -> str | None:
        """Where a candidate from session ``sid`` goes, decided and applied in one step:

        - no offer or call: held for the answer this session is about to send (None);
        - the caller of a waiting offer: buffered on it (None);
        - the caller of an answered call: the answerer's sid (relay it);
        - the answerer: the caller's sid.

        ``caller`` (the client's ``didIOffer``, when it sent one) must agree with the role,
        and ``offer_id`` (when sent) with the session's offer or call, else ``forbidden``.
        ``too_large`` when a buffer is full (entries or characters); ``unauthorized`` when
        the session is gone."""
        ...

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
        """:meth:`route_candidate`, and, when the candidate is to be relayed, the
        ``(event, payload)`` letter for its target posted to the target's mailbox in the
        same step if the store can (a Redis store shares its Redis with the mailbox: one
        round trip instead of two). Returns the target and where the letter went (None:
        not posted here; the router posts it)."""
        ...

    async def claim_offer(
        self,
        answerer: Session,
        answer: Description,
        *,
        offer_id: str | None,
        offerer_user_name: str | None,
    ) -> Claimed:
        """Make ``answerer`` the one answerer of an offer in its room, atomically, and hand
        over the candidates held for it. The offer is named by ``offer_id``, else by its
        offerer's name; when both are given they must agree (``invalid_payload``). Raises
        ``not_found`` (no such offer in the room), ``forbidden`` (one's own offer),
        ``offer_taken`` or ``busy``; a refused answer also forgets the candidates held for it
        (they belong to a peer connection that lost and must never reach a later caller)."""
        ...

    async def renegotiation(self, sid: str, kind: str, *, offer_id: str | None) -> tuple[str, str]:
        """A ``renegotiate`` description of type ``kind`` from session ``sid``: returns its
        call's id and the other party's sid to relay it to. An offer is always relayed and
        recorded as unanswered; an answer only when the other party has an unanswered offer
        out (which it then clears), else ``forbidden``. ``not_in_call`` when the session has
        no answered call; ``forbidden`` when ``offer_id`` is given and is not its call."""
        ...

    async def remove_offer(self, offer_id: str) -> Offer | None:
        """Remove the offer and unbind both parties; only one concurrent caller gets it."""
        ...

    async def end(self, sid: str, *, offer_id: str | None) -> Offer:
        """Session ``sid`` hangs up: remove its offer or call and return it. ``not_in_call``
        when it has none; ``not_found`` when ``offer_id`` is given and is not its own."""
        ...

    async def expire_offers(self, created_before: float) -> list[Offer]:
        """Remove and return every *waiting* offer created before ``created_before``, in any
        room, unbinding their offerers. An offer answered meanwhile is never removed."""
        ...

    async def stats(self) -> StoreStats: ...

    async def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the store cannot be reached."""
        ...

    async def close(self) -> None: ...


@dataclass(slots=True)
class _Held:
    """Candidates held in a buffer, with their total size."""

    items: list[Candidate] = field(default_factory=list)
    size: int = 0

    def add(self, candidate: Candidate, count: int, size: int, limit: str, what: str) -> None:
        if len(self.items) >= count or self.size + candidate.size > size:
            raise SignalingError(
                ErrorCode.TOO_LARGE,
                f"already holding {len(self.items)} candidates ({self.size} characters) {what}",
                limit=limit,
            )
        self.items.append(candidate)
        self.size += candidate.size


@dataclass(slots=True)
class _Record:
    """A stored offer: its last snapshot and, while it waits, its buffered candidates."""

    offer: Offer
    buffered: _Held = field(default_factory=_Held)
    #: parties with a renegotiate offer the other has not answered
    renegotiating: set[str] = field(default_factory=set)

    def snapshot(self) -> Offer:
        if len(self.offer.offer_ice_candidates) != len(self.buffered.items):
            self.offer = replace(self.offer, offer_ice_candidates=tuple(self.buffered.items))
        return self.offer


class MemoryStore:
    """The default store: plain dicts in one process, with an index for every lookup the
    protocol makes (no scans). Every method completes without suspending, so each is atomic
    with respect to the other tasks of the event loop."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._offers: dict[str, _Record] = {}
        #: waiting offers, oldest first: of each room, and of all rooms (for expiry)
        self._waiting: dict[str, OrderedDict[str, None]] = {}
        self._all_waiting: OrderedDict[str, None] = OrderedDict()
        self._room_bytes: dict[str, int] = {}
        self._by_name: dict[tuple[str, str], str] = {}
        self._bound: dict[str, str] = {}
        self._pending: dict[str, _Held] = {}

    async def add_session(self, session: Session) -> bool:
        keys = [(session.room, k) for k in set(names.keys(session.user_name))]
        if any(k in self._names for k in keys):
            return False
        for k in keys:
            self._names[k] = session.sid
        self._sessions[session.sid] = session
        return True

    async def get_session(self, sid: str) -> Session | None:
        return self._sessions.get(sid)

    async def leave(self, sid: str) -> Left:
        session = self._sessions.pop(sid, None)
        if session is not None:
            for k in set(names.keys(session.user_name)):
                self._names.pop((session.room, k), None)
        self._pending.pop(sid, None)
        offer_id = self._bound.get(sid)
        offer = self._remove(offer_id) if offer_id is not None else None
        return Left(session, offer)

    async def current_offer_id(self, sid: str) -> str | None:
        return self._bound.get(sid)

    async def add_offer(self, offer: Offer, limits: Limits) -> None:
        if offer.offerer_sid not in self._sessions:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        if offer.offerer_sid in self._bound:
            raise SignalingError(ErrorCode.BUSY, "cannot offer: this session already has a call")
        waiting: OrderedDict[str, None] | dict[str, None] = self._waiting.get(offer.room, {})
        if len(waiting) >= limits.max_waiting_offers:
            raise SignalingError(
                ErrorCode.BUSY,
                f"cannot offer: room {offer.room} already has {len(waiting)} waiting offers",
                limit="waiting_offers",
            )
        weight = self._room_bytes.get(offer.room, 0)
        if weight + offer.size > limits.max_room_offer_bytes:
            raise SignalingError(
                ErrorCode.BUSY,
                f"cannot offer: room {offer.room} is full ({weight} characters of offers)",
                limit="room_offer_bytes",
            )
        clean = replace(offer, offer_ice_candidates=())
        self._offers[offer.offer_id] = _Record(clean)
        self._waiting.setdefault(offer.room, OrderedDict())[offer.offer_id] = None
        self._all_waiting[offer.offer_id] = None
        self._room_bytes[offer.room] = weight + clean.size
        self._by_name[(offer.room, offer.offerer_user_name)] = offer.offer_id
        self._bound[offer.offerer_sid] = offer.offer_id
        self._pending.pop(offer.offerer_sid, None)

    async def get_offer(self, offer_id: str) -> Offer | None:
        record = self._offers.get(offer_id)
        return record.snapshot() if record else None

    async def waiting_offers(self, room: str) -> list[Offer]:
        return [self._offers[o].snapshot() for o in self._waiting.get(room, ())]

    async def route_candidate(
        self,
        sid: str,
        candidate: Candidate,
        *,
        caller: bool | None,
        offer_id: str | None,
        limits: Limits,
    ) -> str | None:
        if sid not in self._sessions:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        bound = self._bound.get(sid)
        if bound is None:
            if caller:
                raise SignalingError(ErrorCode.FORBIDDEN, "didIOffer is true but there is no offer")
            # An answerer trickles as soon as its local description is set, which can be before
            # its answer reached us (the seed's client does): hold these until the answer.
            held = self._pending.setdefault(sid, _Held())
            held.add(
                candidate,
                limits.max_pending_candidates,
                limits.max_pending_candidate_bytes,
                "pending_candidates",
                "sent before an answer",
            )
            return None
        if offer_id is not None and offer_id != bound:
            raise SignalingError(
                ErrorCode.FORBIDDEN, f"offer {offer_id} is not this session's call"
            )
        record = self._offers[bound]
        offer = record.offer
        is_offerer = offer.offerer_sid == sid
        if caller is not None and caller != is_offerer:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "didIOffer does not match this session's role"
            )
        if not is_offerer:
            return offer.offerer_sid
        if offer.answerer_sid is not None:
            return offer.answerer_sid
        room_weight = self._room_bytes.get(offer.room, 0)
        if room_weight + candidate.size > limits.max_room_offer_bytes:
            raise SignalingError(
                ErrorCode.TOO_LARGE,
                f"room {offer.room} is full ({room_weight} characters of offers)",
                limit="room_offer_bytes",
            )
        record.buffered.add(
            candidate,
            limits.max_buffered_candidates,
            limits.max_buffered_candidate_bytes,
            "buffered_candidates",
            f"on offer {bound}",
        )
        self._room_bytes[offer.room] = room_weight + candidate.size
        return None

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
        target = await self.route_candidate(
            sid, candidate, caller=caller, offer_id=offer_id, limits=limits
        )
        return target, None  # the memory mailbox is another object: the router posts

    async def claim_offer(
        self,
        answerer: Session,
        answer: Description,
        *,
        offer_id: str | None,
        offerer_user_name: str | None,
    ) -> Claimed:
        try:
            record = self._claimable(answerer, offer_id, offerer_user_name)
        except SignalingError:
            self._pending.pop(answerer.sid, None)
            raise
        self._unwait(record.snapshot())
        record.offer = replace(
            record.offer,
            answerer_sid=answerer.sid,
            answerer_user_name=answerer.user_name,
            answer=answer,
        )
        self._bound[answerer.sid] = record.offer.offer_id
        held = self._pending.pop(answerer.sid, None)
        return Claimed(record.offer, tuple(held.items) if held else ())

    def _claimable(self, answerer: Session, offer_id: str | None, name: str | None) -> _Record:
        if answerer.sid not in self._sessions:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        if offer_id is None:
            offer_id = self._by_name.get((answerer.room, name or ""))
        record = self._offers.get(offer_id) if offer_id is not None else None
        if record is None or record.offer.room != answerer.room:
            raise SignalingError(ErrorCode.NOT_FOUND, "cannot answer: no such offer in this room")
        offer = record.offer
        if name is not None and name != offer.offerer_user_name:
            raise SignalingError(
                ErrorCode.INVALID_PAYLOAD, "offererUserName does not match the offer's owner"
            )
        if offer.offerer_sid == answerer.sid:
            raise SignalingError(ErrorCode.FORBIDDEN, "cannot answer your own offer")
        if offer.answered:
            raise SignalingError(
                ErrorCode.OFFER_TAKEN, f"cannot answer: offer {offer.offer_id} already taken"
            )
        if answerer.sid in self._bound:
            raise SignalingError(ErrorCode.BUSY, "cannot answer: this session already has a call")
        return record

    async def renegotiation(self, sid: str, kind: str, *, offer_id: str | None) -> tuple[str, str]:
        current = self._bound.get(sid)
        record = self._offers.get(current) if current is not None else None
        if record is None or record.offer.answerer_sid is None:
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot renegotiate: not in a call")
        offer = record.offer
        if offer_id is not None and offer_id != offer.offer_id:
            raise SignalingError(ErrorCode.FORBIDDEN, f"offer {offer_id} is not your call")
        answerer = record.offer.answerer_sid
        other = offer.offerer_sid if sid == answerer else answerer
        if kind == "offer":
            record.renegotiating.add(sid)
        elif other in record.renegotiating:
            record.renegotiating.discard(other)
        else:
            raise SignalingError(
                ErrorCode.FORBIDDEN, "cannot renegotiate: no offer from the other side to answer"
            )
        return offer.offer_id, other

    async def remove_offer(self, offer_id: str) -> Offer | None:
        return self._remove(offer_id)

    async def end(self, sid: str, *, offer_id: str | None) -> Offer:
        bound = self._bound.get(sid)
        if bound is None:
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot hang up: no offer or call")
        if offer_id is not None and offer_id != bound:
            raise SignalingError(
                ErrorCode.NOT_FOUND, f"cannot hang up: {offer_id} is not your call"
            )
        removed = self._remove(bound)
        if removed is None:  # pragma: no cover - a bound offer is always stored
            raise SignalingError(ErrorCode.NOT_IN_CALL, "cannot hang up: no offer or call")
        return removed

    def _remove(self, offer_id: str) -> Offer | None:
        record = self._offers.pop(offer_id, None)
        if record is None:
            return None
        offer = record.snapshot()
        if not offer.answered:
            self._unwait(offer)
        self._by_name.pop((offer.room, offer.offerer_user_name), None)
        for sid in (offer.offerer_sid, offer.answerer_sid):
            if sid is not None and self._bound.get(sid) == offer_id:
                del self._bound[sid]
        return offer

    def _unwait(self, offer: Offer) -> None:
        """The offer no longer waits: out of its room's list and weight."""
        room = self._waiting[offer.room]  # only waiting offers stop waiting
        del room[offer.offer_id]
        if not room:
            del self._waiting[offer.room]
        self._all_waiting.pop(offer.offer_id, None)
        weight = self._room_bytes.get(offer.room, 0) - offer.size
        if weight > 0 and offer.room in self._waiting:
            self._room_bytes[offer.room] = weight
        else:
            self._room_bytes.pop(offer.room, None)

    async def expire_offers(self, created_before: float) -> list[Offer]:
        expired: list[Offer] = []
        while self._all_waiting:
            offer_id = next(iter(self._all_waiting))
            if self._offers[offer_id].offer.created_at >= created_before:
                break
            removed = self._remove(offer_id)
            if removed is not None:  # pragma: no branch - waiting offers are stored
                expired.append(removed)
        return expired

    async def stats(self) -> StoreStats:
        waiting = len(self._all_waiting)
        return StoreStats(len(self._sessions), waiting, len(self._offers) - waiting)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        for table in (
            self._sessions,
            self._names,
            self._offers,
            self._waiting,
            self._all_waiting,
            self._room_bytes,
            self._by_name,
            self._bound,
            self._pending,
        ):
            table.clear()

    def counts(self) -> dict[str, int]:
        """Sizes of the internal tables (for leak checks and metrics)."""
        return {
            "sessions": len(self._sessions),
            "names": len(self._names),
            "offers": len(self._offers),
            "bound": len(self._bound),
            "pending": len(self._pending),
            "rooms": len(self._waiting),
        }
