"""An incoming call rings: banner with Answer and Decline, a Web Audio tone, the tab title;
Decline tells the caller; both clicking Call at once ends in one call; the list of waiting
calls keeps a keyboard user's focus."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import (
    PersonFactory,
    answer_button,
    assert_connected,
    assert_decodes_video,
    load,
    place_call,
)

pytestmark = pytest.mark.e2e

# Records the desktop notifications the page shows.
RECORD_NOTIFICATIONS = """
(() => {
  window.__e2eNotes = [];
  const Native = window.Notification;
  window.Notification = new Proxy(Native, {
    construct(target, args, newTarget) {
      window.__e2eNotes.push([args[0], args[1] && args[1].body]);
      return Reflect.construct(target, args, newTarget);
    },
  });
})();
"""

# Counts the oscillators the page starts: the ring tone is made with Web Audio.
COUNT_TONES = """
(() => {
  window.__e2eTones = 0;
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    window.__e2eTones += 1;
    return start.apply(this, args);
  };
})();
"""


def test_incoming_call_rings_and_is_answered_from_the_banner(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    b = people("callee", open_page=False)
    b.context.add_init_script(COUNT_TONES)
    b.context.add_init_script(RECORD_NOTIFICATIONS)
    b.context.grant_permissions(["notifications"])
    load(b, callbox_server, room)
    a = people("ringer")
    place_call(a)
    banner = b.page.locator("#incoming")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("aria-live", "assertive")
    expect(banner).to_contain_text("ringer is calling you")
    b.page.wait_for_function("() => document.title.includes('ringer is calling')")
    b.page.wait_for_function("() => window.__e2eTones >= 2")
    notes = b.page.evaluate("window.__e2eNotes")
    assert notes == [["Incoming call", "ringer is calling you"]], notes
    banner.get_by_role("button", name="Answer").click()
    expect(banner).to_be_hidden()
    for who in (a, b):
        assert_connected(who)
    assert b.page.title() == "callbox"
    tones = b.page.evaluate("window.__e2eTones")
    b.page.wait_for_timeout(3500)  # one ring period: no more tones once answered
    assert b.page.evaluate("window.__e2eTones") == tones
    assert_decodes_video(b)


REMOTE_LOADED = (
    "() => ['#remote-video', '#remote-audio']"
    ".every((s) => document.querySelector(s).srcObject !== null)"
)
REMOTE_EMPTY = (
    "() => ['#remote-video', '#remote-audio']"
    ".every((s) => document.querySelector(s).srcObject === null)"
)


def test_decline_tells_the_caller_and_leaves_the_offer_for_others(people: PersonFactory) -> None:
    a = people("hopeful")
    place_call(a)
    b = people("busy-bee")
    c = people("free-bird")
    # While it rings, the prepared answer's remote streams are already in the stage's
    # elements (issue 8: loading them blocks the main thread); declined, they are emptied.
    b.page.wait_for_function(REMOTE_LOADED)
    b.page.locator("#incoming-decline").click()
    expect(b.page.locator("#incoming")).to_be_hidden()
    b.page.wait_for_function(REMOTE_EMPTY)
    expect(a.page.locator("#notice")).to_contain_text("busy-bee declined your call")
    expect(a.page.locator("#call-state")).to_have_attribute("data-state", "calling")
    # Still in B's list (B may change its mind), and still ringing at C.
    expect(answer_button(b, "hopeful")).to_be_visible()
    expect(c.page.locator("#incoming")).to_contain_text("hopeful is calling you")
    c.page.locator("#incoming-answer").click()
    for who in (a, c):
        assert_connected(who)


def test_both_click_call_at_once_and_end_in_one_call(people: PersonFactory) -> None:
    a = people("eager-a")
    b = people("eager-b")
    at = int(time.time() * 1000) + 400
    for who in (a, b):
        who.page.evaluate(
            "([at]) => setTimeout(() => document.querySelector('#call').click(), at - Date.now())",
            [at],
        )
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        assert_decodes_video(who)
    expect(a.page.locator("#call-peer")).to_have_text("with eager-b")
    expect(b.page.locator("#call-peer")).to_have_text("with eager-a")
    # Exactly one call: no offer is left waiting in the room.
    for who in (a, b):
        expect(who.page.locator("#offers button")).to_have_count(0)
        expect(who.page.locator("#incoming")).to_be_hidden()


# Drives the page's own list module (js/offerlist.js) in a list of its own: a keyboard
# user's focused button, then calls coming, going and renamed around it.
OFFER_LIST = """
async () => {
  const { createOfferList } = await import('/js/offerlist.js');
  const list = document.createElement('ul');
  document.body.append(list);
  const show = createOfferList(list);
  const offer = (id, name) => ({ offerId: id, offererUserName: name });
  const state = () => [
    [...list.querySelectorAll('button')].map((b) => b.textContent),
    list.contains(document.activeElement) ? document.activeElement.textContent : null,
  ];
  const seen = [];
  show([offer('1', 'ann')], false);
  list.querySelector('button').focus();
  seen.push(state());
  show([offer('1', 'ann'), offer('2', 'bob')], false); // a call arrives after it
  seen.push(state());
  show([offer('0', 'cy'), offer('1', 'ann'), offer('2', 'bob')], false); // and one before it
  seen.push(state());
  show([offer('1', 'ann'), offer('2', 'bobby')], false); // one goes, one is renamed
  seen.push(state());
  show([offer('1', 'ann'), offer('2', 'bobby')], true); // in a call: all disabled
  const disabled = [...list.querySelectorAll('button')].map((b) => b.disabled);
  show([offer('2', 'bobby')], false); // the focused one goes
  seen.push(state());
  const ids = [...list.querySelectorAll('button')].map((b) => b.dataset.offerId);
  list.remove();
  return { seen, disabled, ids };
}
"""


def test_the_waiting_list_is_updated_in_place_and_keeps_the_focus(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    """Calls coming and going around a keyboard user's focused Answer button leave it
    focused (a rebuilt list would drop the focus to the page, and make Chromium recompute
    style and layout on the spot)."""
    b = people("list-user", open_page=False)
    load(b, callbox_server, room)
    got = b.page.evaluate(OFFER_LIST)
    assert got["seen"] == [
        [["Answer ann"], "Answer ann"],
        [["Answer ann", "Answer bob"], "Answer ann"],
        [["Answer cy", "Answer ann", "Answer bob"], "Answer ann"],
        [["Answer ann", "Answer bobby"], "Answer ann"],
        [["Answer bobby"], None],
    ], got
    assert got["disabled"] == [True, True], got
    assert got["ids"] == ["2"], got
