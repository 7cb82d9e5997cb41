"""Calls between two Chromium browsers on hosts behind NATs, built in network namespaces
(tests/netns.py; root only): symmetric NATs on both sides need TURN (callbox's minted
credentials for a coturn), endpoint-independent ("cone") NATs need only STUN (callbox's
built-in STUN server)."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Playwright

from tests.conftest import RunningServer
from tests.coturn import Coturn, start_coturn
from tests.netns import DENIED_PEER_RANGES, PUBLIC_IP, Network, build, chromium_wrapper, serve_in
from tests.netns import available as netns_available

from .browser import (
    CHROMIUM,
    Person,
    answer_button,
    chromium_args_for_tests,
    connect_pair,
    load,
    place_call,
)
from .conftest import make_people

pytestmark = pytest.mark.e2e

# Chromium blocks look-ups and IP literals other than these (browser.py's reasons)
NAT_ARGS = [
    arg if not arg.startswith("--host-resolver-rules=") else f"{arg}, EXCLUDE {PUBLIC_IP}"
    for arg in chromium_args_for_tests()
]
STUN_PORT = 3479
TURN_PORT = 3478

# Every connection state a page's peer connections went through (test-only, like
# RECORD_PEERS), to tell "never connected" from "not yet", and the candidates they gathered.
RECORD_STATES = """
(() => {
  const states = [];
  const gathered = [];
  Object.defineProperty(window, '__e2eStates', { value: states });
  Object.defineProperty(window, '__e2eGathered', { value: gathered });
  window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, {
    construct(target, args, newTarget) {
      const pc = Reflect.construct(target, args, newTarget);
      pc.addEventListener('connectionstatechange', () => states.push(pc.connectionState));
      pc.addEventListener('icecandidate', ({ candidate: c }) => {
        if (c && c.candidate) {
          gathered.push({ type: c.type, address: c.address, related: c.relatedAddress });
        }
      });
      return pc;
    },
  });
})();
"""

# The newest peer connection's selected pair and the local candidates it gathered.
CANDIDATES = """
async () => {
  const pc = window.__e2ePeers.at(-1);
  const report = await pc.getStats();
  const local = [];
  let pairId = null;
  report.forEach((r) => {
    if (r.type === 'local-candidate') {
      local.push({ type: r.candidateType, address: r.address, related: r.relatedAddress ?? null });
    }
    if (r.type === 'transport' && r.selectedCandidatePairId) pairId = r.selectedCandidatePairId;
  });
  const pair = pairId && report.get(pairId);
  const selected = pair
    ? [report.get(pair.localCandidateId).candidateType,
       report.get(pair.remoteCandidateId).candidateType]
    : null;
  return { local, selected };
}
"""


@dataclass
class NatWorld:
    """The network, callbox (and coturn) in its public namespace, a browser per host."""

    network: Network
    playwright: Playwright
    tmp: Path
    browsers: list[Browser] = field(default_factory=list)
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    coturns: list[Coturn] = field(default_factory=list)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def coturn(self) -> Coturn:
        server = start_coturn(
            host=PUBLIC_IP,
            port=TURN_PORT,
            prefix=self.network.public.prefix,
            allow_loopback_peers=False,
            options=[f"denied-peer-ip={r}" for r in DENIED_PEER_RANGES],
        )
        self.coturns.append(server)
        return server

    def callbox(self, *extra: str, port: int = 8443) -> RunningServer:
        data = self.tmp / f"data-{port}"
        data.mkdir(exist_ok=True)
        log_path = self.tmp / f"serve-{port}.log"
        process = serve_in(self.network.public, data, log_path, *extra, port=port)
        self.servers.append(process)
        url = f"https://{PUBLIC_IP}:{port}"
        return RunningServer(url, port, data, process, log_path)

    def pair(self, server: RunningServer) -> tuple[Person, Person]:
        """Alice on host A, Bob on host B, both on the server's page in one new room."""
        room = f"t-{uuid.uuid4().hex[:12]}"
        people = []
        for name, browser in zip(("alice", "bob"), self.browsers, strict=True):
            factory = self.stack.enter_context(
                contextlib.contextmanager(make_people)(browser, server, room)
            )
            who = factory(name, open_page=False)
            who.context.add_init_script(RECORD_STATES)
            load(who, server, room)
            people.append(who)
        return people[0], people[1]

    def close(self) -> None:
        self.stack.close()
        for browser in self.browsers:
            browser.close()
        for process in self.servers:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for server in self.coturns:
            server.stop()
        self.network.close()


def world(
    playwright: Playwright, tmp_path: Path, kind: str, kind_b: str | None = None
) -> Iterator[NatWorld]:
    """The network (NAT A of ``kind``, NAT B of ``kind_b``, default the same) with a
    Chromium on each host; everything is removed afterwards."""
    why = netns_available()
    if why is not None or CHROMIUM is None:
        pytest.skip(why or "chromium is not installed")
    made = NatWorld(build(kind, kind_b or kind), playwright, tmp_path)
    try:
        for site in (made.network.a, made.network.b):
            wrapper = chromium_wrapper(site.host, CHROMIUM, tmp_path)
            made.browsers.append(
                playwright.chromium.launch(
                    executable_path=str(wrapper), args=NAT_ARGS, chromium_sandbox=False
                )
            )
        yield made
    finally:
        made.close()


@pytest.fixture
def symmetric(playwright: Playwright, tmp_path: Path) -> Iterator[NatWorld]:
    yield from world(playwright, tmp_path, "symmetric")


@pytest.fixture
def cone(playwright: Playwright, tmp_path: Path) -> Iterator[NatWorld]:
    yield from world(playwright, tmp_path, "cone")


def candidates(who: Person) -> dict[str, Any]:
    result: dict[str, Any] = who.page.evaluate(CANDIDATES)
    return result


def test_symmetric_nats_without_turn_fail_even_with_stun(symmetric: NatWorld) -> None:
    server = symmetric.callbox("--stun-port", str(STUN_PORT))
    alice, bob = symmetric.pair(server)
    place_call(alice)
    answer_button(bob, alice.me).click()
    # STUN works (srflx at each NAT's outside address): the NATs, not STUN, are the obstacle
    for who, site in ((alice, symmetric.network.a), (bob, symmetric.network.b)):
        who.page.wait_for_function(
            "() => window.__e2eGathered.some((c) => c.type === 'srflx')", polling=250
        )
        gathered = who.page.evaluate("() => window.__e2eGathered")
        srflx = [c for c in gathered if c["type"] == "srflx"]
        assert all(c["address"] == site.wan_ip for c in srflx), srflx
    # Chromium gives up on the checks after ~16 s; the page then ends the call, and the
    # other one with it. Nothing ever connected.
    for who in (alice, bob):
        who.page.wait_for_function(
            "() => window.__e2eStates.includes('failed')"
            " || window.__e2ePeers.every((pc) => pc.signalingState === 'closed')",
            timeout=45_000,
            polling=500,
        )
    for who in (alice, bob):
        states = who.page.evaluate("() => window.__e2eStates")
        assert "connected" not in states, states
    assert any("failed" in w.page.evaluate("() => window.__e2eStates") for w in (alice, bob))


def test_symmetric_nats_connect_through_callbox_turn(symmetric: NatWorld) -> None:
    turn = symmetric.coturn()
    secret = symmetric.tmp / "turn-secret"
    secret.write_text(turn.secret)
    server = symmetric.callbox(
        "--stun-port",
        str(STUN_PORT),
        "--turn-url",
        turn.url(),
        "--turn-secret-file",
        str(secret),
    )
    alice, bob = symmetric.pair(server)
    connect_pair(alice, bob)
    for who in (alice, bob):
        selected = candidates(who)["selected"]
        # relay on one side at least (the other may see it as prflx)
        assert selected is not None and "relay" in selected, selected
        assert "connected" in who.page.evaluate("() => window.__e2eStates")


def test_cone_nats_connect_with_the_builtin_stun_alone(cone: NatWorld) -> None:
    server = cone.callbox("--stun-port", str(STUN_PORT))
    alice, bob = cone.pair(server)
    connect_pair(alice, bob)
    for who, site in ((alice, cone.network.a), (bob, cone.network.b)):
        found = candidates(who)
        # callbox's STUN gave a srflx candidate: the NAT's outside address, related to the host's
        srflx = [c for c in found["local"] if c["type"] == "srflx"]
        assert srflx, found
        assert all((c["address"], c["related"]) == (site.wan_ip, site.lan_ip) for c in srflx)
        assert found["selected"] is not None and "relay" not in found["selected"], found
        assert "host" not in found["selected"][1:], found  # the peer's LAN is out of reach
