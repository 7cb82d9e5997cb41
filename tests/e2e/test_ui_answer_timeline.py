"""Issue 8: after the click on Answer the page does only what ICE needs first.

Both pages record a timeline (WebRTC calls, the call state, the local video, the reads of
Notification.permission) in their own clock; the tests assert the order of its events, never
their durations.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import WebSocket, expect

from .browser import (
    PersonFactory,
    answer_button,
    assert_connected,
    assert_decodes_video,
    load,
    place_call,
)

pytestmark = pytest.mark.e2e

# [performance.now(), what] for each event, in window.__e2eTimeline.
TIMELINE = """
(() => {
  const events = [];
  Object.defineProperty(window, '__e2eTimeline', { value: events });
  const at = (what) => events.push([performance.now(), what]);
  document.addEventListener('click', (e) => {
    if (e.target instanceof Element && e.target.closest('#offers button')) at('click');
  }, { capture: true });
  const P = RTCPeerConnection.prototype;
  for (const name of ['setRemoteDescription', 'setLocalDescription', 'createAnswer', 'getStats']) {
    const native = P[name];
    P[name] = function (...args) {
      const what = `${name}:${(args[0] && args[0].type) || ''}`;
      at(what);
      const result = native.apply(this, args);
      result.then(() => at(`${what}:done`), () => {});
      return result;
    };
  }
  const addIceCandidate = P.addIceCandidate;
  P.addIceCandidate = function (candidate) {
    const key = (candidate && candidate.candidate || '').split(' ').slice(0, 6).join(' ');
    const sdp = (this.remoteDescription && this.remoteDescription.sdp) || '';
    at(key && sdp.includes(`\\na=${key} `) ? 'addIceCandidate:again' : 'addIceCandidate');
    return addIceCandidate.call(this, candidate);
  };
  const media = navigator.mediaDevices;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = (constraints) => { at('getUserMedia'); return getUserMedia(constraints); };
  const src = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'srcObject');
  Object.defineProperty(HTMLMediaElement.prototype, 'srcObject', {
    configurable: true,
    get() { return src.get.call(this); },
    set(value) {
      if (value) at(`srcObject:${this.id}`);
      src.set.call(this, value);
    },
  });
  const permission = Object.getOwnPropertyDescriptor(Notification, 'permission');
  Object.defineProperty(Notification, 'permission', {
    configurable: true,
    get() { at('Notification.permission'); return permission.get.call(this); },
  });
  document.addEventListener('DOMContentLoaded', () => {
    const state = document.querySelector('#call-state');
    new MutationObserver(() => at(`call-state:${state.dataset.state}`))
      .observe(state, { attributes: true, attributeFilter: ['data-state'] });
  });
})();
"""

TimelineEvents = list[tuple[float, str]]


def timeline(page: Any) -> TimelineEvents:
    return [(t, what) for t, what in page.evaluate("() => window.__e2eTimeline")]


def first(events: TimelineEvents, what: str) -> float:
    return next(t for t, w in events if w == what)


def candidate_key(candidate: str) -> str:
    return " ".join(candidate.split()[:6])


def test_prepared_answer_sends_first_and_shows_after(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    """Camera already allowed: the offer is set and the answer made before the click; after
    it, the answer is set and sent before anything is rendered, what the click shows waits
    for ICE's first local candidate, the local video starts once connected, and no candidate
    is added twice (the offer carried them)."""
    a = people("tl-caller", open_page=False)
    b = people("tl-callee", open_page=False)
    sent: list[str] = []

    def on_websocket(ws: WebSocket) -> None:
        ws.on("framesent", lambda payload: sent.append(str(payload)))

    a.page.on("websocket", on_websocket)
    for who in (a, b):
        who.context.add_init_script(TIMELINE)
        load(who, callbox_server, room)
    place_call(a)
    # prepared while it rings: the offer set, the answer made, the camera open
    b.page.wait_for_function(
        "() => window.__e2eTimeline.some(([, what]) => what === 'createAnswer:')"
    )
    answer_button(b, "tl-caller").click()
    for who in (a, b):
        assert_connected(who)
    expect(b.page.locator("#local-video")).to_have_js_property("paused", False)

    events = timeline(b.page)
    click = first(events, "click")
    before = [w for t, w in events if t < click]
    after = [w for t, w in events if t >= click]
    assert "setRemoteDescription:offer" in before and "getUserMedia" in before, before
    assert "srcObject:local-video" not in before, before
    # the remote streams were loaded into the stage while it rang, not after the click
    assert {"srcObject:remote-video", "srcObject:remote-audio"} <= set(before), before
    webrtc = [w for w in after if w.split(":")[0] in ("setRemoteDescription", "createAnswer")]
    assert webrtc == [], after  # nothing left to do for the offer after the click
    assert after[1] == "setLocalDescription:answer", after  # the first thing after the click
    assert "getUserMedia" not in after, after
    answer_sent, candidate, shown, connected = b.page.evaluate(
        "() => ['answer-sent', 'first-candidate|first-candidate-late', 'answer-shown', 'connected']"
        ".map((m) => m.split('|').flatMap((n) => performance.getEntriesByName(`callbox:${n}`))"
        "[0].startTime)"
    )
    # Chromium's performance.now() is coarsened (100 us here), so what one task does next can
    # carry the same stamp: "not before" is the order checked (done earlier, it is smaller)
    assert click < answer_sent <= first(events, "call-state:connecting"), events
    # what the click shows waits for ICE's first local candidate: Chromium makes the sockets
    # through the page's main thread, a render then would hold them back
    assert answer_sent <= candidate <= shown, (answer_sent, candidate, shown)
    assert first(events, "srcObject:local-video") >= connected, events
    # the stats poller's first sample comes once the page says connected
    assert all(t >= connected for t, w in events if w == "getStats:"), events

    for who in (a, b):
        again = [w for _, w in timeline(who.page) if w == "addIceCandidate:again"]
        assert again == [], again
    # the caller sent none of the candidates its offer carried
    offer_sdp: str = a.page.evaluate("() => window.__e2ePeers.at(-1).localDescription.sdp")
    for frame in sent:
        if "sendIceCandidateToSignalingServer" in frame:
            payload = json.loads(frame[frame.index("[") :])[1]
            key = candidate_key(payload["iceCandidate"]["candidate"])
            assert f"\na={key} " not in offer_sdp, key


def test_notification_permission_is_read_once_per_page(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    """Each read is a synchronous trip to Chromium's browser process: the page reads it once,
    not on every render (a call renders dozens of times)."""
    a = people("np-caller", open_page=False)
    b = people("np-callee", open_page=False)
    for who in (a, b):
        who.context.add_init_script(TIMELINE)
        load(who, callbox_server, room)
    place_call(a)
    answer_button(b, "np-caller").click()
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        events = timeline(who.page)
        states = [w for _, w in events if w.startswith("call-state:")]
        assert len(states) >= 2, states  # it rendered the call more than once
        reads = [w for _, w in events if w == "Notification.permission"]
        assert len(reads) <= 1, reads


def test_answer_clicked_while_the_camera_opens_waits_for_it(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    """The page opens the camera while it rings (camera allowed); a click before it is open
    answers with that camera, instead of opening it a second time."""
    b = people("co-callee", open_page=False, hold_media=True)
    b.context.add_init_script(TIMELINE)
    load(b, callbox_server, room)
    a = people("co-caller")
    place_call(a)
    b.page.wait_for_function(
        "() => window.__e2eTimeline.some(([, what]) => what === 'getUserMedia')"
    )
    answer_button(b, "co-caller").click()
    b.page.evaluate("() => window.__e2eReleaseMedia()")
    for who in (a, b):
        assert_connected(who)
    assert_decodes_video(a)
    events = [w for _, w in timeline(b.page)]
    assert events.count("getUserMedia") == 1, events
    assert events.index("click") < events.index("setRemoteDescription:offer"), events
