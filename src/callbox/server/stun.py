"""The built-in STUN server (``--stun-port``): answers binding requests on UDP (RFC 5389).

A client behind a NAT sends a binding request; the answer's XOR-MAPPED-ADDRESS is the
address and port the request came from, i.e. its public mapping: the client's
server-reflexive (srflx) ICE candidate. That is all a callbox on a public host needs so that
no third-party STUN server is involved. The message format is aioice's codec; nothing here
parses bytes by hand beyond the header checks that tell STUN from other traffic.

It answers binding requests only (no TURN, no authentication, no RFC 5780 NAT behaviour
discovery): anything else, and any datagram that is not a well-formed STUN request, is
dropped without an answer.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import struct
from collections.abc import AsyncIterator, Callable
from typing import cast

from aiohttp import web
from aioice import stun

from callbox.errors import ConfigError

log = logging.getLogger(__name__)

_COOKIE = struct.pack("!I", stun.COOKIE)


Address = tuple[str, int] | tuple[str, int, int, int]  # IPv4, or IPv6 with flow info and scope


def _client_address(addr: Address) -> tuple[str, int]:
    """The address to report: IPv4-mapped IPv6 (a dual-stack socket) as plain IPv4."""
    host, port = addr[0], addr[1]
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped), port
    return str(ip), port


def binding_response(data: bytes, addr: Address) -> bytes | None:
    """The answer to one datagram: a binding success response carrying the sender's address,
    or None when ``data`` is not a STUN binding request."""
    # The first two bits of a STUN message are zero and it carries the magic cookie
    # (RFC 5389 section 6); checking them first keeps stray traffic out of the parser.
    if len(data) < stun.HEADER_LENGTH or data[0] & 0xC0 or data[4:8] != _COOKIE:
        return None
    try:
        request = stun.parse_message(data)
    except (ValueError, struct.error, IndexError):
        return None
    if request.message_method != stun.Method.BINDING or request.message_class != stun.Class.REQUEST:
        return None
    response = stun.Message(
        message_method=stun.Method.BINDING,
        message_class=stun.Class.RESPONSE,
        transaction_id=request.transaction_id,
    )
    response.attributes["XOR-MAPPED-ADDRESS"] = _client_address(addr)
    response.add_fingerprint()
    return bytes(response)


class StunProtocol(asyncio.DatagramProtocol):
    """Answers each binding request from the socket it arrived on."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.answered = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        response = binding_response(data, addr)
        if response is not None and self.transport is not None:
            self.transport.sendto(response, addr)
            self.answered += 1

    def error_received(self, exc: Exception) -> None:
        # e.g. ICMP port unreachable for an earlier answer: that client is gone
        log.debug("STUN socket error: %s", exc)


async def start_stun(host: str, port: int) -> tuple[asyncio.DatagramTransport, StunProtocol]:
    """Listen for STUN on UDP ``host:port``; ConfigError if the port cannot be bound."""
    loop = asyncio.get_running_loop()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            StunProtocol, local_addr=(host, port)
        )
    except OSError as e:
        raise ConfigError(f"cannot listen for STUN on UDP {host}:{port}: {e.strerror or e}") from e
    return transport, protocol


def stun_service(host: str, port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp ``cleanup_ctx`` entry: the STUN server (``--stun-port``) runs while the app
    does."""

    async def service(app: web.Application) -> AsyncIterator[None]:
        transport, _ = await start_stun(host, port)
        log.info("STUN server on udp %s:%d", host, port)
        try:
            yield
        finally:
            transport.close()

    return service
