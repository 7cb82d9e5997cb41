"""How the page looks: screenshots of its states for the docs (docs/screenshot-*.png; the
connected one is also the README's docs/screenshot.png), and text contrast of at least
4.5:1 in the light and the dark scheme, idle and in a call (WCAG AA).

The screenshots are always taken; they are written into docs/ only with
CALLBOX_UPDATE_SCREENSHOTS=1 (else into the test's tmp dir), so a test run does not change
tracked files: `CALLBOX_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/e2e/test_ui_look.py`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import Page, expect

from .browser import Person, PersonFactory, connect_pair, frames_grow, place_call

pytestmark = pytest.mark.e2e

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return DOCS if os.environ.get("CALLBOX_UPDATE_SCREENSHOTS") == "1" else tmp_path


# Every visible text of the page whose contrast is below `min`, with its colours. A text's
# background is the page's layers composited under it; enabled controls only (WCAG exempts
# disabled ones); text over video is measured against the dark stage behind it.
LOW_CONTRAST = """
([min]) => {
  const parse = (c) => {
    let m = /^rgba?\\(([^)]+)\\)$/.exec(c);
    if (m) {
      const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = /^color\\(srgb ([^)]+)\\)$/.exec(c);
    if (m) {
      const p = m[1].split(/[ /]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    return [0, 0, 0, 0];
  };
  const over = (top, bottom) => {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  };
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return (x + 0.05) / (y + 0.05);
  };
  const bad = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) continue;
    const off = 'button:disabled, select:disabled, input:disabled, [aria-disabled=true]';
    if (el.closest(off)) continue;
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.unshift(e);
    let bg = [255, 255, 255, 1];
    for (const e of chain) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) bg = over(c, bg);
    }
    const fg = over(parse(getComputedStyle(el).color), bg);
    const r = ratio(fg, bg);
    const text = el.textContent.trim().slice(0, 30);
    if (r < min) bad.push(`${el.tagName}#${el.id}.${el.className} "${text}" ${r.toFixed(2)}`);
  }
  return bad;
}
"""


def shoot(who: Person, where: Path, name: str) -> Path:
    where.mkdir(exist_ok=True)
    path = where / f"screenshot-{name}.png"
    who.page.screenshot(path=str(path))
    return path


def low_contrast(page: Page) -> list[str]:
    bad: list[str] = page.evaluate(LOW_CONTRAST, [4.5])
    return bad


def settle(who: Person) -> None:
    """Wait until the stage shows moving video and the quality sample is in."""
    expect(who.page.locator("#quality")).to_have_text("direct")
    who.page.wait_for_timeout(500)


def test_screenshots_of_idle_ringing_connected_and_phone(
    people: PersonFactory, shots: Path
) -> None:
    a = people("alice")
    b = people("bob")
    for who in (a, b):
        who.page.set_viewport_size({"width": 1280, "height": 800})
    shoot(b, shots, "idle")
    place_call(a)
    expect(b.page.locator("#incoming")).to_be_visible()
    shoot(b, shots, "ringing")
    b.page.locator("#incoming-answer").click()
    for who in (a, b):
        expect(who.page.locator("#call-state")).to_have_attribute("data-state", "connected")
    a.page.locator("#chat-input").fill("Hi Bob! Can you see my screen?")
    a.page.locator("#chat-input").press("Enter")
    settle(b)
    connected = shoot(b, shots, "connected")
    shutil.copyfile(connected, shots / "screenshot.png")
    b.page.set_viewport_size({"width": 390, "height": 844})
    settle(b)
    shoot(b, shots, "phone")
    for name in ("idle", "ringing", "connected", "phone"):
        assert (shots / f"screenshot-{name}.png").stat().st_size > 10_000


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_contrast_is_at_least_4_5_to_1(
    people: PersonFactory, callbox_server: Any, scheme: Literal["light", "dark"]
) -> None:
    a = people("contrast-a")
    b = people("contrast-b")
    for who in (a, b):
        who.page.emulate_media(color_scheme=scheme)
        for box in ("#devices-box", "#invite-box", "#check-box"):
            who.page.locator(f"{box} summary").click()
    assert low_contrast(b.page) == []
    everything: list[str] = b.page.evaluate(LOW_CONTRAST, [22])  # nothing reaches 22:1
    assert len(everything) > 20, everything  # the check sees the page's texts
    place_call(a)
    expect(b.page.locator("#incoming")).to_be_visible()
    assert low_contrast(b.page) == []
    assert low_contrast(a.page) == []
    b.page.locator("#incoming-answer").click()
    connect_pair_done(a, b)
    a.page.locator("#chat-input").fill("hello")
    a.page.locator("#chat-input").press("Enter")
    expect(b.page.locator("#chat-log li")).to_have_count(1)
    a.page.locator("#mute").click()
    expect(b.page.locator("#remote-badges li")).to_have_count(1)
    for who in (a, b):
        assert low_contrast(who.page) == [], scheme


def connect_pair_done(a: Person, b: Person) -> None:
    for who in (a, b):
        expect(who.page.locator("#quality")).to_have_text("direct")


def test_videos_and_live_regions_are_labelled(people: PersonFactory) -> None:
    a = people("label-a")
    b = people("label-b")
    connect_pair(a, b)
    page = b.page
    expect(page.locator("#remote-video")).to_have_attribute("aria-label", "Video from label-a")
    expect(page.locator("#local-video")).to_have_attribute("aria-label", "Your camera")
    expect(page.locator("#call-live")).to_have_attribute("aria-live", "polite")
    expect(page.locator("#incoming")).to_have_attribute("aria-live", "assertive")
    expect(page.locator("#error")).to_have_attribute("role", "alert")
    expect(page.get_by_role("button", name="Mute")).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("button", name="Stop camera")).to_have_attribute(
        "aria-pressed", "false"
    )
    page.get_by_role("button", name="Stop camera").click()
    expect(page.get_by_role("button", name="Start camera")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(a.page.locator("#remote-badges")).to_contain_text("label-b's camera is off")
    expect(a.page.locator("#stage-text")).to_contain_text("label-b turned the camera off")
    # The camera is released (its light goes off), not only blacked out.
    page.wait_for_function(
        "() => window.__e2ePeers.at(-1).getSenders().every((s) => s.track?.kind !== 'video')"
        " && document.querySelector('#local-video').srcObject.getVideoTracks()"
        ".every((t) => t.readyState === 'ended')"
    )
    page.get_by_role("button", name="Start camera").click()
    expect(page.get_by_role("button", name="Stop camera")).to_have_attribute(
        "aria-pressed", "false"
    )
    expect(a.page.locator("#remote-badges")).not_to_contain_text("camera is off")
    page.wait_for_function(
        "() => window.__e2ePeers.at(-1).getSenders().some((s) => s.track?.readyState === 'live'"
        " && s.track.kind === 'video')"
    )
    frames_grow(a)
