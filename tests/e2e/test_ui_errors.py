"""Errors explained where they happen: an invalid room at the room field, a taken name at
the name field (and the input follows the name the server gave); stale state cleared."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import IDLE_OR_ENDED, PersonFactory, connect_pair

pytestmark = pytest.mark.e2e


def test_invalid_room_in_the_link_is_explained_at_the_room_field(
    people: PersonFactory, callbox_server: Any
) -> None:
    who = people("lost", open_page=False)
    who.page.goto(f"{callbox_server.url}/?room=no%20spaces!")
    note = who.page.locator("#room-note")
    # The server refused it (connect_error invalid_payload, with its readable message).
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "offline")
    expect(note).to_contain_text("The server refused this room: room must be 1-64")
    expect(who.page.locator("#room")).to_have_attribute("aria-invalid", "true")
    expect(who.page.locator("#error[role=alert]")).not_to_contain_text("Server unreachable")
    # Fixing it connects.
    who.page.locator("#room").fill("fixed-room")
    who.page.locator("#room").press("Enter")
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")
    expect(note).to_be_hidden()
    expect(who.page.locator("#room")).to_have_attribute("aria-invalid", "false")
    expect(who.page.locator("#my-room")).to_have_text("fixed-room")


def test_invalid_room_typed_is_refused_before_connecting(people: PersonFactory) -> None:
    who = people("typist")
    who.page.locator("#room").fill("a/b")
    who.page.locator("#room").press("Enter")
    expect(who.page.locator("#room-note")).to_contain_text("1 to 64 letters, digits")
    expect(who.page.locator("#socket-state")).to_have_attribute("data-state", "connected")


def test_taken_name_is_said_at_the_field_and_the_input_follows(people: PersonFactory) -> None:
    people("alice")
    second = people("alice")
    given = second.me
    assert given != "alice" and given.startswith("alice")
    expect(second.page.locator("#name-note")).to_contain_text("“alice” is already taken")
    expect(second.page.locator("#name-note")).to_contain_text(f"you are “{given}”")
    expect(second.page.locator("#name")).to_have_value(given)


def test_ice_state_and_notices_are_cleared_after_a_call(people: PersonFactory) -> None:
    a = people("tidy-a")
    b = people("tidy-b")
    connect_pair(a, b)
    b.page.locator("#hangup").click()
    expect(a.page.locator("#notice")).to_contain_text("tidy-b hung up")
    for who in (a, b):
        expect(who.page.locator("#call-state")).to_have_attribute("data-state", "idle")
        expect(who.page.locator("#ice-state")).to_have_text("-")
        expect(who.page.locator("#ice-trail")).to_have_text("")
        expect(who.page.locator("#quality")).to_be_hidden()
        expect(who.page.locator("#call-timer")).to_be_hidden()
        expect(who.page.locator("#call-state")).to_have_attribute("data-state", IDLE_OR_ENDED)
    # A new call starts with a clean slate: no leftover notice.
    a.page.locator("#call").click()
    expect(a.page.locator("#notice")).to_have_text(re.compile("^Waiting for someone to answer"))
