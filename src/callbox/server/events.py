"""Socket.IO event handlers: thin adapters from client events to Switchboard calls.

Each handler parses nothing itself: it finds the sender's session (kept from the connect),
checks the per-session rate and the message's size (measured on the raw packet), hands the
raw payload to the switchboard, and turns the outcome into an ack plus deliveries (routed by
:class:`~callbox.server.routing.Router`). Errors go back to the sender only: as
``{"error": {code, message}}`` when the event asked for an ack, else as a ``signalingError``
event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from callbox.server.lifecycle import Hub
from callbox.server.routing import Local, weigh
from callbox.server.sio import RESERVED, packet_bytes, wants_ack
from callbox.signaling import ErrorCode, Outcome, Session, SignalingError

log = logging.getLogger(__name__)

Handler = Callable[[Session, object], Awaitable[Outcome]]


def client_seq(payload: object) -> int | None:
    """The client's own number for a message (``payload.seq``), if it sent a valid one."""
    seq = payload.get("seq") if isinstance(payload, dict) else None
    if isinstance(seq, int) and not isinstance(seq, bool) and 0 < seq < 2**53:
        return seq
    return None


def _follow_call(local: Local, event: str, outcome: Outcome) -> None:
    """Keep the session's current offer or call as this node saw it."""
    if event == "newOffer" and isinstance(outcome.ack, dict):
        local.offer_id = str(outcome.ack.get("offerId"))
    elif event == "newAnswer":
        for d in outcome.deliveries:
            if d.event == "answerResponse" and isinstance(d.payload, dict):
                local.offer_id = str(d.payload.get("offerId"))
    elif event == "hangup":
        local.offer_id = None


class SignalingEvents:
    """Binds the switchboard's methods to client events."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        board = hub.switchboard
        handlers: dict[str, Handler] = {
            "newOffer": board.new_offer,
            "sendIceCandidateToSignalingServer": board.ice_candidate,
            "newAnswer": board.answer,
            "hangup": board.hangup,
            "renegotiate": board.renegotiate,
            "decline": board.decline,
            "iceServers": self.ice_servers,
        }
        for event, method in handlers.items():
            hub.sio.on(event, self._adapter(event, method))
        hub.sio.on("*", self.on_unknown)
        hub.sio.on(RESERVED, self.on_reserved)

    async def ice_servers(self, session: Session, payload: object) -> Outcome:
        """``iceServers``: fresh ICE servers (and TURN credentials) for this session."""
        return Outcome(self.hub.ice.for_user(session.user_name).to_wire())

    async def on_unknown(self, event: str, sid: str, *args: object) -> object:
        hub = self.hub
        hub.metrics.event("unknown")
        name = event[:64]
        local = hub.sessions.by_sid.get(sid)
        try:
            hub.rates.take(local.session_id if local else sid)
        except SignalingError as e:
            return await self._fail(sid, name, e)
        error = SignalingError(ErrorCode.INVALID_PAYLOAD, f"unknown event {name!r}")
        return await self._fail(sid, name, error)

    async def on_reserved(self, sid: str, event: object = "?", *args: object) -> object:
        """A client event named like a reserved one (or not named by a string)."""
        return await self.on_unknown(event if isinstance(event, str) else "?", sid, *args)

    def _check_message(self, session_id: str, event: str, args: tuple[object, ...]) -> None:
        """The per-session rate and the whole message's size, before any parsing."""
        self.hub.rates.take(session_id)
        limit = self.hub.settings.max_message_bytes
        if packet_bytes.get() > limit:
            raise SignalingError(
                ErrorCode.TOO_LARGE, f"{event} is larger than {limit} bytes", limit="message"
            )
        if len(args) > 1:
            raise SignalingError(ErrorCode.INVALID_PAYLOAD, f"{event} takes one payload")

    def _adapter(self, event: str, method: Handler) -> Callable[..., Awaitable[object]]:
        hub = self.hub
        timed = event == "newAnswer"

        async def handle(sid: str, *args: object) -> object:
            hub.metrics.event(event)
            started = time.perf_counter()
            payload = args[0] if args else None
            local = hub.sessions.by_sid.get(sid)
            seq = client_seq(payload) if local is not None and local.resumable else None
            ran = False  # only a message that reached the switchboard is remembered
            try:
                if local is None:
                    raise SignalingError(ErrorCode.UNAUTHORIZED, "this connection has no session")
                self._check_message(local.session_id, event, args)
                if seq is not None and seq <= local.ack_highest:
                    done, ack = await hub.mailbox.cached_ack(local.session_id, seq)
                    if done:  # a re-send after a resume: answered once, never run twice
                        return ack
                ran = True
                outcome = await method(local.session, payload)
                await hub.router.deliver(outcome.deliveries)
                result = outcome.ack
                _follow_call(local, event, outcome)
                for d in outcome.deliveries:
                    hub.metrics.relayed.labels(event=d.event).inc()
                if timed:
                    hub.metrics.answer_latency.observe(time.perf_counter() - started)
            except SignalingError as e:
                result = await self._fail(sid, event, e)
            except Exception:
                log.exception("sid=%s %s failed unexpectedly", sid, event)
                error = SignalingError(ErrorCode.UNAVAILABLE, "internal error")
                result = await self._fail(sid, event, error)
            if ran and seq is not None and local is not None:
                local.ack_highest = max(local.ack_highest, seq)
                try:
                    await hub.mailbox.remember_ack(local.session_id, seq, result, weigh(result))
                except SignalingError as e:
                    log.warning("sid=%s ack #%d not kept: %s", sid, seq, e.message)
            return result

        return handle

    async def _fail(self, sid: str, event: str, error: SignalingError) -> object:
        hub = self.hub
        hub.count(error)
        hub.logs.warning(
            f"event:{sid}", "sid=%s %s refused: %s (%s)", sid, event, error.code, error.message
        )
        if wants_ack.get():
            return {"error": error.to_wire()}
        await hub.sio.emit("signalingError", {**error.to_wire(), "event": event}, to=sid)
        return None
