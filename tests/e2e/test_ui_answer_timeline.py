"""Issue 8: after the click on Answer the page does only what ICE needs first.

Both pages record a timeline (WebRTC calls, the call state, the local video, the reads of
Notification.permission) in their own clock; the tests assert the order of its events, never
their durations.
"""

from __future__ import annotations

from typing import Any

import pytest

from .browser import PersonFactory, answer_button, assert_connected, load, place_call

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
      at(`${name}:${(args[0] && args[0].type) || ''}`);
      return native.apply(this, args);
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
