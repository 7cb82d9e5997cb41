"""Python peers on aiortc: a typed signaling client, the ``Call`` object, media, the CLI.

async with SignalingClient(url, name="bot", ca=ca) as client:
    async with Call(client, open_source("testsrc"), Sink(record=Path("in.mkv"))) as call:
        await call.answer(await client.wait_for_offer(from_user=None, within=60))
        await call.wait_connected(within=20)
        await call.run(duration=None)
"""

from __future__ import annotations

from callbox.peer.call import Call, EndReason, Outcome
from callbox.peer.errors import (
    RemoteEnded,
    ServerRefused,
    ServerUnreachable,
    SignalingLost,
    TlsUntrusted,
)
from callbox.peer.media import Sink, Source, open_source
from callbox.peer.signaling_client import SignalingClient

__all__ = [
    "Call",
    "EndReason",
    "Outcome",
    "RemoteEnded",
    "ServerRefused",
    "ServerUnreachable",
    "SignalingClient",
    "SignalingLost",
    "Sink",
    "Source",
    "TlsUntrusted",
    "open_source",
]
