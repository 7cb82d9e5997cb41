"""A session's life on this node: engine.io connections, connect (new or resumed),
disconnect (held or ended), the reaper of held sessions that never came back, and the
graceful stop.

Limits here are keyed by what a client cannot reset (docs/protocol.md, "Memory and
connection budgets"): sockets per address count the address's held sessions too; failed
connect attempts back off per address; the event rate belongs to the session and survives a
resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import socketio

from callbox.config import ServerSettings
from callbox.server.auth import Authenticator
from callbox.server.ice import IceServers
from callbox.server.metrics import Metrics
from callbox.server.routing import Local, LocalSessions, Router, estimate, room_of
from callbox.server.sio import CallboxSocketServer
from callbox.server.throttle import LogThrottle
from callbox.signaling import (
    Auth,
    ErrorCode,
    SignalingError,
    StoreUnavailable,
    Switchboard,
    parse_auth,
)
from callbox.signaling.limits import ConnectGuard, ConnectionCounter, RateLimiter, address_key
from callbox.signaling.mailbox import At, Letter, Mailbox, Ticket
from callbox.signaling.switchboard import SERVER_SHUTDOWN

log = logging.getLogger(__name__)

ENGINE_SLACK = 8
# Connect refusals whose message is the bare code (what clients switch on)
_CODE_AS_MESSAGE = {ErrorCode.UNAUTHORIZED, ErrorCode.FORBIDDEN, ErrorCode.RATE_LIMITED}


@dataclass
class Hub:
    """What the handlers of one node share. Everything that outlives a socket is in the
    switchboard's store and the mailbox; the rest is this node's view of its own sockets."""

    settings: ServerSettings
    sio: CallboxSocketServer
    switchboard: Switchboard
    mailbox: Mailbox
    router: Router
    sessions: LocalSessions
    metrics: Metrics
    node: str
    #: the store and mailbox are shared with other nodes (Redis)
    shared: bool = False
    authenticator: Authenticator = field(init=False)
    ice: IceServers = field(init=False)
    rates: RateLimiter = field(init=False)
    #: engine.io connections per address (sessions and handshakes not yet connected)
    engines: ConnectionCounter = field(init=False)
    #: socket.io sessions per address, held ones counted in (the limit clients are told of)
    addresses: ConnectionCounter = field(init=False)
    failures: ConnectGuard = field(init=False)
    logs: LogThrottle = field(init=False)
    stopping: bool = False

    def __post_init__(self) -> None:
        s = self.settings
        self.authenticator = Authenticator(s)
        self.ice = IceServers(s, self.metrics.turn_credentials.inc)
        self.rates = RateLimiter(s.event_rate, s.event_burst)
        # a few engine.io handshakes more than sessions: a client's next connection may
        # open before its last one is noticed closed; unauthenticated ones time out
        self.engines = ConnectionCounter(s.max_connections_per_ip + ENGINE_SLACK)
        self.addresses = ConnectionCounter(s.max_connections_per_ip)
        self.failures = ConnectGuard()
        self.logs = LogThrottle(log)
        self._trusted = [ipaddress.ip_network(p) for p in s.trusted_proxies]

    def count(self, error: SignalingError) -> None:
        self.metrics.error(error.code)
        if error.limit is not None:
            self.metrics.limit(error.limit)

    def _is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._trusted)

    def trusts(self, environ: dict[str, Any]) -> bool:
        """Whether the request came through a trusted proxy (its X-Forwarded-* count)."""
        return self._is_trusted(self._peer(environ))

    @staticmethod
    def _peer(environ: dict[str, Any]) -> str:
        remote = getattr(environ.get("aiohttp.request"), "remote", None)
        return remote if isinstance(remote, str) else "unknown"

    def client_address(self, environ: dict[str, Any]) -> str:
        """The client's IP: the TCP peer, or, when that peer is a trusted proxy, the last
        X-Forwarded-For entry no trusted proxy added. (engine.io's REMOTE_ADDR is a
        placeholder under aiohttp.)"""
        peer = self._peer(environ)
        if not self._is_trusted(peer):
            return peer
        hops = [h.strip() for h in str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
        for hop in reversed([h for h in hops if h]):
            if not self._is_trusted(hop):
                return hop
        return peer


class Lifecycle:
    """Connect, resume, disconnect, reap, stop."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._tasks: set[asyncio.Task[None]] = set()
        hub.sio.on("connect", self.on_connect)
        hub.sio.on("disconnect", self.on_disconnect)

    # --- engine.io (the sio.Guard protocol) -------------------------------------------

    async def engine_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        hub = self.hub
        if hub.stopping:
            return False
        address = address_key(hub.client_address(environ))
        environ["callbox.address"] = address
        log.debug("engine.io %s from %s", eio_sid, address)
        try:
            held = await hub.mailbox.held_from(address)
        except StoreUnavailable:
            held = 0
        try:
            hub.engines.acquire(eio_sid, address, held=held)
        except SignalingError as e:
            hub.count(e)
            hub.logs.warning(f"full:{address}", "address %s refused: %s", address, e.message)
            return False
        hub.sio.remember_address(eio_sid, address)
        return True

    def engine_disconnect(self, eio_sid: str) -> None:
        self.hub.engines.release(eio_sid)

    def refused(self, eio_sid: str, kind: str, detail: str) -> None:
        hub = self.hub
        hub.metrics.dropped.labels(why=kind).inc()
        address = hub.sio.address_of(eio_sid) or "?"
        hub.logs.warning(
            f"{kind}:{address}", "connection %s from %s closed: %s", eio_sid, address, detail
        )

    # --- socket.io connect -------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        hub = self.hub
        address = str(environ.get("callbox.address") or address_key(hub.client_address(environ)))
        try:
            hub.failures.check(address)
            parsed = parse_auth(auth)
            checked = self._check(parsed, address)
            held = await hub.mailbox.held_from(address)
            hub.addresses.acquire(sid, address, held=held - (parsed.resume is not None))
            try:
                if parsed.resume is not None:
                    local, letters, token, offer_id = await self._resume(
                        sid, parsed, checked, address
                    )
                else:
                    local, token = await self._join(sid, checked, address)
                    letters, offer_id = [], None
            except BaseException:
                hub.addresses.release(sid)
                raise
        except SignalingError as e:
            hub.count(e)
            hub.logs.warning(
                f"refused:{address}", "sid=%s from %s refused: %s (%s)", sid, address, e.code,
                e.message,
            )  # fmt: skip
            message = str(e.code) if e.code in _CODE_AS_MESSAGE else e.message
            raise socketio.exceptions.ConnectionRefusedError(message, e.to_wire()) from e
        eio_sid = hub.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None:
            hub.sio.connected(eio_sid)
        hub.sessions.add(local)
        session = local.session
        await hub.sio.enter_room(sid, room_of(session.room))
        if hub.router.bus is not None:
            await hub.router.bus.join(session.room)
        ice = hub.ice.for_session(session.sid, environ.get("HTTP_HOST"))
        welcome: dict[str, object] = {
            "userName": session.user_name,
            "room": session.room,
            "iceServers": ice.servers,
            "iceServersTtl": ice.ttl,
            "resume": token,
            "resumed": parsed.resume is not None,
            "offerId": offer_id,
        }
        await hub.sio.emit("welcome", welcome, to=sid)
        offers = await hub.switchboard.waiting_views(session)
        eio_sid = hub.sio.manager.eio_sid_from_sid(sid, "/")
        if eio_sid is not None and not hub.sio.fits(eio_sid, estimate(offers)):
            return  # a client that does not take what it is sent: closed
        await hub.sio.emit("availableOffers", offers, to=sid)
        await hub.router.open(local, letters)

    def _check(self, parsed: Auth, address: str) -> Auth:
        try:
            return self.hub.authenticator.check(parsed)
        except SignalingError as e:
            if e.code is ErrorCode.UNAUTHORIZED:
                self.hub.failures.failed(address)
            raise

    async def _join(self, sid: str, auth: Auth, address: str) -> tuple[Local, str | None]:
        hub = self.hub
        session, _ = await hub.switchboard.join(sid, auth)
        at = At(hub.node, sid)
        try:
            token = await hub.mailbox.open(
                session.sid,
                at,
                resumable=auth.resumable,
                address=address,
                identity=auth.identity,
                room=session.room,
            )
        except BaseException:
            await hub.switchboard.leave(session.sid)
            raise
        return Local(session, at, auth.resumable, address), token

    async def _resume(
        self, sid: str, parsed: Auth, checked: Auth, address: str
    ) -> tuple[Local, list[Letter], str | None, str | None]:
        hub = self.hub
        at = At(hub.node, sid)
        try:
            ticket = await hub.mailbox.resume(
                parsed.resume or "",
                at,
                parsed.last_seq,
                identity=checked.identity,
                room=checked.pinned_room,
            )
        except SignalingError as e:
            if e.code is ErrorCode.UNAUTHORIZED:
                hub.failures.failed(address)
            raise
        session = await hub.switchboard.store.get_session(ticket.session_id)
        if session is None or ticket.lost:
            why = "its session is gone" if session is None else "events it missed are gone"
            await self.finish(ticket.session_id)
            raise SignalingError(ErrorCode.UNAUTHORIZED, f"cannot resume: {why}")
        await self._replace(ticket)
        if ticket.rate is not None:
            tokens, when = ticket.rate
            hub.rates.restore(ticket.session_id, tokens, time.time() - when)
        first = ticket.letters[0].seq if ticket.letters else ticket.next_seq
        local = Local(session, at, True, address, next_seq=first, ack_highest=ticket.ack_highest)
        hub.metrics.resumes.inc()
        log.info("session=%s resumes on sid=%s", ticket.session_id, sid)
        offer_id = await hub.switchboard.store.current_offer_id(ticket.session_id)
        return local, ticket.letters, ticket.token, offer_id

    async def _replace(self, ticket: Ticket) -> None:
        """The session's old socket still looked connected (a silent drop, e.g. a Wi-Fi
        change without a TCP reset): close it, without ending the session."""
        old = ticket.replaced
        if old is None:
            return
        log.info("session=%s: old socket %s replaced on resume", ticket.session_id, old.sid)
        if old.node == self.hub.node:
            local = self.hub.sessions.by_sid.get(old.sid)
            if local is not None:
                local.replaced = True
            eio_sid = self.hub.sio.manager.eio_sid_from_sid(old.sid, "/")
            if eio_sid is not None:
                self.spawn(self.hub.sio.kill(eio_sid))
        # another node's socket: that node sees the session moved when it next posts to or
        # detaches from it (the mailbox compares sockets), and its client is gone anyway

    # --- disconnect ---------------------------------------------------------------------

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        hub = self.hub
        hub.addresses.release(sid)
        local = hub.sessions.remove(sid)
        if local is not None and hub.router.bus is not None:
            await hub.router.bus.leave(local.session.room)
        if local is None or local.replaced or hub.stopping:
            return
        session_id = local.session_id
        intended = reason in (hub.sio.reason.CLIENT_DISCONNECT, hub.sio.reason.SERVER_DISCONNECT)
        grace = hub.settings.resume_grace
        tokens = hub.rates.snapshot(session_id)
        hub.rates.forget(session_id)
        try:
            if not intended and local.resumable and grace > 0:
                rate = (tokens, time.time()) if tokens is not None else None
                until = time.time() + grace
                if await hub.mailbox.detach(session_id, local.at, hold_until=until, rate=rate):
                    log.info("session=%s socket dropped (%s): held for resume", session_id, reason)
                return
            if await hub.mailbox.detach(session_id, local.at, hold_until=None, rate=None):
                await hub.router.deliver(await hub.switchboard.leave(session_id))
        except SignalingError as e:
            log.warning("session=%s: could not end cleanly: %s", session_id, e.message)

    async def finish(self, session_id: str, reason: str = "peer-disconnected") -> None:
        """End a session for good: its offer or call, then its mailbox."""
        hub = self.hub
        try:
            deliveries = await hub.switchboard.leave(session_id, reason)
            await hub.mailbox.drop(session_id)
        except SignalingError as e:
            log.warning("session=%s: could not end: %s", session_id, e.message)
            return
        await hub.router.deliver(deliveries)

    async def reap(self) -> None:
        """End the held sessions whose client did not come back in time (any node may)."""
        for session_id in await self.hub.mailbox.expired(time.time()):
            log.info("session=%s did not resume in time", session_id)
            await self.finish(session_id)

    async def run_reaper(self) -> None:
        interval = min(1.0, max(0.05, self.hub.settings.resume_grace / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap()
            except SignalingError as e:
                log.warning("reaper: %s", e.message)
            except Exception:
                log.exception("reaper failed")

    # --- stop ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """The node is stopping: sessions that can resume elsewhere are held (with a shared
        store), the others end (``callEnded`` reason ``server-shutdown`` to both parties),
        and every connection closes like a dropped network, so clients reconnect by
        themselves (never socket.io's DISCONNECT, after which they would not)."""
        hub = self.hub
        hub.stopping = True
        grace = hub.settings.resume_grace
        for local in list(hub.sessions.by_session.values()):
            hub.sessions.remove(local.at.sid)
            session_id = local.session_id
            with contextlib.suppress(SignalingError):
                if hub.shared and local.resumable and grace > 0:
                    until = time.time() + grace
                    await hub.mailbox.detach(session_id, local.at, hold_until=until, rate=None)
                elif await hub.mailbox.detach(session_id, local.at, hold_until=None, rate=None):
                    deliveries = await hub.switchboard.leave(session_id, SERVER_SHUTDOWN)
                    await hub.router.deliver(deliveries)
                    # its own callEnded was for a mailbox just dropped: emit it directly
                    for d in deliveries:
                        if d.to_sid == session_id:
                            await hub.sio.emit(d.event, d.payload, to=local.at.sid)
        await hub.sio.close_all(grace=min(2.0, hub.settings.drain_timeout / 3))

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
