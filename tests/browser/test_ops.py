"""The operations console in Debian's Chromium, on a live server with the shop of
tests/e2e/ops_shop.py: every dashboard renders its charts (inline SVG), with no console error and
no request leaving the server; axe finds no violations; the nav shows where the keyboard is.
Screenshots of every page go to var/artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from tests.browser.conftest import Guard
from tests.e2e.ops_shop import PERIOD, record_shop

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = (  # path, charts at least, screenshot name
    (f"/ops/?{PERIOD}", 1, "ops-tiers"),
    (f"/ops/retention/?{PERIOD}", 3, "ops-retention"),
    (f"/ops/revenue/?{PERIOD}", 3, "ops-revenue"),
    (f"/ops/benefits/?{PERIOD}", 2, "ops-benefits"),
    ("/ops/abuse/", 1, "ops-abuse"),
    ("/ops/health/", 1, "ops-health"),
)


@pytest.fixture
def operator_page(page: Any, live_server: Any) -> Any:
    """The guarded page, logged in as a superuser through the session cookie."""
    cache.clear()
    record_shop()
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    return page


def no_axe_violations(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_every_dashboard_renders_its_charts_offline_and_passes_axe(operator_page: Any, live_server: Any,
                                                                   guard: Guard, artifacts: Path) -> None:
    page = operator_page
    for path, charts, name in PAGES:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        assert page.locator("svg.chart").count() >= charts, path
        assert page.locator("svg.chart").first.bounding_box()["width"] > 300, path  # drawn, not collapsed
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        no_axe_violations(page)
    guard.assert_clean()


def test_the_numbers_under_a_chart_open_and_the_filters_apply(operator_page: Any, live_server: Any,
                                                             guard: Guard) -> None:
    page = operator_page
    page.goto(live_server.url + "/ops/revenue/")
    page.fill("#id_from", "2025-02-01")
    page.fill("#id_to", "2025-02-28")
    page.select_option("#id_tier", "silver")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/ops/revenue/?from=2025-02-01&to=2025-02-28&tier=silver")
    page.locator("summary").first.click()
    table = page.locator("details[open] table").first
    assert table.locator("tbody tr").first.inner_text().split("\t") == ["2025-02", "2", "30.00"]
    guard.assert_clean()


def test_a_bad_filter_is_announced_and_marked_on_its_field(operator_page: Any, live_server: Any,
                                                          guard: Guard, artifacts: Path) -> None:
    page = operator_page
    response = page.goto(live_server.url + "/ops/?tier=emerald")
    assert response is not None and response.status == 400
    alert = page.get_by_role("alert")
    assert "Tier: emerald is not a tier of the ruleset in force" in alert.inner_text()
    assert page.locator("#id_tier").get_attribute("aria-invalid") == "true"
    assert page.locator("svg.chart").count() == 0
    page.screenshot(path=str(artifacts / "ops-bad-filter.png"), full_page=True)
    no_axe_violations(page)
    guard.console_errors = [e for e in guard.console_errors if "400" not in e]  # the page's own status
    guard.assert_clean()


def test_the_keyboard_walks_the_nav_with_a_visible_focus(operator_page: Any, live_server: Any,
                                                         guard: Guard, artifacts: Path) -> None:
    page = operator_page
    page.goto(live_server.url + "/ops/health/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the content"
    labels = []
    for _ in range(6):
        page.keyboard.press("Tab")
        focused = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return [e.closest('nav') !== null, e.textContent, s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
        in_nav, label, style, width = focused
        assert in_nav and style == "solid" and width >= 2, focused
        labels.append(label)
    assert labels == ["Tiers", "Repurchase and retention", "ARPU and frequency", "Benefit cost", "Abuse queue",
                      "Jobs and webhooks"]
    page.screenshot(path=str(artifacts / "ops-nav-focus.png"))
    page.keyboard.press("Enter")  # the last one: this page again
    page.wait_for_url("**/ops/health/")
    guard.assert_clean()
