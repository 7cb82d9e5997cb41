"""Socket.IO handlers: thin adapters from events to Switchboard calls.

Each handler parses nothing itself: it hands the raw payload and the sender's sid to the
switchboard and turns the outcome into an ack plus deliveries. Errors go back to the sender
only: as ``{"error": {code, message}}`` when the event asked for an ack, else as a
``signalingError`` event. Deliveries go through :class:`Outbox`, one FIFO for the whole
process, so events reach each client in the order the switchboard decided them.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import socketio

from callbox.config import ServerSettings
from callbox.server.auth import Authenticator
from callbox.server.ice import IceServers
from callbox.server.metrics import Metrics
from callbox.server.presence import Presence
from callbox.signaling import (
    JSON,
    Delivery,
    ErrorCode,
    Outcome,
    Session,
    SignalingError,
    Switchboard,
    parse_auth,
)
from callbox.signaling.limits import ConnectionCounter, RateLimiter

log = logging.getLogger(__name__)

_wants_ack: contextvars.ContextVar[bool] = contextvars.ContextVar("wants_ack", default=False)

ROOM_PREFIX = "room:"
_RESERVED = "\x00reserved"  # internal event the server re-routes reserved names to
# Names python-socketio dispatches to handlers of their own: a client *event* with one of these
# names would otherwise run our connect/disconnect handlers with a payload for an environ, or
# the catch-all handler without the event name.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "*", _RESERVED})
# Connect refusals whose message is the bare code (what clients switch on)
_CODE_AS_MESSAGE = {ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED}


class CallboxSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    """An AsyncServer that tells handlers whether the client asked for an ack.

    python-socketio passes the packet id (None without an ack) only to this internal method;
    we record it in a context variable so an error becomes an error ack or a
    ``signalingError`` event as DESIGN.md requires.
    """

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: Any
    ) -> None:
        token = _wants_ack.set(id is not None)
        if not data or not isinstance(data[0], str) or data[0] in RESERVED_EVENTS:
            name = data[0] if data and isinstance(data[0], str) else "?"
            data = [_RESERVED, name, *data[1:]]
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            _wants_ack.reset(token)


def room_of(room: str) -> str:
    return ROOM_PREFIX + room


@dataclass(frozen=True, slots=True)
class _Flush:
    """Queue marker: the session resumed; hand it what was kept, then open it again."""

    session_id: str


class Outbox:
    """Emits deliveries in the order they were queued, from one task.

    Deliveries name sessions; :class:`Presence` says which socket speaks for each now, and
    keeps those addressed to a session whose socket is away.
    """

    def __init__(self, sio: socketio.AsyncServer, presence: Presence) -> None:
        self._sio = sio
        self._presence = presence
        self._queue: asyncio.Queue[Delivery | _Flush] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="callbox-outbox")

    def put(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            self._queue.put_nowait(d)

    def flush(self, session_id: str) -> None:
        """After everything queued so far, deliver what the session missed while away."""
        self._queue.put_nowait(_Flush(session_id))

    async def drain(self) -> None:
        """Wait until everything queued so far was emitted."""
        await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, _Flush):
                    await self._flush(item.session_id)
                else:
                    await self._emit(item)
            except Exception:
                log.exception("could not emit %s", item)
            finally:
                self._queue.task_done()

    async def _flush(self, session_id: str) -> None:
        opened = self._presence.flush(session_id)
        if opened is None:
            return
        sid, missed = opened
        log.info("session=%s resumed on sid=%s: %d events again", session_id, sid, len(missed))
        for seq, d in missed:
            await self._sio.emit(d.event, (d.payload, seq), to=sid)

    async def _emit(self, d: Delivery) -> None:
        if d.to_sid is not None:
            # numbered and kept even while present: the socket may be dead unnoticed
            seq = self._presence.record(d.to_sid, d)
            if self._presence.is_away(d.to_sid):
                return
            sid = self._presence.socket_of(d.to_sid)
            if sid is not None:
                await self._sio.emit(d.event, (d.payload, seq), to=sid)
        elif d.to_room is not None:
            skip = self._presence.socket_of(d.skip_sid) if d.skip_sid else None
            await self._sio.emit(d.event, d.payload, room=room_of(d.to_room), skip_sid=skip)


Handler = Callable[[str, object], Awaitable[Outcome]]


class SignalingEvents:
    """Binds the switchboard to a Socket.IO server."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        switchboard: Switchboard,
        settings: ServerSettings,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sio = sio
        self.switchboard = switchboard
        self.settings = settings
        self.metrics = metrics
        self.presence = Presence(clock)
        self.outbox = Outbox(sio, self.presence)
        self._grace_tasks: dict[str, asyncio.Task[None]] = {}
        self.authenticator = Authenticator(settings)
        self.ice = IceServers(settings, metrics.turn_credentials.inc)
        self.rates = RateLimiter(settings.event_rate, settings.event_burst, clock=clock)
        self.connections = ConnectionCounter(settings.max_connections_per_ip)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        handlers: dict[str, Handler] = {
            "newOffer": switchboard.new_offer,
            "sendIceCandidateToSignalingServer": switchboard.ice_candidate,
            "newAnswer": switchboard.answer,
            "hangup": switchboard.hangup,
            "renegotiate": switchboard.renegotiate,
            "decline": switchboard.decline,
            "iceServers": self.ice_servers,
        }
        for event, method in handlers.items():
            sio.on(event, self._adapter(event, method))
        sio.on("*", self.on_unknown)
        sio.on(_RESERVED, self.on_reserved)

    def client_address(self, environ: dict[str, Any]) -> str:
        """The client's IP: the peer of the TCP connection or, behind a proxy (``--http``), the
        address the proxy appended last to X-Forwarded-For. (engine.io's REMOTE_ADDR is a
        placeholder under aiohttp.)"""
        if self.settings.http:
            forwarded = str(environ.get("HTTP_X_FORWARDED_FOR", ""))
            last = forwarded.split(",")[-1].strip()
            if last:
                return last
        request = environ.get("aiohttp.request")
        remote = getattr(request, "remote", None)
        return remote if isinstance(remote, str) else "unknown"

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        try:
            parsed = self.authenticator.check(parse_auth(auth))
            self.connections.acquire(sid, self.client_address(environ))
            try:
                if parsed.resume is not None:
                    session, offers, offer_id = await self._resume(
                        sid, parsed.resume, parsed.last_seq
                    )
                else:
                    session, offers = await self.switchboard.join(sid, parsed)
                    self.presence.attach(sid)
                    self.metrics.sessions.inc()
                    offer_id = None
            except BaseException:
                self.connections.release(sid)
                raise
        except SignalingError as e:
            self._count(e)
            log.warning("sid=%s connect refused: %s (%s)", sid, e.code, e.message)
            message = str(e.code) if e.code in _CODE_AS_MESSAGE else e.message
            raise socketio.exceptions.ConnectionRefusedError(message, e.to_wire()) from e
        await self.sio.save_session(sid, {"room": session.room, "userName": session.user_name})
        await self.sio.enter_room(sid, room_of(session.room))
        ice = self.ice.for_session(session.sid, environ.get("HTTP_HOST"))
        welcome: dict[str, object] = {
            "userName": session.user_name,
            "room": session.room,
            "iceServers": ice.servers,
            "iceServersTtl": ice.ttl,
            "resume": self.presence.token(session.sid),
            "resumed": parsed.resume is not None,
            "offerId": offer_id,
        }
        # Emitted directly (not via the outbox) so they precede anything queued for this sid.
        await self.sio.emit("welcome", welcome, to=sid)
        await self.sio.emit("availableOffers", offers, to=sid)
        if parsed.resume is not None:
            self.outbox.flush(session.sid)

    async def _resume(
        self, sid: str, token: str, last_seq: int | None
    ) -> tuple[Session, list[JSON], str | None]:
        stale = self.presence.evict(token)
        if stale is not None:
            # Only the client holds its token and it reconnects only when its socket died:
            # the old socket is dead but not yet noticed (no RST on a Wi-Fi change). Drop it.
            log.info("sid=%s replaced by sid=%s on resume", stale, sid)
            await self.sio.disconnect(stale)
        session_id = self.presence.resume(token, sid, last_seq)
        session = await self.switchboard.store.get_session(session_id) if session_id else None
        if session_id is None or session is None:
            raise SignalingError(
                ErrorCode.UNAUTHORIZED, "resume token not valid: unknown, used or expired"
            )
        task = self._grace_tasks.pop(session_id, None)
        if task is not None:
            task.cancel()
        offers = await self.switchboard.waiting_views(session)
        offer_id = await self.switchboard.store.current_offer_id(session_id)
        self.metrics.resumes.inc()
        log.info("session=%s resumes on sid=%s", session_id, sid)
        return session, offers, offer_id

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        self.connections.release(sid)
        self.rates.forget(sid)
        session_id = self.presence.detach(sid)
        if session_id is None:
            return
        if self.presence.is_away(session_id):
            # a resumed socket dropped before its kept events were handed over: hold again
            self.presence.release(session_id)
            self._start_grace(session_id)
            return
        intended = reason in (self.sio.reason.CLIENT_DISCONNECT, self.sio.reason.SERVER_DISCONNECT)
        grace = self.settings.resume_grace
        if (
            not intended
            and grace > 0
            and (
                await self.switchboard.store.current_offer_id(session_id) is not None
                # its call may have ended just now, the news lost in the dead socket
                or self.presence.heard_within(session_id, grace)
            )
        ):
            log.info("session=%s socket dropped (%s): held for resume", session_id, reason)
            self.presence.hold(session_id)
            self._start_grace(session_id)
            return
        await self._finish(session_id)

    def _start_grace(self, session_id: str) -> None:
        old = self._grace_tasks.pop(session_id, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._grace(session_id), name=f"callbox-grace-{session_id}")
        self._grace_tasks[session_id] = task
        task.add_done_callback(lambda t: self._forget_grace(session_id, t))

    def _forget_grace(self, session_id: str, task: asyncio.Task[None]) -> None:
        if self._grace_tasks.get(session_id) is task:
            del self._grace_tasks[session_id]

    async def _grace(self, session_id: str) -> None:
        await asyncio.sleep(self.settings.resume_grace)
        if self.presence.is_away(session_id):
            log.info("session=%s did not resume in %gs", session_id, self.settings.resume_grace)
            await self._finish(session_id)

    async def _finish(self, session_id: str) -> None:
        """The session is over: the switchboard ends its offer or call."""
        self.presence.drop(session_id)
        try:
            deliveries = await self.switchboard.leave(session_id)
        except SignalingError as e:
            log.warning("session=%s leave failed: %s", session_id, e.message)
            return
        self.metrics.sessions.dec()
        self.outbox.put(deliveries)

    async def close(self) -> None:
        """Stop the grace timers (server shutdown)."""
        tasks = list(self._grace_tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def ice_servers(self, session_id: str, payload: object) -> Outcome:
        """``iceServers``: fresh ICE servers (and TURN credentials) for this session."""
        session = await self.switchboard.store.get_session(session_id)
        if session is None:
            raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
        sid = self.presence.socket_of(session_id)  # the built-in STUN's URL names our Host
        environ = (self.sio.get_environ(sid) if sid is not None else None) or {}
        return Outcome(self.ice.for_session(session_id, environ.get("HTTP_HOST")).to_wire())

    async def on_unknown(self, event: str, sid: str, *args: object) -> object:
        self.metrics.event("unknown")
        name = event[:64]
        try:
            self.rates.take(sid)
        except SignalingError as e:
            return await self._fail(sid, name, e)
        error = SignalingError(ErrorCode.INVALID_PAYLOAD, f"unknown event {name!r}")
        return await self._fail(sid, name, error)

    async def on_reserved(self, sid: str, event: object = "?", *args: object) -> object:
        """A client event named like a reserved one (or not named by a string)."""
        return await self.on_unknown(event if isinstance(event, str) else "?", sid, *args)

    def _check_message(self, sid: str, event: str, args: tuple[object, ...]) -> None:
        """The per-session rate and the whole-message size, before any parsing."""
        self.rates.take(sid)
        limit = self.settings.max_message_bytes
        if message_size(args, limit) > limit:
            raise SignalingError(
                ErrorCode.TOO_LARGE, f"{event} is larger than {limit} bytes", limit="message"
            )
        if len(args) > 1:
            raise SignalingError(ErrorCode.INVALID_PAYLOAD, f"{event} takes one payload")

    def _adapter(self, event: str, method: Handler) -> Callable[..., Awaitable[object]]:
        async def handle(sid: str, *args: object) -> object:
            self.metrics.event(event)
            payload = args[0] if args else None
            session_id = self.presence.session_of(sid)
            seq = client_seq(payload) if session_id is not None else None
            ran = False  # only a message that reached the switchboard is remembered
            try:
                self._check_message(sid, event, args)
                if session_id is None:
                    raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
                if seq is not None:
                    done, ack = self.presence.cached_ack(session_id, seq)
                    if done:  # a re-send after a resume: answered once, never run twice
                        return ack
                ran = True
                outcome = await method(session_id, payload)
            except SignalingError as e:
                result = await self._fail(sid, event, e)
            except Exception:
                log.exception("sid=%s %s failed unexpectedly", sid, event)
                error = SignalingError(ErrorCode.UNAVAILABLE, "internal error")
                result = await self._fail(sid, event, error)
            else:
                self.outbox.put(outcome.deliveries)
                result = outcome.ack
            if ran and seq is not None and session_id is not None:
                self.presence.cache_ack(session_id, seq, result)
            return result

        return handle

    def _count(self, error: SignalingError) -> None:
        self.metrics.error(error.code)
        if error.limit is not None:
            self.metrics.limit(error.limit)

    async def _fail(self, sid: str, event: str, error: SignalingError) -> object:
        self._count(error)
        log.warning("sid=%s %s refused: %s (%s)", sid, event, error.code, error.message)
        if _wants_ack.get():
            return {"error": error.to_wire()}
        await self.sio.emit("signalingError", {**error.to_wire(), "event": event}, to=sid)
        return None


def client_seq(payload: object) -> int | None:
    """The client's own number for a message (``payload.seq``), if it sent a valid one."""
    seq = payload.get("seq") if isinstance(payload, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**53:
        return seq
    return None


def _stand_in(value: object) -> object:
    if isinstance(value, bytes | bytearray):  # binary attachments count by their length
        return "b" * len(value)
    return "?"


def message_size(args: tuple[object, ...], limit: int) -> int:
    """Bytes of ``args`` as JSON (UTF-8), about what the client sent; ``limit + 1`` when it
    cannot be measured (nesting deeper than the JSON encoder follows)."""
    try:
        text = json.dumps(args, ensure_ascii=False, separators=(",", ":"), default=_stand_in)
    except (RecursionError, ValueError, TypeError):
        return limit + 1
    return len(text.encode("utf-8", "surrogatepass"))
