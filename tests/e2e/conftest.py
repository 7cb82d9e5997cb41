"""Browser fixtures for the e2e tests: Debian's Chromium driven by Playwright (sync API).

One headless Chromium is shared by the whole e2e package (starting one costs ~1 s); each test
gets fresh contexts (separate cookies, storage and media permissions, like two devices).
Flags and the reasons for them: shared/BROWSER_TESTING.md. The server comes from the
``callbox_server`` / ``start_server`` fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Playwright,
    ViewportSize,
    WebSocket,
    sync_playwright,
)

from .browser import (
    CHROMIUM,
    DENY_MEDIA,
    HOLD_MEDIA,
    RECORD_PEERS,
    SMALL_CAMERA,
    SWALLOW_PAGEHIDE,
    Person,
    PersonFactory,
    chromium_args_for_tests,
    load,
)


@pytest.fixture
def backend() -> str:
    """Browser tests run on the in-memory server (tests/e2e/test_nodes.py runs two nodes on
    Redis); the signaling tests run on both backends."""
    return "memory"


# Pages are 960x540, not Playwright's 1280x720: still the two-column layout (one column
# from 800 px down), and composing the four videos of a call costs Chromium's GPU process
# 1.6 s per 10 s instead of 2.9-3.4 (measured here, two pages in a call at 10 fps). The
# fake screen that getDisplayMedia gives is the viewport's size: 960x540.
VIEWPORT: ViewportSize = {"width": 960, "height": 540}

#: the people of the running test (a worker runs one test at a time), for a failure's report
_PEOPLE: list[Person] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report shows what each page logged (console, failed requests,
    websockets): an assertion on one page often fails for what happened on the other."""
    report = yield
    if report.failed and call.when == "call":
        for number, who in enumerate(_PEOPLE, 1):
            lines = "\n".join(who.log[-60:]) or "(nothing)"
            report.sections.append((f"page {number} ({who.page.url})", lines))
    return report


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as p:
        yield p


def launch(playwright: Playwright, env: dict[str, str | float | bool] | None = None) -> Browser:
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=chromium_args_for_tests(),
        # --no-sandbox: Chromium's sandbox can't run as root in a container.
        chromium_sandbox=False,
        env=env,
    )


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def no_page_left_open(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test, the shared Chromium holds no page: one left in a call keeps encoding
    and decoding video for the rest of the run, on a machine the other tests share."""
    _PEOPLE.clear()
    yield
    _PEOPLE.clear()
    if "browser" in request.fixturenames:
        browser: Browser = request.getfixturevalue("browser")
        left = [page.url for context in browser.contexts for page in context.pages]
        assert not browser.contexts, f"a test left pages open: {left}"


@pytest.fixture
def trusting_browser(
    playwright: Playwright, callbox_server: Any, tmp_path: Path
) -> Iterator[Browser]:
    """A Chromium that trusts the server's generated CA through an NSS db in its HOME,
    the way `callbox cert install` (or mkcert -install) makes a real browser trust it."""
    certutil = shutil.which("certutil")
    if certutil is None:
        pytest.skip("certutil is not installed (apt-get install libnss3-tools)")
    home = tmp_path / "home"
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    db = f"sql:{nssdb}"
    subprocess.run([certutil, "-N", "-d", db, "--empty-password"], check=True)
    ca = str(callbox_server.ca_path)
    subprocess.run(
        [certutil, "-A", "-d", db, "-n", "callbox-test-ca", "-t", "C,,", "-i", ca], check=True
    )
    browser = launch(playwright, env={**os.environ, "HOME": str(home)})
    yield browser
    browser.close()


@pytest.fixture
def room() -> str:
    """A room of its own per test, so tests never see each other's offers."""
    return f"t-{uuid.uuid4().hex[:12]}"


def record_websocket(who: Person, ws: WebSocket) -> None:
    who.log.append(f"websocket opened: {ws.url}")
    ws.on("socketerror", lambda error: who.log.append(f"websocket error: {error}"))
    ws.on("close", lambda _: who.log.append("websocket closed"))


def make_people(
    default_browser: Browser, default_server: Any, default_room: str
) -> Generator[PersonFactory, None, None]:
    contexts: list[BrowserContext] = []

    def person(
        name: str | None = None,
        *,
        room: str | None = None,
        camera: bool = True,
        browser: Browser | None = None,
        trust: bool = False,
        hold_media: bool = False,
        vanish: bool = False,
        server: Any = None,
        open_page: bool = True,
    ) -> Person:
        """`camera=False`: getUserMedia is denied; `hold_media`: it waits for the test;
        `vanish`: leaving the page tells the server nothing (a crash or a lost network);
        `open_page=False`: the page is not loaded yet (use `load`)."""
        context = (browser or default_browser).new_context(
            ignore_https_errors=not trust,
            permissions=["camera", "microphone"] if camera else [],
            viewport=VIEWPORT,
        )
        contexts.append(context)
        context.add_init_script(RECORD_PEERS)
        context.add_init_script(SMALL_CAMERA)
        if not camera:
            context.add_init_script(DENY_MEDIA)
        if hold_media:
            context.add_init_script(HOLD_MEDIA)
        if vanish:
            context.add_init_script(SWALLOW_PAGEHIDE)
        if name is not None:
            context.add_init_script(f"localStorage.setItem('callbox.name', {json.dumps(name)});")
        page = context.new_page()
        who = Person(context, page)
        _PEOPLE.append(who)

        def on_dialog(dialog: Any) -> None:
            who.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda m: who.log.append(f"console.{m.type}: {m.text}"))
        page.on("pageerror", lambda error: who.log.append(f"uncaught: {error}"))
        page.on(
            "requestfailed",
            lambda r: who.log.append(f"request failed: {r.method} {r.url} {r.failure}"),
        )
        page.on("websocket", lambda ws: record_websocket(who, ws))
        if open_page:
            load(who, server or default_server, room or default_room)
        return who

    # finally: a caller that stops early (``close()``, or a test that raised out of a ``for``
    # over this generator) still closes the pages. Without it test_nodes' two pages stayed in
    # their call, encoding and decoding video, for the rest of the worker's run (~0.5 core).
    try:
        yield person
    finally:
        for context in contexts:
            context.close()


@pytest.fixture
def people(browser: Browser, room: str, request: pytest.FixtureRequest) -> Iterator[PersonFactory]:
    """Make users with `people(name, camera=..., browser=..., trust=...)`; closed after the test.
    Their pages load the test's ``callbox_server`` when the test has one (it stops, kills,
    proxies or trusts that server), else the worker's shared server, in the test's own room
    (``shared_server``)."""
    own = "callbox_server" in request.fixturenames
    server = request.getfixturevalue("callbox_server" if own else "shared_server")
    yield from make_people(browser, server, room)
