"""The member center in Debian's Chromium against a live server: the right tier and progress, the
celebration once, red dots cleared once seen, one member's page only, nothing loaded from
elsewhere, no console errors, axe finds no violations, and the keyboard reaches what it must.

The member (hand-computed as in tests/service/test_member_center.py): two ¥100 orders on Monday
2027-01-04 under the default ruleset: 200 growth, 200 points; bronze until the evaluation on
2027-02-01 makes them silver (valid to 2028-02-01). Gold then needs 1 more order or ¥600.00 more;
the bar shows the closer one: 2 of 3 orders = 66.6%.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loyalty.clock import FixedClock
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.web import member
from tests.browser.conftest import Guard, guarded_page
from tests.conftest import at
from tests.service.support import pay

pytestmark = pytest.mark.django_db(transaction=True)
MOBILE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.fixture
def now(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    clock = FixedClock(at("2027-01-20 12:00"))
    monkeypatch.setattr(member, "CLOCK", clock)  # the live server's thread reads it at each request
    return clock


@pytest.fixture
def shop(default_rules: Any, now: FixedClock) -> str:
    seeding = FixedClock(at("2027-01-04 09:00"))
    for external_id in ("m1", "m2"):
        register_member(external_id, clock=seeding)
    pay("o1", "m1", at("2027-01-04 10:00"), "100", seeding)
    pay("o2", "m1", at("2027-01-04 11:00"), "100", seeding)
    return "m1"


def upgrade_at_february(now: FixedClock) -> None:
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    now.at = at("2027-02-01 10:00")


def open_center(page: Any, live_server: Any, external_id: str) -> None:
    page.goto(member.member_center_url(external_id, base=live_server.url))
    assert page.url == f"{live_server.url}/m/"  # the token left the address bar


def no_axe_violations(page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()


def test_the_page_shows_the_tier_and_progress_and_celebrates_an_upgrade_once(
        shop: str, now: FixedClock, live_server: Any, guard: Guard, browser: Any, artifacts: Path) -> None:
    page = guarded_page(browser, guard, **MOBILE)
    open_center(page, live_server, shop)  # bronze, silver's condition met, growth up from nothing
    assert page.get_by_test_id("tier-name").inner_text() == "青铜"
    assert page.get_by_test_id("qualified").is_visible()
    assert page.locator(".fill.animate").count() == 1
    assert page.get_by_test_id("growth-since").inner_text() == "自上次访问 +200"
    assert page.locator("#celebration").count() == 0

    upgrade_at_february(now)
    open_center(page, live_server, shop)  # days later, from the shop again: the first token has expired
    overlay = page.get_by_role("dialog", name="恭喜升级！")
    assert overlay.is_visible() and overlay.get_attribute("aria-modal") == "true"
    assert page.evaluate("document.activeElement.id") == "celebrate-close"
    page.screenshot(path=str(artifacts / "member-center-celebration-mobile.png"))
    no_axe_violations(page)
    page.keyboard.press("Escape")
    assert not overlay.is_visible()

    assert page.get_by_test_id("tier-name").inner_text() == "白银"
    assert page.get_by_test_id("tier-until").inner_text() == "有效期至 2028-02-01"
    assert page.get_by_test_id("gaps").locator("li").all_inner_texts() == ["1 笔订单", "消费 ¥600.00"]
    assert page.get_by_test_id("progress").get_attribute("aria-valuenow") == "66.6"
    bar = page.get_by_test_id("progress").bounding_box()
    fill = page.locator(".fill").bounding_box()
    assert abs(fill["width"] / bar["width"] - 0.666) < 0.01
    assert page.get_by_test_id("points-balance").inner_text() == "200"
    assert page.locator(".benefit.new").all_inner_texts() == ["新解锁：\n每月 1 张 ¥5.00 优惠券\n无门槛"]
    page.screenshot(path=str(artifacts / "member-center-mobile.png"), full_page=True)
    no_axe_violations(page)

    page.reload()  # seen: neither the celebration nor the red dot comes back
    assert page.locator("#celebration").count() == 0 and page.locator(".benefit.new").count() == 0
    assert page.locator(".benefit.unlocked").count() == 2
    guard.assert_clean()


def test_another_members_data_is_unreachable(shop: str, now: FixedClock, live_server: Any, guard: Guard,
                                             browser: Any) -> None:
    upgrade_at_february(now)
    first, second = guarded_page(browser, guard), guarded_page(browser, guard)
    open_center(first, live_server, "m1")
    open_center(second, live_server, "m2")
    assert second.get_by_test_id("tier-name").inner_text() == "青铜"
    assert second.get_by_test_id("growth").inner_text() == "0"
    assert first.get_by_test_id("tier-name").inner_text() == "白银"  # each browser its own member
    for path in ("/m/m1", "/m/m1/", "/api/v1/members/m1"):  # no URL takes a member to the page's cookie
        assert second.request.get(live_server.url + path).status in (401, 404)
    assert second.request.get(live_server.url + "/m/?member=m1").text().count('data-testid="growth">0<') == 1
    cookies = second.context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [(member.MEMBER_COOKIE, True, "Lax")]
    guard.assert_clean()


def test_the_keyboard_reaches_the_overlay_button_and_the_language_switch_with_a_visible_focus(
        shop: str, now: FixedClock, live_server: Any, page: Any, guard: Guard, artifacts: Path) -> None:
    upgrade_at_february(now)
    open_center(page, live_server, shop)

    def focused() -> dict[str, str]:
        return page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
            return {id: e.id, cls: e.className, outline: s.outlineStyle, width: s.outlineWidth}; }""")

    page.keyboard.press("Tab")  # focus stays in the dialog
    assert focused()["id"] == "celebrate-close"
    assert focused()["outline"] == "solid" and focused()["width"] == "3px"
    page.keyboard.press("Enter")
    assert not page.locator("#celebration").is_visible()
    page.keyboard.press("Tab")
    assert focused()["cls"] == "lang" and focused()["outline"] == "solid"
    page.screenshot(path=str(artifacts / "member-center-desktop.png"), full_page=True)
    page.keyboard.press("Enter")  # the language switch
    page.wait_for_url(f"{live_server.url}/m/")
    assert page.get_by_test_id("tier-name").inner_text() == "Silver"
    assert page.get_by_test_id("gaps").locator("li").all_inner_texts() == ["Orders: 1 more", "Spending: ¥600.00 more"]
    page.screenshot(path=str(artifacts / "member-center-desktop-en.png"), full_page=True)
    no_axe_violations(page)
    guard.assert_clean()


def test_reduced_motion_turns_the_animations_off_and_the_page_works_without_javascript(
        shop: str, now: FixedClock, live_server: Any, guard: Guard, browser: Any) -> None:
    upgrade_at_february(now)
    page = guarded_page(browser, guard, reduced_motion="reduce", java_script_enabled=False)
    open_center(page, live_server, shop)
    assert page.locator(".overlay .medal").evaluate("e => getComputedStyle(e).animationName") == "none"
    page.get_by_role("button", name="好的").click()  # without script: the link's #dismissed target hides it
    assert not page.locator("#celebration").is_visible()
    assert page.get_by_test_id("gaps").locator("li").all_inner_texts() == ["1 笔订单", "消费 ¥600.00"]
    guard.assert_clean()
