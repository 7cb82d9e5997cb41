"""Calls that outlive the server (issue 11, issue 7; PLAN.md decisions 3-5): the server is
stopped (SIGTERM) or killed (SIGKILL) mid-call and started again on the same port and data
dir. Media keeps flowing, each page connects again by itself, and a hang-up still reaches
the other side."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from ..conftest import RunningServer, StartServer
from .browser import (
    PersonFactory,
    assert_connected,
    assert_released,
    connect_pair,
    frames_grow,
    load,
)

pytestmark = pytest.mark.e2e


def restart(server: RunningServer, how: signal.Signals, log_dir: Path) -> RunningServer:
    """Stop `server` with `how`, then start the same command again (same port, same data
    dir, so the same certificate): like a service manager restarting callbox."""
    if server.process.poll() is None:
        server.process.send_signal(how)
        server.process.wait(timeout=30)
    log_path = log_dir / f"serve-again-{how.name}.log"
    argv = [str(a) for a in server.process.args]  # type: ignore[union-attr]
    deadline = time.monotonic() + 90  # a loaded machine starts Python slowly
    while True:  # the old socket may linger a moment: retry the bind
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT)
        again = RunningServer(server.url, server.port, server.data_dir, process, log_path)
        while process.poll() is None and time.monotonic() < deadline:
            try:
                if again.get("/healthz")[0] == 200:
                    return again
            except OSError:
                time.sleep(0.1)
        if process.poll() is None or time.monotonic() > deadline:
            again.stop()
            raise RuntimeError(f"callbox did not start again:\n{again.log()}")
        time.sleep(0.5)


@pytest.fixture
def restarted() -> Iterator[list[RunningServer]]:
    """Servers started by `restart`, stopped after the test."""
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_server_restart_mid_call_keeps_the_call_and_pages_reconnect(
    people: PersonFactory,
    start_server: StartServer,
    restarted: list[RunningServer],
    tmp_path: Path,
    how: signal.Signals,
) -> None:
    server = start_server()
    a = people("stayer-a", server=server)
    b = people("stayer-b", server=server)
    connect_pair(a, b)
    restarted.append(restart(server, how, tmp_path))
    for who in (a, b):
        # Connected to the server again by itself, as a new session (the new server knows
        # no one); the call goes on between the two pages.
        expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
        expect(who.page.locator("#socket-trail")).to_contain_text("connected →")
        expect(who.page.locator("#notice")).to_contain_text("the call goes on directly")
        assert_connected(who)
    for who in (a, b):
        frames_grow(who)
    expect(a.page.locator("#me")).to_have_text("stayer-a")
    # A hang-up reaches the other side (over the data channel: the server forgot the call).
    b.page.locator("#hangup").click()
    assert_released(b)
    assert_released(a)
    expect(a.page.locator("#notice")).to_contain_text("stayer-b hung up")
    # And the new server works for a new call.
    connect_pair(a, b)


# Counts the websockets the page opens (each connection attempt opens one).
COUNT_SOCKETS = """
(() => {
  window.__e2eSockets = 0;
  const Native = window.WebSocket;
  window.WebSocket = new Proxy(Native, {
    construct(target, args, newTarget) {
      window.__e2eSockets += 1;
      return Reflect.construct(target, args, newTarget);
    },
  });
})();
"""


def test_reconnect_button_tries_at_once(
    people: PersonFactory,
    start_server: StartServer,
    restarted: list[RunningServer],
    tmp_path: Path,
    room: str,
) -> None:
    server = start_server()
    who = people("impatient", server=server, open_page=False)
    who.context.add_init_script(COUNT_SOCKETS)
    load(who, server, room)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "reconnecting")
    button = who.page.locator("#reconnect")
    expect(button).to_be_visible()
    expect(who.page.locator("#error[role=alert]")).to_contain_text("Retrying by itself")
    # socket.io waits up to 5 s between attempts; the button does not wait.
    who.page.wait_for_timeout(300)
    before = who.page.evaluate("window.__e2eSockets")
    button.click()
    who.page.wait_for_function(f"() => window.__e2eSockets > {before}", timeout=2000)
    restarted.append(restart(server, signal.SIGKILL, tmp_path))
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
    expect(button).to_be_hidden()
    expect(who.page.locator("#error[role=alert]")).to_be_hidden()
