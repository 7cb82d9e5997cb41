"""Chat over the call's data channel: both ways, text with HTML shown literally."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .browser import Person, PersonFactory, connect_pair

pytestmark = pytest.mark.e2e


def say(who: Person, text: str) -> None:
    page = who.page
    page.locator("#chat-input").fill(text)
    page.locator("#chat-input").press("Enter")
    expect(page.locator("#chat-input")).to_have_value("")


def test_chat_both_ways_names_and_html_are_text(people: PersonFactory) -> None:
    evil_name = "<b onmouseover=alert(1)>mallory</b>"
    a = people(evil_name)
    b = people("bob")
    connect_pair(a, b)
    for who in (a, b):
        expect(who.page.locator("#chat-input")).to_be_enabled()

    html = '<img src=x onerror="alert(2)"><script>alert(3)</script>'
    say(a, html)
    line = b.page.locator("#chat-log li").last
    expect(line).to_contain_text(html)
    expect(line.locator(".chat-from")).to_have_text(evil_name)
    expect(a.page.locator("#chat-log li").last).to_contain_text(f"You{html}")

    say(b, "hello <i>there</i>")
    expect(a.page.locator("#chat-log li").last).to_contain_text("bob")
    expect(a.page.locator("#chat-log li").last).to_contain_text("hello <i>there</i>")
    for who in (a, b):
        assert (
            who.page.locator("#chat-log img, #chat-log script, #chat-log b, #chat-log i").count()
            == 0
        )
        expect(who.page.locator("#chat-log li")).to_have_count(2)
        assert who.dialogs == []

    # After the call the log stays readable, and sending is off.
    b.page.locator("#hangup").click()
    for who in (a, b):
        expect(who.page.locator("#chat-input")).to_be_disabled()
        expect(who.page.locator("#chat-log li")).to_have_count(2)
