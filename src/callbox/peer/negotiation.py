"""What the other side sends, applied to the peer connection in arrival order: its
descriptions, its candidates, and the renegotiation offers aiortc can answer.

A Python peer never makes an offer after the first one (the caller's), so it never glares:
in perfect negotiation it only ever answers (PLAN decision 1). It answers every
renegotiation offer it can apply, in either role (a screen share or a new track from the
browser), and declines what aiortc cannot do: an ICE restart (docs/protocol.md, "Python
peers and ICE restart") or an offer aiortc refuses. Declining sends no answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError

from callbox.errors import NegotiationError
from callbox.peer.wire import to_rtc_candidate
from callbox.signaling.model import Candidate, Description

log = logging.getLogger(__name__)

ICE_RESTART_UNSUPPORTED = (
    "ICE restart is not supported by aiortc; the call continues on the current path "
    "(or ends if it failed)"
)
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)
#: what aiortc raises for a description or candidate it cannot apply
_REFUSALS = (ValueError, InvalidAccessError, InvalidStateError, OperationError, NegotiationError)


def ice_ufrags(sdp: str) -> set[str]:
    """The ICE user fragments of a description: they change when ICE restarts."""
    return set(_UFRAG.findall(sdp))


@dataclass(frozen=True, slots=True)
class Declined:
    """A renegotiation offer we did not answer, and why (said to the user once)."""

    reason: str
    #: ICE has failed and this offer was the way out (a restart): the call cannot go on
    fatal: bool = False


class Negotiator:
    """Remote descriptions and candidates of one peer connection, one at a time.

    Candidates that arrive before the remote description are held, then applied right
    after it; each distinct candidate is applied once; a candidate aiortc refuses is
    logged and skipped (others may still work).
    """

    def __init__(self, pc: RTCPeerConnection, label: str = "call") -> None:
        self.pc = pc
        self.label = label
        self._remote_set = False
        self._pending: list[Candidate] = []
        self._applied: set[str] = set()
        self._lock = asyncio.Lock()

    @property
    def remote_set(self) -> bool:
        return self._remote_set

    async def set_remote(self, description: Description) -> None:
        """The first remote description (the offer we answer, or the answer to our offer)."""
        async with self._lock:
            await self._set_remote(description)

    async def start_candidates(self, candidates: list[Candidate]) -> None:
        """From now on apply remote candidates: first ``candidates``, then those held."""
        async with self._lock:
            self._remote_set = True
            pending, self._pending = [*candidates, *self._pending], []
            for candidate in pending:
                await self._apply(candidate)

    async def add_candidate(self, candidate: Candidate | None) -> None:
        """A remote candidate (None: end of candidates), now or once the description is set."""
        marker = candidate if candidate is not None else Candidate("", None, 0, None)
        async with self._lock:
            if self._remote_set:
                await self._apply(marker)
            else:
                self._pending.append(marker)

    async def answer_offer(self, offer: Description) -> Description | Declined:
        """A renegotiation offer: our answer to send back, or why we declined it."""
        async with self._lock:
            if not self._remote_set:
                return Declined("a renegotiation offer arrived before the call was set up")
            state = self.pc.signalingState
            if state != "stable":
                return Declined(f"a renegotiation offer arrived in signaling state {state}")
            current = self.pc.remoteDescription
            if current is not None and ice_ufrags(offer.sdp) != ice_ufrags(current.sdp):
                # aiortc would accept the offer but keep the old ICE credentials (no
                # restart), which breaks the restarted agent on the other side: better not
                # to apply it at all.
                failed = "failed" in (self.pc.iceConnectionState, self.pc.connectionState)
                return Declined(ICE_RESTART_UNSUPPORTED, fatal=failed)
            try:
                await self._set_remote(offer)
                await self.pc.setLocalDescription(await self.pc.createAnswer())
            except _REFUSALS as exc:
                reason = f"cannot apply the renegotiation offer ({exc}); the call goes on as it was"
                return Declined(reason)
            local = self.pc.localDescription
            log.debug("%s: local answer sdp %r", self.label, local.sdp)
            return Description(local.type, local.sdp)

    async def accept_answer(self, answer: Description) -> bool:
        """The answer to an offer someone made on our peer connection (the application's,
        not ours: a Call never offers again); False when no offer of ours is out."""
        async with self._lock:
            if self.pc.signalingState != "have-local-offer":
                return False
            await self._set_remote(answer)
            return True

    async def _set_remote(self, description: Description) -> None:
        log.debug("%s: remote %s sdp %r", self.label, description.type, description.sdp)
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=description.sdp, type=description.type)
            )
        except ValueError as exc:
            raise NegotiationError(f"remote {description.type} rejected: {exc}") from exc

    async def _apply(self, candidate: Candidate) -> None:
        if candidate.candidate in self._applied:
            return
        self._applied.add(candidate.candidate)
        log.debug("%s: remote candidate %r", self.label, candidate.candidate)
        try:
            rtc = to_rtc_candidate(candidate)
            if rtc is not None and rtc.sdpMid is None and rtc.sdpMLineIndex is None:
                rtc.sdpMLineIndex = 0
            await self.pc.addIceCandidate(rtc)
        except _REFUSALS as exc:
            log.info("%s: remote candidate skipped: %s", self.label, exc)
