"""A typed async client of the callbox signaling protocol (DESIGN.md section 2).

It wraps ``socketio.AsyncClient`` (untyped) so that nothing above it sees ``Any``:

    async with SignalingClient(url, name="bot", ca=Path("ca.pem")) as client:
        offer = await client.wait_for_offer(from_user=None, within=30)
        candidates = await client.answer(offer, answer_description)
        async for event in client.events(): ...

Server events are parsed into typed values (:mod:`callbox.peer.events`) and queued in
arrival order; the waiting offers of the room are kept up to date in :attr:`offers`. Every
error ack, ``signalingError`` and refused connect raises or yields :class:`ServerRefused`
with its code.

The client declares that it can resume (``auth.resume: true`` on a first connection). A
socket that drops is reconnected by socket.io with ``auth.resume`` set to the token of the
last ``welcome``, so the server rebinds the session with its offer or call (docs/protocol.md,
"Resume after a dropped socket"); messages sent meanwhile wait for the resume. When the
server refuses the resume (it restarted, or the grace period is over) or closes the socket
itself ("io server disconnect", which socket.io does not recover from), the client connects
again as a new session, with backoff, for as long as it is open. The events say what
happened: :class:`Reconnecting`, then :class:`Resumed` or :class:`SessionLost`.

The ICE servers of the session (:attr:`ice_servers`) are refreshed at half their TTL and by
:meth:`fresh_ice_servers` before a new peer connection (PLAN decision 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import socketio

from callbox.errors import PeerTimeout
from callbox.peer.errors import ServerRefused, ServerUnreachable, SignalingLost
from callbox.peer.events import (
    CALL_EVENTS,
    AnswerReceived,
    CallEnded,
    Disconnected,
    Event,
    OfferDeclined,
    Reconnecting,
    RemoteCandidate,
    Renegotiate,
    Resumed,
    ServerError,
    SessionLost,
)
from callbox.peer.ice import IceServerList
from callbox.peer.offers import OfferBoard
from callbox.peer.transport import (
    RECONNECT_DELAY,
    RECONNECT_DELAY_MAX,
    backoff,
    preflight,
    say_goodbye,
    ssl_context,
)
from callbox.peer.wire import (
    JSON,
    OfferView,
    ProtocolViolation,
    Welcome,
    error_of,
    parse_candidates,
    parse_ice_servers,
    parse_welcome,
)
from callbox.signaling.model import Candidate, Description

__all__ = [
    "AnswerReceived",
    "CallEnded",
    "Disconnected",
    "Event",
    "OfferDeclined",
    "Reconnecting",
    "RemoteCandidate",
    "Renegotiate",
    "Resumed",
    "ServerError",
    "SessionLost",
    "SignalingClient",
    "say_goodbye",
    "ssl_context",
]

log = logging.getLogger(__name__)

# engineio.Client.reason values after which socket.io does not reconnect by itself
_CLIENT_DISCONNECT = "client disconnect"
_SERVER_DISCONNECT = "server disconnect"


class SignalingClient:
    """One socket.io connection to a callbox server, as one user in one room.

    ``resume=False``: do not declare that this client can resume; the server then ends its
    session as soon as its socket closes (a short-lived client, e.g. a connection check).
    """

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
        resume: bool = True,
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
        self._board = OfferBoard()
        self._emit_lock = asyncio.Lock()
        self._closed = False
        self._online = asyncio.Event()
        #: this socket got its welcome (online once socket.io also counts it connected: the
        #: server's welcome can come before its CONNECT answer)
        self._welcomed = False
        self._away = False
        #: SessionLost was queued for the current time away (said once per drop)
        self._lost_told = False
        self._resume: str | None = None
        #: sequence number of the last event addressed to this session (auth.lastSeq)
        self._last_seq = 0
        #: our own messages' numbers (payload.seq); how many resumes and new sessions so far
        self._send_seq = 0
        self._resumes = 0
        self._sessions = 0
        self._resume_tried: str | None = None
        self._reconnect: asyncio.Task[None] | None = None
        #: resume a dropped socket's session when the server gives a token
        self._resumes_wanted = resume
        #: declare ``auth.resume: true`` (False: not wanted, or a server older than it, which
        #: gives every client a token)
        self._declare = resume
        self._ice = IceServerList(self._fetch_ice_servers, label=self.url)
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
                self._sio = self._new_socket()
                await self._first_connect()
                self.welcome = await self._welcome
        except TimeoutError:
            await self.close()
            raise PeerTimeout(
                f"no welcome from {self.url} within {self._connect_timeout:g} s"
            ) from None
        except BaseException:
            await self.close()
            raise
        self._ice.start()
        log.info(
            "connected to %s as %s in room %s", self.url, self.welcome.user_name, self.welcome.room
        )
        return self.welcome

    def _new_socket(self) -> Any:
        sio = socketio.AsyncClient(
            # reconnects after a dropped socket, with auth.resume (see _auth_for_attempt)
            reconnection=True,
            reconnection_delay=RECONNECT_DELAY,
            reconnection_delay_max=RECONNECT_DELAY_MAX,
            http_session=self._http,
            # socketio's own SIGINT handler would cancel every task of the loop and stop
            # it; Ctrl-C belongs to the application (command.py).
            handle_sigint=False,
            logger=False,
            engineio_logger=False,
        )
        self._register(sio)
        return sio

    async def _first_connect(self) -> None:
        while True:
            try:
                await self._connect_socket()
                return
            except socketio.exceptions.ConnectionError as exc:
                refused = self._connect_error
                if refused is not None and self._declare and "resume" in refused.message:
                    # a server older than `auth.resume: true` (it takes only a token): it
                    # numbers events for every client anyway; connect without declaring
                    log.info(
                        "%s: the server does not take resume: true; not declaring it", self.url
                    )
                    self._declare = False
                    self._connect_error = None
                    await self._sio.shutdown()
                    self._sio = self._new_socket()  # a fresh one: the refused one is spent
                    continue
                if refused is not None:
                    raise refused from None
                raise ServerUnreachable(f"cannot connect to {self.url}: {exc}") from None

    async def _connect_socket(self) -> None:
        await self._sio.connect(
            self.url,
            auth=self._auth_for_attempt,
            transports=["websocket"],
            wait_timeout=self._connect_timeout,
        )

    async def _preflight(self) -> None:
        assert self._http is not None
        await preflight(self._http, self.url, self._ca)

    async def close(self) -> None:
        """Disconnect and release the HTTP session. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self._ice.close()
        reconnect, self._reconnect = self._reconnect, None
        if reconnect is not None:
            reconnect.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnect
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
        """``auth`` of each connection attempt: with the latest resume token and the sequence
        number of the last event received (the server sends the rest again); without a token,
        ``resume: true`` declares that this client can resume."""
        auth: dict[str, object] = dict(self._auth)
        self._resume_tried = self._resume
        # the first connection declares that this client can resume (docs/protocol.md)
        auth["resume"] = True
        if self._resume is not None:
            auth["resume"] = self._resume
            if self._last_seq > 0:
                auth["lastSeq"] = self._last_seq
        elif not self._declare:
            del auth["resume"]  # a server older than `resume: true` (see _first_connect)
        return auth

    @property
    def online(self) -> bool:
        """Connected now, with our session (not away, not reconnecting)."""
        return self._sio is not None and not self._away and self._online.is_set()

    @property
    def resumable(self) -> bool:
        """The server gave us a resume token: a dropped socket can take the session back."""
        return self._resume is not None

    # --- ICE servers -------------------------------------------------------------------------

    @property
    def ice_servers(self) -> tuple[JSON, ...]:
        """The session's current RTCIceServer list (credentials included)."""
        return self._ice.servers

    @property
    def ice_servers_ttl(self) -> float | None:
        """Seconds the credentials of :attr:`ice_servers` stay valid, from when they came."""
        return self._ice.ttl

    @property
    def ice_refreshes(self) -> int:
        """How many times the ICE servers were asked for again (``iceServers``)."""
        return self._ice.refreshes

    async def fresh_ice_servers(self) -> tuple[JSON, ...]:
        """The list for a new peer connection: asked for again when credentials expire."""
        return await self._ice.fresh()

    async def refresh_ice_servers(self) -> tuple[JSON, ...]:
        """Ask the server for fresh ICE servers now (``iceServers``)."""
        return await self._ice.refresh()

    async def _fetch_ice_servers(self) -> tuple[tuple[JSON, ...], float | None]:
        ack = await self._call("iceServers", {})
        return parse_ice_servers(ack)

    # --- incoming ----------------------------------------------------------------------------

    def _register(self, sio: Any) -> None:
        sio.on("connect", self._mark_online)
        sio.on("connect_error", self._on_connect_error)
        sio.on("disconnect", self._on_disconnect)
        sio.on("__disconnect_final", self._on_disconnect_final)
        handlers: dict[str, Callable[[object], None]] = {
            "welcome": self._on_welcome,
            "availableOffers": self._board.on_available,
            "newOfferAwaiting": self._board.on_new,
            "offerRemoved": self._board.on_removed,
        }
        for event, parse in CALL_EVENTS.items():
            handlers[event] = self._queued(parse)
        for event, handler in handlers.items():
            sio.on(event, self._guard(event, handler))

    def _queued(self, parse: Callable[[object], Event]) -> Callable[[object], None]:
        def put(data: object) -> None:
            event = parse(data)
            if isinstance(event, ServerError):
                log.warning("%s: %s", self.url, event.error)
            self._queue.put_nowait(event)

        return put

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
        detail = data.get("data") if isinstance(data, dict) else None
        code = detail.get("code") if isinstance(detail, dict) else None
        code = (
            code
            if isinstance(code, str)
            else "unauthorized"
            if text == "unauthorized"
            else "refused"
        )
        self._connect_error = ServerRefused(code, text, "connect")
        if code == "unauthorized" and self._away and self._resume_tried is not None:
            # the server would not resume (it restarted, or the grace period is over): the
            # next attempt starts a new session
            log.warning("%s: resume refused; connecting as a new session", self.url)
            self._resume = None
            self._resume_tried = None
            self._session_lost("the server did not resume the session")

    def _session_lost(self, reason: str) -> None:
        if not self._lost_told:
            self._lost_told = True
            self._queue.put_nowait(SessionLost(reason))

    def _mark_online(self) -> None:
        """Online: welcomed, and socket.io has the namespace (else an emit is refused)."""
        if self._welcomed and self._sio is not None and "/" in self._sio.namespaces:
            self._online.set()

    def _on_disconnect(self, reason: object = None) -> None:
        self._online.clear()
        self._welcomed = False
        why = str(reason)
        if self._closed or why == _CLIENT_DISCONNECT:
            return
        self._away = True
        self._lost_told = False
        if why == _SERVER_DISCONNECT:
            # socket.io gives up after "io server disconnect": the server ended our session on
            # purpose (it is stopping, say). Connect again ourselves, as a new session.
            log.warning("%s: the server closed the connection; connecting again", self.url)
            self._resume = None
            self._session_lost("the server closed the connection")
            if self._reconnect is None:
                self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())
        else:
            log.warning("%s: socket dropped (%s); reconnecting to resume", self.url, why)
        self._queue.put_nowait(Reconnecting(why))

    async def _reconnect_loop(self) -> None:
        attempt = 0
        try:
            while not self._closed and self._sio is not None:
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                if self._sio.connected:
                    return
                try:
                    await self._connect_socket()
                    return
                except (socketio.exceptions.ConnectionError, ValueError) as exc:
                    log.info("%s: reconnection attempt %d failed: %s", self.url, attempt, exc)
        finally:
            self._reconnect = None

    def _on_disconnect_final(self) -> None:
        self._online.clear()
        if self._closed or self._reconnect is not None:
            return  # closing, or our own reconnection follows
        self._away = False
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
        # no token (a server that does not resume this client, or we did not ask): a socket
        # that drops comes back as a new session
        self._resume = welcome.resume if self._resumes_wanted else None
        self._resume_tried = None
        self.welcome = welcome
        self._ice.update(welcome.ice_servers, welcome.ice_servers_ttl)
        if self._welcome is not None and not self._welcome.done():
            self._welcome.set_result(welcome)
        if self._away:
            self._away = False
            if welcome.resumed:
                log.info("%s: session resumed (offer %s)", self.url, welcome.offer_id)
                self._queue.put_nowait(Resumed(welcome.offer_id))
            else:
                log.info("%s: connected again as a new session", self.url)
                self._session_lost("the server started a new session")
        self._welcomed = True
        self._mark_online()

    async def next_event(self) -> Event:
        """The next call event, in arrival order."""
        return await self._queue.get()

    async def events(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()

    @property
    def offers(self) -> list[OfferView]:
        """The offers currently waiting in the room (not our own), oldest first."""
        return self._board.offers

    async def wait_for_offer(self, *, from_user: str | None, within: float) -> OfferView:
        """The first waiting offer (from ``from_user`` if given), already listed or arriving."""
        return await self._board.wait_for(from_user=from_user, within=within)

    # --- outgoing ----------------------------------------------------------------------------

    async def _wait_online(self, event: str) -> None:
        if self._away or (self._welcomed and not self._online.is_set()):
            # the socket dropped: wait for the resume (the server keeps the session
            # meanwhile); or the welcome came and socket.io has not counted the CONNECT yet
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
                # no reply on the same session, still online: the server is too slow. Else
                # the socket died with the message: send it again, or (a new session) give up
                if self._resumes == resumes and self._sessions == session and not self._away:
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
        """Send a renegotiation description during a call (an offer, or our answer to the
        other party's offer)."""
        payload: dict[str, object] = {"description": description.to_wire()}
        if offer_id is not None:
            payload["offerId"] = offer_id
        await self._call("renegotiate", payload)

    async def decline(self, offer_id: str) -> None:
        """Tell ``offer_id``'s caller that we will not answer it (it stays waiting)."""
        await self._call("decline", {"offerId": offer_id})

    async def hangup(self, offer_id: str | None) -> None:
        payload: dict[str, object] = {} if offer_id is None else {"offerId": offer_id}
        await self._call("hangup", payload)
