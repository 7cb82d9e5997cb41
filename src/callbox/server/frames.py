"""engine.io packets written to a websocket as frames, every frame of a batch in one system
call, and a broadcast's frame made once for all its recipients.

aiohttp's ``send_str`` writes each message on its own (``transport.write``: one ``write``
system call per frame, the payload encoded to UTF-8 for each recipient again). In the lobby
every offer goes to 99 sockets and every answer's ``offerRemoved`` to 100: perf counted 214
``write`` calls per handshake against the Node baseline's 108 ``writev``, and the kernel's
part of a handshake twice Node's (bench/README.md, "The lobby's writes"). A batch here is what
engine.io's queue held when the socket's writer woke: all its frames go in one ``writelines``
(one ``writev``): 21 per handshake then.

Only frames aiohttp would send the same way are written here: text, to a websocket with no
compression negotiated (:func:`plain`), whose transport holds nothing unsent (else aiohttp's
own writer sends them, with its flow control: it waits for the transport to drain). The
header is RFC 6455's (section 5.2) for a server: FIN, no mask. Over TLS the transport's count
is of what TLS has not encrypted yet; bytes waiting under it are not seen here, and the send
budget (server/ledger.py), which counts them, bounds them as before.
"""

from __future__ import annotations

import struct
from typing import Any

from engineio import packet as eio_packet

_TEXT_FIN = 0x81
_LEN2 = struct.Struct("!BBH")
_LEN8 = struct.Struct("!BBQ")


def header(length: int) -> bytes:
    """A final, unmasked text frame's header for a payload of ``length`` bytes."""
    if length < 126:
        return bytes((_TEXT_FIN, length))
    if length < 1 << 16:
        return _LEN2.pack(_TEXT_FIN, 126, length)
    return _LEN8.pack(_TEXT_FIN, 127, length)


class Shared(eio_packet.Packet):  # type: ignore[misc]
    """A packet queued to many sockets (a room's broadcast): its frame is made by the first
    writer that sends it and kept for the others."""

    frame: tuple[bytes, bytes] | None = None


def frame_of(pkt: Any) -> tuple[bytes, bytes] | None:
    """``pkt``'s frame as (header, payload); None for a binary packet."""
    made: tuple[bytes, bytes] | None = getattr(pkt, "frame", None)
    if made is not None:
        return made
    encoded = pkt.encode()  # engine.io caches it on the packet
    if not isinstance(encoded, str):
        return None
    payload = encoded.encode()
    made = (header(len(payload)), payload)
    if isinstance(pkt, Shared):
        pkt.frame = made
    return made


def plain(ws: Any) -> Any:
    """The transport under engine.io's websocket ``ws`` (its aiohttp ``WebSocketResponse``
    is ``ws._sock``) if frames may be written to it directly: no compression negotiated.
    Else None."""
    if getattr(ws._sock, "compress", True):
        return None
    request = getattr(ws, "environ", {}).get("aiohttp.request")
    return getattr(request, "transport", None)


def write_batch(ws: Any, transport: Any, packets: list[Any]) -> bool:
    """Write every packet of the batch in one call, if they may go directly; False (nothing
    written) when aiohttp's writer must send them."""
    if ws.closed or transport.is_closing() or transport.get_write_buffer_size():
        return False
    parts: list[bytes] = []
    for pkt in packets:
        made = frame_of(pkt)
        if made is None:
            return False
        parts += made
    transport.writelines(parts)
    return True
