"""A page through a graceful restart of the server: it reconnects by itself."""

from __future__ import annotations

import signal

from playwright.sync_api import expect

from tests.conftest import RunningServer, StartServer

from .browser import PersonFactory


def test_a_page_reconnects_by_itself_after_a_graceful_restart(
    people: PersonFactory, callbox_server: RunningServer, start_server: StartServer
) -> None:
    alice = people("alice")
    state = alice.page.locator("#socket-state")
    expect(state).to_have_attribute("data-state", "connected")
    callbox_server.process.send_signal(signal.SIGTERM)
    callbox_server.process.wait(timeout=30)
    expect(state).not_to_have_attribute("data-state", "connected")
    start_server(port=callbox_server.port)
    # no reload, no click: socket.io's own reconnection (the server closed the transport,
    # it did not send socket.io's DISCONNECT, after which clients stay away)
    expect(state).to_have_attribute("data-state", "connected", timeout=30_000)
    expect(alice.page.locator("#me")).to_have_text("alice")
