"""Answer click -> connected, in real Chromium through the web client.

Starts `callbox serve` (HTTPS, its own CA) on a free port (or uses --url), opens two pages
per run in fresh browser contexts of one headless Chromium (fake camera and microphone),
lets A place a call and B answer it, and reports for B, measured inside B's page with
performance.now():

- click -> connected: from the click on "Answer <name>" (a capture listener on #offers)
  to #call-state[data-state] becoming "connected" (a MutationObserver);
- click -> first frame: to the first remote video frame (requestVideoFrameCallback).

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
        runs = [one_call(browser, url, i + 1) for i in range(args.runs)]
        browser.close()
    for key, label in (("connected", "click -> connected"), ("frame", "click -> first frame")):
        values = sorted(r[key] for r in runs)
        print(
            f"{label}: median {statistics.median(values):.0f} ms over {len(values)} runs "
            f"(min {values[0]:.0f}, max {values[-1]:.0f}; all: "
            + ", ".join(f"{v:.0f}" for v in values)
            + ")"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
