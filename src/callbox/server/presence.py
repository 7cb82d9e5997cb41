"""Which socket speaks for which session, and sessions held while their socket is away.

The switchboard knows sessions by a stable id: the sid of the session's first socket. After
a drop, the client comes back on a new socket with its resume token and this module rebinds
the session to it.

Every event addressed to a session gets a sequence number (sent as the event's last
argument) and is kept in the session's log, a bounded ring. A socket can die without the
server noticing for a while, so what was emitted to it may be lost: on resume the client says
the last number it received (``auth.lastSeq``) and gets everything after it again, in order,
once. Without ``lastSeq``, it gets what was addressed to it since the drop was noticed.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from callbox.signaling import Delivery

log = logging.getLogger(__name__)


#: events kept per session for a resume; older ones are forgotten
LOG_SIZE = 1024


@dataclass(slots=True)
class _Log:
    entries: deque[tuple[int, Delivery]] = field(default_factory=lambda: deque(maxlen=LOG_SIZE))
    last_seq: int = 0
    #: when the last event was addressed to the session (the presence's clock)
    last_at: float = 0.0


#: acks kept per session so a client re-sending after a resume gets the first answer again
ACK_LOG_SIZE = 256


@dataclass(slots=True)
class _Acks:
    by_seq: dict[int, object] = field(default_factory=dict)
    highest: int = 0


@dataclass(slots=True)
class _Away:
    #: the first sequence number addressed to the session after its drop was noticed
    from_seq: int
    #: set once a resume was accepted: the socket the kept events go to when flushed
    resumed_sid: str | None = None
    #: the last sequence number the client says it received (None: not told)
    client_seq: int | None = None


class Presence:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._session_of: dict[str, str] = {}  # socket sid -> session id
        self._sid_of: dict[str, str] = {}  # session id -> socket sid (while present)
        self._token_to_session: dict[str, str] = {}
        self._token_of: dict[str, str] = {}  # session id -> its current token
        self._away: dict[str, _Away] = {}
        self._logs: dict[str, _Log] = {}
        self._acks: dict[str, _Acks] = {}

    def attach(self, sid: str) -> str:
        """A new session on socket ``sid`` (its id is the sid); returns its resume token."""
        self._session_of[sid] = sid
        self._sid_of[sid] = sid
        return self._issue(sid)

    def session_of(self, sid: str) -> str | None:
        return self._session_of.get(sid)

    def socket_of(self, session_id: str) -> str | None:
        """The socket to emit to now; None while away or gone."""
        return self._sid_of.get(session_id)

    def is_away(self, session_id: str) -> bool:
        return session_id in self._away

    def detach(self, sid: str) -> str | None:
        """The socket ``sid`` closed; returns the session it spoke for."""
        session_id = self._session_of.pop(sid, None)
        if session_id is not None and self._sid_of.get(session_id) == sid:
            del self._sid_of[session_id]
        return session_id

    def hold(self, session_id: str) -> None:
        """Keep the session's deliveries until it resumes or is dropped."""
        log_ = self._logs.setdefault(session_id, _Log())
        self._away[session_id] = _Away(from_seq=log_.last_seq + 1)

    def record(self, session_id: str, delivery: Delivery) -> int:
        """Number ``delivery`` (addressed to ``session_id``) and keep it for a resume."""
        log_ = self._logs.setdefault(session_id, _Log())
        log_.last_seq += 1
        log_.last_at = self._clock()
        log_.entries.append((log_.last_seq, delivery))
        return log_.last_seq

    def heard_within(self, session_id: str, seconds: float) -> bool:
        """Whether an event was addressed to the session in the last ``seconds`` (it may
        still be in the socket that just died, e.g. the callEnded of a call just ended)."""
        log_ = self._logs.get(session_id)
        return log_ is not None and log_.last_seq > 0 and self._clock() - log_.last_at < seconds

    def evict(self, token: str) -> str | None:
        """The client of ``token`` is back on a new socket while its old socket still looks
        connected (a silent drop: the server has not noticed yet). Hold the session as if the
        drop had been noticed and return the old socket, which the caller disconnects."""
        session_id = self._token_to_session.get(token)
        if session_id is None or session_id in self._away:
            return None
        old_sid = self._sid_of.get(session_id)
        if old_sid is None:
            return None
        self.detach(old_sid)
        self.hold(session_id)
        return old_sid

    def cached_ack(self, session_id: str, seq: int) -> tuple[bool, object]:
        """(True, ack) when the client's message ``seq`` was handled already: a re-send after
        a resume (the first try may have arrived, its ack not). (False, None) otherwise."""
        acks = self._acks.get(session_id)
        if acks is None or seq > acks.highest:
            return False, None
        if seq in acks.by_seq:
            return True, acks.by_seq[seq]
        message = f"message #{seq} was handled already"
        return True, {"error": {"code": "invalid_payload", "message": message}}

    def cache_ack(self, session_id: str, seq: int, ack: object) -> None:
        acks = self._acks.setdefault(session_id, _Acks())
        acks.by_seq[seq] = ack
        acks.highest = max(acks.highest, seq)
        while len(acks.by_seq) > ACK_LOG_SIZE:
            del acks.by_seq[min(acks.by_seq)]

    def resume(self, token: str, sid: str, last_seq: int | None = None) -> str | None:
        """Rebind the away session of ``token`` to socket ``sid``; None if the token is not
        valid now (unknown, used, or its session is not away). The mailbox stays closed until
        :meth:`flush`, so nothing newer can overtake what it holds."""
        session_id = self._token_to_session.get(token)
        if session_id is None:
            return None
        away = self._away.get(session_id)
        if away is None or away.resumed_sid is not None:
            return None  # its socket is still connected, or another resume won
        away.resumed_sid = sid
        away.client_seq = last_seq
        self._session_of[sid] = session_id
        self._revoke(session_id)
        return session_id

    def flush(self, session_id: str) -> tuple[str, list[tuple[int, Delivery]]] | None:
        """Open the session again: returns its socket and the events it missed, in order."""
        away = self._away.get(session_id)
        if away is None or away.resumed_sid is None:
            return None
        if self._session_of.get(away.resumed_sid) != session_id:
            return None  # the resumed socket is already gone again: keep holding
        del self._away[session_id]
        self._sid_of[session_id] = away.resumed_sid
        first = away.from_seq if away.client_seq is None else away.client_seq + 1
        entries = self._logs.get(session_id, _Log()).entries
        if entries and entries[0][0] > first:
            log.warning(
                "session=%s resumed from #%d but the log starts at #%d: events lost",
                session_id,
                first,
                entries[0][0],
            )
        return away.resumed_sid, [(n, d) for n, d in entries if n >= first]

    def token(self, session_id: str) -> str:
        """A fresh single-use resume token for the session (the previous one stops working)."""
        return self._issue(session_id)

    def drop(self, session_id: str) -> None:
        """Forget the session for good (left, or its grace period ran out)."""
        self._away.pop(session_id, None)
        self._logs.pop(session_id, None)
        self._acks.pop(session_id, None)
        self._revoke(session_id)
        sid = self._sid_of.pop(session_id, None)
        if sid is not None:
            self._session_of.pop(sid, None)

    def release(self, session_id: str) -> None:
        """A resumed socket dropped before its mailbox was opened: back to plain away."""
        away = self._away.get(session_id)
        if away is not None:
            away.resumed_sid = None

    def counts(self) -> dict[str, int]:
        return {
            "sockets": len(self._session_of),
            "present": len(self._sid_of),
            "tokens": len(self._token_to_session),
            "away": len(self._away),
            "logs": len(self._logs),
            "acks": len(self._acks),
        }

    def _issue(self, session_id: str) -> str:
        self._revoke(session_id)
        token = secrets.token_urlsafe(32)
        self._token_to_session[token] = session_id
        self._token_of[session_id] = token
        return token

    def _revoke(self, session_id: str) -> None:
        old = self._token_of.pop(session_id, None)
        if old is not None:
            self._token_to_session.pop(old, None)
