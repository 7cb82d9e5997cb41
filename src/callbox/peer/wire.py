"""Client-side wire shapes: parse what the server sends, build what we send.

The server is trusted more than a random client, but its data is still checked: anything that
does not have the shape of DESIGN.md section 2 raises :class:`ProtocolViolation` rather than
leaking a ``KeyError`` out of a socket.io handler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc import RTCIceCandidate
from aiortc.sdp import candidate_from_sdp

from callbox.errors import NegotiationError
from callbox.signaling.model import Candidate, Description

JSON = dict[str, Any]


class ProtocolViolation(NegotiationError):
    """The server sent something that does not match the protocol."""


def _dict(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise ProtocolViolation(f"{what}: expected an object, got {type(data).__name__}")
    return data


def _str(data: dict[str, object], key: str, what: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolViolation(f"{what}: {key!r} must be a string")
    return value


def _opt_str(data: dict[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def parse_description(data: object, what: str) -> Description:
    d = _dict(data, what)
    return Description(type=_str(d, "type", what), sdp=_str(d, "sdp", what))


def parse_candidate(data: object) -> Candidate:
    d = _dict(data, "candidate")
    index = d.get("sdpMLineIndex")
    return Candidate(
        candidate=_str(d, "candidate", "candidate"),
        sdp_mid=_opt_str(d, "sdpMid"),
        sdp_mline_index=index if isinstance(index, int) and not isinstance(index, bool) else None,
        username_fragment=_opt_str(d, "usernameFragment"),
    )


def parse_candidates(data: object) -> list[Candidate]:
    if not isinstance(data, list):
        raise ProtocolViolation("candidates: expected an array")
    return [parse_candidate(c) for c in data]


@dataclass(frozen=True, slots=True)
class OfferView:
    """An offer as the server shows it (the seed's record plus ``offerId``)."""

    offer_id: str
    offerer_user_name: str
    offer: Description
    offer_ice_candidates: tuple[Candidate, ...]
    answerer_user_name: str | None
    answer: Description | None


def parse_offer_view(data: object) -> OfferView:
    d = _dict(data, "offer")
    answer = d.get("answer")
    return OfferView(
        offer_id=_str(d, "offerId", "offer"),
        offerer_user_name=_str(d, "offererUserName", "offer"),
        offer=parse_description(d.get("offer"), "offer.offer"),
        offer_ice_candidates=tuple(parse_candidates(d.get("offerIceCandidates", []))),
        answerer_user_name=_opt_str(d, "answererUserName"),
        answer=None if answer is None else parse_description(answer, "offer.answer"),
    )


def parse_offer_views(data: object) -> list[OfferView]:
    if not isinstance(data, list):
        raise ProtocolViolation("offers: expected an array")
    return [parse_offer_view(v) for v in data]


@dataclass(frozen=True, slots=True)
class Welcome:
    user_name: str
    room: str
    ice_servers: tuple[JSON, ...]
    resume: str | None
    resumed: bool = False
    """True when the server rebound a session whose socket had dropped (protocol.md)."""
    offer_id: str | None = None
    """On a resume: the offer or call the server kept (None: none)."""
    ice_servers_ttl: float | None = None
    """Seconds the minted credentials in ``ice_servers`` stay valid (None: nothing expires)."""


def _servers(data: object, what: str) -> tuple[JSON, ...]:
    if not isinstance(data, list):
        raise ProtocolViolation(f"{what}: iceServers must be an array")
    return tuple(_dict(s, "iceServer") for s in data)


def _ttl(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def parse_welcome(data: object) -> Welcome:
    d = _dict(data, "welcome")
    return Welcome(
        user_name=_str(d, "userName", "welcome"),
        room=_str(d, "room", "welcome"),
        ice_servers=_servers(d.get("iceServers", []), "welcome"),
        resume=_opt_str(d, "resume"),
        resumed=d.get("resumed") is True,
        offer_id=_opt_str(d, "offerId"),
        ice_servers_ttl=_ttl(d.get("iceServersTtl")),
    )


def parse_ice_servers(ack: object) -> tuple[tuple[JSON, ...], float | None]:
    """The ``iceServers`` ack: ``{iceServers: [...], ttl: number | null}``."""
    d = _dict(ack, "iceServers ack")
    return _servers(d.get("iceServers"), "iceServers ack"), _ttl(d.get("ttl"))


def error_of(ack: object) -> tuple[str, str] | None:
    """``(code, message)`` when ``ack`` is ``{"error": {code, message}}``, else None."""
    if isinstance(ack, dict) and isinstance(ack.get("error"), dict):
        err = ack["error"]
        return str(err.get("code", "unknown")), str(err.get("message", ""))
    return None


# --- candidates <-> SDP / aiortc -------------------------------------------------------------


def candidates_from_sdp(sdp: str) -> list[Candidate]:
    """Every ``a=candidate:`` line of a local description, with its m-section's mid and index.

    aiortc gathers all candidates inside ``setLocalDescription`` and writes them into the SDP;
    trickling them one by one (then end-of-candidates) lets the other side start checks as soon
    as each arrives, exactly as a browser would.
    """
    found: list[Candidate] = []
    index = -1
    mid: str | None = None
    ufrag: str | None = None
    section: list[str] = []

    def flush() -> None:
        for line in section:
            found.append(Candidate(line, mid, index, ufrag))

    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if index >= 0:
                flush()
            index += 1
            mid, ufrag, section = None, None, []
        elif index < 0:
            continue
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        elif line.startswith("a=ice-ufrag:"):
            ufrag = line[len("a=ice-ufrag:") :]
        elif line.startswith("a=candidate:"):
            section.append(line[len("a=") :])
    if index >= 0:
        flush()
    return found


def to_rtc_candidate(candidate: Candidate) -> RTCIceCandidate | None:
    """The aiortc candidate for a wire candidate; None for the end-of-candidates marker."""
    text = candidate.candidate.strip()
    if not text:
        return None
    if text.startswith("candidate:"):
        text = text[len("candidate:") :]
    try:
        rtc = candidate_from_sdp(text)
    except (AssertionError, ValueError, IndexError) as exc:
        raise ProtocolViolation(f"unparsable ICE candidate: {exc!r}") from exc
    rtc.sdpMid = candidate.sdp_mid
    rtc.sdpMLineIndex = candidate.sdp_mline_index
    return rtc
