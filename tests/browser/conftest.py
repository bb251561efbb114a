"""Shared browser fixtures: Debian's Chromium driven by Playwright (never a downloaded browser), and
a page that refuses every request to a host other than the server under test.

Without /usr/bin/chromium the browser tests are skipped with the reason, or fail when
LOYALTY_REQUIRE_SERVICES=1 (CI), as the database-backed tests do. Pages are served by
pytest-django's `live_server` (a real threaded server; tests need
`@pytest.mark.django_db(transaction=True)`). Screenshots go to var/artifacts/ (`artifacts`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "artifacts"

# IMPORTANT: Playwright's sync API runs an event loop in the test's thread, which makes Django
# refuse database calls there ("cannot call this from an async context"). The tests seed data
# and read it back synchronously, one thing at a time, so the guard protects nothing here; it is
# lifted only while the browser runs.
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


def _chromium_missing() -> str | None:
    if CHROMIUM.exists():
        return None
    reason = f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("LOYALTY_REQUIRE_SERVICES") == "1":
        raise pytest.UsageError(f"{reason}, and LOYALTY_REQUIRE_SERVICES=1 requires it")
    return reason


@pytest.fixture(scope="session")
def browser(live_server: Any) -> Iterator[Any]:
    """One headless Chromium for the whole run. It needs the live server so that it closes first:
    the server's request threads then see their connections end while the server still shares
    the test database with them (see `_request_threads_done`)."""
    reason = _chromium_missing()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    before = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
            yield chromium
            chromium.close()
            _request_threads_done()
    finally:
        if before is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = before


def _request_threads_done(timeout: float = 5.0) -> None:
    """Wait until the live server has finished every connection. A request thread closes the
    database connection it borrows when its connection ends; if that happens after the server
    stopped sharing the in-memory test database, Django raises in that thread, and pytest reports
    it against whichever test runs next."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any("process_request_thread" in t.name for t in threading.enumerate()):
        time.sleep(0.05)


@dataclass
class Guard:
    """What a page did that it should not: requests to other hosts, console errors, failed requests."""

    host: str
    contexts: list[Any] = field(default_factory=list)  # opened for the test; closed after it
    external: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.external == [], f"requests left the server: {self.external}"
        assert self.console_errors == [], f"console errors: {self.console_errors}"
        assert self.failed == [], f"failed requests: {self.failed}"


@pytest.fixture
def guard(live_server: Any) -> Iterator[Guard]:
    """The test's guard; every browser context opened through it is closed after the test, and the
    server's connections with it have ended by then."""
    guard = Guard(host=urlsplit(live_server.url).netloc)
    yield guard
    for context in guard.contexts:
        context.close()
    _request_threads_done()


def guarded_page(browser: Any, guard: Guard, **context_options: Any) -> Any:
    """A page in a fresh context (its own cookies) whose requests to any other host are aborted
    and recorded in `guard`, with console errors and failed requests recorded too."""
    context = browser.new_context(**context_options)
    guard.contexts.append(context)
    page = context.new_page()

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if urlsplit(url).netloc != guard.host and not url.startswith(("data:", "about:", "blob:")):
            guard.external.append(url)
            request_route.abort()
            return
        request_route.continue_()

    page.route("**/*", route)
    page.on("console", lambda message: guard.console_errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: guard.console_errors.append(str(error)))
    page.on("requestfailed", lambda request: guard.failed.append(request.url)
            if urlsplit(request.url).netloc == guard.host else None)
    return page


@pytest.fixture
def page(browser: Any, guard: Guard) -> Iterator[Any]:
    """A desktop-sized page with the no-external-requests guard; `guard.assert_clean()` checks it."""
    yield guarded_page(browser, guard, viewport={"width": 1280, "height": 900})  # closed by `guard`


@pytest.fixture
def artifacts() -> Path:
    """The folder for screenshots (gitignored, kept by CI as test artefacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
