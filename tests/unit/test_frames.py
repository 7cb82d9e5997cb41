"""server/frames.py: a broadcast's frame is made once, a binary packet has none, and headers
follow RFC 6455's length encoding (the bytes are checked end to end by aiohttp's own reader
in tests/integration/test_eiosocket_ws.py)."""

from __future__ import annotations

from engineio import packet as eio_packet

from callbox.server.frames import Shared, frame_of, header


def test_a_shared_packet_keeps_its_frame_for_every_recipient() -> None:
    pkt = Shared(eio_packet.MESSAGE, "ü" * 60)
    first = frame_of(pkt)
    assert first == (bytes((0x81, 121)), ("4" + "ü" * 60).encode())
    assert frame_of(pkt) is first  # the next recipient's writer reuses it


def test_a_packet_to_one_socket_keeps_nothing() -> None:
    pkt = eio_packet.Packet(eio_packet.MESSAGE, "x" * 1000)
    assert frame_of(pkt) == (bytes((0x81, 126, 0x03, 0xE9)), b"4" + b"x" * 1000)
    assert not hasattr(pkt, "frame")


def test_binary_packets_have_no_text_frame() -> None:
    assert frame_of(eio_packet.Packet(eio_packet.MESSAGE, b"\x00\x01")) is None


def test_headers_at_each_length_boundary() -> None:
    assert header(125) == b"\x81\x7d"
    assert header(126) == b"\x81\x7e\x00\x7e"
    assert header(65535) == b"\x81\x7e\xff\xff"
    assert header(65536) == b"\x81\x7f" + (65536).to_bytes(8, "big")
