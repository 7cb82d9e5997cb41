"""A call on aiortc, as the caller (:meth:`Call.place`) or the answerer (:meth:`Call.answer`).

    async with SignalingClient(url, ca=ca) as client, Call(client, open_source("testsrc")) as call:
        await call.place(answer_within=60)          # or: await call.answer(offer)
        await call.wait_connected(within=20)
        outcome = await call.run(duration=10)        # until duration / hang-up / ICE failure

The server is needed to meet; once the call's data channel is open (:mod:`.channel`), the call
carries its own hang-up, chat and renegotiation, and outlives the server: a call whose media
flows is kept when the server stops (``callEnded`` reason ``server-shutdown``), restarts (the
resume is refused) or closes our socket (PLAN decisions 3-6). The call ends on our hang-up,
the other side's (data channel or server), ICE failure, the server's loss of a call whose
media does not flow, or cancellation (Ctrl-C).

Renegotiation offers from the other side are answered in either role, over the path they
came by; what aiortc cannot do (an ICE restart) is declined (:mod:`.negotiation`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceTransportPolicy, RTCPeerConnection

from callbox.errors import NegotiationError, PeerError, PeerTimeout
from callbox.peer.channel import (
    FEATURES,
    CallChannel,
    Chat,
    Hangup,
    Hello,
    MediaState,
    Message,
    RemoteDescription,
)
from callbox.peer.channel import RemoteCandidate as ChannelCandidate
from callbox.peer.errors import RemoteEnded, SignalingLost
from callbox.peer.events import (
    AnswerReceived,
    CallEnded,
    Disconnected,
    OfferDeclined,
    Reconnecting,
    RemoteCandidate,
    Renegotiate,
    Resumed,
    ServerError,
    SessionLost,
)
from callbox.peer.flow import FlowWatch
from callbox.peer.ice import rtc_ice_servers
from callbox.peer.media import Sink, Source
from callbox.peer.negotiation import ICE_RESTART_UNSUPPORTED, Declined, Negotiator, ice_ufrags
from callbox.peer.signaling_client import SignalingClient
from callbox.peer.stats import Snapshot, receiving, sending, snapshot
from callbox.peer.usage import MAX_CHAT_CHARS, chat_length
from callbox.peer.wire import OfferView, candidates_from_sdp
from callbox.signaling.model import Candidate, Description

__all__ = [
    "ICE_RESTART_UNSUPPORTED",
    "Call",
    "EndReason",
    "Outcome",
    "Snapshot",
    "ice_servers",
    "ice_ufrags",
]

log = logging.getLogger(__name__)

ice_servers = rtc_ice_servers  # the name this module exported before
#: how long a hang-up waits for the server once the data channel has carried it
HANGUP_SERVER_WAIT = 3.0
#: how long a hang-up waits for the data channel to deliver it before closing
HANGUP_CHANNEL_WAIT = 1.0


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


ChatHandler = Callable[[str, str], None]


class Call:
    """One call over one :class:`SignalingClient`. Owns the peer connection, not the client.

    ``notice`` tells the user something they should know that does not end the call (a
    declined renegotiation, the server gone); ``on_chat(name, text)`` gets chat lines;
    ``relay_only`` uses TURN relays only (iceTransportPolicy "relay": to test a TURN server).
    """

    def __init__(
        self,
        client: SignalingClient,
        source: Source,
        sink: Sink | None = None,
        *,
        notice: Callable[[str], None] | None = None,
        on_chat: ChatHandler | None = None,
        relay_only: bool = False,
    ) -> None:
        self.client = client
        self.notice = notice if notice is not None else (lambda text: log.warning("%s", text))
        self.on_chat = on_chat
        self.source = source
        self.sink = sink if sink is not None else Sink()
        # aiortc reads iceServers from this object whenever it creates an ICE transport, so
        # the fresh list put here before the first offer/answer is the one the call uses.
        self._config = RTCConfiguration(
            iceServers=rtc_ice_servers(client.ice_servers),
            iceTransportPolicy=(
                RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL
            ),
        )
        self.pc = RTCPeerConnection(configuration=self._config)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        self.negotiator = Negotiator(self.pc)
        self.channel: CallChannel | None = None
        self.remote_media: MediaState | None = None
        """The other side's last ``media`` message (None: none yet)."""
        self.server_has_call = True
        """False once the server forgot the call and it goes on peer-to-peer."""
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
        self._flow = FlowWatch(self._inbound_bytes)
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._chat_out: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
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
            self.connected_at = self.connected_at or time.monotonic()
            self._connected.set()
            self._flow.start()
            if self.channel is None and self._chat_out:
                self.notice("the other side has no data channel: chat cannot be sent")
        elif state == "failed":
            self._end(Outcome(EndReason.ICE_FAILED, error=NegotiationError("ICE failed")))
        elif state == "closed" and not self._closed:  # the other side closed its connection
            self._end(Outcome(EndReason.REMOTE_LEFT, by=self.remote_name))

    def _end(self, outcome: Outcome) -> None:
        if not self._ended.done():
            log.info("call %s: ended (%s)", self.offer_id, outcome.reason)
            self._ended.set_result(outcome)

    @property
    def ended(self) -> bool:
        return self._ended.done()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self.sink.add(track)
        if self._connected.is_set():  # a renegotiation added it (a screen share, say)
            self.notice(f"{self._peer_name()} added a {track.kind} track")

    def _peer_name(self) -> str:
        hello = self.channel.peer if self.channel is not None else None
        return self.remote_name or (hello.name if hello else None) or "the other party"

    @property
    def peer_on_channel(self) -> bool:
        """The other side speaks on the data channel (it said hello and it is open)."""
        return self.channel is not None and self.channel.is_open and self.channel.peer is not None

    # --- the data channel --------------------------------------------------------------------

    def _open_channel(self) -> None:
        self.channel = CallChannel(
            self.pc, on_open=self._channel_open, on_message=self._inbox.put_nowait
        )
        self._spawn(self._run_channel())

    def _channel_open(self) -> None:
        channel = self.channel
        assert channel is not None
        welcome = self.client.welcome
        channel.send(Hello(welcome.user_name if welcome else "", FEATURES))
        sending = self.sending()
        audio = self.source.audio is not None and "audio" in sending
        video = self.source.video is not None and "video" in sending
        channel.send(MediaState(audio=audio, video=video, screen=False))
        chats, self._chat_out = self._chat_out, []
        for text in chats:
            channel.send(Chat(uuid.uuid4().hex, text))

    def say(self, text: str) -> None:
        """Send a chat line to the other side now, or once the data channel opens."""
        if not text or chat_length(text) > MAX_CHAT_CHARS:
            raise ValueError(f"a chat line has 1 to {MAX_CHAT_CHARS} characters")
        if self.channel is not None and self.channel.is_open:
            self.channel.send(Chat(uuid.uuid4().hex, text))
        else:
            self._chat_out.append(text)

    async def _run_channel(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                await self._on_message(message)
            except PeerError as exc:
                log.warning("call %s: data channel: %s", self.offer_id, exc)

    async def _on_message(self, message: Message) -> None:
        match message:
            case Hangup():
                self._end(Outcome(EndReason.REMOTE_HANGUP, by=self._peer_name()))
            case MediaState():
                log.info("call %s: the other side's media: %s", self.offer_id, message)
                self.remote_media = message
            case Chat(text=text):
                if self.on_chat is not None:
                    self.on_chat(self._peer_name(), text)
            case RemoteDescription(description=description):
                await self._remote_description(description, over_channel=True)
            case ChannelCandidate(candidate=candidate):
                await self.negotiator.add_candidate(candidate)
            case Hello():
                pass  # kept by the channel (CallChannel.peer)

    # --- signaling events --------------------------------------------------------------------

    def _spawn(self, work: Any) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(work))

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
                await self.negotiator.add_candidate(candidate)
            case CallEnded(offer_id=offer_id) if offer_id and offer_id != self.offer_id:
                log.info("call %s: callEnded of another call (%s) ignored", self.offer_id, offer_id)
            case CallEnded(reason=reason, by=by):
                await self._call_ended(reason, by or self.remote_name)
            case ServerError(error=error):
                if not self._connected.is_set():
                    self._end(Outcome(EndReason.SIGNALING_LOST, error=error))
            case Renegotiate(description=description):
                await self._remote_description(description, over_channel=False)
            case OfferDeclined(offer_id=offer_id, by=by) if offer_id == self.offer_id:
                self.notice(f"{by or 'someone'} declined the call; it stays open for others")
            case Reconnecting(reason=reason):
                log.warning("call %s: signaling dropped (%s); reconnecting", self.offer_id, reason)
            case Resumed(offer_id=offer_id):
                if self.offer_id is not None and offer_id != self.offer_id:
                    why = "the server did not keep the call while we were away"
                    await self._server_gone(why, lost=SignalingLost(why))
                else:
                    log.info("call %s: signaling resumed", self.offer_id)
            case SessionLost(reason=reason):
                lost = SignalingLost(f"signaling lost: {reason}; the call ended on the server")
                await self._server_gone(f"signaling lost: {reason}", lost=lost)
            case Disconnected(reason=reason):
                if not self._connected.is_set():
                    lost = SignalingLost(f"signaling connection lost ({reason})")
                    self._end(Outcome(EndReason.SIGNALING_LOST, error=lost))
                else:
                    log.warning(
                        "call %s: signaling lost (%s); media continues", self.offer_id, reason
                    )

    async def _call_ended(self, reason: str, by: str | None) -> None:
        if reason == "hangup":
            self._end(Outcome(EndReason.REMOTE_HANGUP, by=by))
        elif reason == "server-shutdown":
            lost = SignalingLost("the server shut down before media flowed")
            await self._server_gone("the server is shutting down", lost=lost)
        else:
            # the server lost the other side's socket; if the other side still speaks to us on
            # the data channel and its media flows, it did not leave: only its signaling did
            left = Outcome(EndReason.REMOTE_LEFT, by=by)
            await self._server_gone(f"the server lost {by or 'the other party'}", left=left)

    async def _server_gone(
        self, why: str, *, lost: PeerError | None = None, left: Outcome | None = None
    ) -> None:
        """The server no longer carries the call: keep it if its media flows (and, when the
        other side is the one the server lost, if it is still on the data channel)."""
        otherwise = left or Outcome(EndReason.SIGNALING_LOST, error=lost)
        if self.ended:
            return
        keep = self._connected.is_set() and await self._flow.check()
        if keep and left is not None:
            keep = self.peer_on_channel
        if not keep:
            self._end(otherwise)
            return
        if self.server_has_call:
            self.server_has_call = False
            text = f"{why}; media still flows: the call goes on peer-to-peer"
            log.warning("call %s: %s", self.offer_id, text)
            self.notice(text)

    async def _remote_description(self, description: Description, *, over_channel: bool) -> None:
        """A description from the other side after the first exchange: an offer is answered
        or declined; an answer is applied only if someone offered on our connection (we never
        offer again ourselves; an application using :attr:`pc` may)."""
        path = "data channel" if over_channel else "server"
        if description.type != "offer":
            if await self.negotiator.accept_answer(description):
                log.info("call %s: renegotiation answered over the %s", self.offer_id, path)
            else:
                log.info("call %s: unexpected %s over the %s ignored", self.offer_id,
                         description.type, path)  # fmt: skip
            return
        result = await self.negotiator.answer_offer(description)
        if isinstance(result, Declined):
            log.warning("call %s: renegotiation declined: %s", self.offer_id, result.reason)
            self.notice(result.reason)
            if result.fatal:
                why = NegotiationError("ICE failed and aiortc cannot restart it")
                self._end(Outcome(EndReason.ICE_FAILED, error=why))
                await self.hangup()
            return
        if over_channel:
            assert self.channel is not None
            if not self.channel.send(RemoteDescription(result)):
                log.warning("call %s: the data channel closed before our answer", self.offer_id)
                return
        else:
            await self.client.renegotiate(result, self.offer_id)
        log.info("call %s: answered a renegotiation (over the %s)", self.offer_id, path)

    # --- the two roles -----------------------------------------------------------------------

    async def _use_fresh_ice_servers(self) -> None:
        self._config.iceServers = rtc_ice_servers(await self.client.fresh_ice_servers())

    async def _trickle(self) -> None:
        local = self.pc.localDescription
        log.debug("call %s: local %s sdp %r", self.offer_id, local.type, local.sdp)
        candidates = candidates_from_sdp(local.sdp)
        first = candidates[0] if candidates else None
        end = Candidate("", first.sdp_mid if first else "0", 0, first.username_fragment if first
                        else None)  # fmt: skip
        try:
            for candidate in [*candidates, end]:
                await self.client.send_candidate(candidate, self.offer_id)
        except SignalingLost as e:
            # they are in our description too (aiortc does not trickle): the peer has them
            # already; whether the call survives the lost server is decided elsewhere
            log.info("call %s: trickle stopped: %s", self.offer_id, e)
            return
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

    async def place(self, *, answer_within: float) -> None:
        """Post an offer and wait until someone answers it (remote description set)."""
        self.caller = True
        await self._use_fresh_ice_servers()
        self._open_channel()  # before the offer, so it has an m=application section
        self._add_media(answering=False)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self._start_pump()
        self.offer_id = await self.client.offer(self.pc.localDescription.sdp)
        self.negotiator.label = f"call {self.offer_id}"
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
        await self.negotiator.set_remote(view.answer)
        await self.negotiator.start_candidates([])
        await self.sink.start()

    async def answer(self, offer: OfferView) -> None:
        """Answer a waiting offer; apply the caller's candidates, trickle ours."""
        self.offer_id = offer.offer_id
        self.negotiator.label = f"call {self.offer_id}"
        self.remote_name = offer.offerer_user_name
        await self._use_fresh_ice_servers()
        self._start_pump()
        await self.negotiator.set_remote(offer.offer)
        if "\nm=application " in offer.offer.sdp:  # no data channel in the seed's offers
            self._open_channel()
        self._add_media(answering=True)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        local = self.pc.localDescription
        buffered = await self.client.answer(offer, Description(local.type, local.sdp))
        self.answered_at = time.monotonic()
        log.info("call %s: answered %s", self.offer_id, self.remote_name)
        # relayed candidates were held until the claim succeeded
        await self.negotiator.start_candidates([*offer.offer_ice_candidates, *buffered])
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

    # --- what flows --------------------------------------------------------------------------

    def receiving(self) -> set[str]:
        """The kinds the remote side negotiated to send us."""
        return receiving(self.pc)

    def sending(self) -> set[str]:
        """The kinds we send."""
        return sending(self.pc)

    def media_flowing(self) -> bool:
        """Bytes arrived from the other side in the last few seconds."""
        return self._flow.flowing()

    async def _inbound_bytes(self) -> int:
        return (await self.snapshot()).bytes_in

    async def snapshot(self) -> Snapshot:
        return await snapshot(self.pc, self.sink, self.state)

    # --- ending ------------------------------------------------------------------------------

    async def hangup(self) -> None:
        """End the call and tell the other side: over the data channel, and the server (best
        effort; not at all when the server no longer has the call)."""
        self._end(Outcome(EndReason.LOCAL_HANGUP))
        present = self.peer_on_channel
        channel = self.channel
        if channel is not None and channel.send(Hangup()):
            await channel.close(within=HANGUP_CHANNEL_WAIT)
        if self.offer_id is None or not self.server_has_call:
            return
        if present and not self.client.online:
            return  # told over the data channel; the server is away
        with contextlib.suppress(PeerError, TimeoutError):
            async with asyncio.timeout(HANGUP_SERVER_WAIT if present else None):
                await self.client.hangup(self.offer_id)

    async def close(self) -> None:
        """Stop tracks, close the peer connection, finish the recording. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._end(Outcome(EndReason.LOCAL_HANGUP))
        tasks = [t for t in (self._pump, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._flow.close()
        self.source.stop()
        await self.pc.close()
        await self.sink.close()  # a MediaPlayer stops by itself once its tracks are stopped
