"""Media for Python peers: generated test sources, aiortc's player/recorder, frame counting.

Sources (``--send``): ``testsrc`` (a test pattern with a moving box + a tone, generated),
``none`` (receive only), a V4L2 device (``/dev/video*``), an ALSA device (``alsa:hw:0``), or any
file or URL FFmpeg can read (aiortc's ``MediaPlayer``).
Sinks: every received track is counted (:class:`CountingTrack`); with ``--record FILE`` the
counted frames go to aiortc's ``MediaRecorder`` (MP4/MKV/WebM by extension), else are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import av
from aiortc import MediaStreamTrack, VideoStreamTrack
from aiortc.contrib.media import MediaPlayer, MediaRecorder
from aiortc.mediastreams import MediaStreamError

from callbox.errors import PeerError

#: seconds a recording's audio waits for the first video frame (see AfterVideo)
VIDEO_WAIT = 5.0

log = logging.getLogger(__name__)

# --- sources ---------------------------------------------------------------------------------


class TestPatternTrack(VideoStreamTrack):
    """Colour bars with a white box sweeping left to right, at 30 frames per second."""

    __test__ = False  # not a pytest test class
    _BARS = ((235, 128, 128), (210, 16, 146), (170, 166, 16), (145, 54, 34),
             (106, 202, 222), (81, 90, 240), (41, 240, 110), (16, 128, 128))  # fmt: skip

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.width = width - width % 2
        self.height = height - height % 2
        self.frames_sent = 0
        template = av.VideoFrame(self.width, self.height, "yuv420p")
        self._planes: list[bytearray] = []
        for index, plane in enumerate(template.planes):
            row = bytearray(plane.line_size)
            for x in range(plane.width):
                bar = x * len(self._BARS) // plane.width
                row[x] = self._BARS[bar][index]
            self._planes.append(row * plane.height)
        self._box = max(16, self.height // 6) & ~1

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        span = self.width - self._box
        x = (self.frames_sent * 8) % (2 * span)
        x = (x if x < span else 2 * span - x) & ~1
        y = (self.height - self._box) // 2 & ~1
        for index, plane in enumerate(frame.planes):
            data = bytearray(self._planes[index])
            shift = 0 if index == 0 else 1
            bx, by, size = x >> shift, y >> shift, self._box >> shift
            value = 235 if index == 0 else 128
            fill = bytes([value]) * size
            for row in range(by, by + size):
                start = row * plane.line_size + bx
                data[start : start + size] = fill
            plane.update(bytes(data))
        frame.pts = pts
        frame.time_base = time_base
        self.frames_sent += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """A 480 Hz sine tone, 48 kHz mono, in 20 ms frames."""

    kind = "audio"
    RATE = 48000
    SAMPLES = 960  # 20 ms

    def __init__(self, frequency: int = 480, level: float = 0.2) -> None:
        super().__init__()
        # one second holds a whole number of periods, so slicing it loops without a click
        amplitude = int(32767 * level)
        self._wave = array(
            "h",
            (int(amplitude * math.sin(2 * math.pi * frequency * n / self.RATE))
             for n in range(self.RATE)),
        )  # fmt: skip
        self._start = 0.0
        self._timestamp = -1
        self.frames_sent = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._timestamp < 0:
            self._start = time.time()
            self._timestamp = 0
        else:
            self._timestamp += self.SAMPLES
            await asyncio.sleep(self._start + self._timestamp / self.RATE - time.time())
        offset = self._timestamp % self.RATE
        chunk = self._wave[offset : offset + self.SAMPLES]
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.SAMPLES)
        frame.planes[0].update(chunk.tobytes())
        frame.pts = self._timestamp
        frame.sample_rate = self.RATE
        frame.time_base = fractions.Fraction(1, self.RATE)
        self.frames_sent += 1
        return frame


@dataclass(slots=True)
class Source:
    """What we send: up to one audio and one video track, and the player to stop."""

    audio: MediaStreamTrack | None = None
    video: MediaStreamTrack | None = None
    player: MediaPlayer | None = None

    def stop(self) -> None:
        for track in (self.audio, self.video):
            if track is not None:
                track.stop()


def open_source(spec: str, *, width: int = 640, height: int = 480) -> Source:
    """The media to send for ``--send SPEC``; raise :class:`PeerError` if it can't be opened."""
    if spec == "testsrc":
        return Source(audio=ToneTrack(), video=TestPatternTrack(width, height))
    if spec == "none":
        return Source()
    if spec.startswith("/dev/video"):
        options = {"video_size": f"{width}x{height}", "framerate": "30"}
        file, fmt = spec, "v4l2"
    elif spec.startswith("alsa:"):
        options, file, fmt = {}, spec[len("alsa:") :], "alsa"
    else:
        if "://" not in spec and not Path(spec).exists():
            raise PeerError(f"cannot send {spec!r}: no such file")
        options, file, fmt = {}, spec, None
    try:
        player = MediaPlayer(file, format=fmt, options=options)
    except (OSError, av.FFmpegError) as exc:
        raise PeerError(f"cannot open {spec!r} to send: {exc}") from exc
    return Source(audio=player.audio, video=player.video, player=player)


# --- sinks -----------------------------------------------------------------------------------


class CountingTrack(MediaStreamTrack):
    """Pass-through of a received track that counts frames and remembers the video size."""

    def __init__(
        self,
        source: MediaStreamTrack,
        on_frame: asyncio.Event,
        first_frame: asyncio.Event | None = None,
    ) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._on_frame = on_frame
        self._first_frame = first_frame
        self.frames = 0
        self.width = 0
        self.height = 0
        self.sizes: list[tuple[int, int]] = []
        """Every video size seen, in order (a screen share may change it)."""
        self.first_frame_at: float | None = None

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        frame = await self._source.recv()
        if self.frames == 0:
            self.first_frame_at = time.monotonic()
            if self._first_frame is not None:
                self._first_frame.set()
        self.frames += 1
        if isinstance(frame, av.VideoFrame):
            self.width, self.height = frame.width, frame.height
            if not self.sizes or self.sizes[-1] != (self.width, self.height):
                self.sizes.append((self.width, self.height))
        self._on_frame.set()
        if not isinstance(frame, av.VideoFrame | av.AudioFrame):
            raise MediaStreamError(f"unexpected {type(frame).__name__} on a {self.kind} track")
        return frame


class AfterVideo(MediaStreamTrack):
    """A recorded audio track that gives its first frame only once the recording's video
    had its own (or after :data:`VIDEO_WAIT` s without one). aiortc's ``MediaRecorder`` writes
    the file's header at the first packet: a video stream whose first frame comes later, as
    it does on a busy machine, is left out of the file. Frames wait meanwhile in the remote
    track's queue; none is lost."""

    def __init__(self, source: CountingTrack, video_started: asyncio.Event) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._video_started = video_started
        self._waited = False

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        if not self._waited:
            self._waited = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(VIDEO_WAIT):
                    await self._video_started.wait()
        return await self._source.recv()


@dataclass(slots=True)
class Sink:
    """Consumes every received track: counts it, and records it when a file is given."""

    record: Path | None = None
    tracks: list[CountingTrack] = field(default_factory=list)
    frame_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _recorder: MediaRecorder | None = None
    _recorded: list[CountingTrack] = field(default_factory=list)
    #: the recording's video had its first frame (its audio waits for it)
    _video_started: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _started: bool = False
    _closed: bool = False

    def add(self, track: MediaStreamTrack) -> None:
        """Attach a remote track (from the ``track`` event). Tracks added after
        :meth:`start` (a renegotiation) are counted but not recorded: the recording's
        streams are fixed once it started."""
        recording = self.record is not None and not self._started
        first = self._video_started if recording and track.kind == "video" else None
        counted = CountingTrack(track, self.frame_arrived, first)
        self.tracks.append(counted)
        if recording:
            if self._recorder is None:
                try:
                    self._recorder = MediaRecorder(str(self.record))
                except (OSError, ValueError, av.FFmpegError) as exc:
                    raise PeerError(f"cannot record to {self.record}: {exc}") from exc
            audio = counted.kind == "audio"
            self._recorder.addTrack(AfterVideo(counted, self._video_started) if audio else counted)
            self._recorded.append(counted)
        if self._started:
            self._drain(counted)

    def _drain(self, track: CountingTrack) -> None:
        if self._recorder is not None and track in self._recorded:
            return
        task = asyncio.get_running_loop().create_task(self._discard(track))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _discard(track: CountingTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            return

    async def start(self) -> None:
        """Start pulling frames from every track attached so far (and later)."""
        if self._started:
            return
        self._started = True
        if not any(t.kind == "video" for t in self._recorded):
            self._video_started.set()  # no video to wait for
        if self._recorder is not None:
            await self._recorder.start()
        for track in self.tracks:
            self._drain(track)

    async def wait_for(self, kind: str, count: int = 1) -> None:
        """Return once ``count`` frames of ``kind`` arrived (wrap it in ``asyncio.timeout``)."""
        while self.frames(kind) < count:
            self.frame_arrived.clear()  # no await since the check: no frame is missed
            await self.frame_arrived.wait()

    def frames(self, kind: str) -> int:
        return sum(t.frames for t in self.tracks if t.kind == kind)

    def video_size(self) -> tuple[int, int]:
        for t in self.tracks:
            if t.kind == "video" and t.width:
                return t.width, t.height
        return 0, 0

    def first_frame_at(self) -> float | None:
        times = [t.first_frame_at for t in self.tracks if t.first_frame_at is not None]
        return min(times) if times else None

    async def close(self) -> None:
        """Stop consuming and finish the recording (its trailer is written here)."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._recorder is not None:
            try:
                await self._recorder.stop()
            except (OSError, ValueError, av.FFmpegError) as exc:
                log.warning("recording to %s failed to finish: %s", self.record, exc)
        for t in self.tracks:
            t.stop()
