"""The quality indicator (getStats: rtt, loss, bitrate, resolution, path) and the "Test
connection" control, in real Chromium. Their logic is pure functions in stats.js and
netcheck.js, tested here in a page with fabricated reports; then on real calls: direct on
loopback, relayed through a real coturn with credentials minted by callbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.conftest import StartServer
from tests.coturn import Coturn, coturn

from .browser import FAKE_CAMERA, PersonFactory, connect_pair, load
from .conftest import make_people
from .test_relay import FORCE_RELAY, relay_server

__all__ = ["coturn"]

pytestmark = pytest.mark.e2e

# The pure functions, fed fabricated reports (a page of the app: same origin, ES modules).
PURE = """
async () => {
  const stats = await import('/js/stats.js');
  const check = await import('/js/netcheck.js');
  const channel = await import('/js/channel.js');
  const pair = (local, remote) => [
    {id: 'T', type: 'transport', selectedCandidatePairId: 'P', timestamp: 2000},
    {id: 'P', type: 'candidate-pair', localCandidateId: 'L', remoteCandidateId: 'R',
     currentRoundTripTime: 0.042, timestamp: 2000},
    {id: 'L', type: 'local-candidate', candidateType: local},
    {id: 'R', type: 'remote-candidate', candidateType: remote},
    {id: 'V', type: 'inbound-rtp', kind: 'video', bytesReceived: 250000, packetsReceived: 950,
     packetsLost: 50, frameWidth: 640, frameHeight: 480, timestamp: 2000},
    {id: 'O', type: 'outbound-rtp', kind: 'video', bytesSent: 125000, timestamp: 2000},
  ];
  const before = stats.summarize([
    {id: 'V', type: 'inbound-rtp', kind: 'video', bytesReceived: 0, packetsReceived: 0,
     packetsLost: 0, timestamp: 1000},
    {id: 'O', type: 'outbound-rtp', kind: 'video', bytesSent: 0, timestamp: 1000},
  ], null);
  const s = stats.summarize(pair('host', 'prflx'), before);
  const relayed = stats.summarize(pair('relay', 'host'), null);
  const stun = stats.summarize(pair('srflx', 'host'), null);
  const servers = [{urls: 'stun:stun.test:3478'}, {urls: ['turn:turn.test:3478?transport=udp'],
                    username: 'u', credential: 'c'}];
  return {
    paths: [['host', 'host'], ['host', 'prflx'], ['srflx', 'host'], ['prflx', 'srflx'],
            ['relay', 'host'], ['host', 'relay'], ['srflx', 'relay']]
      .map(([l, r]) => stats.pathOf(l, r)),
    sample: {path: s.path, rtt: s.rttMs, loss: s.lossPercent, inKbps: s.inKbps,
             outKbps: s.outKbps, size: [s.width, s.height], text: stats.describeSample(s),
             level: stats.qualityLevel(s)},
    noPair: stats.summarize([], null).path,
    restart: [stats.restartAfterRefresh(relayed), stats.restartAfterRefresh(stun),
              stats.restartAfterRefresh(null)],
    checkAll: check.describeCheck(servers, {timedOut: false, errors: [], candidates: [
      {type: 'host', url: '', address: '10.0.0.2'},
      {type: 'srflx', url: 'stun:stun.test:3478', address: '203.0.113.7'},
      {type: 'relay', url: 'turn:turn.test:3478?transport=udp', address: '198.51.100.1'}]}),
    checkBadTurn: check.describeCheck(servers, {timedOut: false, candidates: [
      {type: 'host', url: '', address: '10.0.0.2'}], errors: [
      {url: 'turn:turn.test:3478?transport=udp', errorCode: 401, errorText: 'Unauthorized'}]}),
    checkTimeout: check.describeCheck(servers, {timedOut: true, errors: [], candidates: []}),
    checkNone: check.describeCheck([], {timedOut: false, errors: [], candidates: [
      {type: 'host', url: '', address: '10.0.0.2'}]}),
    parsed: [
      channel.parseMessage('{"type":"chat","id":"1","text":"hi"}'),
      channel.parseMessage('{"type":"chat","id":"1","text":""}'),
      channel.parseMessage('{"type":"chat","id":"1","text":"' + 'x'.repeat(2001) + '"}'),
      channel.parseMessage('{"type":"media","audio":true,"video":false}'),
      channel.parseMessage('{"type":"whatever","x":1}'),
      channel.parseMessage('[1,2]'),
      channel.parseMessage('not json'),
      channel.parseMessage('{"type":"hangup"}'),
      channel.parseMessage('{"type":"description","description":{"type":"rollback","sdp":""}}'),
      channel.parseMessage('{"type":"hello","name":"x","features":["chat",3]}'),
      channel.parseMessage('{"type":"hangup","pad":"' + 'x'.repeat(70000) + '"}'),
    ],
  };
}
"""


def test_quality_and_check_logic_on_fabricated_reports(
    people: PersonFactory, callbox_server: Any
) -> None:
    who = people("logic")
    r = who.page.evaluate(PURE)
    assert r["paths"] == ["direct", "direct", "stun", "stun", "relay", "relay", "relay"]
    assert r["sample"] == {
        "path": "direct",
        "rtt": 42,
        "loss": 5.0,
        "inKbps": 2000,
        "outKbps": 1000,
        "size": [640, 480],
        "text": "direct · 42 ms · 5% loss · ↓2.0 Mbit/s ↑1.0 Mbit/s · 640×480",
        "level": "fair",
    }
    assert r["noPair"] is None
    assert r["restart"] == [True, False, False]
    assert [(x["what"], x["result"]) for x in r["checkAll"]] == [
        ("host", "ok"),
        ("stun", "ok"),
        ("turn", "ok"),
    ]
    assert "STUN works" in r["checkAll"][1]["text"] and "TURN works" in r["checkAll"][2]["text"]
    bad = r["checkBadTurn"][2]
    assert bad["result"] == "fail" and "wrong credentials (401" in bad["text"]
    assert "no answer in time" in r["checkTimeout"][2]["text"]
    assert r["checkTimeout"][0]["result"] == "fail"
    assert [x["result"] for x in r["checkNone"]] == ["ok", "none", "none"]
    assert r["parsed"] == [
        {"type": "chat", "id": "1", "text": "hi"},
        None,
        None,
        {"type": "media", "audio": True, "video": False, "screen": False},
        None,
        None,
        None,
        {"type": "hangup"},
        None,
        {"type": "hello", "name": "x", "features": ["chat"]},
        None,
    ]


def test_quality_indicator_shows_direct_on_a_direct_call(people: PersonFactory) -> None:
    a = people("near-a")
    b = people("near-b")
    connect_pair(a, b)
    for who in (a, b):
        expect(who.page.locator("#quality")).to_have_text("direct")
        expect(who.page.locator("#quality")).to_have_attribute(
            "data-level", re.compile("good|fair")
        )
        details = who.page.locator("#quality-details")
        expect(details).to_contain_text(re.compile(r"direct · \d+ ms · [\d.]+% loss · ↓"))
        expect(details).to_contain_text("{}×{}".format(*FAKE_CAMERA))
        timer = who.page.locator("#call-timer")
        expect(timer).to_have_text(re.compile(r"^\d\d:\d\d$"))
        shown = timer.inner_text()
        expect(timer).not_to_have_text(shown)  # it counts


def test_quality_indicator_shows_relayed_in_a_relay_only_call(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, browser: Browser, room: str
) -> None:
    server = relay_server(start_server, coturn, tmp_path)
    for person in make_people(browser, server, room):
        pair = []
        for name in ("far-a", "far-b"):
            who = person(name, open_page=False)
            who.context.add_init_script(FORCE_RELAY)
            load(who, server, room)
            pair.append(who)
        connect_pair(*pair)
        for who in pair:
            expect(who.page.locator("#quality")).to_have_text("relayed")
            expect(who.page.locator("#quality-details")).to_contain_text("relayed ·")


def test_connection_check_with_coturn_says_stun_and_turn_work(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, people: PersonFactory
) -> None:
    server = relay_server(start_server, coturn, tmp_path)
    who = people("checker", server=server)
    who.page.locator("#check-box summary").click()
    who.page.locator("#check").click()
    result = who.page.locator("#check-result")
    expect(result.locator("li")).to_have_count(3)
    expect(result.locator("li").nth(0)).to_contain_text("Local addresses:")
    expect(result.locator("li").nth(2)).to_have_attribute("data-result", "ok")
    expect(result.locator("li").nth(2)).to_contain_text("TURN works: a relay was allocated")


def test_connection_check_with_a_wrong_turn_secret_says_why(
    start_server: StartServer, coturn: Coturn, tmp_path: Path, people: PersonFactory
) -> None:
    secret = tmp_path / "wrong-secret"
    secret.write_text("not-the-secret")
    server = start_server("--turn-url", coturn.url("udp"), "--turn-secret-file", str(secret))
    who = people("doubter", server=server)
    who.page.locator("#check-box summary").click()
    who.page.locator("#check").click()
    turn = who.page.locator("#check-result li").nth(2)
    expect(turn).to_have_attribute("data-result", "fail")
    expect(turn).to_contain_text("wrong credentials (401")


def test_connection_check_without_stun_or_turn_says_so(people: PersonFactory) -> None:
    who = people("plain")
    who.page.locator("#check-box summary").click()
    who.page.locator("#check").click()
    items = who.page.locator("#check-result li")
    expect(items).to_have_count(3)
    expect(items.nth(0)).to_have_attribute("data-result", "ok")
    expect(items.nth(1)).to_contain_text("no STUN server configured")
    expect(items.nth(2)).to_contain_text("no TURN server configured")
