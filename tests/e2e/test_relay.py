"""Relay-only calls between two Chromium pages through a real coturn, with the TURN
credentials callbox mints: the selected candidate pair is relay on both sides, video is
decoded, and a call that outlives a short credential TTL keeps decoding."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.conftest import RunningServer, StartServer
from tests.coturn import Coturn, coturn
from tests.integration.server_proc import metric

from .browser import Person, PersonFactory, connect_pair, load
from .conftest import make_people

__all__ = ["coturn"]

pytestmark = pytest.mark.e2e

# iceTransportPolicy "relay" for every RTCPeerConnection of the page, also through
# setConfiguration (a credential refresh must not turn it back to "all"). Added after
# RECORD_PEERS, so it wraps the recording constructor.
FORCE_RELAY = """
(() => {
  const Native = window.RTCPeerConnection;
  const relay = (config) => ({ ...(config || {}), iceTransportPolicy: 'relay' });
  const setConfiguration = Native.prototype.setConfiguration;
  Native.prototype.setConfiguration = function (config) {
    return setConfiguration.call(this, relay(config));
  };
  window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, {
    construct(target, args, newTarget) {
      return Reflect.construct(target, [relay(args[0]), ...args.slice(1)], newTarget);
    },
  });
})();
"""

# The selected candidate pair of the newest peer connection, the way webrtc-internals shows
# it: transport -> selectedCandidatePairId -> local and remote candidates.
SELECTED_PAIR = """
async () => {
  const pc = window.__e2ePeers.at(-1);
  if (!pc) return null;
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
  });
  const pair = pairId && report.get(pairId);
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return {
    local: local.candidateType,
    remote: remote.candidateType,
    relayProtocol: local.relayProtocol ?? null,
    localAddress: `${local.address}:${local.port}`,
    policy: pc.getConfiguration().iceTransportPolicy,
  };
}
"""


def selected_pair(who: Person) -> dict[str, Any]:
    pair: dict[str, Any] | None = who.page.evaluate(SELECTED_PAIR)
    assert pair is not None, "no selected candidate pair"
    return pair


def relay_server(start_server: StartServer, coturn: Coturn, tmp_path: Path, *extra: str) -> Any:
    secret = tmp_path / "turn-secret"
    secret.write_text(coturn.secret)
    return start_server(
        "--turn-url",
        coturn.url("udp"),
        "--turn-url",
        coturn.url("tcp"),
        "--turn-secret-file",
        str(secret),
        *extra,
    )


@pytest.fixture
def relay_people(browser: Browser) -> Iterator[PersonFactory]:
    """People whose pages gather relay candidates only (``people(..., server=, room=)``)."""
    yield from make_people(browser, None, "")


def relayed_pair(people: PersonFactory, server: RunningServer, room: str) -> tuple[Person, Person]:
    pair = []
    for name in ("alice", "bob"):
        who = people(name, open_page=False, server=server, room=room)
        who.context.add_init_script(FORCE_RELAY)
        load(who, server, room)
        pair.append(who)
    return pair[0], pair[1]


def test_relay_only_call_through_coturn_with_minted_credentials(
    start_server: StartServer,
    coturn: Coturn,
    tmp_path: Path,
    relay_people: PersonFactory,
    room: str,
) -> None:
    server = relay_server(start_server, coturn, tmp_path)
    alice, bob = relayed_pair(relay_people, server, room)
    connect_pair(alice, bob)
    low, high = coturn.relay_ports
    for who in (alice, bob):
        pair = selected_pair(who)
        assert (pair["local"], pair["remote"], pair["policy"]) == ("relay", "relay", "relay")
        host, port = pair["localAddress"].rsplit(":", 1)
        assert host == "127.0.0.1" and low <= int(port) <= high, pair
    # the credentials came from callbox: one set per page
    assert metric(server, "callbox_turn_credentials_issued_total") >= 2


def frames(who: Person) -> int:
    stats = who.stats()
    assert stats is not None
    return int(stats["framesDecoded"])


TTL = 20


def test_relayed_call_outlives_short_lived_credentials(
    start_server: StartServer,
    coturn: Coturn,
    tmp_path: Path,
    relay_people: PersonFactory,
    room: str,
) -> None:
    """Credentials valid for 20 s; the pages refresh them at half the TTL (the `iceServers`
    event) and the call goes on decoding past the TTL, still relayed."""
    server = relay_server(start_server, coturn, tmp_path, "--turn-ttl", str(TTL))
    alice, bob = relayed_pair(relay_people, server, room)
    issued_at = time.time()
    connect_pair(alice, bob)
    # past the TTL of the first credentials, with some margin
    alice.page.wait_for_timeout(max(0.0, issued_at + TTL + 4 - time.time()) * 1000)
    before = {who.me: frames(who) for who in (alice, bob)}
    alice.page.wait_for_timeout(1500)
    for who in (alice, bob):
        assert frames(who) > before[who.me], "video stopped after the credentials expired"
        stats = who.stats()
        assert stats is not None and stats["connectionState"] == "connected", stats
        pair = selected_pair(who)
        assert (pair["local"], pair["remote"]) == ("relay", "relay"), pair
    # each page asked for fresh credentials before they expired (web client: TTL/2)
    assert metric(server, "callbox_events_total", 'event="iceServers"') >= 2
