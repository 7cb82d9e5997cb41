"""What :class:`callbox.peer.signaling_client.SignalingClient` yields, in arrival order:
server events parsed into typed values, and what happened to the connection itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callbox.peer.errors import ServerRefused
from callbox.peer.wire import OfferView, parse_candidate, parse_description, parse_offer_view
from callbox.signaling.model import Candidate, Description


@dataclass(frozen=True, slots=True)
class AnswerReceived:
    """``answerResponse``: our offer was answered."""

    offer: OfferView


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """``receivedIceCandidateFromServer``."""

    candidate: Candidate


@dataclass(frozen=True, slots=True)
class CallEnded:
    """``callEnded``: the other party hung up or disconnected, or the server is stopping
    (reason ``server-shutdown``: it forgets the call; one whose media flows goes on)."""

    offer_id: str
    reason: str
    by: str | None


@dataclass(frozen=True, slots=True)
class ServerError:
    """``signalingError`` (an error for an event sent without an ack)."""

    error: ServerRefused


@dataclass(frozen=True, slots=True)
class Renegotiate:
    """``renegotiate``: the other party's new offer (a new track, a screen share, an ICE
    restart), or its answer to ours."""

    offer_id: str
    description: Description
    from_user: str | None


@dataclass(frozen=True, slots=True)
class OfferDeclined:
    """``offerDeclined``: someone in the room will not answer our waiting offer (it stays
    waiting for the others)."""

    offer_id: str
    by: str | None


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The socket.io connection ended for good (no reconnection follows)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """The socket dropped (or the server closed it); the client is connecting again."""

    reason: str


@dataclass(frozen=True, slots=True)
class Resumed:
    """The socket is back and the server resumed the session (its offer or call kept)."""

    offer_id: str | None


@dataclass(frozen=True, slots=True)
class SessionLost:
    """The server no longer has our session (it refused the resume: restarted, or the grace
    period was over; or it closed our socket): the client goes on as a new session, and the
    old session's offer or call is gone from the server. A call whose media flows can go on
    peer-to-peer (PLAN decision 5)."""

    reason: str


Event = (
    AnswerReceived
    | RemoteCandidate
    | Renegotiate
    | OfferDeclined
    | CallEnded
    | ServerError
    | Disconnected
    | Reconnecting
    | Resumed
    | SessionLost
)


def _fields(data: object) -> dict[str, object]:
    return data if isinstance(data, dict) else {}


def _name(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _answer(data: object) -> Event:
    return AnswerReceived(parse_offer_view(data))


def _candidate(data: object) -> Event:
    return RemoteCandidate(parse_candidate(data))


def _renegotiate(data: object) -> Event:
    d = _fields(data)
    description = parse_description(d.get("description"), "renegotiate")
    return Renegotiate(str(d.get("offerId", "")), description, _name(d.get("from")))


def _declined(data: object) -> Event:
    d = _fields(data)
    return OfferDeclined(str(d.get("offerId", "")), _name(d.get("by")))


def _ended(data: object) -> Event:
    d = _fields(data)
    return CallEnded(str(d.get("offerId", "")), str(d.get("reason", "hangup")), _name(d.get("by")))


def _error(data: object) -> Event:
    d = _fields(data)
    code, message, event = (str(d.get(k, "")) for k in ("code", "message", "event"))
    return ServerError(ServerRefused(code or "unknown", message, event))


#: the server's call events and how each becomes an :data:`Event` (ProtocolViolation if not)
CALL_EVENTS: dict[str, Callable[[object], Event]] = {
    "answerResponse": _answer,
    "receivedIceCandidateFromServer": _candidate,
    "renegotiate": _renegotiate,
    "offerDeclined": _declined,
    "callEnded": _ended,
    "signalingError": _error,
}
