"""Per-session delivery: where a session's socket is, resume tokens, numbering, the replay
log, held sessions, and the ack cache.

The switchboard knows sessions by a stable id (the sid of the session's first socket). Every
event addressed to a session is *posted* to its mailbox: it gets the session's next sequence
number and is kept in a log, bounded in entries and in bytes, so that

- a client whose socket died (what was emitted into it may be lost) resumes on a new socket,
  on any node, and gets again everything after the last number it saw;
- a node that missed a notification (pub/sub is at-most-once) reads the gap from the log.

A socket that drops without the client asking is *detached* with a hold deadline: the
session waits for its client to come back with its single-use token. Whoever finds the
deadline passed (:meth:`Mailbox.expired`) ends the session.

Every method is one atomic step, like the store's (:mod:`callbox.signaling.store`); a Redis
mailbox does each in one script. Attaching, detaching and holding compare the socket the
caller thinks holds the session (an :class:`At`), so a late notice about a socket that was
replaced never touches the session's new socket.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol

from callbox.signaling.model import ErrorCode, SignalingError


@dataclass(frozen=True, slots=True)
class At:
    """A socket: the node that holds it and its sid there."""

    node: str
    sid: str


@dataclass(frozen=True, slots=True)
class Letter:
    """One numbered event for one session."""

    seq: int
    event: str
    payload: object
    #: bytes it weighs in the log (its JSON payload, as the caller measured it)
    size: int


@dataclass(frozen=True, slots=True)
class Posted:
    seq: int
    #: where to emit it now; None while the session is held (it waits in the log)
    to: At | None
    #: the client can resume: the number goes with the event (as its last argument)
    numbered: bool


@dataclass(frozen=True, slots=True)
class MailboxLimits:
    """Per session: the replay log and the ack cache, in entries and bytes. An honest call
    posts a few dozen small letters; the bytes bound what a hostile pair of sessions that
    renegotiate at the allowed rate can make the server keep."""

    log_entries: int = 1024
    log_bytes: int = 256 * 1024
    ack_entries: int = 256
    ack_bytes: int = 64 * 1024


#: a token bucket's state: (tokens, when it was last updated by the node's clock)
RateState = tuple[float, float]


@dataclass(frozen=True, slots=True)
class Ticket:
    """An accepted resume."""

    session_id: str
    #: the session's next token (the one used is spent)
    token: str
    #: what the client has not seen, in order (from ``last_seq + 1``, or from the drop)
    letters: list[Letter]
    #: the number the next letter will get
    next_seq: int
    #: the letters the client needs are no longer all in the log (it must start over)
    lost: bool
    #: a socket that still held the session (a silent drop): its node must close it
    replaced: At | None
    rate: RateState | None
    identity: str | None
    address: str
    #: the highest client message number acknowledged so far (lower ones may be re-sends)
    ack_highest: int = 0


class Mailbox(Protocol):
    async def open(
        self,
        session_id: str,
        at: At,
        *,
        resumable: bool,
        address: str,
        identity: str | None,
        room: str = "",
    ) -> str | None:
        """A new session on socket ``at``; returns its first resume token (None when the
        client cannot resume). ``identity`` and ``room`` are what a resume must match."""
        ...

    async def post(self, session_id: str, event: str, payload: object, size: int) -> Posted | None:
        """Number ``event`` for the session and keep it; None when the session is gone."""
        ...

    async def read(self, session_id: str, after: int) -> list[Letter]:
        """The letters kept with a number above ``after``, in order."""
        ...

    async def detach(
        self, session_id: str, at: At, *, hold_until: float | None, rate: RateState | None
    ) -> bool:
        """Socket ``at`` closed. With ``hold_until`` (a client that can resume, dropped
        without asking), the session waits for it until then; without, the session's mailbox
        is gone. False (and nothing changes) when ``at`` no longer holds the session."""
        ...

    async def resume(
        self,
        token: str,
        at: At,
        last_seq: int | None,
        *,
        identity: str | None = None,
        room: str | None = None,
    ) -> Ticket:
        """Rebind the session of ``token`` to socket ``at``. ``unauthorized`` when the token
        is unknown, used, or its hold has run out; ``forbidden`` (and nothing changes, the
        token stays good for its owner) when ``identity`` is not the session's, or ``room``
        is given and is not the session's room."""
        ...

    async def expired(self, now: float) -> list[str]:
        """Claim the held sessions whose deadline is past: their tokens stop working, and
        the caller (only one, across nodes) ends them and then :meth:`drop`\\ s them."""
        ...

    async def drop(self, session_id: str) -> None:
        """Forget the session's mailbox for good."""
        ...

    async def cached_ack(self, session_id: str, seq: int) -> tuple[bool, object]:
        """(True, ack) when the client's message ``seq`` was handled already (a re-send after
        a resume: the first try may have arrived, its ack not); (False, None) otherwise."""
        ...

    async def remember_ack(self, session_id: str, seq: int, ack: object, size: int) -> None: ...

    async def held_from(self, address: str) -> int:
        """How many sessions of this client address are held (waiting for a resume)."""
        ...

    async def sessions_on(self, node: str) -> list[str]:
        """The sessions whose socket is on ``node`` (to take them over when it died)."""
        ...

    async def held_count(self) -> int:
        """How many sessions are held now, in all (for ``/metrics``)."""
        ...

    async def release(self, session_id: str, node: str, *, hold_until: float) -> str:
        """``node`` died with the session's socket: a session that can resume is held until
        ``hold_until`` (``"held"``), one that cannot is gone (``"ended"``: the caller ends its
        offer or call). ``""`` when its socket is not on ``node`` (any more)."""
        ...

    async def close(self) -> None: ...


def token_key(token: str) -> str:
    """What is stored for a token: its hash, so a copy of the store holds no usable token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(slots=True)
class _Box:
    at: At | None
    resumable: bool
    address: str
    identity: str | None
    room: str = ""
    token: str | None = None
    seq: int = 0
    #: made at the first letter: most sessions never get one (an empty deque is ~760 bytes)
    log: deque[Letter] | None = None
    log_bytes: int = 0
    #: the first number posted after the drop was noticed
    away_from: int = 1
    held_until: float | None = None
    acks: dict[int, tuple[object, int]] = field(default_factory=dict)
    ack_bytes: int = 0
    ack_highest: int = 0
    rate: RateState | None = None


class MemoryMailbox:
    """The default mailbox: one process. Every method completes without suspending."""

    def __init__(self, limits: MailboxLimits | None = None) -> None:
        self.limits = limits or MailboxLimits()
        self._boxes: dict[str, _Box] = {}
        self._tokens: dict[str, str] = {}  # token_key -> session id
        self._holds: dict[str, float] = {}  # session id -> deadline
        self._held_from: Counter[str] = Counter()

    async def open(
        self,
        session_id: str,
        at: At,
        *,
        resumable: bool,
        address: str,
        identity: str | None,
        room: str = "",
    ) -> str | None:
        box = _Box(at=at, resumable=resumable, address=address, identity=identity, room=room)
        self._boxes[session_id] = box
        return self._issue(session_id, box) if resumable else None

    async def post(self, session_id: str, event: str, payload: object, size: int) -> Posted | None:
        box = self._boxes.get(session_id)
        if box is None:
            return None
        box.seq += 1
        if box.log is None:
            box.log = deque()
        log = box.log
        log.append(Letter(box.seq, event, payload, size))
        box.log_bytes += size
        limits = self.limits
        while len(log) > limits.log_entries or (box.log_bytes > limits.log_bytes and len(log) > 1):
            box.log_bytes -= log.popleft().size
        return Posted(box.seq, box.at, box.resumable)

    async def read(self, session_id: str, after: int) -> list[Letter]:
        box = self._boxes.get(session_id)
        return [] if box is None or box.log is None else [n for n in box.log if n.seq > after]

    async def detach(
        self, session_id: str, at: At, *, hold_until: float | None, rate: RateState | None
    ) -> bool:
        box = self._boxes.get(session_id)
        if box is None or box.at != at:
            return False
        if hold_until is None or not box.resumable:
            await self.drop(session_id)
            return True
        box.at = None
        box.away_from = box.seq + 1
        box.rate = rate
        self._hold(session_id, box, hold_until)
        return True

    async def resume(
        self,
        token: str,
        at: At,
        last_seq: int | None,
        *,
        identity: str | None = None,
        room: str | None = None,
    ) -> Ticket:
        session_id = self._tokens.get(token_key(token))
        box = self._boxes.get(session_id) if session_id is not None else None
        if session_id is None or box is None:
            raise SignalingError(
                ErrorCode.UNAUTHORIZED, "resume token not valid: unknown, used or expired"
            )
        if identity != box.identity or (room is not None and room != box.room):
            raise SignalingError(
                ErrorCode.FORBIDDEN,
                "the credentials are for another user or room than this session",
            )
        replaced = box.at
        if replaced is not None:  # still attached: the old socket died unnoticed
            box.away_from = box.seq + 1
        first = box.away_from if last_seq is None else min(last_seq, box.seq) + 1
        letters = [n for n in box.log or () if n.seq >= first]
        lost = first <= box.seq and (not letters or letters[0].seq > first)
        self._unhold(session_id, box)
        box.at = at
        return Ticket(
            session_id=session_id,
            token=self._issue(session_id, box),
            letters=letters,
            next_seq=box.seq + 1,
            lost=lost,
            replaced=replaced,
            rate=box.rate,
            identity=box.identity,
            address=box.address,
            ack_highest=box.ack_highest,
        )

    async def expired(self, now: float) -> list[str]:
        due = [s for s, until in self._holds.items() if until <= now]
        for session_id in due:
            box = self._boxes[session_id]
            self._unhold(session_id, box)
            self._revoke(box)
        return due

    async def drop(self, session_id: str) -> None:
        box = self._boxes.pop(session_id, None)
        if box is not None:
            self._unhold(session_id, box)
            self._revoke(box)

    async def cached_ack(self, session_id: str, seq: int) -> tuple[bool, object]:
        box = self._boxes.get(session_id)
        if box is None or seq > box.ack_highest:
            return False, None
        if seq in box.acks:
            return True, box.acks[seq][0]
        message = f"message #{seq} was handled already"
        return True, {"error": {"code": "invalid_payload", "message": message}}

    async def remember_ack(self, session_id: str, seq: int, ack: object, size: int) -> None:
        box = self._boxes.get(session_id)
        if box is None:
            return
        old = box.acks.pop(seq, None)
        if old is not None:
            box.ack_bytes -= old[1]
        box.acks[seq] = (ack, size)
        box.ack_bytes += size
        box.ack_highest = max(box.ack_highest, seq)
        limits = self.limits
        while len(box.acks) > limits.ack_entries or (
            box.ack_bytes > limits.ack_bytes and len(box.acks) > 1
        ):
            oldest = min(box.acks)
            box.ack_bytes -= box.acks.pop(oldest)[1]

    async def held_from(self, address: str) -> int:
        return self._held_from[address]

    async def sessions_on(self, node: str) -> list[str]:
        return [s for s, box in self._boxes.items() if box.at is not None and box.at.node == node]

    async def held_count(self) -> int:
        return len(self._holds)

    async def release(self, session_id: str, node: str, *, hold_until: float) -> str:
        box = self._boxes.get(session_id)
        if box is None or box.at is None or box.at.node != node:
            return ""
        if await self.detach(session_id, box.at, hold_until=hold_until, rate=None):
            return "held" if session_id in self._holds else "ended"
        return ""  # pragma: no cover - detach takes what is attached at box.at

    async def close(self) -> None:
        self._boxes.clear()
        self._tokens.clear()
        self._holds.clear()
        self._held_from.clear()

    def counts(self) -> dict[str, int]:
        """Sizes of the internal tables (for leak checks and metrics)."""
        return {
            "mailboxes": len(self._boxes),
            "tokens": len(self._tokens),
            "held": len(self._holds),
            "letters": sum(len(b.log or ()) for b in self._boxes.values()),
        }

    def _issue(self, session_id: str, box: _Box) -> str:
        self._revoke(box)
        token = new_token()
        box.token = token_key(token)
        self._tokens[box.token] = session_id
        return token

    def _revoke(self, box: _Box) -> None:
        if box.token is not None:
            self._tokens.pop(box.token, None)
            box.token = None

    def _hold(self, session_id: str, box: _Box, until: float) -> None:
        # only an attached box is detached, and an attached box is never held
        self._held_from[box.address] += 1
        box.held_until = until
        self._holds[session_id] = until

    def _unhold(self, session_id: str, box: _Box) -> None:
        if box.held_until is not None:
            box.held_until = None
            del self._holds[session_id]
            self._held_from[box.address] -= 1
            if not self._held_from[box.address]:
                del self._held_from[box.address]
