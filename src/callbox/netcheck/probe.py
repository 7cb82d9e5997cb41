"""Probes of one ICE server, as a browser's ICE agent would gather from it: a STUN binding
(srflx candidate), a TURN allocation (relay candidate) and, for a relay, whether data passes
through it. Each says in words why it failed. aioice does the STUN and TURN messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import cast

from aioice import stun
from aioice.turn import TurnTransport, create_turn_endpoint

Address = tuple[str, int]

_URL = re.compile(
    r"(?P<scheme>stuns?|turns?):(?P<host>\[[0-9A-Fa-f:.]+\]|[^:?@/\[\]]+)"
    r"(?::(?P<port>[0-9]{1,5}))?(?:\?transport=(?P<transport>udp|tcp))?"
)
# what a TURN error code means for whoever runs the check
_TURN_ERRORS = {
    401: "wrong credentials (401 Unauthorized): callbox's --turn-secret is not coturn's "
    "static-auth-secret, or the credentials expired (are the two machines' clocks apart?)",
    403: "forbidden (403): coturn refuses this client",
    437: "allocation mismatch (437): try again in a minute",
    441: "wrong credentials (441)",
    486: "allocation quota reached (486): coturn's user-quota or total-quota",
    508: "insufficient capacity (508): coturn has no relay port free (min-port..max-port)",
}


@dataclass(frozen=True, slots=True)
class IceUrl:
    """One stun:/stuns:/turn:/turns: URL of an RTCIceServer."""

    text: str
    scheme: str
    host: str
    port: int
    transport: str

    @property
    def turn(self) -> bool:
        return self.scheme.startswith("turn")

    @property
    def tls(self) -> bool:
        return self.scheme.endswith("s")


def parse_ice_url(text: str) -> IceUrl | None:
    """The parts of an ICE server URL, or None when it is not one this check understands."""
    found = _URL.fullmatch(text.strip())
    if found is None:
        return None
    scheme = found["scheme"]
    tls = scheme.endswith("s")
    port = int(found["port"]) if found["port"] else (5349 if tls else 3478)
    transport = found["transport"] or ("tcp" if tls else "udp")
    if not 0 < port < 65536 or (tls and transport == "udp"):
        return None
    host = found["host"].strip("[]")
    return IceUrl(text.strip(), scheme, host, port, transport)


@dataclass(frozen=True, slots=True)
class Finding:
    """What one URL gave: addresses found, or the problem in words."""

    url: IceUrl
    srflx: Address | None = None
    relay: Address | None = None
    #: True: data went out and back through the relay; False: it did not; None: not tried
    relay_passes_data: bool | None = None
    problem: str | None = None


# --- STUN binding over UDP -------------------------------------------------------------------


class _Socket(asyncio.DatagramProtocol):
    """A UDP socket that runs STUN transactions (answers matched by transaction id) and
    queues any other datagram. ICMP errors (on a connected socket) fail what is pending."""

    def __init__(self) -> None:
        self.pending: dict[bytes, asyncio.Future[Address]] = {}
        self.received: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            message = None
        waiter = self.pending.get(message.transaction_id) if message is not None else None
        if message is None or waiter is None:
            self.received.put_nowait((data, addr))
            return
        if waiter.done():
            return
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS")
        if message.message_class == stun.Class.RESPONSE and mapped is not None:
            waiter.set_result((str(mapped[0]), int(mapped[1])))
        else:
            waiter.set_exception(stun.TransactionFailed(message))

    def error_received(self, exc: Exception) -> None:
        for waiter in self.pending.values():
            if not waiter.done():
                waiter.set_exception(exc)

    async def binding(self, to: Address | None, wait: float) -> Address:
        """The XOR-MAPPED-ADDRESS the STUN server at ``to`` (None: the connected peer) sees
        this socket at; raises OSError (unreachable), TimeoutError or TransactionFailed."""
        assert self.transport is not None
        request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
        waiter: asyncio.Future[Address] = asyncio.get_running_loop().create_future()
        self.pending[request.transaction_id] = waiter
        try:
            async with asyncio.timeout(wait):
                delay = 0.25
                while True:  # retransmit, doubling the wait (RFC 5389 7.2.1)
                    if to is None:
                        self.transport.sendto(bytes(request))
                    else:
                        self.transport.sendto(bytes(request), to)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            return await asyncio.shield(waiter)
                    delay = min(delay * 2, 2.0)
        finally:
            del self.pending[request.transaction_id]


async def stun_binding(host: str, port: int, wait: float) -> Address:
    """The address a STUN server sees us at, from a fresh connected UDP socket."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(_Socket, remote_addr=(host, port))
    try:
        return await protocol.binding(None, wait)
    finally:
        transport.close()


def describe(exc: BaseException, url: IceUrl, wait: float) -> str:
    """Why a probe of ``url`` failed, for a person."""
    where = f"{url.transport.upper()} {url.host}:{url.port}"
    if isinstance(exc, stun.TransactionFailed):
        code = exc.response.error_code
        if code in _TURN_ERRORS:
            return _TURN_ERRORS[code]
        reason = exc.response.attributes.get("ERROR-CODE", (code, ""))[1]
        return f"refused with error {code} {reason}".strip()
    if isinstance(exc, TimeoutError | stun.TransactionTimeout):
        return (
            f"timeout: no answer from {where} within {wait:g} s (a firewall drops it, or "
            "nothing listens there)"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate of {url.host} not trusted: {exc.verify_message} (--ca FILE?)"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"unreachable: cannot resolve {url.host} ({exc.strerror})"
    if isinstance(exc, ConnectionRefusedError):
        return f"unreachable: nothing listens on {where} (connection refused)"
    if isinstance(exc, OSError):
        return f"unreachable: {where}: {exc.strerror or exc}"
    return f"failed: {exc}"


async def probe_stun(url: IceUrl, wait: float) -> Finding:
    if url.transport != "udp" or url.tls:
        return Finding(url, problem="not checked: only STUN over UDP is checked")
    try:
        mapped = await stun_binding(url.host, url.port, wait)
    except (OSError, TimeoutError, stun.TransactionFailed) as e:
        return Finding(url, problem=describe(e, url, wait))
    return Finding(url, srflx=mapped)


# --- TURN allocation -------------------------------------------------------------------------


class _Relayed(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received.put_nowait((data, addr))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


@contextlib.asynccontextmanager
async def _allocation(
    url: IceUrl, username: str, password: str, wait: float, context: ssl.SSLContext | None
) -> AsyncIterator[tuple[TurnTransport, _Relayed]]:
    async with asyncio.timeout(wait):
        relay, protocol = await create_turn_endpoint(
            _Relayed,
            server_addr=(url.host, url.port),
            username=username,
            password=password,
            ssl=context if url.tls else None,
            transport=url.transport,
        )
    try:
        yield relay, protocol
    finally:
        relay.close()  # deletes the allocation
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(3):
                await protocol.closed


async def probe_turn(
    url: IceUrl,
    username: str | None,
    password: str | None,
    wait: float,
    context: ssl.SSLContext | None = None,
) -> Finding:
    """Allocate a relay; then send a datagram out through it and back (to a plain UDP
    socket of ours, reached at its server-reflexive address)."""
    if username is None or password is None:
        return Finding(url, problem="no credentials for this TURN server")
    if url.transport == "udp":  # a quick "unreachable" from ICMP, before the allocation waits
        try:
            await stun_binding(url.host, url.port, min(wait, 2.0))
        except OSError as e:
            return Finding(url, problem=describe(e, url, wait))
        except (TimeoutError, stun.TransactionFailed):
            pass  # coturn may refuse unauthenticated STUN (secure-stun): let the Allocate tell
    try:
        async with _allocation(url, username, password, wait, context) as (relay, protocol):
            relayed = relay.get_extra_info("sockname")
            mapped = relay.get_extra_info("related_address")
            passes = await _echo(url, relay, protocol, wait)
    except (OSError, TimeoutError, stun.TransactionError, ConnectionError) as e:
        return Finding(url, problem=describe(e, url, wait))
    srflx = (str(mapped[0]), int(mapped[1])) if mapped else None
    return Finding(url, srflx, (str(relayed[0]), int(relayed[1])), passes)


async def _echo(url: IceUrl, relay: TurnTransport, relayed: _Relayed, wait: float) -> bool | None:
    """Does data pass through the relay both ways? A plain UDP socket learns its public
    address from the TURN server's STUN; the relay sends to it, it answers to the relay.
    None when its address cannot be learnt (no STUN over UDP at that host)."""
    loop = asyncio.get_running_loop()
    peer = cast(Address, relay.get_extra_info("sockname"))
    family = socket.AF_INET6 if ":" in peer[0] else socket.AF_INET
    transport, plain = await loop.create_datagram_endpoint(_Socket, family=family)
    try:
        try:
            infos = await loop.getaddrinfo(
                url.host, url.port, family=family, type=socket.SOCK_DGRAM
            )
            public = await plain.binding(cast(Address, infos[0][4][:2]), min(wait, 2.0))
        except (OSError, TimeoutError, stun.TransactionFailed, IndexError):
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while True:
                    transport.sendto(b"callbox-check", peer)  # opens our NAT towards the relay
                    relay.sendto(b"callbox-check", public)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.5):
                            await plain.received.get()
                            transport.sendto(b"callbox-check-back", peer)
                            while (await relayed.received.get())[0] != b"callbox-check-back":
                                pass
                            return True
        return False
    finally:
        transport.close()
