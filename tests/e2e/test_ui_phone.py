"""Joining from a phone: the room link (copied, or as a QR code served from our own npm
package), and /phone with the steps to trust the CA and its fingerprint."""

from __future__ import annotations

import hashlib
import ssl
from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import PersonFactory

pytestmark = pytest.mark.e2e


def test_copy_link_and_qr_code_of_the_room(people: PersonFactory, room: str) -> None:
    who = people("inviter")
    errors: list[str] = []
    who.page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    who.context.grant_permissions(["clipboard-read", "clipboard-write"])
    who.page.locator("#invite-box summary").click()
    link = who.page.locator("#room-link")
    expect(link).to_have_text(f"{who.page.url.split('/?')[0]}/?room={room}")
    who.page.locator("#copy-link").click()
    expect(who.page.locator("#copy-link")).to_have_text("Copied")
    assert who.page.evaluate("navigator.clipboard.readText()") == link.inner_text()

    who.page.locator("#show-qr").click()
    expect(who.page.locator("#show-qr")).to_have_attribute("aria-expanded", "true")
    qr = who.page.locator("#qr")
    expect(qr).to_be_visible()
    assert (qr.get_attribute("src", timeout=5000) or "").startswith("data:image/svg+xml")
    who.page.wait_for_function("() => document.querySelector('#qr').naturalWidth > 0")
    # served by callbox from node_modules, never from elsewhere
    assert who.page.evaluate(
        "performance.getEntriesByType('resource').some(e => e.name.endsWith('/vendor/uqr.mjs'))"
    )
    expect(who.page.locator("#phone-link")).to_have_attribute("href", f"/phone?room={room}")
    assert errors == []  # the CSP let everything through: no inline code, data: image


def test_phone_page_has_the_steps_and_the_ca_fingerprint(
    people: PersonFactory, callbox_server: Any, room: str
) -> None:
    who = people("phone-user")
    who.page.locator("#invite-box summary").click()
    who.page.locator("#show-qr").click()
    who.page.locator("#phone-link").click()
    expect(who.page.locator("h1")).to_have_text("Use callbox on a phone")
    expect(who.page.locator("main")).to_contain_text("Android")
    expect(who.page.locator("main")).to_contain_text("iPhone and iPad")
    der = ssl.PEM_cert_to_DER_cert(callbox_server.ca_path.read_text())
    expected = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    expect(who.page.locator("#fingerprint")).to_have_text(expected)
    status, body, headers = callbox_server.get("/ca.pem")
    assert status == 200 and b"PRIVATE KEY" not in body
    expect(who.page.locator("#download")).to_have_attribute("href", "/ca.pem")
    who.page.locator("#back").click()
    expect(who.page.locator("#my-room")).to_have_text(room)
