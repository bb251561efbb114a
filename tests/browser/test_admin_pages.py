"""The admin pages this project adds, in Debian's Chromium: publishing a ruleset (with its diff
and the backtest's comparison), a member with the ledger inline, and the adjustment form pass axe,
with no console error and no request leaving the server. Screenshots go to var/artifacts/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from loyalty.clock import FixedClock
from loyalty.services import rulesets
from loyalty.services.members import register_member
from loyalty.store.models import Member
from tests.browser.conftest import Guard
from tests.conftest import RULES_FROM, at
from tests.service.support import pay

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_page(page: Any, live_server: Any) -> Any:
    rulesets.publish(rulesets.preset_document("default"), effective_from=RULES_FROM, actor="test")
    clock = FixedClock(at("2027-01-04 09:00"))
    register_member("m1", clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    client = Client()
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value,
                               "url": live_server.url}])
    return page


# The WCAG 2.1 A and AA rules. Axe's "best-practice" rules (beyond WCAG) are left out here only:
# Django's own inline tables have empty header cells (the row-object and delete columns), which
# those rules flag and which are Django's markup, not ours. Our pages are checked with every rule.
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        "resultTypes": ["violations"]}


def no_axe_violations(page: Any, options: dict[str, Any] | None = None) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=options) if options else Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_the_pages_added_to_the_admin_pass_axe(admin_page: Any, live_server: Any, guard: Guard,
                                               artifacts: Path) -> None:
    page = admin_page
    page.goto(live_server.url + "/admin/loyalty/rulesetversion/publish/")
    text = page.locator("textarea").first.input_value()
    page.locator("textarea").first.fill(text.replace("orders: '>= 3'", "orders: '>= 4'"))
    page.get_by_role("button", name="Show the diff").click()
    assert "+    - orders: '>= 4'" in page.locator("body").inner_text()  # the changed line, in the diff
    page.screenshot(path=str(artifacts / "admin-publish-diff.png"), full_page=True)
    no_axe_violations(page)
    page.get_by_role("button", name="Run the backtest").click()
    assert "0 members would end in another tier" in page.locator("#content").inner_text()
    no_axe_violations(page)
    member = Member.objects.get(external_id="m1")
    for path, name in ((f"/admin/loyalty/member/{member.pk}/change/", "admin-member"),
                       (f"/admin/loyalty/member/{member.pk}/adjust/", "admin-adjust")):
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
        no_axe_violations(page, WCAG)
    guard.assert_clean()
