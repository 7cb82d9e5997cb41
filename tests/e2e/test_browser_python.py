"""Chromium (the web client, fake camera) and `callbox call`/`callbox answer` (aiortc) call
each other through a real `callbox serve`: each side decodes the other's video."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import Person, PersonFactory, frames_grow

pytestmark = pytest.mark.e2e

ICE_UP = re.compile(r"^(connected|completed)$")
CALL_SECONDS = "5"


def python_peer(command: str, server: Any, room: str, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "callbox", command, server.url, "--room", room]
    argv += ["--ca", str(server.ca_path), "--duration", CALL_SECONDS, "--wait", "30", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert "Traceback" not in err, err
    assert process.returncode == 0, (out, err)
    return out, err


def frames_received(stdout: str) -> tuple[int, int]:
    found = re.search(r"frames received: video=(\d+) audio=(\d+) \((\d+)x(\d+)\)", stdout)
    assert found, stdout
    return int(found[1]), int(found[2])


def assert_browser_decodes(who: Person) -> None:
    expect(who.page.locator("#call-state")).to_have_attribute("data-state", "connected")
    expect(who.page.locator("#ice-state")).to_have_text(ICE_UP)
    who.page.wait_for_function("() => document.querySelector('#remote-video').videoWidth > 0")
    size = who.page.evaluate(
        "(() => { const v = document.querySelector('#remote-video');"
        " return [v.videoWidth, v.videoHeight]; })()"
    )
    assert size == [640, 480]  # the Python test pattern's size
    before = who.stats()
    assert before is not None and before["framesDecoded"] > 0, before
    frames_grow(who, before)


def test_browser_calls_and_python_answers_first(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    alice = people("alice")
    alice.page.locator("#call").click()
    expect(alice.page.locator("#notice")).to_contain_text("Waiting for someone to answer")
    answerer = python_peer("answer", callbox_server, room, "--first", "--name", "py")
    try:
        assert_browser_decodes(alice)
    finally:
        out, err = finish(answerer)
    video, audio = frames_received(out)
    assert video > 0 and audio > 0, out
    assert err == ""  # Python hung up itself after --duration
    expect(alice.page.locator("#call-state")).not_to_have_attribute("data-state", "connected")


def test_python_calls_and_browser_answers_from_the_list(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    caller = python_peer("call", callbox_server, room, "--name", "py-cam")
    try:
        bob = people("bob")
        bob.page.locator("#offers button", has_text="Answer py-cam").click()
        assert_browser_decodes(bob)
    finally:
        out, err = finish(caller)
    video, audio = frames_received(out)
    assert video > 0 and audio > 0, out
    assert err == ""


PEER_STATE = """
() => {
  const pc = window.__e2ePeers.at(-1);
  if (!pc) return null;
  return {
    signaling: pc.signalingState,
    sendingVideo: pc.getTransceivers().filter(
      (t) => t.sender.track && t.sender.track.kind === 'video'
        && ['sendrecv', 'sendonly'].includes(t.currentDirection)).length,
  };
}
"""


def video_tracks_received(stdout: str) -> list[tuple[int, int, int]]:
    found = re.search(r"video tracks received: (.*)", stdout)
    assert found, stdout
    each = re.findall(r"(\d+)x(\d+) \((\d+) frames\)", found[1])
    return [(int(w), int(h), int(n)) for w, h, n in each]


def test_browser_answerer_shares_its_screen_and_the_python_caller_receives_it(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    caller = python_peer("call", callbox_server, room, "--name", "py-cam", "--duration", "14")
    try:
        bob = people("bob")
        bob.page.locator("#offers button", has_text="Answer py-cam").click()
        assert_browser_decodes(bob)
        share = bob.page.locator("#screen")
        expect(share).to_be_enabled()  # the Python peer said it answers renegotiations
        share.click()
        expect(share).to_have_attribute("aria-pressed", "true")
        # the browser (the polite answerer) offered over the data channel; Python answered
        bob.page.wait_for_function(
            f"() => {{ const s = ({PEER_STATE})();"
            " return s && s.signaling === 'stable' && s.sendingVideo === 2; }"
        )
        bob.page.wait_for_timeout(3000)  # the screen's frames reach the Python caller
        assert bob.stats()["connectionState"] == "connected"  # type: ignore[index]
    finally:
        out, err = finish(caller)
    assert err.splitlines() == ["callbox: bob added a video track"], err
    camera, screen = video_tracks_received(out)
    # Chromium may scale either down to share the bandwidth, never change their shapes: the
    # fake camera is 4:3 (FAKE_CAMERA), the fake screen 16:9 (the viewport, 960x540)
    assert camera[2] > 0 and camera[0] * 3 == camera[1] * 4, out
    assert screen[2] > 0 and screen[0] * 9 == screen[1] * 16, out
