"""What a user sees when something goes wrong: every failure is a readable alert."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import (
    IDLE_OR_ENDED,
    PersonFactory,
    answer_button,
    assert_connected,
    assert_released,
    load,
    place_call,
)

pytestmark = pytest.mark.e2e


def test_password_is_asked_for_and_sent(
    people: PersonFactory, start_server: Any, room: str
) -> None:
    server = start_server("--password", "open sesame")
    who = people("guarded", open_page=False)
    who.page.goto(f"{server.url}/?room={room}")
    alert = who.page.locator("#error[role=alert]")
    expect(alert).to_contain_text("needs a password")
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "offline")
    password = who.page.locator("#password")
    password.fill("wrong")
    password.press("Enter")
    expect(alert).to_contain_text("refused this password")
    password.fill("open sesame")
    password.press("Enter")
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
    expect(who.page.locator("#me")).to_have_text("guarded")
    expect(alert).to_be_hidden()
    expect(password).to_be_hidden()


def test_lost_server_is_reported(people: PersonFactory, callbox_server: Any) -> None:
    who = people("stranded")
    # Killed, not stopped: like a crash or a pulled cable, no goodbye to the clients.
    callbox_server.process.kill()
    callbox_server.process.wait()
    expect(who.page.locator("#socket-state")).to_have_attribute(
        "data-state", re.compile("^(reconnecting|offline)$")
    )
    expect(who.page.locator("#error[role=alert]")).to_contain_text("Server unreachable")
    expect(who.page.locator("#call")).to_be_disabled()


def test_peer_that_vanishes_ends_the_call(people: PersonFactory, start_server: Any) -> None:
    # A vanished peer's session is held for a resume; a short grace keeps the test short.
    server = start_server("--resume-grace", "2")
    a = people("stays", server=server)
    place_call(a)
    b = people("vanishes", vanish=True, server=server)
    answer_button(b, "stays").click()
    assert_connected(a)
    assert_connected(b)
    b.page.close()
    expect(a.page.locator("#error[role=alert]")).to_contain_text("vanishes left the call")
    assert_released(a)


def test_renamed_when_the_name_is_taken_and_room_change_reconnects(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    first = people("twin")
    second = people("twin")
    expect(first.page.locator("#me")).to_have_text("twin")
    expect(second.page.locator("#me")).not_to_have_text("twin")
    expect(second.page.locator("#me")).to_contain_text("twin")

    place_call(first)
    expect(answer_button(second, "twin")).to_be_visible()
    # Moving to another room: the offer of the old room is no longer listed.
    other = f"{room}-other"
    second.page.locator("#room").fill(other)
    second.page.locator("#room").press("Enter")
    expect(second.page.locator("#my-room")).to_have_text(other)
    expect(second.page.locator("#me")).to_have_text("twin")
    expect(second.page.locator("#offers button")).to_have_count(0)
    assert f"room={other}" in second.page.url
    # And back: the waiting offer is listed again (from availableOffers).
    load(second, callbox_server, room)
    expect(answer_button(second, "twin")).to_be_visible()
    expect(first.page.locator("#call-state")).to_have_attribute("data-state", "calling")
    first.page.locator("#hangup").click()
    expect(first.page.locator("#call-state")).to_have_attribute("data-state", IDLE_OR_ENDED)
    expect(second.page.locator("#offers button")).to_have_count(0)
