"""Load generator: N concurrent sessions in caller/callee pairs doing the full handshake
(offer, buffered candidates, answer, live candidates both ways, hang-up) repeatedly.
Used by tests/integration/test_load.py (CI size) and bench/load.py (bigger, with figures)."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from tests.integration.sio_client import disconnect_cleanly

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}
RECEIVED = "receivedIceCandidateFromServer"


def cand(n: int) -> dict[str, Any]:
    return {
        "candidate": f"candidate:{n} 1 udp 2122260223 127.0.0.1 {n % 60000} typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": "load",
    }


@dataclass
class LoadResult:
    sessions: int
    handshakes: int = 0
    candidates_sent: int = 0
    candidates_received: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


class _Peer:
    def __init__(self, http: aiohttp.ClientSession) -> None:
        self.sio = socketio.AsyncClient(http_session=http, reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self.changed = asyncio.Event()
        for name in (RECEIVED, "answerResponse", "callEnded", "signalingError", "welcome"):
            self.sio.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None, *_seq: Any) -> None:
            self.events[name].append(data)
            self.changed.set()

        return record

    async def wait(self, name: str, count: int) -> None:
        async with asyncio.timeout(30):
            while len(self.events[name]) < count:
                self.changed.clear()
                await self.changed.wait()


async def run_load(
    url: str,
    ca_path: Path,
    sessions: int = 500,
    handshakes: int = 2,
    candidates: int = 5,
    rooms: int = 25,
    callee_url: str | None = None,
) -> LoadResult:
    """``sessions`` clients connect (all at once), pair up, and each pair does ``handshakes``
    calls with ``candidates`` candidates each way before and after the answer; then all
    leave. Checks every candidate arrived exactly once, in order. With ``callee_url`` the
    callees connect there (another node) and the callers to ``url``."""
    result = LoadResult(sessions=sessions)
    context = ssl.create_default_context(cafile=str(ca_path))
    connector = aiohttp.TCPConnector(ssl=context, limit=0)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector) as http:
        peers = [_Peer(http) for _ in range(sessions)]
        connect = [
            p.sio.connect(
                callee_url if callee_url and n % 2 else url,
                auth={"userName": f"load{n}", "room": f"load{n // 2 % rooms}"},
                transports=["websocket"],
                wait_timeout=30,
            )
            for n, p in enumerate(peers)
        ]
        await asyncio.gather(*connect)
        pairs = [(peers[n], peers[n + 1], n // 2) for n in range(0, sessions - 1, 2)]
        await asyncio.gather(*(_pair(a, b, i, handshakes, candidates, result) for a, b, i in pairs))
        await asyncio.sleep(0.5)  # anything late or twice would arrive now
        for caller, callee, _ in pairs:
            total = handshakes * candidates
            for peer, expected in ((callee, total), (caller, 2 * total)):
                got = len(peer.events[RECEIVED])
                result.candidates_received += got
                result.lost += max(0, expected - got)
                result.duplicated += max(0, got - expected)
            for peer in (caller, callee):
                result.errors += [str(e) for e in peer.events["signalingError"]]
        # deliberate leaves: a dropped socket's session would be held for a resume
        await asyncio.gather(*(disconnect_cleanly(p.sio) for p in peers))
    result.seconds = time.monotonic() - started
    return result


async def _pair(
    caller: _Peer, callee: _Peer, pair: int, handshakes: int, count: int, result: LoadResult
) -> None:
    def batch(h: int, side: int) -> list[dict[str, Any]]:
        base = (pair * 100 + h) * 1000 + side * 100
        return [cand(base + n) for n in range(count)]

    try:
        for h in range(handshakes):
            ack = await caller.sio.call("newOffer", OFFER, timeout=30)
            if "offerId" not in ack:
                raise RuntimeError(f"newOffer: {ack}")
            for c in batch(h, 0):  # before the answer: buffered on the offer
                reply = await caller.sio.call(
                    "sendIceCandidateToSignalingServer", {"iceCandidate": c}, timeout=30
                )
                if reply != {"ok": True}:
                    raise RuntimeError(f"candidate: {reply}")
            buffered = await callee.sio.call(
                "newAnswer", {"offerId": ack["offerId"], "answer": ANSWER}, timeout=30
            )
            if buffered != batch(h, 0):
                result.errors.append(f"pair {pair}: buffered candidates {buffered!r}")
            result.candidates_received += len(buffered) if isinstance(buffered, list) else 0
            await caller.wait("answerResponse", h + 1)
            at_caller = len(caller.events[RECEIVED])
            at_callee = len(callee.events[RECEIVED])
            for c in batch(h, 1):
                await caller.sio.emit("sendIceCandidateToSignalingServer", {"iceCandidate": c})
            for c in batch(h, 2) + batch(h, 3):
                await callee.sio.emit("sendIceCandidateToSignalingServer", {"iceCandidate": c})
            await callee.wait(RECEIVED, at_callee + count)
            await caller.wait(RECEIVED, at_caller + 2 * count)
            got_callee = callee.events[RECEIVED][at_callee : at_callee + count]
            got_caller = caller.events[RECEIVED][at_caller : at_caller + 2 * count]
            if got_callee != batch(h, 1) or got_caller != batch(h, 2) + batch(h, 3):
                result.out_of_order += 1
            result.candidates_sent += 4 * count
            if await caller.sio.call("hangup", timeout=30) != {"ok": True}:
                raise RuntimeError("hangup refused")
            await callee.wait("callEnded", h + 1)
            result.handshakes += 1
    except Exception as e:  # reported, not raised: the other pairs go on
        result.errors.append(f"pair {pair}: {type(e).__name__}: {e}")


def rss(metrics_text: str) -> float:
    for line in metrics_text.splitlines():
        if line.startswith("process_resident_memory_bytes "):
            return float(line.split()[1])
    raise ValueError("no process_resident_memory_bytes in /metrics")
