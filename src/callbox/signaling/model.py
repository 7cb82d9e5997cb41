"""Wire shapes of the signaling protocol (DESIGN.md section 2) and their parsers.

Everything a client sends is untrusted ``object``: each ``parse_*`` function turns it into a
typed value or raises :class:`SignalingError` with ``invalid_payload`` / ``too_large`` /
``forbidden``. Wire names are camelCase (the seed's); they map to snake_case here and only here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from callbox.errors import CallboxError
from callbox.signaling import names

JSON = dict[str, Any]


class ErrorCode(StrEnum):
    """The error codes of DESIGN.md section 2, exactly."""

    UNAUTHORIZED = "unauthorized"
    INVALID_PAYLOAD = "invalid_payload"
    TOO_LARGE = "too_large"
    NOT_FOUND = "not_found"
    OFFER_TAKEN = "offer_taken"
    BUSY = "busy"
    NOT_IN_CALL = "not_in_call"
    FORBIDDEN = "forbidden"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"


class SignalingError(CallboxError):
    """A signaling rule refused a request; ``code`` goes on the wire, ``message`` too."""

    def __init__(self, code: ErrorCode, message: str, *, limit: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: which configured limit was exceeded, if that is why (a ``/metrics`` label)
        self.limit = limit

    def to_wire(self) -> JSON:
        return {"code": str(self.code), "message": self.message}


class StoreUnavailable(SignalingError):
    """The store could not be reached."""

    def __init__(self, message: str = "signaling store unavailable") -> None:
        super().__init__(ErrorCode.UNAVAILABLE, message)


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits enforced by the core: sizes in characters of the wire strings, what the store
    holds per offer, per answerer and per room, in entries and in characters. Each exceeded
    limit raises a :class:`SignalingError` whose ``limit`` names it (the ``limit`` label in
    ``/metrics``)."""

    max_sdp: int = 64 * 1024
    max_candidate: int = 1024
    max_field: int = 256
    max_buffered_candidates: int = 256
    #: characters of candidate strings buffered on one waiting offer
    max_buffered_candidate_bytes: int = 64 * 1024
    max_pending_candidates: int = 64
    #: characters of candidate strings held for one answerer before its answer
    max_pending_candidate_bytes: int = 16 * 1024
    max_waiting_offers: int = 100
    #: characters of the waiting offers of one room (SDP and buffered candidates): what a
    #: newcomer's ``availableOffers`` can weigh
    max_room_offer_bytes: int = 2 * 1024 * 1024
    #: sessions of one room under one name ("sam", "sam-2", ... "sam-1000"): then ``busy``.
    #: Each join tries the names in turn, so the last one costs this many store steps.
    max_same_name: int = 1000


DEFAULT_LIMITS = Limits()

MAX_NAME = names.MAX_NAME
_ROOM_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
DEFAULT_ROOM = "lobby"


@dataclass(frozen=True, slots=True)
class Description:
    """An RTCSessionDescription: ``{type, sdp}``."""

    type: str
    sdp: str

    def to_wire(self) -> JSON:
        return {"type": self.type, "sdp": self.sdp}


@dataclass(frozen=True, slots=True)
class Candidate:
    """An RTCIceCandidateInit; ``candidate == ""`` is the end-of-candidates marker."""

    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None
    username_fragment: str | None

    @property
    def size(self) -> int:
        """What it weighs in a buffer (characters of its strings)."""
        return len(self.candidate) + len(self.sdp_mid or "") + len(self.username_fragment or "")

    def to_wire(self) -> JSON:
        return {
            "candidate": self.candidate,
            "sdpMid": self.sdp_mid,
            "sdpMLineIndex": self.sdp_mline_index,
            "usernameFragment": self.username_fragment,
        }


@dataclass(frozen=True, slots=True)
class Session:
    """A connected client, as the server knows it. Identity never comes from payloads.
    Immutable: a session keeps its id, name and room for its whole life."""

    sid: str
    user_name: str
    room: str
    #: who the server's auth says this is (a JWT's ``sub``), re-checked on resume
    identity: str | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """The seed's offer record, plus an id, an owner session and a room. An immutable
    snapshot: stores hand out these and never change one after handing it out."""

    offer_id: str
    room: str
    offerer_sid: str
    offerer_user_name: str
    offer: Description
    created_at: float
    offer_ice_candidates: tuple[Candidate, ...] = ()
    answerer_sid: str | None = None
    answerer_user_name: str | None = None
    answer: Description | None = None

    @property
    def answered(self) -> bool:
        return self.answerer_sid is not None

    @property
    def size(self) -> int:
        """What a waiting offer weighs in its room: its SDP and buffered candidates."""
        return len(self.offer.sdp) + sum(c.size for c in self.offer_ice_candidates)

    def view(self) -> JSON:
        """The OfferView sent to clients (the seed's record plus ``offerId``)."""
        return {
            "offerId": self.offer_id,
            "offererUserName": self.offerer_user_name,
            "offer": self.offer.to_wire(),
            "offerIceCandidates": [c.to_wire() for c in self.offer_ice_candidates],
            "answererUserName": self.answerer_user_name,
            "answer": self.answer.to_wire() if self.answer else None,
            "answererIceCandidates": [],
        }


@dataclass(frozen=True, slots=True)
class CandidateMessage:
    candidate: Candidate
    ice_user_name: str | None
    did_i_offer: bool | None
    offer_id: str | None


@dataclass(frozen=True, slots=True)
class AnswerMessage:
    answer: Description
    offer_id: str | None
    offerer_user_name: str | None


@dataclass(frozen=True, slots=True)
class Auth:
    user_name: str | None
    password: str | None
    room: str
    token: str | None = None
    #: the resume token of a session whose socket dropped (``welcome.resume``)
    resume: str | None = None
    #: with ``resume``: the sequence number of the last event the client received
    last_seq: int | None = None
    #: whether the client named its room (False: ``room`` is the default); not compared
    room_given: bool = field(default=True, compare=False)
    #: the client can resume (``auth.resume`` is ``true`` or a token): it gets a token in
    #: ``welcome`` and numbered events, and is held for a while when its socket drops
    resumable: bool = False
    #: who the server's auth says this is (a JWT's ``sub``); None without JWT
    identity: str | None = None
    #: the only room the credentials open (a JWT's ``room`` claim); None: any room
    pinned_room: str | None = None


_LIMIT_NAMES = {"sdp": "sdp", "candidate": "candidate"}


def _invalid(message: str) -> SignalingError:
    return SignalingError(ErrorCode.INVALID_PAYLOAD, message)


def _require_dict(data: object, what: str) -> dict[str, object]:
    if not isinstance(data, dict):
        raise _invalid(f"{what} must be an object")
    return data


def _opt_str(data: dict[str, object], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string")
    if len(value) > limit:
        raise SignalingError(
            ErrorCode.TOO_LARGE,
            f"{key} is longer than {limit} characters",
            limit=_LIMIT_NAMES.get(key, "field"),
        )
    return value


def _req_str(data: dict[str, object], key: str, limit: int) -> str:
    value = _opt_str(data, key, limit)
    if value is None:
        raise _invalid(f"{key} is required")
    return value


def parse_description(
    data: object, expected_type: str, limits: Limits = DEFAULT_LIMITS
) -> Description:
    obj = _require_dict(data, expected_type)
    kind = _req_str(obj, "type", limits.max_field)
    if kind != expected_type:
        raise _invalid(f"type must be {expected_type!r}, not {kind[:32]!r}")
    sdp = _req_str(obj, "sdp", limits.max_sdp)
    if not sdp.startswith("v=0"):
        raise _invalid("sdp is not a session description (must start with v=0)")
    return Description(type=kind, sdp=sdp)


def parse_candidate(data: object, limits: Limits = DEFAULT_LIMITS) -> Candidate:
    obj = _require_dict(data, "iceCandidate")
    text = _req_str(obj, "candidate", limits.max_candidate)
    if text and not text.startswith("candidate:"):
        raise _invalid("candidate must start with 'candidate:' (or be empty)")
    if "\n" in text or "\r" in text or "\0" in text:  # (a generator costs 0.6% of the lobby)
        raise _invalid("candidate must be a single line")
    mid = _opt_str(obj, "sdpMid", limits.max_field)
    index = obj.get("sdpMLineIndex")
    if index is not None and (
        not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 1024
    ):
        raise _invalid("sdpMLineIndex must be a small non-negative integer")
    if mid is None and index is None and text:
        raise _invalid("a candidate needs sdpMid or sdpMLineIndex")
    ufrag = _opt_str(obj, "usernameFragment", limits.max_field)
    return Candidate(text, mid, index, ufrag)


def parse_candidate_message(data: object, limits: Limits = DEFAULT_LIMITS) -> CandidateMessage:
    obj = _require_dict(data, "payload")
    if "iceCandidate" not in obj:
        raise _invalid("iceCandidate is required")
    candidate = parse_candidate(obj["iceCandidate"], limits)
    did_i_offer = obj.get("didIOffer")
    if did_i_offer is not None and not isinstance(did_i_offer, bool):
        raise _invalid("didIOffer must be a boolean")
    return CandidateMessage(
        candidate=candidate,
        ice_user_name=_opt_str(obj, "iceUserName", limits.max_field),
        did_i_offer=did_i_offer,
        offer_id=_opt_str(obj, "offerId", limits.max_field),
    )


def parse_answer_message(data: object, limits: Limits = DEFAULT_LIMITS) -> AnswerMessage:
    obj = _require_dict(data, "payload")
    answer = parse_description(obj.get("answer"), "answer", limits)
    offer_id = _opt_str(obj, "offerId", limits.max_field)
    offerer = _opt_str(obj, "offererUserName", limits.max_field)
    if offer_id is None and offerer is None:
        raise _invalid("offerId or offererUserName is required")
    return AnswerMessage(answer=answer, offer_id=offer_id, offerer_user_name=offerer)


@dataclass(frozen=True, slots=True)
class RenegotiateMessage:
    description: Description
    offer_id: str | None


def parse_renegotiate(data: object, limits: Limits = DEFAULT_LIMITS) -> RenegotiateMessage:
    """``renegotiate`` takes ``{offerId?, description: {type: offer|answer, sdp}}``."""
    obj = _require_dict(data, "payload")
    raw = _require_dict(obj.get("description"), "description")
    kind = raw.get("type")
    if kind not in ("offer", "answer"):
        raise _invalid("description.type must be 'offer' or 'answer'")
    return RenegotiateMessage(
        description=parse_description(raw, str(kind), limits),
        offer_id=_opt_str(obj, "offerId", limits.max_field),
    )


def parse_hangup(data: object, limits: Limits = DEFAULT_LIMITS) -> str | None:
    """``hangup`` takes ``{offerId?}``; a bare call (no payload) is allowed too."""
    if data is None:
        return None
    return _opt_str(_require_dict(data, "payload"), "offerId", limits.max_field)


def parse_offer_id(data: object, limits: Limits = DEFAULT_LIMITS) -> str:
    """``{offerId}`` (``decline``)."""
    return _req_str(_require_dict(data, "payload"), "offerId", limits.max_field)


def clean_user_name(value: object) -> str | None:
    """Trimmed, 1-64 printable characters that cannot pass for something else
    (:mod:`callbox.signaling.names`); ``None`` when absent or empty (-> guest name)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid("userName must be a string")
    try:
        return names.clean(value)
    except names.NameProblem as e:
        if len(" ".join(value.split())) > MAX_NAME:
            raise SignalingError(ErrorCode.TOO_LARGE, str(e), limit="user_name") from e
        raise _invalid(str(e)) from e


MAX_PASSWORD = 1024
MAX_TOKEN = 8 * 1024


def _secret(obj: dict[str, object], key: str, limit: int) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"{key} must be a string")
    if len(value) > limit:
        raise SignalingError(ErrorCode.TOO_LARGE, f"{key} is too long", limit="field")
    return value


def valid_room(value: object) -> str | None:
    """``value`` if it is a room name (1-64 of ``[A-Za-z0-9_-]``), else None."""
    return value if isinstance(value, str) and _ROOM_RE.fullmatch(value) else None


MAX_RESUME = 256


def _last_seq(value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**53:
        raise _invalid("lastSeq must be a non-negative integer")
    return value


def parse_auth(data: object) -> Auth:
    """The ``auth`` object of a connect; missing means all defaults."""
    obj = {} if data is None else _require_dict(data, "auth")
    password = _secret(obj, "password", MAX_PASSWORD)
    token = _secret(obj, "token", MAX_TOKEN)
    room = obj.get("room")
    given = not (room is None or room == "")
    if not given:
        room = DEFAULT_ROOM
    checked = valid_room(room)
    if checked is None:
        raise _invalid("room must be 1-64 characters of A-Z a-z 0-9 _ -")
    raw_resume = obj.get("resume")
    resumable = raw_resume is True or isinstance(raw_resume, str)
    if raw_resume is True or raw_resume is False:
        raw_resume = None
    return Auth(
        user_name=clean_user_name(obj.get("userName")),
        password=password,
        room=checked,
        token=token,
        resume=_secret({"resume": raw_resume}, "resume", MAX_RESUME),
        last_seq=_last_seq(obj.get("lastSeq")),
        room_given=given,
        resumable=resumable,
    )
