"""Two browsers call each other through the web client, as users would."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from .browser import (
    PersonFactory,
    answer_button,
    assert_connected,
    assert_decodes_video,
    assert_released,
    connect_pair,
    place_call,
)

pytestmark = pytest.mark.e2e


def test_call_connects_hangs_up_and_calls_again(
    people: PersonFactory, trusting_browser: Browser, callbox_server: Any, room: str
) -> None:
    """The main flow, over HTTPS verified against the server's own CA (no ignored errors)."""
    a = people("alice", browser=trusting_browser, trust=True)
    place_call(a)
    # B opens the page after the offer was placed: it is in availableOffers.
    b = people("bob", browser=trusting_browser, trust=True)
    expect(b.page.locator("#me")).to_have_text("bob")
    expect(b.page.locator("#my-room")).to_have_text(room)
    answer_button(b, "alice").click()
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        assert_decodes_video(who)
    expect(a.page.locator("#call-peer")).to_have_text("with bob")

    b.page.locator("#hangup").click()
    assert_released(b)
    assert_released(a)
    expect(a.page.locator("#notice")).to_contain_text("bob hung up")

    # Again, without reloading either page.
    connect_pair(a, b)
    a.page.locator("#hangup").click()
    assert_released(a)
    assert_released(b)
    assert a.dialogs == [] and b.dialogs == []


def test_early_joiner_sees_the_offer_appear_and_answers(people: PersonFactory) -> None:
    b = people("early")
    expect(b.page.locator("#offers button")).to_have_count(0)
    a = people("late")
    place_call(a)
    expect(answer_button(b, "late")).to_be_visible()
    answer_button(b, "late").click()
    for who in (a, b):
        assert_connected(who)
    for who in (a, b):
        assert_decodes_video(who)


def test_cancelled_offer_leaves_the_list(people: PersonFactory) -> None:
    b = people("watcher")
    a = people("changed-mind")
    place_call(a)
    expect(answer_button(b, "changed-mind")).to_be_visible()
    a.page.locator("#hangup").click()
    assert_released(a)
    expect(b.page.locator("#offers button")).to_have_count(0)


def test_names_are_shown_as_text_never_run(people: PersonFactory) -> None:
    evil = "<img src=x onerror=alert(1)>"
    b = people("viewer")
    a = people(evil)
    expect(a.page.locator("#me")).to_contain_text(evil)
    place_call(a)
    button = answer_button(b, evil)
    expect(button).to_have_text(f"Answer {evil}")
    assert b.page.locator("#offers img").count() == 0
    assert b.page.locator("img:not(#qr)").count() == 0
    button.click()
    assert_connected(b)
    expect(a.page.locator("#call-peer")).to_have_text("with viewer")
    expect(b.page.locator("#call-peer")).to_have_text(f"with {evil}")
    assert b.page.locator("img:not(#qr)").count() == 0
    b.page.locator("#hangup").click()
    expect(a.page.locator("#notice")).to_contain_text("viewer hung up")
    assert a.dialogs == [] and b.dialogs == []


def test_without_camera_offers_a_receive_only_answer(people: PersonFactory) -> None:
    a = people("with-camera")
    place_call(a)
    b = people("no-camera", camera=False)
    answer_button(b, "with-camera").click()
    alert = b.page.locator("#error[role=alert]")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("denied")
    expect(b.page.locator("#call-state")).to_have_attribute("data-state", "idle")
    # The offer is still waiting: nothing was sent.
    expect(a.page.locator("#call-state")).to_have_attribute("data-state", "calling")

    alert.get_by_role("button", name="Answer without camera").click()
    expect(alert).to_be_hidden()
    for who in (a, b):
        assert_connected(who)
    assert_decodes_video(b)
    # B sends nothing: its mute and camera toggles have nothing to act on.
    expect(b.page.locator("#mute")).to_be_disabled()


def test_without_camera_places_a_receive_only_call(people: PersonFactory) -> None:
    a = people("watch-only", camera=False)
    a.page.locator("#call").click()
    alert = a.page.locator("#error[role=alert]")
    expect(alert).to_contain_text("denied")
    alert.get_by_role("button", name="Call without camera").click()
    expect(a.page.locator("#notice")).to_contain_text("Waiting for someone to answer")
    b = people("broadcaster")
    answer_button(b, "watch-only").click()
    for who in (a, b):
        assert_connected(who)
    assert_decodes_video(a)


def test_second_answerer_is_told_the_call_was_taken(people: PersonFactory) -> None:
    a = people("popular")
    place_call(a)
    b = people("first")
    c = people("second", hold_media=True)
    # C clicks first, but its camera opens only after B has answered and connected.
    answer_button(c, "popular").click()
    expect(c.page.locator("#call-state")).to_have_attribute("data-state", "connecting")
    answer_button(b, "popular").click()
    assert_connected(a)
    assert_connected(b)
    c.page.evaluate("window.__e2eReleaseMedia()")
    expect(c.page.locator("#error[role=alert]")).to_contain_text("already taken")
    assert_released(c)
    expect(c.page.locator("#offers button")).to_have_count(0)
    # The winner's call is untouched.
    assert_decodes_video(a)
    assert_decodes_video(b)
