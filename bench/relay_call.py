"""Relayed and NATed calls: which NAT combinations connect with which ICE servers, and how
long Answer -> connected takes, in real Chromium through the web client.

1. Loopback, same run, same browser and server: a call forced through coturn
   (iceTransportPolicy "relay", credentials minted by callbox) against a direct one
   (host candidates), alternating; reported as medians and their ratio.
2. NATs in network namespaces (root only; tests/netns.py): for NAT A / NAT B in cone or
   symmetric, with no ICE server, with callbox's built-in STUN, and with STUN plus callbox's
   TURN credentials for a coturn: connected or not (ICE failed), and the median time.

Times are from the click on "Answer <name>" to the answerer's #call-state becoming
"connected", taken inside the answerer's page (performance.now()). The first call of each
browser is a warm-up, not counted. Usage:
  .venv/bin/python bench/relay_call.py [--runs 5] [--skip-nat]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from playwright.sync_api import Browser, Playwright, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.conftest import RunningServer, _wait_ready, free_port  # noqa: E402
from tests.coturn import running_coturn  # noqa: E402
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, Person, load, place_call  # noqa: E402
from tests.e2e.conftest import make_people  # noqa: E402
from tests.e2e.test_nat import STUN_PORT, NatWorld, world  # noqa: E402
from tests.e2e.test_relay import FORCE_RELAY  # noqa: E402
from tests.netns import available as netns_available  # noqa: E402

from bench.browser_call import PROBE  # noqa: E402 - the click and connected marks

CONNECT_WAIT_MS = 40_000  # ICE gives up after ~16 s: past this, the call did not connect


def timed_call(alice: Person, bob: Person) -> float | None:
    """Alice calls, Bob answers: Bob's click -> connected in ms, or None if never."""
    place_call(alice)
    button = bob.page.locator("#offers button", has_text=f"Answer {alice.me}")
    expect(button).to_be_visible()
    bob.page.evaluate(PROBE)
    button.click()
    try:
        bob.page.wait_for_function(
            "() => window.__bench.connected !== undefined"
            " || (window.__e2ePeers.length > 0"
            " && window.__e2ePeers.every((pc) => pc.connectionState === 'failed'"
            " || pc.signalingState === 'closed'))",
            timeout=CONNECT_WAIT_MS,
            polling=100,
        )
    except Exception:  # noqa: BLE001 - a timeout: never connected
        return None
    t = bob.page.evaluate("() => window.__bench")
    connected = t.get("connected")
    with contextlib.suppress(Exception):
        bob.page.locator("#hangup").click(timeout=2000)
    return None if connected is None else float(connected - t["click"])


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ms" if values else "-"


@contextlib.contextmanager
def loopback_server(tmp: Path) -> Iterator[RunningServer]:
    """callbox serve on loopback minting credentials for a coturn on loopback."""
    import os
    import subprocess

    with running_coturn() as coturn:
        secret = tmp / "secret"
        secret.write_text(coturn.secret)
        port = free_port()
        argv = [sys.executable, "-m", "callbox", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--data-dir", str(tmp), "--turn-url", coturn.url()]
        argv += ["--turn-secret-file", str(secret)]
        log_path = tmp / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=os.environ)
        server = RunningServer(f"https://127.0.0.1:{port}", port, tmp, process, log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            server.stop()


def loopback(playwright: Playwright, runs: int) -> None:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False
    )
    times: dict[str, list[float]] = {"direct": [], "relay": []}
    with tempfile.TemporaryDirectory() as tmp, loopback_server(Path(tmp)) as server:
        for run in range(runs + 1):
            for mode in ("direct", "relay"):
                took = loopback_call(browser, server, relay=mode == "relay")
                if run > 0 and took is not None:  # run 0: warm-up
                    times[mode].append(took)
    browser.close()
    print(f"loopback, Answer -> connected, median of {runs}:")
    print(f"  direct (host candidates):        {median(times['direct'])}")
    print(f"  relay-only through coturn:       {median(times['relay'])}")
    if times["direct"] and times["relay"]:
        ratio = statistics.median(times["relay"]) / statistics.median(times["direct"])
        print(f"  relay / direct:                  {ratio:.2f}")


def loopback_call(browser: Browser, server: RunningServer, *, relay: bool) -> float | None:
    room = f"bench-{uuid.uuid4().hex[:10]}"
    with contextlib.contextmanager(make_people)(browser, server, room) as people:
        pair = []
        for name in ("alice", "bob"):
            who = people(name, open_page=False)
            if relay:
                who.context.add_init_script(FORCE_RELAY)
            load(who, server, room)
            pair.append(who)
        return timed_call(pair[0], pair[1])


def nat_matrix(playwright: Playwright, runs: int) -> None:
    print(f"\nNATs in network namespaces, Answer -> connected, median of {runs}:")
    print(f"  {'NAT A':10} {'NAT B':10} {'none':>12} {'STUN':>12} {'STUN+TURN':>12}")
    for kind_a, kind_b in (("cone", "cone"), ("cone", "symmetric"), ("symmetric", "symmetric")):
        with tempfile.TemporaryDirectory() as tmp:
            cells = nat_row(playwright, Path(tmp), kind_a, kind_b, runs)
        print(f"  {kind_a:10} {kind_b:10} " + " ".join(f"{c:>12}" for c in cells), flush=True)


def nat_row(playwright: Playwright, tmp: Path, kind_a: str, kind_b: str, runs: int) -> list[str]:
    gen = world(playwright, tmp, kind_a, kind_b)
    made: NatWorld = next(gen)
    try:
        turn = made.coturn()
        (tmp / "secret").write_text(turn.secret)
        configs = [
            (),
            ("--stun-port", str(STUN_PORT)),
            ("--stun-port", str(STUN_PORT + 1), "--turn-url", turn.url())
            + ("--turn-secret-file", str(tmp / "secret")),
        ]
        cells = []
        for n, extra in enumerate(configs):
            server = made.callbox(*extra, port=8443 + n)
            times: list[float] = []
            try:
                for run in range(runs + 1):
                    took = timed_call(*made.pair(server))
                    if took is None:
                        break  # ICE failed: no need to watch it fail again
                    if run > 0:
                        times.append(took)
            except Exception as e:  # noqa: BLE001 - report the cell, go on with the rest
                print(f"  ({kind_a}/{kind_b} {extra[:1]}: {type(e).__name__}: {e})", flush=True)
                cells.append("error")
                continue
            cells.append(median(times) if times else "fails")
        return cells
    finally:
        with contextlib.suppress(StopIteration):
            next(gen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-nat", action="store_true", help="only the loopback comparison")
    args = parser.parse_args()
    if CHROMIUM is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    with sync_playwright() as playwright:
        loopback(playwright, args.runs)
        why = netns_available()
        if args.skip_nat or why is not None:
            print(f"\nNAT matrix skipped: {why or '--skip-nat'}")
        else:
            nat_matrix(playwright, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
