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
import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from callbox.config import ServerSettings
from callbox.server.metrics import Metrics
from callbox.signaling import (
    Delivery,
    ErrorCode,
    Outcome,
    SignalingError,
    Switchboard,
    parse_auth,
)

log = logging.getLogger(__name__)

_wants_ack: contextvars.ContextVar[bool] = contextvars.ContextVar("wants_ack", default=False)

ROOM_PREFIX = "room:"
CLIENT_EVENTS = ("newOffer", "sendIceCandidateToSignalingServer", "newAnswer", "hangup")


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
        try:
            await super()._handle_event_internal(server, sid, eio_sid, data, namespace, id)
        finally:
            _wants_ack.reset(token)


def room_of(room: str) -> str:
    return ROOM_PREFIX + room


class Outbox:
    """Emits deliveries in the order they were queued, from one task."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="callbox-outbox")

    def put(self, deliveries: list[Delivery]) -> None:
        for d in deliveries:
            self._queue.put_nowait(d)

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
            d = await self._queue.get()
            try:
                if d.to_sid is not None:
                    await self._sio.emit(d.event, d.payload, to=d.to_sid)
                elif d.to_room is not None:
                    await self._sio.emit(
                        d.event, d.payload, room=room_of(d.to_room), skip_sid=d.skip_sid
                    )
            except Exception:
                log.exception("could not emit %s", d.event)
            finally:
                self._queue.task_done()


Handler = Callable[[str, object], Awaitable[Outcome]]


class SignalingEvents:
    """Binds the switchboard to a Socket.IO server."""

    def __init__(
        self,
        sio: socketio.AsyncServer,
        switchboard: Switchboard,
        settings: ServerSettings,
        metrics: Metrics,
    ) -> None:
        self.sio = sio
        self.switchboard = switchboard
        self.settings = settings
        self.metrics = metrics
        self.outbox = Outbox(sio)
        sio.on("connect", self.on_connect)
        sio.on("disconnect", self.on_disconnect)
        handlers: dict[str, Handler] = {
            "newOffer": switchboard.new_offer,
            "sendIceCandidateToSignalingServer": switchboard.ice_candidate,
            "newAnswer": switchboard.answer,
            "hangup": switchboard.hangup,
        }
        for event, method in handlers.items():
            sio.on(event, self._adapter(event, method))
        sio.on("*", self.on_unknown)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        try:
            parsed = parse_auth(auth)
            if self.settings.password is not None and not hmac.compare_digest(
                (parsed.password or "").encode(), self.settings.password.encode()
            ):
                raise SignalingError(ErrorCode.UNAUTHORIZED, "unauthorized")
            session, offers = await self.switchboard.join(sid, parsed)
        except SignalingError as e:
            self.metrics.error(e.code)
            log.warning("sid=%s connect refused: %s", sid, e.message)
            message = "unauthorized" if e.code is ErrorCode.UNAUTHORIZED else e.message
            raise socketio.exceptions.ConnectionRefusedError(message) from e
        await self.sio.save_session(sid, {"room": session.room, "userName": session.user_name})
        await self.sio.enter_room(sid, room_of(session.room))
        self.metrics.sessions.inc()
        welcome = {
            "userName": session.user_name,
            "room": session.room,
            "iceServers": [s.to_wire() for s in self.settings.ice_servers],
            "resume": None,
        }
        # Emitted directly (not via the outbox) so they precede anything queued for this sid.
        await self.sio.emit("welcome", welcome, to=sid)
        await self.sio.emit("availableOffers", offers, to=sid)

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        try:
            deliveries = await self.switchboard.leave(sid)
        except SignalingError as e:
            log.warning("sid=%s leave failed: %s", sid, e.message)
            return
        self.metrics.sessions.dec()
        self.outbox.put(deliveries)

    async def on_unknown(self, event: str, sid: str, *args: object) -> object:
        self.metrics.event("unknown")
        error = SignalingError(ErrorCode.INVALID_PAYLOAD, f"unknown event {event[:64]!r}")
        return await self._fail(sid, event[:64], error)

    def _adapter(self, event: str, method: Handler) -> Callable[..., Awaitable[object]]:
        async def handle(sid: str, *args: object) -> object:
            self.metrics.event(event)
            if len(args) > 1:
                error = SignalingError(ErrorCode.INVALID_PAYLOAD, f"{event} takes one payload")
                return await self._fail(sid, event, error)
            try:
                outcome = await method(sid, args[0] if args else None)
            except SignalingError as e:
                return await self._fail(sid, event, e)
            except Exception:
                log.exception("sid=%s %s failed unexpectedly", sid, event)
                error = SignalingError(ErrorCode.UNAVAILABLE, "internal error")
                return await self._fail(sid, event, error)
            self.outbox.put(outcome.deliveries)
            return outcome.ack

        return handle

    async def _fail(self, sid: str, event: str, error: SignalingError) -> object:
        self.metrics.error(error.code)
        log.warning("sid=%s %s refused: %s (%s)", sid, event, error.code, error.message)
        if _wants_ack.get():
            return {"error": error.to_wire()}
        await self.sio.emit("signalingError", {**error.to_wire(), "event": event}, to=sid)
        return None
