"""Errors of the Python peer, under :class:`callbox.errors.PeerError`.

PeerError
├── NegotiationError      (callbox.errors) offer/answer or ICE failed
├── PeerTimeout           (callbox.errors) a wait ran out
├── ServerRefused         the server answered with an error code (connect or event ack)
├── ServerUnreachable     no connection to the server (refused, DNS, HTTP status)
│   └── TlsUntrusted      the server's certificate does not verify against the CA
├── SignalingLost         the server connection dropped during a call
└── RemoteEnded           the other party ended the call before media flowed
"""

from __future__ import annotations

from callbox.errors import PeerError
from callbox.signaling.model import ErrorCode


def _to_code(code: str) -> ErrorCode | str:
    try:
        return ErrorCode(code)
    except ValueError:
        return code


class ServerRefused(PeerError):
    """The signaling server refused a request; ``code`` is one of DESIGN.md's error codes.

    ``code`` is an :class:`ErrorCode` when the server sent a known code, else the raw string.
    """

    def __init__(self, code: str, message: str, event: str | None = None) -> None:
        self.code: ErrorCode | str = _to_code(code)
        self.message = message
        self.event = event
        where = f" ({event})" if event else ""
        super().__init__(f"server refused{where}: {code}: {message}")


class ServerUnreachable(PeerError):
    """The server could not be reached at all."""


class TlsUntrusted(ServerUnreachable):
    """The server's TLS certificate did not verify against the trusted CA."""


class SignalingLost(PeerError):
    """The signaling connection dropped while it was still needed."""


class RemoteEnded(PeerError):
    """The other party ended the call (hang-up or disconnect) before media flowed."""
