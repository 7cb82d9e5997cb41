"""Media paths: a microphone without a camera (audio-only), receive-only, and switching
the camera mid-call with replaceTrack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright, expect

from .browser import (
    CHROMIUM,
    NO_CAMERA,
    PersonFactory,
    answer_button,
    assert_connected,
    assert_decodes_video,
    chromium_args_for_tests,
    connect_pair,
    frames_grow,
    load,
    media,
    place_call,
)
from .conftest import make_people

pytestmark = pytest.mark.e2e


def test_microphone_without_camera_makes_an_audio_call(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    a = people("cam-less", open_page=False)
    a.context.add_init_script(NO_CAMERA)
    load(a, callbox_server, room)
    b = people("full-kit")
    a.page.locator("#call").click()
    # A is told what is missing, and the call goes out with the microphone.
    alert = a.page.locator("#error[role=alert]")
    expect(alert).to_contain_text("No camera was found")
    expect(alert).to_contain_text("hear you but not see you")
    expect(a.page.locator("#notice")).to_contain_text("Waiting for someone to answer")
    answer_button(b, "cam-less").click()
    for who in (a, b):
        assert_connected(who)
    # B hears A: inbound audio grows; and B's stage says why there is no picture.
    first = media(b)["audioBytes"]
    b.page.wait_for_timeout(1000)
    assert media(b)["audioBytes"] > first > 0
    expect(b.page.locator("#stage-text")).to_be_visible()
    expect(b.page.locator("#stage-text")).to_contain_text("cam-less has no camera on")
    expect(b.page.locator("#remote-badges")).to_contain_text("cam-less's camera is off")
    # A still sees B; A's mute works, its camera button has nothing to act on.
    assert_decodes_video(a)
    expect(a.page.locator("#mute")).to_be_enabled()
    expect(a.page.locator("#camera")).to_be_disabled()
    a.page.locator("#mute").click()
    expect(a.page.locator("#mute")).to_have_attribute("aria-pressed", "true")
    expect(a.page.locator("#mute")).to_have_text("Unmute")
    expect(b.page.locator("#remote-badges")).to_contain_text("cam-less is muted")


def test_receive_only_peer_is_explained_on_the_other_stage(people: PersonFactory) -> None:
    a = people("broadcaster")
    place_call(a)
    b = people("watcher", camera=False)
    answer_button(b, "broadcaster").click()
    b.page.locator("#error[role=alert]").get_by_role("button", name="Answer without camera").click()
    for who in (a, b):
        assert_connected(who)
    assert_decodes_video(b)
    expect(a.page.locator("#stage-text")).to_contain_text("watcher has no camera on")
    expect(a.page.locator("#remote-badges")).to_contain_text("watcher is muted")


@pytest.fixture
def two_camera_browser(playwright: Playwright) -> Iterator[Browser]:
    """A Chromium whose fake capture offers three cameras. They differ in pixel format
    (I420, Y16, MJPEG): the second, a depth camera, gives no frames a video encoder takes,
    so the test switches from the first to the third."""
    args = chromium_args_for_tests("device-count=3")
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=args, chromium_sandbox=False
    )
    yield browser
    browser.close()


def test_switching_camera_mid_call_keeps_frames_flowing(
    two_camera_browser: Browser, callbox_server: Any, room: str
) -> None:
    for person in make_people(two_camera_browser, callbox_server, room):
        a = person("switcher")
        b = person("viewer")
        connect_pair(a, b)
        a.page.locator("#devices-box summary").click()
        expect(a.page.locator("#camera-select option")).to_have_count(3)
        assert a.page.locator("#camera-select option:checked").inner_text() == "fake_device_0"
        other = a.page.locator("#camera-select option", has_text="fake_device_2").get_attribute(
            "value"
        )
        assert other
        a.page.locator("#camera-select").select_option(other)
        a.page.wait_for_function(
            "([id]) => window.__e2ePeers.at(-1).getSenders()"
            ".find(s => s.track?.kind === 'video')?.track.getSettings().deviceId === id",
            arg=[other],
        )
        for who in (a, b):
            assert_connected(who)
        frames_grow(b)
        frames_grow(b)
