"""A typed async client of the callbox signaling protocol (DESIGN.md section 2).

It wraps ``socketio.AsyncClient`` (untyped) so that nothing above it sees ``Any``:

    async with SignalingClient(url, name="bot", ca=Path("ca.pem")) as client:
        offer = await client.wait_for_offer(from_user=None, within=30)
        candidates = await client.answer(offer.offer_id, offer.offerer_user_name, sdp)
        async for event in client.events(): ...

Server events are parsed into typed values and queued in arrival order; the waiting offers of
the room are kept up to date in :attr:`offers`. Every error ack, ``signalingError`` and refused
connect raises or yields :class:`ServerRefused` with its code.

A socket that drops is reconnected by socket.io with ``auth.resume`` (the token of the last
``welcome``), so the server rebinds the session with its offer or call (docs/protocol.md,
"Resume after a dropped socket"); messages sent meanwhile wait for the resume. The events say
what happened: :class:`Reconnecting`, then :class:`Resumed` or :class:`SessionLost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import socketio

from callbox.errors import PeerTimeout
from callbox.peer.errors import ServerRefused, ServerUnreachable, SignalingLost, TlsUntrusted
from callbox.peer.wire import (
    OfferView,
    ProtocolViolation,
    Welcome,
    error_of,
    parse_candidate,
    parse_candidates,
    parse_description,
    parse_offer_view,
    parse_offer_views,
    parse_welcome,
)
from callbox.signaling.model import Candidate, Description

log = logging.getLogger(__name__)

# socket.io reconnects after any other disconnect reason (engineio.Client.reason)
_NO_RECONNECT = {"client disconnect", "server disconnect"}


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """``answerResponse``: our offer was answered."""

    offer: OfferView


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """``receivedIceCandidateFromServer``."""

    candidate: Candidate


@dataclass(frozen=True, slots=True)
class CallEnded:
    """``callEnded``: the other party hung up or disconnected."""

    offer_id: str
    reason: str
    by: str | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """``signalingError`` (an error for an event sent without an ack)."""

    error: ServerRefused


@dataclass(frozen=True, slots=True)
class Renegotiate:
    """``renegotiate``: the caller's new offer (an ICE restart) or the answerer's answer."""

    offer_id: str
    description: Description
    from_user: str | None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The socket.io connection ended for good (no reconnection follows)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The socket dropped; socket.io is reconnecting to resume the session."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """The socket is back and the server resumed the session (its offer or call kept)."""

    offer_id: str | None


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The socket is back but as a new session: the server ended the old one (the resume
    was refused, e.g. the grace period was over). Its offer or call is gone."""

    reason: str


Event = (
    AnswerReceived
    | RemoteCandidate
    | Renegotiate
    | CallEnded
    | ServerError
    | Disconnected
    | Reconnecting
    | Resumed
    | SessionLost
)


def ssl_context(ca: Path | None) -> ssl.SSLContext:
    """Verify the server against ``ca`` (a PEM bundle) if given, else the system store."""
    if ca is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca))
    except (OSError, ssl.SSLError) as exc:
        raise ServerUnreachable(f"cannot load CA file {ca}: {exc}") from exc


async def say_goodbye(sio: socketio.AsyncClient) -> None:
    """Make a disconnect deliberate in the server's eyes.

    python-socketio queues its DISCONNECT packet and closes the websocket at once, so the
    packet is often lost: the server then sees a dropped socket and holds the session for a
    resume (DESIGN's grace period) instead of ending it. Send it first and wait until it has
    been written.
    """
    if sio.connected:
        await sio._send_packet(sio.packet_class(socketio.packet.DISCONNECT, namespace="/"))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await sio.eio.queue.join()


class SignalingClient:
    """One socket.io connection to a callbox server, as one user in one room."""

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        password: str | None = None,
        room: str | None = None,
        ca: Path | None = None,
        connect_timeout: float = 10.0,
        ack_timeout: float = 10.0,
        resume_wait: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._auth: dict[str, str] = {}
        for key, value in (("userName", name), ("password", password), ("room", room)):
            if value is not None:
                self._auth[key] = value
        self._ca = ca
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self.resume_wait = resume_wait
        """How long a message waits for a dropped socket to come back before failing."""
        self._http: aiohttp.ClientSession | None = None
        self._sio: Any = None
        self._queue: asyncio.Queue[Event] = asyncio.Queue()
        self._welcome: asyncio.Future[Welcome] | None = None
        self._connect_error: ServerRefused | None = None
        self._offers: dict[str, OfferView] = {}
        self._offers_changed = asyncio.Event()
        self._emit_lock = asyncio.Lock()
        self._closed = False
        self._online = asyncio.Event()
        self._away = False
        self._resume: str | None = None
        #: sequence number of the last event addressed to this session (auth.lastSeq)
        self._last_seq = 0
        #: our own messages' numbers (payload.seq); how many resumes and new sessions so far
        self._send_seq = 0
        self._resumes = 0
        self._sessions = 0
        self._resume_tried: str | None = None
        self.welcome: Welcome | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> SignalingClient:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> Welcome:
        """Connect, authenticate and wait for ``welcome``; raise a :class:`PeerError` if not."""
        loop = asyncio.get_running_loop()
        self._welcome = loop.create_future()
        connector = aiohttp.TCPConnector(ssl=ssl_context(self._ca))
        self._http = aiohttp.ClientSession(connector=connector)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await self._preflight()
                # handle_sigint=False: socketio's own SIGINT handler would cancel every task
                # of the loop and stop it; Ctrl-C belongs to the application (command.py).
                self._sio = socketio.AsyncClient(
                    # reconnects after a dropped socket, with auth.resume (see _auth)
                    reconnection=True,
                    reconnection_delay=0.5,
                    reconnection_delay_max=5,
                    http_session=self._http,
                    handle_sigint=False,
                    logger=False,
                    engineio_logger=False,
                )
                self._register()
                try:
                    await self._sio.connect(
                        self.url,
                        auth=self._auth_for_attempt,
                        transports=["websocket"],
                        wait_timeout=self._connect_timeout,
                    )
                except socketio.exceptions.ConnectionError as exc:
                    if self._connect_error is not None:
                        raise self._connect_error from None
                    raise ServerUnreachable(f"cannot connect to {self.url}: {exc}") from None
                self.welcome = await self._welcome
        except TimeoutError:
            await self.close()
            raise PeerTimeout(
                f"no welcome from {self.url} within {self._connect_timeout:g} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        log.info(
            "connected to %s as %s in room %s", self.url, self.welcome.user_name, self.welcome.room
        )
        return self.welcome

    async def _preflight(self) -> None:
        """GET /healthz with our SSL context: gives a clear TLS or reachability error."""
        assert self._http is not None
        try:
            async with self._http.get(f"{self.url}/healthz") as response:
                await response.read()
        except aiohttp.ClientConnectorCertificateError as exc:
            raise TlsUntrusted(
                f"TLS certificate of {self.url} is not trusted"
                f"{' by ' + str(self._ca) if self._ca else ''}: {exc.certificate_error}"
            ) from None
        except aiohttp.ClientSSLError as exc:
            raise TlsUntrusted(f"TLS handshake with {self.url} failed: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ServerUnreachable(f"cannot reach {self.url}: {exc}") from None

    async def close(self) -> None:
        """Disconnect and release the HTTP session. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        sio, self._sio = self._sio, None
        if sio is not None:
            try:
                await say_goodbye(sio)
                await sio.shutdown()  # also stops a reconnection in progress
            except Exception:  # noqa: BLE001 - closing must not fail
                log.debug("socket.io disconnect failed", exc_info=True)
        http, self._http = self._http, None
        if http is not None:
            await http.close()
        if self._welcome is not None and not self._welcome.done():
            self._welcome.cancel()

    def _auth_for_attempt(self) -> dict[str, object]:
        """``auth`` of each connection attempt: with the latest resume token, if any, and the
        sequence number of the last event received (the server sends the rest again)."""
        auth: dict[str, object] = dict(self._auth)
        self._resume_tried = self._resume
        # the first connection declares that this client can resume (docs/protocol.md)
        auth["resume"] = True
        if self._resume is not None:
            auth["resume"] = self._resume
            if self._last_seq > 0:
                auth["lastSeq"] = self._last_seq
        return auth

    # --- incoming ----------------------------------------------------------------------------

    def _register(self) -> None:
        sio = self._sio
        sio.on("connect_error", self._on_connect_error)
        sio.on("disconnect", self._on_disconnect)
        sio.on("__disconnect_final", self._on_disconnect_final)
        sio.on("welcome", self._guard("welcome", self._on_welcome))
        sio.on("availableOffers", self._guard("availableOffers", self._on_available))
        sio.on("newOfferAwaiting", self._guard("newOfferAwaiting", self._on_new_offers))
        sio.on("offerRemoved", self._guard("offerRemoved", self._on_offer_removed))
        sio.on("answerResponse", self._guard("answerResponse", self._on_answer))
        sio.on(
            "receivedIceCandidateFromServer",
            self._guard("receivedIceCandidateFromServer", self._on_candidate),
        )
        sio.on("renegotiate", self._guard("renegotiate", self._on_renegotiate))
        sio.on("callEnded", self._guard("callEnded", self._on_call_ended))
        sio.on("signalingError", self._guard("signalingError", self._on_signaling_error))

    def _guard(self, event: str, handler: Callable[[object], None]) -> Callable[..., None]:
        def run(data: object = None, *rest: object) -> None:
            seq = rest[0] if rest else None
            if isinstance(seq, int) and not isinstance(seq, bool):
                if seq <= self._last_seq:
                    return  # handled before a resume already
                self._last_seq = seq
            try:
                handler(data)
            except ProtocolViolation as exc:
                log.warning("%s: ignoring malformed %s from server: %s", self.url, event, exc)

        return run

    def _on_connect_error(self, data: object = None) -> None:
        message = data.get("message") if isinstance(data, dict) else data
        text = str(message or "connection refused")
        code = "unauthorized" if text == "unauthorized" else "refused"
        self._connect_error = ServerRefused(code, text, "connect")
        if code == "unauthorized" and self._away and self._resume_tried is not None:
            # the server would not resume: the next attempt starts a new session
            log.warning("%s: resume refused; reconnecting as a new session", self.url)
            self._resume = None
            self._resume_tried = None
            self._queue.put_nowait(SessionLost("the server did not resume the session"))

    def _on_disconnect(self, reason: object = None) -> None:
        self._online.clear()
        if self._closed or str(reason) in _NO_RECONNECT:
            return
        log.warning("%s: socket dropped (%s); reconnecting to resume", self.url, reason)
        self._away = True
        self._queue.put_nowait(Reconnecting(str(reason)))

    def _on_disconnect_final(self) -> None:
        self._online.clear()
        self._away = False
        if not self._closed:
            log.info("%s: disconnected", self.url)
            self._queue.put_nowait(Disconnected("connection closed"))

    def _on_welcome(self, data: object) -> None:
        welcome = parse_welcome(data)
        if welcome.resumed:
            self._resumes += 1
        else:
            self._last_seq = 0  # a new session numbers its events from 1 again, both ways
            self._send_seq = 0
            self._sessions += 1
        self._resume = welcome.resume
        self._resume_tried = None
        self.welcome = welcome
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_result(welcome)
        if self._away:
            self._away = False
            if welcome.resumed:
                log.info("%s: session resumed (offer %s)", self.url, welcome.offer_id)
                self._queue.put_nowait(Resumed(welcome.offer_id))
            else:
                self._queue.put_nowait(SessionLost("the server started a new session"))
        self._online.set()

    def _set_offers(self, update: Callable[[dict[str, OfferView]], None]) -> None:
        update(self._offers)
        self._offers_changed.set()

    @staticmethod
    def _drop(offers: dict[str, OfferView], offer_id: str) -> None:
        offers.pop(offer_id, None)

    def _on_available(self, data: object) -> None:
        views = parse_offer_views(data)
        self._set_offers(lambda offers: offers.update({v.offer_id: v for v in views}))

    def _on_new_offers(self, data: object) -> None:
        views = parse_offer_views(data if isinstance(data, list) else [data])
        self._set_offers(lambda offers: offers.update({v.offer_id: v for v in views}))

    def _on_offer_removed(self, data: object) -> None:
        offer_id = data.get("offerId") if isinstance(data, dict) else None
        if isinstance(offer_id, str):
            self._set_offers(lambda offers: self._drop(offers, offer_id))

    def _on_answer(self, data: object) -> None:
        self._queue.put_nowait(AnswerReceived(parse_offer_view(data)))

    def _on_candidate(self, data: object) -> None:
        self._queue.put_nowait(RemoteCandidate(parse_candidate(data)))

    def _on_renegotiate(self, data: object) -> None:
        d = data if isinstance(data, dict) else {}
        sender = d.get("from")
        self._queue.put_nowait(
            Renegotiate(
                str(d.get("offerId", "")),
                parse_description(d.get("description"), "renegotiate"),
                sender if isinstance(sender, str) else None,
            )
        )

    def _on_call_ended(self, data: object) -> None:
        d = data if isinstance(data, dict) else {}
        by = d.get("by")
        self._queue.put_nowait(
            CallEnded(
                str(d.get("offerId", "")),
                str(d.get("reason", "hangup")),
                by if isinstance(by, str) else None,
            )
        )

    def _on_signaling_error(self, data: object) -> None:
        d = data if isinstance(data, dict) else {}
        refused = ServerRefused(
            str(d.get("code", "unknown")), str(d.get("message", "")), str(d.get("event", ""))
        )
        log.warning("%s: %s", self.url, refused)
        self._queue.put_nowait(ServerError(refused))

    async def next_event(self) -> Event:
        """The next call event, in arrival order."""
        return await self._queue.get()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()

    @property
    def offers(self) -> list[OfferView]:
        """The offers currently waiting in the room (not our own), oldest first."""
        return list(self._offers.values())

    async def wait_for_offer(self, *, from_user: str | None, within: float) -> OfferView:
        """The first waiting offer (from ``from_user`` if given), already listed or arriving."""

        def match() -> OfferView | None:
            for view in self._offers.values():
                if view.answerer_user_name is None and (
                    from_user is None or view.offerer_user_name == from_user
                ):
                    return view
            return None

        try:
            async with asyncio.timeout(within):
                while (found := match()) is None:
                    # cleared right after checking, with no await in between: no lost update
                    self._offers_changed.clear()
                    await self._offers_changed.wait()
                return found
        except TimeoutError:
            who = f" from {from_user}" if from_user else ""
            raise PeerTimeout(f"no offer{who} within {within:g} s") from None

    # --- outgoing ----------------------------------------------------------------------------

    async def _wait_online(self, event: str) -> None:
        if self._away:
            # the socket dropped: wait for the resume (the server keeps the session meanwhile)
            try:
                async with asyncio.timeout(self.resume_wait):
                    await self._online.wait()
            except TimeoutError:
                lost = f"cannot send {event}: the connection did not come back"
                raise SignalingLost(lost) from None

    async def _call(self, event: str, payload: object) -> object:
        """Send and return the ack. Messages are numbered (``payload.seq``): one that was in
        flight when the socket died is sent again after the resume, and the server, which
        remembers what it handled, answers it without running it twice."""
        if self._sio is None:
            raise SignalingLost(f"cannot send {event}: not connected")
        self._send_seq += 1
        seq = self._send_seq
        body = {**payload, "seq": seq} if isinstance(payload, dict) else payload
        session = self._sessions
        while True:
            await self._wait_online(event)
            if self._sessions != session:
                raise SignalingLost(f"cannot send {event}: the server ended the session")
            resumes = self._resumes
            try:
                async with self._emit_lock:
                    ack = await self._sio.call(event, body, timeout=self._ack_timeout)
                break
            except socketio.exceptions.TimeoutError:
                if self._resumes == resumes and not self._away:
                    late = f"no reply to {event} within {self._ack_timeout:g} s"
                    raise PeerTimeout(late) from None
            except socketio.exceptions.BadNamespaceError:
                if not self._away:
                    raise SignalingLost(f"cannot send {event}: connection lost") from None
            log.info(
                "%s: %s #%d went out as the socket died: sending again",
                self.url,
                event,
                self._send_seq,
            )
        error = error_of(ack)
        if error is not None:
            raise ServerRefused(error[0], error[1], event)
        return ack

    async def offer(self, sdp: str) -> str:
        """Post our offer; return its ``offerId``."""
        ack = await self._call("newOffer", {"type": "offer", "sdp": sdp})
        offer_id = ack.get("offerId") if isinstance(ack, dict) else None
        if not isinstance(offer_id, str):
            raise ProtocolViolation("newOffer ack has no offerId")
        log.info("%s: posted offer %s", self.url, offer_id)
        return offer_id

    async def send_candidate(self, candidate: Candidate, offer_id: str | None) -> None:
        payload: dict[str, object] = {"iceCandidate": candidate.to_wire()}
        if offer_id is not None:
            payload["offerId"] = offer_id
        await self._call("sendIceCandidateToSignalingServer", payload)

    async def answer(self, offer: OfferView, answer: Description) -> list[Candidate]:
        """Claim ``offer`` with our answer; return the caller's buffered candidates."""
        ack = await self._call(
            "newAnswer",
            {
                "offerId": offer.offer_id,
                "offererUserName": offer.offerer_user_name,
                "answer": answer.to_wire(),
            },
        )
        log.info("%s: answered offer %s", self.url, offer.offer_id)
        return parse_candidates(ack)

    async def renegotiate(self, description: Description, offer_id: str | None) -> None:
        """Send a new offer (caller) or the answer to one (answerer) during a call."""
        payload: dict[str, object] = {"description": description.to_wire()}
        if offer_id is not None:
            payload["offerId"] = offer_id
        await self._call("renegotiate", payload)

    async def hangup(self, offer_id: str | None) -> None:
        payload: dict[str, object] = {} if offer_id is None else {"offerId": offer_id}
        await self._call("hangup", payload)
