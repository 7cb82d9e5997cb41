"""Answer click -> connected and -> first frame, in real Chromium: callbox vs the floor.

    .venv/bin/python bench/browser_call.py [--runs 7] [--url http://HOST:PORT]

callbox: starts `callbox serve --http` on a free port (or uses --url), opens two pages in
fresh browser contexts of one headless Chromium (fake camera and microphone): A places a
call, B answers it from the list. The floor: the same two-page call through
bench/floor.html, which gets its media at load and exchanges offer, answer and candidates
through a websocket relay with no logic (bench/relay.py, same machine, no TLS either).
Measured inside B's page with performance.now(), for both (the bench waits on a promise
of the page, so nothing polls the page while it connects):

- click -> connected: from the click on "Answer <name>" (a capture listener on #offers) to
  #call-state[data-state] becoming "connected" (a MutationObserver);
- click -> first frame: to the first remote video frame (requestVideoFrameCallback);
- answer set -> first local candidate: from B's setLocalDescription(answer) resolving to
  its first `icecandidate` event (ICE gathering; Chromium makes ICE's sockets through the
  page's main thread, so whatever the page does then delays it).

Runs alternate (callbox, floor, callbox, ...) so both see the same machine; one warm-up
call of each comes first and is not counted (the first call in a fresh browser is 2-3x
slower: cold fake devices). Prints medians, callbox's ratios to the floor, and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from bench.relay import Relay  # noqa: E402
from bench.report import commit, load_average, machine  # noqa: E402
from bench.servers import BenchError, start_callbox  # noqa: E402

# Installed in B's page just before the click: timestamps in the page's own clock, and
# `done`, which resolves once both came. The bench waits on it with one evaluate: nothing
# polls the page while it connects (Playwright's expect and wait_for_function query the
# page's DOM on every attempt, in its main thread, and cost more on a bigger page).
PROBE = """
() => {
  const t = {};
  let finish;
  const done = new Promise((resolve) => { finish = resolve; });
  Object.defineProperty(window, '__bench', { value: t, configurable: true });
  Object.defineProperty(window, '__benchDone', { value: done, configurable: true });
  const check = () => {
    if (t.connected !== undefined && t.frame !== undefined) finish({ ...t });
  };
  document.querySelector('#offers').addEventListener(
    'click', () => { t.click ??= performance.now(); }, { capture: true });
  const state = document.querySelector('#call-state');
  new MutationObserver(() => {
    if (state.dataset.state === 'connected') t.connected ??= performance.now();
    check();
  }).observe(state, { attributes: true, attributeFilter: ['data-state'] });
  const video = document.querySelector('#remote-video');
  video.requestVideoFrameCallback(() => { t.frame ??= performance.now(); check(); });
}
"""

# Added to every page before its scripts: when setLocalDescription(answer) resolves, and
# the first icecandidate event after it, in window.__benchIce (read after the call).
GATHER = """
(() => {
  const ice = {};
  Object.defineProperty(window, '__benchIce', { value: ice });
  const native = RTCPeerConnection.prototype.setLocalDescription;
  RTCPeerConnection.prototype.setLocalDescription = function (...args) {
    const result = native.apply(this, args);
    result.then(() => {
      if (this.localDescription?.type !== 'answer' || ice.set !== undefined) return;
      ice.set = performance.now();
      this.addEventListener('icecandidate', () => { ice.candidate ??= performance.now(); });
    }, () => {});
    return result;
  };
})();
"""

# Resolves with the probe's times, or fails after `ms` (no polling meanwhile).
WAIT = """
(ms) => Promise.race([
  window.__benchDone,
  new Promise((_, reject) => setTimeout(
    () => reject(new Error(`no connected + frame in ${ms} ms: ${JSON.stringify(window.__bench)}`)),
    ms)),
])
"""


@contextmanager
def callbox_server() -> Iterator[str]:
    """`callbox serve --http` on a free port (no TLS, like the relay of the floor)."""
    server = start_callbox(pin=False)  # a browser benchmark: Chromium uses both cores
    try:
        yield server.url
    finally:
        server.stop()


def _pages(browser: Browser, url: str) -> tuple[list[object], Page, Page]:
    contexts = [browser.new_context(permissions=["camera", "microphone"]) for _ in range(2)]
    for context in contexts:
        context.add_init_script(GATHER)
    a, b = (c.new_page() for c in contexts)
    for page in (a, b):
        page.goto(url)
        expect(page.locator("#socket-state")).to_have_attribute("data-state", "connected")
    return list(contexts), a, b


def _answer(b: Page, button_text: str) -> dict[str, float]:
    """B clicks Answer with the probe installed; the click's times in B's clock."""
    button = b.locator("#offers button", has_text=button_text)
    expect(button).to_be_visible()
    b.evaluate(PROBE)
    button.click()
    t = b.evaluate(WAIT, 20_000)
    expect(b.locator("#call-state")).to_have_attribute("data-state", "connected")
    ice = b.evaluate("() => ({ ...window.__benchIce })")
    return {
        "connected": t["connected"] - t["click"],
        "frame": t["frame"] - t["click"],
        "gather": ice["candidate"] - ice["set"],
    }


def callbox_call(browser: Browser, url: str, run: int) -> dict[str, float]:
    contexts, a, b = _pages(browser, f"{url}/?room=bench-{os.getpid()}-{run}")
    try:
        caller = a.locator("#me").inner_text()
        a.locator("#call").click()
        expect(a.locator("#notice")).to_contain_text("Waiting for someone to answer")
        times = _answer(b, f"Answer {caller}")
        b.locator("#hangup").click()
        return times
    finally:
        for context in contexts:
            context.close()  # type: ignore[attr-defined]


def floor_call(browser: Browser, url: str, run: int) -> dict[str, float]:
    contexts, a, b = _pages(browser, f"{url}/?room=floor-{run}")
    try:
        a.locator("#call").click()
        expect(a.locator("#notice")).to_contain_text("Waiting for someone to answer")
        return _answer(b, "Answer")
    finally:
        for context in contexts:
            context.close()  # type: ignore[attr-defined]


KEYS = (
    ("connected", "click -> connected"),
    ("frame", "click -> first frame"),
    ("gather", "answer set -> first local candidate"),
)


def report(runs: dict[str, list[dict[str, float]]]) -> dict[str, object]:
    """Prints medians and callbox's ratios to the floor; returns them for the JSON line."""
    medians = {
        n: {k: statistics.median(r[k] for r in rs) for k, _ in KEYS} for n, rs in runs.items()
    }
    ratios = {k: medians["callbox"][k] / medians["floor"][k] for k, _ in KEYS}
    for key, label in KEYS:
        parts = []
        for name in ("callbox", "floor"):
            values = ", ".join(f"{v:.0f}" for v in sorted(r[key] for r in runs[name]))
            parts.append(f"{name} median {medians[name][key]:.0f} ms (all: {values})")
        print(f"{label}: {'; '.join(parts)}; callbox / floor {ratios[key]:.2f}x")
    return {"medians": medians, "ratios": ratios, "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--url", help="a running callbox server (default: start one)")
    args = parser.parse_args()
    if CHROMIUM is None or shutil.which(CHROMIUM) is None:
        print("bench: chromium is not installed (bash scripts/setup --test)", file=sys.stderr)
        return 1
    print(f"browser call setup; commit {commit()}; {machine()}; load average {load_average()}")
    try:
        server = nullcontext(args.url) if args.url else callbox_server()
        with sync_playwright() as p, server as url, Relay() as relay:
            browser = p.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False
            )
            warm = {
                "callbox": callbox_call(browser, url, 0),
                "floor": floor_call(browser, relay.url, 0),
            }
            for label, t in warm.items():
                print(f"warm-up {label} (not counted): click->connected {t['connected']:.0f} ms, "
                      f"click->first frame {t['frame']:.0f} ms")  # fmt: skip
            runs: dict[str, list[dict[str, float]]] = {"callbox": [], "floor": []}
            for i in range(args.runs):  # interleaved, so both see the same machine load
                runs["callbox"].append(callbox_call(browser, url, i + 1))
                runs["floor"].append(floor_call(browser, relay.url, i + 1))
            browser.close()
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    figures = report(runs)
    print(json.dumps({"workload": "browser", "commit": commit(), **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
