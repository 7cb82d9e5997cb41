"""Answer click -> connected, in real Chromium through the web client.

Starts `callbox serve` (HTTPS, its own CA) on a free port (or uses --url), opens two pages
per run in fresh browser contexts of one headless Chromium (fake camera and microphone),
lets A place a call and B answer it, and reports for B, measured inside B's page with
performance.now():

- click -> connected: from the click on "Answer <name>" (a capture listener on #offers)
  to #call-state[data-state] becoming "connected" (a MutationObserver);
- click -> first frame: to the first remote video frame (requestVideoFrameCallback).

Baseline, in the same run and browser: the same answer done inside one page with no
signaling server at all (two RTCPeerConnections exchanging descriptions and candidates
directly, the answerer's getUserMedia included, as an Answer click does). The report gives
callbox's times as ratios to it: what signaling through callbox adds to WebRTC's own cost.

One warm-up call is made first and not counted (the first call in a fresh browser is
2-3x slower: cold fake devices). Usage: .venv/bin/python bench/browser_call.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from playwright.sync_api import Browser, expect, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

# Installed in B's page just before the click: timestamps in the page's own clock.
PROBE = """
() => {
  const t = {};
  window.__bench = t;
  document.querySelector('#offers').addEventListener(
    'click', () => { t.click ??= performance.now(); }, { capture: true });
  const state = document.querySelector('#call-state');
  new MutationObserver(() => {
    if (state.dataset.state === 'connected') t.connected ??= performance.now();
  }).observe(state, { attributes: true, attributeFilter: ['data-state'] });
  const video = document.querySelector('#remote-video');
  const onFrame = () => { t.frame ??= performance.now(); };
  video.requestVideoFrameCallback(onFrame);
}
"""


# The baseline: the caller's offer is ready (as a waiting call is); timing starts where an
# Answer click starts and ends when the answerer's connection is connected / shows a frame.
DIRECT = """
async () => {
  const caller = new RTCPeerConnection();
  const answerer = new RTCPeerConnection();
  caller.onicecandidate = (e) => e.candidate && answerer.addIceCandidate(e.candidate);
  const early = [];
  answerer.onicecandidate = (e) => {
    if (!e.candidate) return;
    if (caller.remoteDescription) caller.addIceCandidate(e.candidate);
    else early.push(e.candidate);
  };
  const mine = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  mine.getTracks().forEach((t) => caller.addTrack(t, mine));
  await caller.setLocalDescription(await caller.createOffer());
  await new Promise((r) => setTimeout(r, 300));  // the offer waits, candidates gathered
  const video = document.createElement('video');
  video.muted = true;
  document.body.append(video);
  const t = {click: performance.now()};
  const connected = new Promise((resolve) => {
    answerer.onconnectionstatechange = () => {
      if (answerer.connectionState !== 'connected') return;
      t.connected ??= performance.now();
      resolve();
    };
  });
  const frame = new Promise((resolve) => {
    answerer.ontrack = (e) => {
      if (video.srcObject) return;
      video.srcObject = e.streams[0];
      video.play();
      video.requestVideoFrameCallback(() => { t.frame ??= performance.now(); resolve(); });
    };
  });
  const theirs = await navigator.mediaDevices.getUserMedia({audio: true, video: true});
  theirs.getTracks().forEach((tr) => answerer.addTrack(tr, theirs));
  await answerer.setRemoteDescription(caller.localDescription);
  await answerer.setLocalDescription(await answerer.createAnswer());
  await caller.setRemoteDescription(answerer.localDescription);
  early.forEach((c) => caller.addIceCandidate(c));
  await Promise.all([connected, frame]);
  [mine, theirs].forEach((s) => s.getTracks().forEach((tr) => tr.stop()));
  caller.close();
  answerer.close();
  video.remove();
  return {connected: t.connected - t.click, frame: t.frame - t.click};
}
"""


def direct_call(browser: Browser, url: str) -> dict[str, float]:
    context = browser.new_context(permissions=["camera", "microphone"], ignore_https_errors=True)
    try:
        page = context.new_page()
        page.goto(f"{url}/healthz")  # any page of the same (secure) origin
        result: dict[str, float] = page.evaluate(DIRECT)
        return result
    finally:
        context.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def callbox_server() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="callbox-bench-") as data:
        port = free_port()
        argv = [sys.executable, "-m", "callbox", "serve", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--data-dir", data]
        log = open(Path(data) / "serve.log", "wb")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        url = f"https://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    ca = ssl.create_default_context(cafile=str(Path(data) / "ca.pem"))
                    with urllib.request.urlopen(url + "/healthz", timeout=2, context=ca):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("callbox serve did not start") from None
                    time.sleep(0.1)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()


def one_call(browser: Browser, url: str, run: int) -> dict[str, float]:
    room = f"bench-{os.getpid()}-{run}"
    contexts = [
        browser.new_context(permissions=["camera", "microphone"], ignore_https_errors=True)
        for _ in range(2)
    ]
    try:
        a, b = (c.new_page() for c in contexts)
        for page in (a, b):
            page.goto(f"{url}/?room={room}")
            expect(page.locator("#socket-state")).to_have_attribute("data-state", "connected")
        caller = a.locator("#me").inner_text()
        a.locator("#call").click()
        expect(a.locator("#notice")).to_contain_text("Waiting for someone to answer")
        button = b.locator("#offers button", has_text=f"Answer {caller}")
        expect(button).to_be_visible()
        b.evaluate(PROBE)
        button.click()
        expect(b.locator("#call-state")).to_have_attribute("data-state", "connected")
        b.wait_for_function("() => window.__bench.frame !== undefined")
        t = b.evaluate("() => window.__bench")
        b.locator("#hangup").click()
        return {"connected": t["connected"] - t["click"], "frame": t["frame"] - t["click"]}
    finally:
        for context in contexts:
            context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--url", help="a running callbox server (default: start one)")
    args = parser.parse_args()
    if CHROMIUM is None or shutil.which(CHROMIUM) is None:
        print("chromium is not installed", file=sys.stderr)
        return 1
    server = nullcontext(args.url) if args.url else callbox_server()
    with sync_playwright() as p, server as url:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, chromium_sandbox=False
        )
        warm = one_call(browser, url, 0)
        print(
            f"warm-up (not counted): click->connected {warm['connected']:.0f} ms, "
            f"click->first frame {warm['frame']:.0f} ms"
        )
        direct_call(browser, url)  # warm-up of the baseline too
        runs: list[dict[str, float]] = []
        base: list[dict[str, float]] = []
        for i in range(args.runs):  # interleaved, so both see the same machine load
            runs.append(one_call(browser, url, i + 1))
            base.append(direct_call(browser, url))
        browser.close()
    for key, label in (("connected", "click -> connected"), ("frame", "click -> first frame")):
        values = sorted(r[key] for r in runs)
        floor = sorted(r[key] for r in base)
        ratio = statistics.median(values) / statistics.median(floor)
        print(
            f"{label}: callbox median {statistics.median(values):.0f} ms "
            f"(all: {', '.join(f'{v:.0f}' for v in values)}); "
            f"baseline without signaling median {statistics.median(floor):.0f} ms "
            f"(all: {', '.join(f'{v:.0f}' for v in floor)}); ratio {ratio:.2f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
