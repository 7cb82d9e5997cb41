"""What the e2e tests drive: Chromium's flags, the scripts injected into pages, and a user.

Flags and the reasons for them: shared/BROWSER_TESTING.md.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Page, expect

# Calls take a few seconds on a loaded 2-core machine; the first one in a browser is slowest.
expect.set_options(timeout=20_000)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

FAKE_MEDIA = "--use-fake-device-for-media-stream"

#: The benches' flags: the fake camera at its own 30 fps, like a real one.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    FAKE_MEDIA,
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # Without it Chromium never gathers 127.0.0.1 and a loopback-only machine can't connect.
    "--allow-loopback-in-peer-connection",
    # No background look-ups of public hosts; a public STUN URL fails fast.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
]

# The tests' fake camera and screen make 10 frames a second, not 30: two pages in a call
# cost 1.07 cores instead of 1.37 (measured here: their encoders, decoders and the
# compositing of four videos), and the suite runs four workers on two cores. No test
# depends on the frame rate; the benches keep 30 (CHROMIUM_ARGS).
TEST_FPS = 10


def chromium_args_for_tests(fake: str = "") -> list[str]:
    """The tests' flags; ``fake``: more options of the fake devices ("device-count=3")."""
    options = ",".join(o for o in (fake, f"fps={TEST_FPS}") if o)
    return [f"{FAKE_MEDIA}={options}" if a == FAKE_MEDIA else a for a in CHROMIUM_ARGS]


# Records every RTCPeerConnection the page creates, so a test can read getStats() the way
# chrome://webrtc-internals would. Test-only: the app itself has no globals.
RECORD_PEERS = """
(() => {
  const Native = window.RTCPeerConnection;
  const peers = [];
  Object.defineProperty(window, '__e2ePeers', { value: peers });
  window.RTCPeerConnection = new Proxy(Native, {
    construct(target, args, newTarget) {
      const pc = Reflect.construct(target, args, newTarget);
      peers.push(pc);
      return pc;
    },
  });
})();
"""

# Media stats of the newest peer connection of the page.
READ_STATS = """
async () => {
  const pc = window.__e2ePeers.at(-1);
  if (!pc) return null;
  const report = await pc.getStats();
  let framesDecoded = 0;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') framesDecoded += r.framesDecoded ?? 0;
  });
  return {
    framesDecoded,
    connectionState: pc.connectionState,
    iceConnectionState: pc.iceConnectionState,
    senderTracks: pc.getSenders().map((s) => s.track && s.track.readyState),
  };
}
"""

# getUserMedia fails like a denied permission prompt.
DENY_MEDIA = """
(() => {
  const md = navigator.mediaDevices;
  if (md) {
    md.getUserMedia = () =>
      Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
  }
})();
"""


# getUserMedia waits until the test calls window.__e2eReleaseMedia(): to hold a user
# "between click and answer" while something else happens.
HOLD_MEDIA = """
(() => {
  const md = navigator.mediaDevices;
  const open = md.getUserMedia.bind(md);
  let release;
  const gate = new Promise((resolve) => { release = resolve; });
  Object.defineProperty(window, '__e2eReleaseMedia', { value: () => release() });
  md.getUserMedia = async (constraints) => { await gate; return open(constraints); };
})();
"""

#: What the tests' pages get from the fake camera (SMALL_CAMERA): Chromium's fake device gives
#: the size a page asks for, 640x480 to the app's plain ``video: true``.
FAKE_CAMERA = (320, 240)

# getUserMedia asks the fake camera for FAKE_CAMERA: a quarter of the pixels of 640x480 to
# encode, decode and compose in every call, on a machine whose suite is bound by CPU
# (renderers of four e2e files: 78.6 -> 73.2 CPU-s, 89 -> 82 s). A size the app asks for
# itself wins.
SMALL_CAMERA = f"""
(() => {{
  const md = navigator.mediaDevices;
  if (!md) return;
  const open = md.getUserMedia.bind(md);
  const small = {{ width: {{ ideal: {FAKE_CAMERA[0]} }}, height: {{ ideal: {FAKE_CAMERA[1]} }} }};
  md.getUserMedia = (constraints) => {{
    const video = constraints?.video;
    if (!video) return open(constraints);
    return open({{ ...constraints, video: video === true ? small : {{ ...small, ...video }} }});
  }};
}})();
"""

# The page's pagehide handlers never run, so the app can't say goodbye: closing the page
# is then like a crashed tab or a dropped network (registered first, so it runs first).
SWALLOW_PAGEHIDE = """
window.addEventListener('pagehide', (event) => event.stopImmediatePropagation());
"""


@dataclass
class Person:
    """One user: a browser context (like one device) with one page of the app."""

    context: BrowserContext
    page: Page
    dialogs: list[str] = field(default_factory=list)
    # the page's console and failed requests, for a failure's message
    log: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.page.evaluate(READ_STATS)
        return result

    @property
    def me(self) -> str:
        return self.page.locator("#me").inner_text()


PersonFactory = Callable[..., Person]


def load(who: Person, server: Any, room: str) -> None:
    """Open the app in `room` and wait until the server has welcomed us."""
    # debug=info: the app logs its steps to the console, which a failure's report shows
    who.page.goto(f"{server.url}/?room={room}&debug=info")
    try:
        expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
    except AssertionError as e:
        shown = who.page.locator("#error-text").inner_text()
        seen = "\n  ".join(who.log[-20:]) or "(nothing)"
        raise AssertionError(
            f"no connection to {server.url}; the page says {shown!r}; its log:\n  {seen}"
        ) from e
    expect(who.page.locator("#me")).not_to_have_text("…")


ICE_UP = re.compile(r"^(connected|completed)$")
IDLE_OR_ENDED = re.compile(r"^(ended|idle)$")


def place_call(caller: Person) -> None:
    caller.page.locator("#call").click()
    expect(caller.page.locator("#call-state")).to_have_attribute("data-state", "calling")
    # The notice appears once the server acked the offer: it is now waiting in the room.
    expect(caller.page.locator("#notice")).to_contain_text("Waiting for someone to answer")


def answer_button(answerer: Person, caller_name: str) -> Any:
    return answerer.page.locator("#offers button", has_text=f"Answer {caller_name}")


def assert_connected(who: Person) -> None:
    expect(who.page.locator("#call-state")).to_have_attribute("data-state", "connected")
    expect(who.page.locator("#ice-state")).to_have_text(ICE_UP)


def assert_decodes_video(who: Person) -> None:
    """The remote video has a size, frames were decoded, and more of them keep coming."""
    who.page.wait_for_function("() => document.querySelector('#remote-video').videoWidth > 0")
    before = who.stats()
    assert before is not None and before["framesDecoded"] > 0, before
    frames_grow(who, before)


def assert_released(who: Person) -> None:
    """Back to idle: camera tracks stopped, videos cleared, Call enabled again."""
    expect(who.page.locator("#call-state")).to_have_attribute("data-state", IDLE_OR_ENDED)
    expect(who.page.locator("#call")).to_be_enabled()
    expect(who.page.locator("#hangup")).to_be_disabled()
    cleared = who.page.evaluate(
        "['#local-video', '#remote-video']"
        ".every((s) => document.querySelector(s).srcObject === null)"
    )
    assert cleared
    stats = who.stats()  # None: the page made no peer connection at all
    assert stats is None or all(state in (None, "ended") for state in stats["senderTracks"]), stats


def connect_pair(caller: Person, answerer: Person) -> None:
    place_call(caller)
    answer_button(answerer, caller.me).click()
    for who in (caller, answerer):
        assert_connected(who)
    for who in (caller, answerer):
        assert_decodes_video(who)


# A device with a microphone and no camera: video requests fail like a missing camera,
# and the device list shows no camera (audio-only calls).
NO_CAMERA = """
(() => {
  const md = navigator.mediaDevices;
  const open = md.getUserMedia.bind(md);
  md.getUserMedia = (constraints) => {
    if (constraints && constraints.video) {
      return Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
    }
    return open(constraints);
  };
  const list = md.enumerateDevices.bind(md);
  md.enumerateDevices = async () => (await list()).filter((d) => d.kind !== 'videoinput');
})();
"""

# Audio and video stats of the newest peer connection, and the selected pair's types.
READ_MEDIA = """
async () => {
  const pc = window.__e2ePeers.at(-1);
  if (!pc) return null;
  const report = await pc.getStats();
  const out = {audioBytes: 0, framesDecoded: 0, local: '', remote: ''};
  let pairId = '';
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'audio') out.audioBytes += r.bytesReceived ?? 0;
    if (r.type === 'inbound-rtp' && r.kind === 'video') out.framesDecoded += r.framesDecoded ?? 0;
    if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
  });
  const pair = report.get(pairId);
  if (pair) {
    out.local = report.get(pair.localCandidateId)?.candidateType ?? '';
    out.remote = report.get(pair.remoteCandidateId)?.candidateType ?? '';
  }
  return out;
}
"""


def media(who: Person) -> dict[str, Any]:
    result: dict[str, Any] = who.page.evaluate(READ_MEDIA)
    return result


def remote_size(who: Person) -> tuple[int, int]:
    size = who.page.evaluate(
        "(() => { const v = document.querySelector('#remote-video');"
        " return [v.videoWidth, v.videoHeight]; })()"
    )
    return int(size[0]), int(size[1])


def frames_grow(who: Person, before: dict[str, Any] | None = None) -> None:
    """The newest connection decodes more video frames than it had (``before``, or now):
    polled for up to 10 s, not counted over a fixed second that a loaded machine may miss."""
    start = before or who.stats()
    assert start is not None
    after: dict[str, Any] | None = start
    for _ in range(40):
        who.page.wait_for_timeout(250)
        after = who.stats()
        assert after is not None
        if after["framesDecoded"] > start["framesDecoded"]:
            return
    raise AssertionError(f"no frame decoded in 10 s: {start} then {after}")
