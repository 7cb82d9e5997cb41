"""Either side renegotiates: screen share from the answerer and from the caller, and a
glare (both offer at once) settled by perfect negotiation (PLAN.md decision 1)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .browser import (
    FAKE_CAMERA,
    PersonFactory,
    assert_connected,
    connect_pair,
    frames_grow,
    load,
    remote_size,
)
from .conftest import VIEWPORT

pytestmark = pytest.mark.e2e

# Chromium's fake screen is the size of the page's window (the viewport); the fake camera
# gives the pages FAKE_CAMERA
FAKE_SCREEN = (VIEWPORT["width"], VIEWPORT["height"])

# A fault: while `window.__e2eHold` is set, every description this page sends on the data
# channel is held back until `window.__e2eRelease()`. The test holds both pages, lets both
# make their offer, then releases them: both offers are in flight at once, a glare every
# time, however slowly each page gets to its offer.
HOLD_DESCRIPTIONS = """
(() => {
  const send = RTCDataChannel.prototype.send;
  const held = [];
  window.__e2eHold = false;
  window.__e2eRelease = () => {
    window.__e2eHold = false;
    for (const [channel, data] of held.splice(0)) { try { send.call(channel, data); } catch {} }
  };
  RTCDataChannel.prototype.send = function (data) {
    if (window.__e2eHold && typeof data === 'string' && data.includes('"type":"description"')) {
      held.push([this, data]);
      return undefined;
    }
    return send.call(this, data);
  };
})();
"""

# Counts what perfect negotiation did on this page: a remote offer set while our own
# offer was out (the polite side's rollback), or one not set at all (the impolite side).
COUNT_COLLISIONS = """
(() => {
  window.__e2eCollisions = 0;
  const set = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (d) {
    if (d && d.type === 'offer' && this.signalingState === 'have-local-offer') {
      window.__e2eCollisions += 1;
    }
    return set.call(this, d);
  };
})();
"""


def wait_remote_size(page: Page, size: tuple[int, int]) -> None:
    page.wait_for_function(
        "([w, h]) => { const v = document.querySelector('#remote-video');"
        " return v.videoWidth === w && v.videoHeight === h; }",
        arg=list(size),
    )


def test_answerer_then_caller_share_their_screens_and_stop(people: PersonFactory) -> None:
    a = people("presenter-a")
    b = people("presenter-b")
    connect_pair(a, b)
    assert remote_size(a) == FAKE_CAMERA

    share = b.page.locator("#screen")
    expect(share).to_have_text("Share screen")
    expect(share).to_have_attribute("aria-pressed", "false")
    share.click()
    expect(share).to_have_text("Stop sharing")
    expect(share).to_have_attribute("aria-pressed", "true")
    expect(b.page.locator("#remote-badges")).to_contain_text("You are sharing your screen")
    # The caller's stage shows the answerer's screen, with their camera beside it.
    wait_remote_size(a.page, FAKE_SCREEN)
    expect(a.page.locator("#remote-badges")).to_contain_text("presenter-b is sharing")
    expect(a.page.locator("#remote-camera")).to_be_visible()
    frames_grow(a)
    share.click()
    wait_remote_size(a.page, FAKE_CAMERA)
    expect(a.page.locator("#remote-camera")).to_be_hidden()
    expect(a.page.locator("#remote-badges")).not_to_contain_text("sharing")

    # Now the caller (the impolite side) shares, and stops.
    a.page.locator("#screen").click()
    wait_remote_size(b.page, FAKE_SCREEN)
    a.page.locator("#screen").click()
    wait_remote_size(b.page, FAKE_CAMERA)
    for who in (a, b):
        assert_connected(who)
        frames_grow(who)


def test_both_share_at_once_a_glare_settles_with_media_flowing(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    a = people("glare-a", open_page=False)
    b = people("glare-b", open_page=False)
    for who in (a, b):
        who.context.add_init_script(HOLD_DESCRIPTIONS)
        who.context.add_init_script(COUNT_COLLISIONS)
        load(who, callbox_server, room)
    connect_pair(a, b)
    for who in (a, b):
        who.page.evaluate("() => { window.__e2eHold = true; }")
        who.page.locator("#screen").click()
    for who in (a, b):  # both offers made, neither sent yet
        who.page.wait_for_function(
            "() => window.__e2ePeers.at(-1).signalingState === 'have-local-offer'"
        )
    for who in (a, b):
        who.page.evaluate("() => window.__e2eRelease()")
    # Each ends up seeing the other's screen: both renegotiations went through.
    wait_remote_size(a.page, FAKE_SCREEN)
    wait_remote_size(b.page, FAKE_SCREEN)
    # The polite answerer rolled its own offer back for the caller's: the glare happened.
    assert b.page.evaluate("window.__e2eCollisions") >= 1
    for who in (a, b):
        who.page.wait_for_function("() => window.__e2ePeers.at(-1).signalingState === 'stable'")
        assert_connected(who)
        frames_grow(who)
