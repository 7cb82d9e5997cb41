"""callbox's python-socketio server: with its engine.io server (server/engine.py), its client
manager (server/manager.py) and engine.io's sockets (server/eiosocket.py), the one place that
reaches into python-socketio's and python-engineio's internals (pinned below their next major
versions), each reach explained.
tests/integration/test_hardening*.py and test_fuzz.py pin down what is relied on.

What it adds, and where python-socketio offers no public hook for it:

- whether the client asked for an ack (``_handle_event_internal`` is the only place that sees
  the packet id), so an error becomes an error ack or a ``signalingError`` event;
- binary packets refused at their header, before any attachment is buffered
  (``_handle_eio_message``); the protocol is JSON only;
- malformed packets counted and the socket closed, with one throttled log line instead of a
  traceback (``_handle_eio_message``);
- the raw size of each message, measured before it is decoded (``_handle_eio_message``);
- engine.io connections refused per address, and a deadline for the socket.io CONNECT after
  the engine.io handshake (``_handle_eio_connect`` / ``_handle_eio_disconnect``);
- a send budget: a socket whose unsent data (engine.io's queue plus the transport's write
  buffer) would pass its budget is disconnected (``_send_packet`` for acks; the manager for
  events); :class:`~callbox.server.manager.CallboxManager` also emits to each recipient
  without a task per recipient (python-socketio's manager makes one), the packet encoded
  once per broadcast;
- a message reaches its handler without the per-message closures and coroutine checks of
  python-socketio's and python-engineio's ``_trigger_event`` (each kept for other events);
- engine.io's sockets wait for what to send without a task and a timer per packet
  (``eiosocket.py``, given its class here, at the connect event);
- closing a socket at the transport level, without socket.io's DISCONNECT packet (after
  which socket.io clients never reconnect): for a graceful restart.
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import inspect
import logging
import struct
import termios
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import engineio
import socketio
from engineio import packet as eio_packet
from socketio import packet as sio_packet

from callbox.server.eiosocket import adopt, put_each
from callbox.server.engine import EngineServer
from callbox.server.ledger import Ledger
from callbox.server.manager import CallboxManager
from callbox.server.outqueue import OutQueue

log = logging.getLogger(__name__)

#: whether the event being handled asked for an ack
wants_ack: contextvars.ContextVar[bool] = contextvars.ContextVar("wants_ack", default=False)
#: bytes of the raw socket.io packet being handled (what the client sent)
packet_bytes: contextvars.ContextVar[int] = contextvars.ContextVar("packet_bytes", default=0)

RESERVED = "\x00reserved"  # internal event the server re-routes reserved names to
# Names python-socketio dispatches to handlers of their own: a client *event* with one of these
# names would otherwise run our connect/disconnect handlers with a payload for an environ, or
# the catch-all handler without the event name.
RESERVED_EVENTS = frozenset({"connect", "disconnect", "connect_error", "*", RESERVED})
_BINARY_TYPES = (str(sio_packet.BINARY_EVENT), str(sio_packet.BINARY_ACK))
_EVENT = str(sio_packet.EVENT)


class Guard(Protocol):
    """What the application decides for the engine.io layer."""

    async def engine_connect(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        """A new engine.io connection: False refuses it (HTTP 401)."""
        ...

    def engine_disconnect(self, eio_sid: str) -> None: ...

    def refused(self, eio_sid: str, kind: str, detail: str) -> None:
        """A socket is closed for a protocol violation (``binary``, ``malformed``,
        ``connect_deadline``, ``send_budget``, ``connect_attempts``): count it, log it once."""
        ...


@dataclass(frozen=True, slots=True)
class Budget:
    """Unsent bytes a socket may have queued, and all the sockets of one address together."""

    socket_bytes: int = 4 * 1024 * 1024
    address_bytes: int = 8 * 1024 * 1024


class CallboxSocketServer(socketio.AsyncServer):  # type: ignore[misc]
    def __init__(
        self,
        *,
        guard: Guard,
        budget: Budget,
        connect_deadline: float,
        max_connect_attempts: int = 3,
        **kwargs: Any,
    ) -> None:
        super().__init__(client_manager=CallboxManager(), **kwargs)
        self.eio.upgraded = self._forget_pipe
        self.guard = guard
        self.budget = budget
        self.connect_deadline = connect_deadline
        self.max_connect_attempts = max_connect_attempts
        self._deadlines: dict[str, asyncio.TimerHandle] = {}
        self._connects: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._address_of: dict[str, str] = {}
        self._pipes: dict[str, _Pipe] = {}
        self._coroutines: dict[Any, bool] = {}  # per event handler: a coroutine function?
        self.ledger = Ledger(
            budget.socket_bytes,
            budget.address_bytes,
            lambda eio_sid: self.queued_bytes(eio_sid, kernel=True),
        )

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return EngineServer

    def _forget_pipe(self, eio_sid: str) -> None:
        self._pipes.pop(eio_sid, None)

    # --- engine.io connections -------------------------------------------------------

    async def _handle_eio_connect(self, eio_sid: str, environ: dict[str, Any]) -> Any:
        adopt(self.eio.sockets.get(eio_sid))  # before anything waits on it (eiosocket.py)
        if not await self.guard.engine_connect(eio_sid, environ):
            return False
        loop = asyncio.get_running_loop()
        self._deadlines[eio_sid] = loop.call_later(
            self.connect_deadline, self._connect_overdue, eio_sid
        )
        return await super()._handle_eio_connect(eio_sid, environ)

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        try:
            await super()._handle_eio_disconnect(eio_sid, reason)
        finally:
            handle = self._deadlines.pop(eio_sid, None)
            if handle is not None:
                handle.cancel()
            self._connects.pop(eio_sid, None)
            self._pipes.pop(eio_sid, None)
            self.eio.websocket_requests.pop(eio_sid, None)
            self.forget_address(eio_sid)
            self.guard.engine_disconnect(eio_sid)

    def _connect_overdue(self, eio_sid: str) -> None:
        self._deadlines.pop(eio_sid, None)
        if eio_sid in self.eio.sockets and self.manager.sid_from_eio_sid(eio_sid, "/") is None:
            self.guard.refused(eio_sid, "connect_deadline", "no socket.io CONNECT in time")
            self.spawn(self.kill(eio_sid))

    def connected(self, eio_sid: str) -> None:
        """The socket.io session was accepted: no deadline any more."""
        handle = self._deadlines.pop(eio_sid, None)
        if handle is not None:
            handle.cancel()

    def remember_address(self, eio_sid: str, address: str) -> None:
        """Which address a socket belongs to (for the per-address send budget)."""
        self._address_of[eio_sid] = address
        self.ledger.add(eio_sid, address)

    def address_of(self, eio_sid: str) -> str | None:
        return self._address_of.get(eio_sid)

    def forget_address(self, eio_sid: str) -> None:
        self._address_of.pop(eio_sid, None)
        self.ledger.remove(eio_sid)

    # --- packets from clients --------------------------------------------------------

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if eio_sid not in self.eio.sockets:
            return  # closed (killed) already: what it had sent meanwhile is dropped
        if not isinstance(data, str) or data[:1] in _BINARY_TYPES:
            self.guard.refused(eio_sid, "binary", "binary packet (callbox speaks JSON only)")
            await self.kill(eio_sid)
            return
        if data[:1] == str(sio_packet.CONNECT):
            count = self._connects.get(eio_sid, 0) + 1
            self._connects[eio_sid] = count
            if count > self.max_connect_attempts:
                self.guard.refused(eio_sid, "connect_attempts", f"{count} CONNECT packets")
                await self.kill(eio_sid)
                return
        token = packet_bytes.set(len(data))
        try:
            if (
                data[:1] == _EVENT
                and not self.async_handlers
                and eio_sid not in self._binary_packet
            ):
                await self._event(eio_sid, self.packet_class(encoded_packet=data))
            else:
                await super()._handle_eio_message(eio_sid, data)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as e:
            self.guard.refused(eio_sid, "malformed", f"{type(e).__name__}: {str(e)[:80]}")
            await self.kill(eio_sid)
        finally:
            packet_bytes.reset(token)

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        """An event with a coroutine handler of its own goes straight to it, as
        python-socketio's own would call it; the others (``disconnect``, catch-alls,
        namespace classes) through python-socketio's."""
        handler = self.handlers.get(namespace, {}).get(event)
        if handler is None or event == "disconnect":
            return await super()._trigger_event(event, namespace, *args)
        is_coroutine = self._coroutines.get(handler)
        if is_coroutine is None:
            is_coroutine = self._coroutines[handler] = inspect.iscoroutinefunction(handler)
        if not is_coroutine:
            return await super()._trigger_event(event, namespace, *args)
        try:
            return await handler(*args)
        except asyncio.CancelledError:
            return None

    async def _event(self, eio_sid: str, pkt: Any) -> None:
        """An EVENT packet, as python-socketio's ``_handle_event`` hands it on with its
        handlers inline (``async_handlers`` off), without its log call: one coroutine less
        per message."""
        namespace = pkt.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if not self.manager.is_connected(sid, namespace):
            self.logger.warning("%s is not connected to namespace %s", sid, namespace)
            return
        await self._handle_event_internal(self, sid, eio_sid, pkt.data, namespace, pkt.id)

    async def _handle_event_internal(
        self, server: Any, sid: str, eio_sid: str, data: Any, namespace: str, id: Any
    ) -> None:
        """python-socketio's (the handler's result is the ack), knowing whether the client
        asked for an ack (``wants_ack``), and with reserved event names re-routed."""
        token = wants_ack.set(id is not None)
        if not data or not isinstance(data[0], str) or data[0] in RESERVED_EVENTS:
            name = data[0] if data and isinstance(data[0], str) else "?"
            data = [RESERVED, name, *data[1:]]
        try:
            result = await server._trigger_event(data[0], namespace, sid, *data[1:])
            if result != self.not_handled and id is not None:
                args = (
                    []
                    if result is None
                    else list(result)
                    if isinstance(result, tuple)
                    else [result]
                )
                ack = self.packet_class(sio_packet.ACK, namespace=namespace, id=id, data=args)
                await server._send_packet(eio_sid, ack)
        finally:
            wants_ack.reset(token)

    # --- sending ---------------------------------------------------------------------

    async def _send_packet(self, eio_sid: str, pkt: Any) -> None:
        encoded = pkt.encode()
        for part in encoded if isinstance(encoded, list) else [encoded]:
            if not self.within_budget(eio_sid, len(part)):
                return
            out = eio_packet.Packet(eio_packet.MESSAGE, part)
            if put_each(self.eio.sockets, [eio_sid], [out]):  # not queued: engine.io's send
                await self.eio.send_packet(eio_sid, out)

    def _pipe(self, eio_sid: str) -> _Pipe | None:
        pipe = self._pipes.get(eio_sid)
        if pipe is None:
            sock = self.eio.sockets.get(eio_sid)
            if sock is None:
                return None
            pipe = self._pipes[eio_sid] = _Pipe(sock, self._transport(eio_sid))
        return pipe

    def queued_bytes(self, eio_sid: str, *, kernel: bool = False) -> int:
        """Unsent bytes of one socket: engine.io's queue, plus its transport's write buffer,
        plus (``kernel``) what the kernel holds because the client does not take it."""
        pipe = self._pipe(eio_sid)
        if pipe is None:
            return 0
        queued = 0
        queue: OutQueue = pipe.sock.queue
        for item in queue.pending():
            data = getattr(item, "data", None)
            queued += len(data) if isinstance(data, str | bytes) else 16
        return int(queued + pipe.unsent(kernel=kernel))

    def within_budget(self, eio_sid: str, size: int) -> bool:
        """Whether ``size`` more bytes may be queued for the socket (then counted); a socket
        past its budget (or whose address is past its own) is disconnected and False
        returned. O(1) per send: :class:`~callbox.server.ledger.Ledger`."""
        if self.ledger.allow(eio_sid, size):
            return True
        self.over_budget(eio_sid, size)
        return False

    def over_budget(self, eio_sid: str, size: int) -> None:
        """The ledger refused ``size`` more bytes to the socket: it is disconnected."""
        unsent = self.queued_bytes(eio_sid, kernel=True)
        self.guard.refused(eio_sid, "send_budget", f"{unsent} bytes unsent, {size} more")
        self.spawn(self.kill(eio_sid))

    def fits(self, eio_sid: str, size: int) -> bool:
        """Whether a message of about ``size`` bytes would pass the budget, checked before
        the work of encoding it (a newcomer's ``availableOffers`` can weigh MiB); a socket
        that would not is disconnected."""
        if self.ledger.fits(eio_sid, size):
            return True
        self.guard.refused(eio_sid, "send_budget", f"{size} bytes would pass its budget")
        self.spawn(self.kill(eio_sid))
        return False

    # --- closing -----------------------------------------------------------------------

    def spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _transport(self, eio_sid: str) -> Any:
        request = self.eio.websocket_requests.get(eio_sid)
        if request is None:
            request = self.environ.get(eio_sid, {}).get("aiohttp.request")
        return getattr(request, "transport", None)

    async def kill(self, eio_sid: str) -> None:
        """Drop the connection now (an abuser or a client that does not read): the socket is
        closed as a transport error and its TCP connection aborted, nothing more is sent."""
        transport = self._transport(eio_sid)
        sock = self.eio.sockets.get(eio_sid)
        if sock is not None:
            await sock.close(wait=False, abort=True, reason=self.reason.TRANSPORT_ERROR)
            self.eio.sockets.pop(eio_sid, None)
        if transport is not None:
            transport.abort()

    async def close_transport(self, eio_sid: str) -> None:
        """Close the connection as if the network dropped it, without socket.io's
        DISCONNECT: the client sees "transport close" and reconnects by itself. The socket's
        disconnect handler runs with reason ``transport close``."""
        sock = self.eio.sockets.get(eio_sid)
        if sock is None:
            return
        if sock.upgraded:
            await sock.queue.put(None)  # engine.io's writer closes the websocket on None
        else:  # long-polling: the next (or pending) poll gets CLOSE, the client reconnects
            await sock.queue.put(eio_packet.Packet(eio_packet.CLOSE))
        await sock.close(wait=False, abort=True, reason=self.reason.TRANSPORT_CLOSE)

    async def close_all(self, grace: float) -> None:
        """Close every engine.io connection (graceful restart), then wait for them to go,
        at most ``grace`` seconds; whatever is left is aborted."""
        await self.reconnect_everyone(grace)
        for eio_sid in list(self.eio.sockets):
            transport = self._transport(eio_sid)
            if transport is not None:
                transport.abort()
        self.eio.sockets.clear()
        for task in list(self._tasks):
            task.cancel()

    async def reconnect_everyone(self, grace: float) -> None:
        """Close the connections open now as a dropped network would (their clients
        reconnect), wait for them to go, at most ``grace`` seconds, then abort the rest of
        them. The server goes on: a connection made meanwhile is left alone."""
        closing = list(self.eio.sockets)
        for eio_sid in closing:
            await self.close_transport(eio_sid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace

        def open_ones() -> list[str]:
            # engine.io signals nothing when a websocket has finished closing: poll its tables
            eio = self.eio
            return [s for s in closing if s in eio.sockets or s in eio.websocket_requests]

        while open_ones() and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for eio_sid in open_ones():
            transport = self._transport(eio_sid)
            if transport is not None:
                transport.abort()


class _Pipe:
    """The way to one client: its engine.io socket and the transports under it (looked up
    once per socket; the websocket of an upgrade replaces the polling request's)."""

    __slots__ = ("sock", "transport", "raw")

    def __init__(self, sock: Any, transport: Any) -> None:
        self.sock = sock
        self.transport = transport
        # Over TLS, asyncio's transport counts only what TLS has not encrypted yet: a large
        # message is encrypted at once and waits in the TCP transport underneath, which
        # asyncio does not expose (``_ssl_protocol._transport``), so both are read.
        raw = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None)
        ok = raw is not None and raw is not transport and hasattr(raw, "get_write_buffer_size")
        self.raw = raw if ok else None

    def unsent(self, *, kernel: bool = False) -> int:
        """Bytes the transports still hold for the client; with ``kernel``, the socket's
        kernel send queue too (Linux ``TIOCOUTQ``): a client that does not read leaves
        several MiB there before asyncio buffers anything. tests/integration/
        test_hardening.py proves the count with such a client."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return 0
        size = int(transport.get_write_buffer_size())
        if self.raw is not None:
            size += int(self.raw.get_write_buffer_size())
        if kernel:
            size += _kernel_queue(transport.get_extra_info("socket"))
        return size


def _kernel_queue(sock: Any) -> int:
    if sock is None or not hasattr(termios, "TIOCOUTQ"):
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])
