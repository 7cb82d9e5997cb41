"""A call on aiortc, as the caller (:meth:`Call.place`) or the answerer (:meth:`Call.answer`).

    async with SignalingClient(url, ca=ca) as client, Call(client, open_source("testsrc")) as call:
        await call.place(answer_within=60)          # or: await call.answer(offer)
        await call.wait_connected(within=20)
        outcome = await call.run(duration=10)        # until duration / hang-up / ICE failure

Remote candidates are applied in arrival order (held until the remote description is set);
local ones are trickled from the local description, then end-of-candidates. The call ends on
our hang-up, the remote ``callEnded``, ICE failure, signaling loss, or cancellation (Ctrl-C).

A dropped signaling socket does not end the call: the client resumes the session and the call
goes on (it ends only if the server did not keep it). aiortc cannot restart ICE: a browser
caller's restart offer is not applied (docs/protocol.md, "Python peers and ICE restart").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from callbox.errors import NegotiationError, PeerError, PeerTimeout
from callbox.peer.errors import RemoteEnded, SignalingLost
from callbox.peer.media import Sink, Source
from callbox.peer.signaling_client import (
    AnswerReceived,
    CallEnded,
    Disconnected,
    Reconnecting,
    RemoteCandidate,
    Renegotiate,
    Resumed,
    ServerError,
    SessionLost,
    SignalingClient,
)
from callbox.peer.wire import JSON, OfferView, candidates_from_sdp, to_rtc_candidate
from callbox.signaling.model import Candidate, Description

log = logging.getLogger(__name__)

ICE_RESTART_UNSUPPORTED = (
    "ICE restart is not supported by aiortc; the call continues on the current path "
    "(or ends if it failed)"
)
_UFRAG = re.compile(r"^a=ice-ufrag:(\S+)", re.MULTILINE)


def ice_ufrags(sdp: str) -> set[str]:
    """The ICE user fragments of a description: they change when ICE restarts."""
    return set(_UFRAG.findall(sdp))


class EndReason(StrEnum):
    DURATION = "duration reached"
    LOCAL_HANGUP = "hung up"
    REMOTE_HANGUP = "remote hung up"
    REMOTE_LEFT = "remote disconnected"
    ICE_FAILED = "ICE failed"
    SIGNALING_LOST = "signaling lost"


@dataclass(frozen=True, slots=True)
class Outcome:
    reason: EndReason
    by: str | None = None
    error: PeerError | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Counters of the call at one moment (the live status line is made from two of them)."""

    at: float
    state: str
    rtt_ms: float | None
    bytes_in: int
    bytes_out: int
    frames_in: dict[str, int]


def ice_servers(raw: tuple[JSON, ...]) -> list[RTCIceServer]:
    servers = []
    for entry in raw:
        urls = entry.get("urls")
        if isinstance(urls, str | list):
            servers.append(
                RTCIceServer(
                    urls=urls, username=entry.get("username"), credential=entry.get("credential")
                )
            )
    return servers


class Call:
    """One call over one :class:`SignalingClient`. Owns the peer connection, not the client."""

    def __init__(
        self,
        client: SignalingClient,
        source: Source,
        sink: Sink | None = None,
        *,
        notice: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.notice = notice if notice is not None else (lambda text: log.warning("%s", text))
        """Tells the user something they should know that does not end the call."""
        self.source = source
        self.sink = sink if sink is not None else Sink()
        welcome = client.welcome
        config = RTCConfiguration(iceServers=ice_servers(welcome.ice_servers if welcome else ()))
        self.pc = RTCPeerConnection(configuration=config)
        self.pc.on("track", self.sink.add)
        self.pc.on("connectionstatechange", self._on_state)
        self.offer_id: str | None = None
        self.caller = False
        self.remote_name: str | None = None
        self.state = "new"
        self.answered_at: float | None = None
        self.connected_at: float | None = None
        self.started_at = time.monotonic()
        self._connected = asyncio.Event()
        self._ended: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._answer: asyncio.Future[OfferView] = asyncio.get_running_loop().create_future()
        self._remote_set = False
        self._pending: list[Candidate] = []
        self._applied: set[str] = set()
        self._pump: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Call:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- state -------------------------------------------------------------------------------

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == self.state:
            return
        log.info("call %s: connection %s -> %s", self.offer_id, self.state, state)
        self.state = state
        if state == "connected":
            self.connected_at = time.monotonic()
            self._connected.set()
        elif state == "failed":
            self._end(Outcome(EndReason.ICE_FAILED, error=NegotiationError("ICE failed")))

    def _end(self, outcome: Outcome) -> None:
        if not self._ended.done():
            log.info("call %s: ended (%s)", self.offer_id, outcome.reason)
            self._ended.set_result(outcome)

    @property
    def ended(self) -> bool:
        return self._ended.done()

    # --- signaling events --------------------------------------------------------------------

    def _start_pump(self) -> None:
        if self._pump is None:
            self._pump = asyncio.get_running_loop().create_task(self._run_pump())

    async def _run_pump(self) -> None:
        while True:
            event = await self.client.next_event()
            try:
                await self._handle(event)
            except PeerError as exc:
                log.warning("call %s: %s", self.offer_id, exc)
                self._end(Outcome(EndReason.SIGNALING_LOST, error=exc))

    async def _handle(self, event: object) -> None:
        match event:
            case AnswerReceived(offer=view) if view.offer_id == self.offer_id:
                if not self._answer.done():
                    self._answer.set_result(view)
            case RemoteCandidate(candidate=candidate):
                if self._remote_set:
                    await self._apply(candidate)
                else:
                    self._pending.append(candidate)
            case CallEnded(reason=reason, by=by):
                why = EndReason.REMOTE_LEFT if reason != "hangup" else EndReason.REMOTE_HANGUP
                self._end(Outcome(why, by=by or self.remote_name))
            case ServerError(error=error):
                if not self._connected.is_set():
                    self._end(Outcome(EndReason.SIGNALING_LOST, error=error))
            case Renegotiate(description=description):
                await self._renegotiate(description)
            case Reconnecting(reason=reason):
                log.warning("call %s: signaling dropped (%s); resuming", self.offer_id, reason)
            case Resumed(offer_id=offer_id):
                if self.offer_id is not None and offer_id != self.offer_id:
                    lost = SignalingLost("the server did not keep the call while we were away")
                    self._end(Outcome(EndReason.SIGNALING_LOST, error=lost))
                else:
                    log.info("call %s: signaling resumed", self.offer_id)
            case SessionLost(reason=reason):
                lost = SignalingLost(f"signaling lost: {reason}; the call ended on the server")
                self._end(Outcome(EndReason.SIGNALING_LOST, error=lost))
            case Disconnected(reason=reason):
                if not self._connected.is_set():
                    lost = SignalingLost(f"signaling connection lost ({reason})")
                    self._end(Outcome(EndReason.SIGNALING_LOST, error=lost))
                else:
                    log.warning(
                        "call %s: signaling lost (%s); media continues", self.offer_id, reason
                    )

    async def _renegotiate(self, description: Description) -> None:
        """A ``renegotiate`` from the other side: answer a new offer that aiortc can apply."""
        if self.caller or description.type != "offer" or not self._remote_set:
            log.warning(
                "call %s: ignoring renegotiate %s (we only answer offers, as answerer)",
                self.offer_id,
                description.type,
            )
            return
        current = self.pc.remoteDescription
        if current is not None and ice_ufrags(description.sdp) != ice_ufrags(current.sdp):
            # aiortc would accept the offer but keep the old ICE credentials (no restart),
            # which breaks the browser's restarted agent: better not to apply it at all.
            log.warning("call %s: %s", self.offer_id, ICE_RESTART_UNSUPPORTED)
            self.notice(ICE_RESTART_UNSUPPORTED)
            if self.pc.iceConnectionState == "failed" or self.state == "failed":
                why = NegotiationError("ICE failed and aiortc cannot restart it")
                self._end(Outcome(EndReason.ICE_FAILED, error=why))
                with contextlib.suppress(PeerError):
                    await self.client.hangup(self.offer_id)
            return
        await self._set_remote(description)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        await self.client.renegotiate(Description(local.type, local.sdp), self.offer_id)
        log.info("call %s: answered a renegotiation", self.offer_id)

    async def _apply(self, candidate: Candidate) -> None:
        if candidate.candidate in self._applied:
            return
        self._applied.add(candidate.candidate)
        log.debug("call %s: remote candidate %r", self.offer_id, candidate.candidate)
        rtc = to_rtc_candidate(candidate)
        if rtc is not None and rtc.sdpMid is None and rtc.sdpMLineIndex is None:
            rtc.sdpMLineIndex = 0
        await self.pc.addIceCandidate(rtc)

    async def _set_remote(self, description: Description) -> None:
        log.debug("call %s: remote %s sdp %r", self.offer_id, description.type, description.sdp)
        try:
            await self.pc.setRemoteDescription(
                RTCSessionDescription(sdp=description.sdp, type=description.type)
            )
        except ValueError as exc:
            raise NegotiationError(f"remote {description.type} rejected: {exc}") from exc

    async def _flush(self, candidates: list[Candidate]) -> None:
        """From now on apply remote candidates: first ``candidates``, then those held."""
        self._remote_set = True
        pending, self._pending = [*candidates, *self._pending], []
        for candidate in pending:
            await self._apply(candidate)

    async def _trickle(self) -> None:
        local = self.pc.localDescription
        log.debug("call %s: local %s sdp %r", self.offer_id, local.type, local.sdp)
        candidates = candidates_from_sdp(local.sdp)
        for candidate in candidates:
            await self.client.send_candidate(candidate, self.offer_id)
        first = candidates[0] if candidates else None
        end = Candidate("", first.sdp_mid if first else "0", 0, first.username_fragment if first
                        else None)  # fmt: skip
        await self.client.send_candidate(end, self.offer_id)
        log.info("call %s: trickled %d local candidates", self.offer_id, len(candidates))

    def _add_media(self, *, answering: bool) -> None:
        """Attach our tracks; the answerer can only use the kinds the offer has."""
        offered = {t.kind for t in self.pc.getTransceivers()}
        for kind, track in (("audio", self.source.audio), ("video", self.source.video)):
            if answering and kind not in offered:
                if track is not None:
                    log.info("call %s: the offer has no %s; not sending it", self.offer_id, kind)
                continue
            if track is not None:
                self.pc.addTrack(track)
            elif kind not in offered:
                self.pc.addTransceiver(kind, direction="recvonly")

    # --- the two roles -----------------------------------------------------------------------

    async def place(self, *, answer_within: float) -> None:
        """Post an offer and wait until someone answers it (remote description set)."""
        self.caller = True
        self._add_media(answering=False)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._start_pump()
        self.offer_id = await self.client.offer(self.pc.localDescription.sdp)
        await self._trickle()
        try:
            async with asyncio.timeout(answer_within):
                view = await self._wait_or_end(self._answer)
        except TimeoutError:
            raise PeerTimeout(f"nobody answered within {answer_within:g} s") from None
        self.answered_at = time.monotonic()
        self.remote_name = view.answerer_user_name
        if view.answer is None:
            raise NegotiationError(f"answer to offer {self.offer_id} has no description")
        log.info("call %s: answered by %s", self.offer_id, self.remote_name)
        await self._set_remote(view.answer)
        await self._flush([])
        await self.sink.start()

    async def answer(self, offer: OfferView) -> None:
        """Answer a waiting offer; apply the caller's candidates, trickle ours."""
        self.offer_id = offer.offer_id
        self.remote_name = offer.offerer_user_name
        self._start_pump()
        await self._set_remote(offer.offer)
        self._add_media(answering=True)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        buffered = await self.client.answer(offer, Description(local.type, local.sdp))
        self.answered_at = time.monotonic()
        log.info("call %s: answered %s", self.offer_id, self.remote_name)
        # relayed candidates were held until the claim succeeded
        await self._flush([*offer.offer_ice_candidates, *buffered])
        await self.sink.start()
        await self._trickle()

    async def _wait_or_end(self, future: asyncio.Future[OfferView]) -> OfferView:
        either: list[asyncio.Future[Any]] = [future, self._ended]
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if future.done():
            return future.result()
        raise self._failure(self._ended.result())

    def _failure(self, outcome: Outcome) -> PeerError:
        if outcome.error is not None:
            return outcome.error
        who = outcome.by or "the other party"
        return RemoteEnded(f"{who} ended the call ({outcome.reason}) before media flowed")

    async def wait_connected(self, *, within: float) -> None:
        """Wait for ICE+DTLS ``connected``; raise if the call ends or fails first."""
        waiter = asyncio.ensure_future(self._connected.wait())
        either: list[asyncio.Future[Any]] = [waiter, self._ended]
        try:
            async with asyncio.timeout(within):
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            raise PeerTimeout(
                f"no connection within {within:g} s (ICE state {self.pc.iceConnectionState})"
            ) from None
        finally:
            waiter.cancel()
        if not self._connected.is_set():
            raise self._failure(self._ended.result())

    async def run(self, *, duration: float | None) -> Outcome:
        """Let media flow until ``duration`` runs out or the call ends; return how it ended."""
        try:
            async with asyncio.timeout(duration):
                return await asyncio.shield(self._ended)
        except TimeoutError:
            self._end(Outcome(EndReason.DURATION))
            return self._ended.result()

    def stop(self) -> None:
        """End the call from our side (Ctrl-C); :meth:`run` returns."""
        self._end(Outcome(EndReason.LOCAL_HANGUP))

    def receiving(self) -> set[str]:
        """The kinds the remote side negotiated to send us."""
        return {
            t.kind
            for t in self.pc.getTransceivers()
            if t.currentDirection in ("sendrecv", "recvonly")
        }

    def sending(self) -> set[str]:
        """The kinds we send."""
        return {
            t.kind
            for t in self.pc.getTransceivers()
            if t.currentDirection in ("sendrecv", "sendonly")
        }

    async def snapshot(self) -> Snapshot:
        rtt: float | None = None
        bytes_in = bytes_out = 0
        transports: set[str] = set()
        for stats in (await self.pc.getStats()).values():
            if stats.type == "remote-inbound-rtp" and stats.roundTripTime is not None:
                rtt = max(rtt or 0.0, stats.roundTripTime * 1000)
            elif stats.type == "transport" and stats.id not in transports:
                transports.add(stats.id)
                bytes_in += stats.bytesReceived
                bytes_out += stats.bytesSent
        frames = {kind: self.sink.frames(kind) for kind in ("video", "audio")}
        return Snapshot(time.monotonic(), self.state, rtt, bytes_in, bytes_out, frames)

    async def hangup(self) -> None:
        """Tell the server we hang up (best effort), and end the call."""
        self._end(Outcome(EndReason.LOCAL_HANGUP))
        if self.offer_id is not None:
            with contextlib.suppress(PeerError):
                await self.client.hangup(self.offer_id)

    async def close(self) -> None:
        """Stop tracks, close the peer connection, finish the recording. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._end(Outcome(EndReason.LOCAL_HANGUP))
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self.source.stop()
        await self.pc.close()
        await self.sink.close()  # a MediaPlayer stops by itself once its tracks are stopped
