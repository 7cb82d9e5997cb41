"""Python peers on aiortc: a typed signaling client, the ``Call`` object, media, the CLI.

async with SignalingClient(url, name="bot", ca=ca) as client:
    async with Call(client, open_source("testsrc"), Sink(record=Path("in.mkv"))) as call:
        await call.answer(await client.wait_for_offer(from_user=None, within=60))
        await call.wait_connected(within=20)
        await call.run(duration=None)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported on first use (PEP 562): aiortc and the peer's modules take ~0.7 s of
# CPU to import, and the CLI imports this package's ``arguments`` on every run, ``callbox
# serve`` included, which needs none of them.
_HOMES = {
    "Call": "call",
    "EndReason": "call",
    "Outcome": "call",
    "RemoteEnded": "errors",
    "ServerRefused": "errors",
    "ServerUnreachable": "errors",
    "SignalingLost": "errors",
    "TlsUntrusted": "errors",
    "Sink": "media",
    "Source": "media",
    "open_source": "media",
    "SignalingClient": "signaling_client",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)


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
