"""The call's data channel (docs/protocol.md, "The call's data channel"; PLAN decision 6).

Both sides create ``callbox`` as a negotiated channel with id 0 before their first offer or
answer, so nobody has to announce it. Once open it carries the call's own messages, UTF-8
JSON objects of at most 64 KiB, and the call no longer needs the signaling server:

    {"type": "hello", "name": str, "features": [str, ...]}     once, on open
    {"type": "hangup"}                                          the sender ended the call
    {"type": "media", "audio": bool, "video": bool, "screen": bool}   on open and on change
    {"type": "chat", "id": str, "text": str}                    at most 2000 characters
    {"type": "description", "description": {type, sdp}}        perfect-negotiation signaling
    {"type": "candidate", "candidate": RTCIceCandidateInit}

Anything else (an unknown ``type``, a binary or oversized message, a malformed one) is
ignored with a debug log: the other side may be newer than us.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from aiortc import RTCDataChannel, RTCPeerConnection

from callbox.peer.usage import MAX_CHAT_CHARS, chat_length
from callbox.peer.wire import ProtocolViolation, parse_candidate, parse_description
from callbox.signaling.model import Candidate, Description

log = logging.getLogger(__name__)

LABEL = "callbox"
CHANNEL_ID = 0
MAX_MESSAGE_BYTES = 64 * 1024
MAX_FIELD_CHARS = 256
#: the messages this peer acts on (``hello.features``), as the web client names them. It
#: answers renegotiation offers except ICE restarts (docs/protocol.md, "Python peers and
#: ICE restart").
FEATURES = ("hangup", "media", "chat", "renegotiate")


@dataclass(frozen=True, slots=True)
class Hello:
    name: str
    features: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class MediaState:
    audio: bool
    video: bool
    screen: bool


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class RemoteDescription:
    """``description``: an offer or answer of perfect negotiation, over the channel."""

    description: Description


@dataclass(frozen=True, slots=True)
class RemoteCandidate:
    """``candidate``: None is the end-of-candidates marker (``null`` or an empty string)."""

    candidate: Candidate | None


Message = Hello | Hangup | MediaState | Chat | RemoteDescription | RemoteCandidate


class Ignored(ProtocolViolation):
    """A message we do not act on (unknown, malformed or too large)."""


def _text(data: dict[str, object], key: str, limit: int) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise Ignored(f"{key!r} must be a string")
    if len(value) > limit:
        raise Ignored(f"{key!r} is longer than {limit} characters")
    return value


def _flag(data: dict[str, object], key: str) -> bool:
    value = data.get(key)
    if not isinstance(value, bool):
        raise Ignored(f"{key!r} must be true or false")
    return value


def _features(data: dict[str, object]) -> tuple[str, ...]:
    value = data.get("features", [])
    if not isinstance(value, list):
        raise Ignored("'features' must be an array")
    return tuple(f for f in value if isinstance(f, str) and len(f) <= MAX_FIELD_CHARS)


def _candidate(data: dict[str, object]) -> Candidate | None:
    value = data.get("candidate")
    if value is None:
        return None
    candidate = parse_candidate(value)
    return None if not candidate.candidate.strip() else candidate


def parse_message(data: str | bytes) -> Message:
    """The message in ``data``; raise :class:`Ignored` for anything we do not act on."""
    if not isinstance(data, str):
        raise Ignored("binary message")
    if len(data.encode("utf-8", "surrogatepass")) > MAX_MESSAGE_BYTES:
        raise Ignored(f"message larger than {MAX_MESSAGE_BYTES} bytes")
    try:
        decoded: object = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise Ignored(f"not JSON: {exc}") from None
    if not isinstance(decoded, dict):
        raise Ignored("not a JSON object")
    kind = decoded.get("type")
    try:
        if kind == "hello":
            return Hello(_text(decoded, "name", MAX_FIELD_CHARS), _features(decoded))
        if kind == "hangup":
            return Hangup()
        if kind == "media":
            return MediaState(*(_flag(decoded, k) for k in ("audio", "video", "screen")))
        if kind == "chat":
            ident = _text(decoded, "id", MAX_FIELD_CHARS)
            text = _text(decoded, "text", MAX_CHAT_CHARS * 2)
            if not text or chat_length(text) > MAX_CHAT_CHARS:
                raise Ignored(f"chat text of {chat_length(text)} characters")
            return Chat(ident, text)
        if kind == "description":
            description = parse_description(decoded.get("description"), "description")
            if description.type not in ("offer", "answer"):
                raise Ignored(f"description of type {description.type!r}")
            return RemoteDescription(description)
        if kind == "candidate":
            return RemoteCandidate(_candidate(decoded))
    except Ignored:
        raise
    except ProtocolViolation as exc:
        raise Ignored(str(exc)) from None
    raise Ignored(f"unknown type {str(kind)[:MAX_FIELD_CHARS]!r}")


def encode(message: Message) -> str:
    """The wire form of ``message`` (compact JSON)."""
    body: dict[str, object]
    match message:
        case Hello(name=name, features=features):
            body = {"type": "hello", "name": name, "features": list(features)}
        case Hangup():
            body = {"type": "hangup"}
        case MediaState(audio=audio, video=video, screen=screen):
            body = {"type": "media", "audio": audio, "video": video, "screen": screen}
        case Chat(id=ident, text=text):
            body = {"type": "chat", "id": ident, "text": text}
        case RemoteDescription(description=description):
            body = {"type": "description", "description": description.to_wire()}
        case RemoteCandidate(candidate=candidate):
            wire = None if candidate is None else candidate.to_wire()
            body = {"type": "candidate", "candidate": wire}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class CallChannel:
    """The ``callbox`` channel of one peer connection.

    ``on_open`` runs once when the channel opens (send hello and media there);
    ``on_message`` gets every message we act on, in arrival order. The other side counts as
    present (:attr:`peer`) once its ``hello`` arrived: a peer that never says hello (the
    seed's page accepts the SCTP association but has no such channel) is not relied upon.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        on_open: Callable[[], None],
        on_message: Callable[[Message], None],
        label: str = "call",
    ) -> None:
        self._label = label
        self._on_open = on_open
        self._on_message = on_message
        self.peer: Hello | None = None
        """The other side's hello; None until it arrives."""
        self._closed = asyncio.Event()
        self.channel: RTCDataChannel = pc.createDataChannel(
            LABEL, negotiated=True, id=CHANNEL_ID, ordered=True
        )
        self.channel.on("open", self._opened)
        self.channel.on("message", self._received)
        self.channel.on("close", self._closed.set)

    @property
    def is_open(self) -> bool:
        return bool(self.channel.readyState == "open")

    def _opened(self) -> None:
        log.info("%s: data channel open", self._label)
        self._on_open()

    def _received(self, data: str | bytes) -> None:
        try:
            message = parse_message(data)
        except Ignored as exc:
            log.debug("%s: data channel message ignored: %s", self._label, exc)
            return
        if isinstance(message, Hello):
            if self.peer is not None:
                log.debug("%s: a second hello ignored", self._label)
                return
            self.peer = message
            log.info("%s: the other side is %r %s", self._label, message.name, message.features)
        self._on_message(message)

    def send(self, message: Message) -> bool:
        """Send ``message`` if the channel is open; False if it is not (or failed)."""
        if not self.is_open:
            return False
        text = encode(message)
        if len(text.encode("utf-8")) > MAX_MESSAGE_BYTES:
            log.warning("%s: %s not sent on the data channel: too large", self._label, message)
            return False
        try:
            self.channel.send(text)
        except Exception as exc:  # noqa: BLE001 - a closing channel must not end the call
            log.debug("%s: data channel send failed: %r", self._label, exc)
            return False
        return True

    async def close(self, *, within: float) -> None:
        """Close after what was sent is delivered (the channel's reset follows pending
        messages, and the other side answers it), waiting at most ``within`` seconds."""
        if self.channel.readyState in ("open", "connecting"):
            with contextlib.suppress(Exception):
                self.channel.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._closed.wait()
