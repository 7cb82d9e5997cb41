"""Time from answer to first received frame, Python peers (aiortc) vs Python and Chromium.

    .venv/bin/python bench/python_call.py [--runs 5]

Starts its own `callbox serve` (temporary data dir, free port). Each run is a fresh call in a
fresh room; the clock is the Python side's: from the moment the answer is sent (answerer) or
received (caller) to the first decoded frame of any kind, and to the first video frame.
Pairings:
  py->py        aiortc caller, aiortc answerer (both measured)
  chromium->py  Chromium (web client, fake camera) calls, aiortc answers
  py->chromium  aiortc calls, Chromium answers from the list
  baseline      the same aiortc pair in one process with no signaling server: the answer
                is handed straight to the caller (the floor callbox's py->py is compared to)
Prints the median of the runs per pairing (milliseconds) and py->py's ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.browser import CHROMIUM_ARGS  # noqa: E402  (one list of flags for tests and benches)

from callbox.peer.call import Call
from callbox.peer.media import open_source
from callbox.peer.signaling_client import SignalingClient


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [sys.executable, "-m", "callbox", "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(
        [*argv, "--data-dir", str(data_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            context = ssl.create_default_context(cafile=str(data_dir / "ca.pem"))
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("callbox serve did not start")


def elapsed(call: Call) -> tuple[float, float]:
    """(ms to the first frame of any kind, ms to the first video frame) after the answer."""
    assert call.answered_at is not None
    first = call.sink.first_frame_at()
    video = [t.first_frame_at for t in call.sink.tracks if t.kind == "video" and t.first_frame_at]
    assert first is not None and video
    return (first - call.answered_at) * 1000, (video[0] - call.answered_at) * 1000


async def until_video(call: Call) -> None:
    async with asyncio.timeout(20):
        await call.wait_connected(within=20)
        await call.sink.wait_for("video")


async def py_py(url: str, ca: Path) -> dict[str, tuple[float, float]]:
    room = f"b-{uuid.uuid4().hex[:8]}"
    async with (
        SignalingClient(url, name="a", room=room, ca=ca) as ca_client,
        SignalingClient(url, name="b", room=room, ca=ca) as cb_client,
        Call(ca_client, open_source("testsrc")) as caller,
        Call(cb_client, open_source("testsrc")) as answerer,
    ):
        placing = asyncio.create_task(caller.place(answer_within=10))
        await answerer.answer(await cb_client.wait_for_offer(from_user="a", within=10))
        await placing
        await asyncio.gather(until_video(caller), until_video(answerer))
        result = {"py->py caller": elapsed(caller), "py->py answerer": elapsed(answerer)}
        await caller.hangup()
        return result


async def direct_baseline() -> tuple[float, float]:
    """Two aiortc peers in this process, descriptions exchanged directly: from the answer
    being ready (as when the answerer sends it) to the answerer's first received frames."""
    from aiortc import RTCPeerConnection

    caller, answerer = RTCPeerConnection(), RTCPeerConnection()
    sources = [open_source("testsrc"), open_source("testsrc")]
    firsts: dict[str, float] = {}
    receivers: list[asyncio.Task[None]] = []
    got_video = asyncio.Event()

    async def first_frame(track: object) -> None:
        await track.recv()  # type: ignore[attr-defined]
        firsts.setdefault("any", time.monotonic())
        if getattr(track, "kind", None) == "video":
            firsts.setdefault("video", time.monotonic())
            got_video.set()

    @answerer.on("track")
    def on_track(track: object) -> None:
        receivers.append(asyncio.create_task(first_frame(track)))

    try:
        for pc, source in ((caller, sources[0]), (answerer, sources[1])):
            for track in (source.audio, source.video):
                if track is not None:
                    pc.addTrack(track)
        await caller.setLocalDescription(await caller.createOffer())
        await answerer.setRemoteDescription(caller.localDescription)
        await answerer.setLocalDescription(await answerer.createAnswer())
        start = time.monotonic()
        await caller.setRemoteDescription(answerer.localDescription)
        async with asyncio.timeout(20):
            await got_video.wait()
        return (firsts["any"] - start) * 1000, (firsts["video"] - start) * 1000
    finally:
        for task in receivers:
            task.cancel()
        await caller.close()
        await answerer.close()


async def with_browser(
    url: str, ca: Path, browser: object, python_calls: bool
) -> tuple[float, float]:
    from playwright.async_api import Browser

    assert isinstance(browser, Browser)
    room = f"b-{uuid.uuid4().hex[:8]}"
    context = await browser.new_context(
        ignore_https_errors=True, permissions=["camera", "microphone"]
    )
    try:
        await context.add_init_script("localStorage.setItem('callbox.name', 'web');")
        page = await context.new_page()
        await page.goto(f"{url}/?room={room}")
        await page.wait_for_selector("#socket-state[data-state=connected]")
        async with (
            SignalingClient(url, name="py", room=room, ca=ca) as client,
            Call(client, open_source("testsrc")) as call,
        ):
            if python_calls:
                placing = asyncio.create_task(call.place(answer_within=20))
                await page.locator("#offers button", has_text="Answer py").click()
                await placing
            else:
                await page.locator("#call").click()
                await call.answer(await client.wait_for_offer(from_user="web", within=20))
            await until_video(call)
            result = elapsed(call)
            await call.hangup()
        return result
    finally:
        await context.close()


async def main(runs: int) -> None:
    from playwright.async_api import async_playwright

    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        server, url = start_server(data_dir)
        ca = data_dir / "ca.pem"
        try:
            for _ in range(runs):  # interleaved with the baseline: same machine load
                for name, value in (await py_py(url, ca)).items():
                    results.setdefault(name, []).append(value)
                results.setdefault("baseline", []).append(await direct_baseline())
            chromium = shutil.which("chromium")
            if chromium is None:
                print("chromium not installed: skipping the browser pairings", file=sys.stderr)
            else:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(
                        executable_path=chromium, args=CHROMIUM_ARGS, chromium_sandbox=False
                    )
                    for _ in range(runs):
                        for name, python_calls in (("chromium->py", False), ("py->chromium", True)):
                            value = await with_browser(url, ca, browser, python_calls)
                            results.setdefault(name, []).append(value)
                    await browser.close()
        finally:
            server.terminate()
            server.wait(timeout=15)
    print(f"answer -> first received frame, median of {runs} runs (ms), Python side's clock")
    print(f"{'pairing':<18}{'any frame':>10}{'video':>8}   runs (any frame)")
    for name, values in results.items():
        anyf = statistics.median(v[0] for v in values)
        video = statistics.median(v[1] for v in values)
        each = " ".join(f"{v[0]:.0f}" for v in values)
        print(f"{name:<18}{anyf:>10.0f}{video:>8.0f}   {each}")
    base = statistics.median(v[0] for v in results["baseline"])
    for name in ("py->py caller", "py->py answerer"):
        ratio = statistics.median(v[0] for v in results[name]) / base
        print(f"{name} / baseline (any frame): {ratio:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main(parser.parse_args().runs))
