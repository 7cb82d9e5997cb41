"""Calls that survive: the signaling socket dropping mid-call, and ICE restarts.

The socket drop goes through a TCP proxy that the test cuts (only the signaling goes
through it: WebRTC media flows directly between the two browsers). ICE restarts are
forced on the caller's RTCPeerConnection, which the e2e init script records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from playwright.sync_api import expect

from ..tcp_proxy import ThreadedTcpProxy
from .browser import (
    Person,
    PersonFactory,
    assert_connected,
    assert_decodes_video,
    assert_released,
    connect_pair,
)

pytestmark = pytest.mark.e2e

# Every data-state value #call-state takes from now on, in order.
WATCH_CALL_STATE = """
() => {
  const el = document.querySelector('#call-state');
  window.__e2eCallStates = [el.dataset.state];
  new MutationObserver(() => window.__e2eCallStates.push(el.dataset.state))
    .observe(el, { attributes: true, attributeFilter: ['data-state'] });
}
"""

UFRAG = r"""
([which]) => {
  const pc = window.__e2ePeers.at(-1);
  const sdp = (which === 'remote' ? pc.remoteDescription : pc.localDescription).sdp;
  return /a=ice-ufrag:(\S+)/.exec(sdp)[1];
}
"""


@dataclass
class Via:
    """Where a page loads the app from (what `load` needs of a server)."""

    url: str


def frames(who: Person) -> int:
    stats = who.stats()
    assert stats is not None
    return int(stats["framesDecoded"])


def ufrag(who: Person, which: str) -> str:
    value: str = who.page.evaluate(UFRAG, [which])
    return value


def drop_signaling(proxy: ThreadedTcpProxy, who: Person, other: Person) -> None:
    """Cut `who`'s socket, keep it out ~2 s, let it back; media must flow throughout."""
    before = frames(who)
    proxy.refuse(True)
    assert proxy.cut() >= 1
    socket_state = who.page.locator("#socket-state")
    expect(socket_state).to_have_attribute("data-state", "reconnecting")
    who.page.wait_for_timeout(2000)
    # Still away from the server, the call goes on.
    expect(socket_state).to_have_attribute("data-state", "reconnecting")
    expect(who.page.locator("#call-state")).to_have_attribute("data-state", "connected")
    assert frames(who) > before
    proxy.refuse(False)
    expect(socket_state).to_have_attribute("data-state", "connected")
    expect(who.page.locator("#socket-trail")).to_have_text(re.compile(r"reconnecting → connected$"))
    # The same session, the same call: nothing ended on either side.
    for person in (who, other):
        assert_connected(person)
    assert_decodes_video(who)


def test_socket_drop_mid_call_resumes_and_hangups_still_arrive(
    people: PersonFactory, callbox_server: Any
) -> None:
    with ThreadedTcpProxy("127.0.0.1", callbox_server.port) as proxy:
        a = people("roamer", server=Via(f"https://127.0.0.1:{proxy.port}"))
        b = people("homebody")
        connect_pair(a, b)
        drop_signaling(proxy, a, b)
        expect(a.page.locator("#me")).to_have_text("roamer")
        # B's hang-up after the resume reaches A over its new socket.
        b.page.locator("#hangup").click()
        assert_released(b)
        assert_released(a)
        expect(a.page.locator("#notice")).to_contain_text("homebody hung up")

        # Again, and now A hangs up after the resume (its second token: they rotate).
        connect_pair(a, b)
        drop_signaling(proxy, a, b)
        a.page.locator("#hangup").click()
        assert_released(a)
        assert_released(b)
        expect(b.page.locator("#notice")).to_contain_text("roamer hung up")


def test_socket_away_longer_than_the_grace_keeps_the_flowing_call(
    people: PersonFactory, start_server: Any
) -> None:
    """The server ends A's session (grace over) while media still flows: both keep the call
    peer to peer (PLAN.md decision 5), A comes back as a new session, and a hang-up still
    reaches B over the data channel."""
    server = start_server("--resume-grace", "1")
    with ThreadedTcpProxy("127.0.0.1", server.port) as proxy:
        a = people("too-far", server=Via(f"https://127.0.0.1:{proxy.port}"))
        b = people("left-behind", server=server)
        connect_pair(a, b)
        proxy.refuse(True)
        proxy.cut()
        expect(a.page.locator("#socket-state")).to_have_attribute("data-state", "reconnecting")
        # The grace runs out: B is told A lost the server, and keeps the call.
        expect(b.page.locator("#notice")).to_contain_text("too-far lost contact with the server")
        assert_connected(b)
        proxy.refuse(False)
        # A's resume is refused; it comes back as a new session and keeps the call too.
        expect(a.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
        expect(a.page.locator("#notice")).to_contain_text("the call goes on directly")
        expect(a.page.locator("#me")).to_have_text("too-far")
        for who in (a, b):
            assert_connected(who)
        for who in (a, b):
            assert_decodes_video(who)
        a.page.locator("#hangup").click()
        assert_released(a)
        assert_released(b)
        expect(b.page.locator("#notice")).to_contain_text("too-far hung up")


def test_ice_restart_by_the_caller_renegotiates_and_media_continues(
    people: PersonFactory,
) -> None:
    a = people("caller")
    b = people("answerer")
    connect_pair(a, b)
    for who in (a, b):
        who.page.evaluate(WATCH_CALL_STATE)
    remote_at_b, local_at_a, local_at_b = ufrag(b, "remote"), ufrag(a, "local"), ufrag(b, "local")
    before = frames(a), frames(b)

    a.page.evaluate("() => window.__e2ePeers.at(-1).restartIce()")

    # B got the caller's new credentials over `renegotiate`, and answered with its own. B's
    # local ufrag is read only once its answer is set (stable): between setRemoteDescription
    # and setLocalDescription it is still the old one, and A would wait for it forever.
    b.page.wait_for_function(
        f"() => ({UFRAG})(['remote']) !== {remote_at_b!r}"
        " && window.__e2ePeers.at(-1).signalingState === 'stable'"
    )
    assert ufrag(a, "local") != local_at_a
    assert ufrag(b, "local") != local_at_b
    a.page.wait_for_function(
        f"() => ({UFRAG})(['remote']) === {ufrag(b, 'local')!r}"
        " && window.__e2ePeers.at(-1).signalingState === 'stable'"
    )
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        assert_decodes_video(who)
    assert (frames(a), frames(b)) > before
    # The caller showed the restart (reconnecting) and came back; nothing ended.
    states = a.page.evaluate("window.__e2eCallStates")
    assert "reconnecting" in states and states[-1] == "connected", states
    for who in (a, b):
        assert "ended" not in who.page.evaluate("window.__e2eCallStates")


# Make the caller's connection look `disconnected` to the app (the real one stays up):
# the app's watch must restart ICE by itself after a few seconds.
FAKE_ICE = """
([state]) => {
  const pc = window.__e2ePeers.at(-1);
  if (state === null) {
    delete pc.iceConnectionState;
  } else {
    Object.defineProperty(pc, 'iceConnectionState', { configurable: true, get: () => state });
  }
  pc.dispatchEvent(new Event('iceconnectionstatechange'));
}
"""


def test_ice_disconnected_for_a_while_makes_the_caller_restart(people: PersonFactory) -> None:
    a = people("watcher")
    b = people("watched")
    connect_pair(a, b)
    remote_at_b = ufrag(b, "remote")

    a.page.evaluate(FAKE_ICE, ["disconnected"])
    expect(a.page.locator("#call-state")).to_have_attribute("data-state", "reconnecting")
    expect(a.page.locator("#ice-state")).to_have_text("disconnected")
    # No restart at once: a short blip may heal by itself.
    a.page.wait_for_timeout(1500)
    assert ufrag(b, "remote") == remote_at_b
    # After ~3 s the caller restarts ICE; the answerer gets the new offer.
    b.page.wait_for_function(f"() => ({UFRAG})(['remote']) !== {remote_at_b!r}", timeout=10_000)
    a.page.wait_for_function("() => window.__e2ePeers.at(-1).signalingState === 'stable'")
    a.page.evaluate(FAKE_ICE, [None])
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        assert_decodes_video(who)


# A fault: the next frame A's page writes that contains `needle` is swallowed, as if the
# dying connection lost it (the socket.io client believes it was sent).
LOSE_NEXT_FRAME = """
([needle]) => {
  const send = WebSocket.prototype.send;
  WebSocket.prototype.send = function (data) {
    if (typeof data === 'string' && data.includes(needle)) {
      WebSocket.prototype.send = send;
      window.__e2eLost = data;
      return undefined;
    }
    return send.call(this, data);
  };
}
"""


def test_a_hangup_lost_with_the_dying_socket_is_sent_again_after_the_resume(
    people: PersonFactory, callbox_server: Any
) -> None:
    with ThreadedTcpProxy("127.0.0.1", callbox_server.port) as proxy:
        a = people("unlucky", server=Via(f"https://127.0.0.1:{proxy.port}"))
        b = people("waiting")
        connect_pair(a, b)
        a.page.evaluate(LOSE_NEXT_FRAME, ['"hangup"'])
        a.page.locator("#hangup").click()
        assert_released(a)
        a.page.wait_for_function("() => window.__e2eLost !== undefined")
        lost = a.page.evaluate("window.__e2eLost")
        assert '"seq":' in lost  # numbered, so the server can tell a re-send
        # B heard it on the call's data channel all the same.
        assert_released(b)
        expect(b.page.locator("#notice")).to_contain_text("unlucky hung up")
        # Now A's socket dies and comes back: the lost hangup goes again (answered once).
        proxy.refuse(True)
        assert proxy.cut() >= 1
        expect(a.page.locator("#socket-state")).to_have_attribute("data-state", "reconnecting")
        proxy.refuse(False)
        expect(a.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
        expect(a.page.locator("#me")).to_have_text("unlucky")
        # Nothing is left over on the server: they call each other again.
        connect_pair(a, b)
