"""Deliveries to the socket that holds a session: on this node, or on another one.

The switchboard returns deliveries; :class:`Router` posts each one addressed to a session to
that session's mailbox (which numbers and keeps it) and emits it where the mailbox says the
session's socket is: here (:class:`LocalSessions`), on another node (a :class:`Bus`), or
nowhere while the session is held (it waits in the log for the resume). Room broadcasts go
to this node's sockets in the room and, through the bus, to the other nodes'.

Per-session order comes from the mailbox's numbers, not from a process-wide queue: each
local session emits strictly in sequence, holds back a number that arrives early, and reads
a gap back from the mailbox (a notification lost or overtaken between nodes).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from callbox.signaling import Delivery, Session
from callbox.signaling.mailbox import At, Letter, Mailbox, Posted

log = logging.getLogger(__name__)

ROOM_PREFIX = "room:"
#: numbers held back waiting for a gap to fill before the gap is read from the mailbox
_MAX_EARLY = 64


def room_of(room: str) -> str:
    return ROOM_PREFIX + room


def weigh(value: object) -> int:
    """The bytes ``value`` takes as JSON (orjson encodes a candidate in 0.15 us, a tenth of
    what :func:`estimate`'s walk takes); an estimate for what orjson cannot encode."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return estimate(value)


def estimate(value: object) -> int:
    """About the bytes ``value`` takes as JSON, without encoding it (strings dominate): for
    what may weigh MiB and is checked before it is encoded."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + 4 + estimate(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 2 + sum(estimate(v) + 1 for v in value)
    return 8


class Emitter(Protocol):
    """The part of the Socket.IO server routing uses."""

    async def emit(
        self, event: str, data: Any = None, to: Any = None, room: Any = None, skip_sid: Any = None
    ) -> None: ...


class Bus(Protocol):
    """How nodes reach each other (:mod:`callbox.server.bus`). Letters for another node's
    sockets need no call here: the mailbox publishes them as it keeps them."""

    async def to_room(self, room: str, event: str, payload: object, skip: str | None) -> None: ...

    def noted(self, room: str, event: str, payload: object) -> None:
        """A room broadcast went out on this node."""
        ...

    async def join(self, room: str) -> None:
        """A local socket entered ``room`` (hear the room's broadcasts from other nodes)."""
        ...

    async def leave(self, room: str) -> None: ...


@dataclass(slots=True)
class Local:
    """A session whose socket is on this node."""

    session: Session
    at: At
    resumable: bool
    address: str
    #: the number the next event to emit must have
    next_seq: int = 1
    #: False until the session's welcome went out: what comes before waits
    open: bool = False
    early: dict[int, Letter] = field(default_factory=dict)
    #: the highest client message number acknowledged before this socket (after a resume,
    #: lower numbers may be re-sends and are looked up in the ack cache)
    ack_highest: int = 0
    #: a resume took this session to another socket: this one's close means nothing
    replaced: bool = False
    #: the offer or call the session has, as far as this node saw (to tell the client it
    #: ended if the store loses it)
    offer_id: str | None = None

    @property
    def session_id(self) -> str:
        return self.session.sid


class LocalSessions:
    """Socket sid <-> session, for the sessions this node holds."""

    def __init__(self) -> None:
        self.by_sid: dict[str, Local] = {}
        self.by_session: dict[str, Local] = {}

    def add(self, local: Local) -> None:
        old = self.by_session.get(local.session_id)
        if old is not None:
            old.replaced = True
        self.by_sid[local.at.sid] = local
        self.by_session[local.session_id] = local

    def remove(self, sid: str) -> Local | None:
        local = self.by_sid.pop(sid, None)
        if local is not None and self.by_session.get(local.session_id) is local:
            del self.by_session[local.session_id]
        return local

    def __len__(self) -> int:
        return len(self.by_session)


class Router:
    def __init__(
        self,
        sio: Emitter,
        mailbox: Mailbox,
        node: str,
        sessions: LocalSessions,
        bus: Bus | None = None,
    ) -> None:
        self.sio = sio
        self.mailbox = mailbox
        self.node = node
        self.sessions = sessions
        self.bus = bus

    async def deliver(self, deliveries: Iterable[Delivery]) -> None:
        for d in deliveries:
            if d.to_sid is not None and d.posted is not None:
                await self._posted(d.to_sid, d.event, d.payload, d.posted)
            elif d.to_sid is not None:
                await self._post(d.to_sid, d.event, d.payload)
            elif d.to_room is not None:
                await self.to_room(d.to_room, d.event, d.payload, d.skip_sid)
                if self.bus is not None:
                    self.bus.noted(d.to_room, d.event, d.payload)
                    await self.bus.to_room(d.to_room, d.event, d.payload, d.skip_sid)

    async def _post(self, session_id: str, event: str, payload: object) -> None:
        posted = await self.mailbox.post(session_id, event, payload, weigh(payload))
        await self._posted(session_id, event, payload, posted)

    async def _posted(
        self, session_id: str, event: str, payload: object, posted: Posted | None
    ) -> None:
        if posted is None or posted.to is None or posted.to.node != self.node:
            return  # gone; held (it waits in the log); or published to its node
        await self.to_session(session_id, Letter(posted.seq, event, payload, 0))

    async def to_room(self, room: str, event: str, payload: object, skip: str | None) -> None:
        """Emit to this node's sockets in ``room``, except the socket of session ``skip``."""
        local = self.sessions.by_session.get(skip) if skip is not None else None
        await self.sio.emit(
            event, payload, room=room_of(room), skip_sid=local.at.sid if local else None
        )

    async def to_session(self, session_id: str, letter: Letter) -> None:
        """Emit a numbered letter to the local socket of ``session_id``, in order."""
        local = self.sessions.by_session.get(session_id)
        if local is None or letter.seq < local.next_seq:
            return  # not here (any more), or already emitted
        if not local.open or letter.seq > local.next_seq:
            local.early[letter.seq] = letter
            if local.open and len(local.early) > _MAX_EARLY:
                await self.catch_up(local)
            return
        await self._emit(local, letter)
        await self._flush(local)

    async def open(self, local: Local, letters: list[Letter]) -> None:
        """The session's welcome is out: hand it ``letters`` (what a resume found it
        missed), then what arrived meanwhile, then read the log for anything still missing."""
        for letter in letters:
            if letter.seq >= local.next_seq:
                local.early.setdefault(letter.seq, letter)
        local.open = True
        await self._flush(local)
        await self.catch_up(local)

    async def catch_up(self, local: Local) -> None:
        """Emit whatever the mailbox holds past what this socket got (a lost or late
        notification between nodes, or a resume)."""
        if self.sessions.by_session.get(local.session_id) is not local:
            return
        for letter in await self.mailbox.read(local.session_id, local.next_seq - 1):
            local.early.setdefault(letter.seq, letter)
        if local.early and min(local.early) > local.next_seq:
            gap = min(local.early) - local.next_seq
            log.warning(
                "session=%s lost %d events (not in its log any more)", local.session_id, gap
            )
            local.next_seq = min(local.early)
        await self._flush(local)

    async def _flush(self, local: Local) -> None:
        while local.next_seq in local.early:
            await self._emit(local, local.early.pop(local.next_seq))
        for seq in [s for s in local.early if s < local.next_seq]:
            del local.early[seq]

    async def _emit(self, local: Local, letter: Letter) -> None:
        local.next_seq = letter.seq + 1
        if letter.event == "callEnded":
            local.offer_id = None
        data: object = (letter.payload, letter.seq) if local.resumable else letter.payload
        await self.sio.emit(letter.event, data, to=local.at.sid)
