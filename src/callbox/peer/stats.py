"""What flows in a call, read from aiortc: negotiated directions and transport counters."""

from __future__ import annotations

import time
from dataclasses import dataclass

from aiortc import RTCPeerConnection

from callbox.peer.media import Sink


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters of the call at one moment (the live status line is made from two of them)."""

    at: float
    state: str
    rtt_ms: float | None
    bytes_in: int
    bytes_out: int
    frames_in: dict[str, int]


def receiving(pc: RTCPeerConnection) -> set[str]:
    """The kinds the remote side negotiated to send us."""
    return {t.kind for t in pc.getTransceivers() if t.currentDirection in ("sendrecv", "recvonly")}


def sending(pc: RTCPeerConnection) -> set[str]:
    """The kinds we send."""
    return {t.kind for t in pc.getTransceivers() if t.currentDirection in ("sendrecv", "sendonly")}


async def snapshot(pc: RTCPeerConnection, sink: Sink, state: str) -> Snapshot:
    rtt: float | None = None
    bytes_in = bytes_out = 0
    transports: set[str] = set()
    for stats in (await pc.getStats()).values():
        if stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
            rtt = max(rtt or 0.0, stats.roundTripTime * 1000)
        elif stats.type == "transport" and stats.id not in transports:
            transports.add(stats.id)
            bytes_in += stats.bytesReceived
            bytes_out += stats.bytesSent
    frames = {kind: sink.frames(kind) for kind in ("video", "audio")}
    return Snapshot(time.monotonic(), state, rtt, bytes_in, bytes_out, frames)
