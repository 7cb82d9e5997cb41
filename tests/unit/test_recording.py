"""Recording what a Python peer receives (``Sink(record=...)``, aiortc's MediaRecorder)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import av
from aiortc.mediastreams import AudioStreamTrack, VideoStreamTrack

from callbox.peer.media import Sink


class LateVideo(VideoStreamTrack):
    """A video track whose first frame comes `delay` s after the audio's (a fault: a busy
    machine, or a keyframe that takes a while)."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def recv(self) -> av.frame.Frame:
        if self.delay:
            await asyncio.sleep(self.delay)
            self.delay = 0
        return await super().recv()


def streams(path: Path) -> dict[str, int]:
    """Frames decoded per stream kind of a recording."""
    with av.open(str(path)) as container:
        kinds: dict[int, str] = {s.index: s.type for s in container.streams}
        counts = dict.fromkeys(kinds.values(), 0)
        for packet in container.demux():
            for _ in packet.decode():
                counts[kinds[packet.stream.index]] += 1
    return counts


async def test_video_whose_first_frame_comes_after_the_audio_is_still_recorded(
    tmp_path: Path,
) -> None:
    record = tmp_path / "late.mp4"
    sink = Sink(record)
    sink.add(AudioStreamTrack())
    sink.add(LateVideo(0.5))
    await sink.start()
    await asyncio.sleep(1.5)
    await sink.close()
    found = streams(record)
    assert set(found) == {"audio", "video"}, found
    assert found["video"] > 0 and found["audio"] > 0


async def test_audio_alone_is_recorded_without_waiting_for_a_video(tmp_path: Path) -> None:
    record = tmp_path / "audio.mp4"
    sink = Sink(record)
    sink.add(AudioStreamTrack())
    await sink.start()
    await sink.wait_for("audio", 10)
    await sink.close()
    assert set(streams(record)) == {"audio"}
