"""The member center's seen-state (services.member_center): what is new on a visit, recorded once.

The member: two orders of ¥100 on Monday 2027-01-04 under the default ruleset: 100 growth each
(1 per yuan, a weekday, below the ¥300 bonus), so 200 growth and 200 points. Bronze until the
evaluation on 2027-02-01 makes them silver (1 order suffices), valid to 2028-02-01. Gold then
needs 3 orders or ¥800: 1 more order or ¥600.00 more; the bar shows the closer one, 2/3 = 666‰.
"""

from __future__ import annotations

import pytest

from loyalty.clock import FixedClock
from loyalty.services.member_center import growth_history, visit
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import MemberCenterView
from tests.conftest import at
from tests.service.support import act, pay

SILVER_COUPON = "coupon:500:1:0"  # silver's monthly ¥5 coupon, no minimum spend


@pytest.fixture
def shopper(default_rules, clock):
    register_member("m1", clock=clock)
    register_member("m2", clock=clock)
    pay("o1", "m1", at("2027-01-04 10:00"), "100", clock)
    pay("o2", "m1", at("2027-01-04 11:00"), "100", clock)
    return "m1"


def test_a_first_visit_shows_the_growth_rising_from_zero_and_nothing_to_celebrate_in_the_base_tier(shopper):
    seen = visit(shopper, clock=FixedClock(at("2027-01-20 12:00")))
    assert (seen.status.tier.code, seen.status.growth_balance) == ("bronze", 200)
    assert (seen.news.growth_rose, seen.growth_before, seen.news.progress_from) == (True, 0, 0)
    # Silver's condition (1 order) already holds: no gap, a full bar, the upgrade waits for Feb 1st.
    assert (seen.status.gaps, seen.progress) == ([], 1000)
    assert (seen.news.celebrate, seen.news.new_benefits) == (False, frozenset())


def test_the_first_visit_after_an_upgrade_celebrates_once_and_the_new_benefit_has_its_dot_once(shopper):
    visit(shopper, clock=FixedClock(at("2027-01-20 12:00")))
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    later = FixedClock(at("2027-02-01 10:00"))

    first = visit(shopper, clock=later)
    assert (first.status.tier.code, first.status.tier_expires_at) == ("silver", at("2028-02-01 00:00"))
    assert first.news.celebrate is True
    assert first.news.new_benefits == {SILVER_COUPON}  # refund priority was bronze's too: not new
    assert [(g.metric, g.needed - g.current) for g in first.status.gaps] == [("orders", 1), ("amount", 60000)]
    assert first.progress == 666  # max(2/3, ¥200/¥800) in permille, floored
    assert first.news.growth_rose is False and first.news.progress_from == 666

    second = visit(shopper, clock=later)
    assert (second.news.celebrate, second.news.new_benefits, second.news.growth_rose) == (False, frozenset(), False)


def test_growth_rising_since_the_last_visit_animates_from_the_value_last_shown(shopper, clock):
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    visit(shopper, clock=FixedClock(at("2027-02-01 10:00")))  # silver, 666‰ shown
    act("c1", shopper, "check_in", at("2027-02-02 09:00"), FixedClock(at("2027-02-02 09:00")))  # +5 growth

    seen = visit(shopper, clock=FixedClock(at("2027-02-02 10:00")))
    assert (seen.status.growth_balance, seen.growth_before, seen.news.growth_rose) == (205, 200, True)
    assert (seen.news.progress_from, seen.progress) == (666, 666)  # a check-in is no order: the bar holds
    # A 3rd order, the first since the upgrade: 100 × 1.5 (operations.after_upgrade) = 150 growth.
    pay("o3", shopper, at("2027-02-03 10:00"), "100", FixedClock(at("2027-02-03 10:00")))
    seen = visit(shopper, clock=FixedClock(at("2027-02-03 11:00")))
    assert (seen.status.growth_balance, seen.growth_before) == (355, 205)
    assert (seen.news.progress_from, seen.progress) == (666, 1000)  # gold's 3 orders: qualified


def test_a_member_first_seen_above_the_base_tier_is_congratulated_once(shopper):
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    first = visit(shopper, clock=FixedClock(at("2027-02-01 10:00")))
    assert (first.news.celebrate, first.news.new_benefits, first.news.progress_from) == (True, {SILVER_COUPON}, 0)
    assert visit(shopper, clock=FixedClock(at("2027-02-01 10:05"))).news.celebrate is False


def test_visiting_again_changes_nothing_and_keeps_one_row_per_member(shopper):
    evaluate_tiers(at("2027-02-01 00:00"), clock=FixedClock(at("2027-02-01 00:00")))
    visit(shopper, clock=FixedClock(at("2027-02-01 10:00")))
    visit(shopper, clock=FixedClock(at("2027-02-01 10:05")))
    visit("m2", clock=FixedClock(at("2027-02-01 10:06")))
    row = MemberCenterView.objects.get(member__external_id=shopper)
    assert (row.seen_growth, row.seen_progress, row.celebrated_rank) == (200, 666, 1)
    assert row.seen_benefits == ["coupon:500:1:0", "flag:refund_priority"]
    assert row.seen_at == at("2027-02-01 10:05")
    assert MemberCenterView.objects.count() == 2


def test_points_expiring_within_the_notice_days_are_listed_by_expiry(shopper):
    # Points expire at the end of the year they were earned in (the default ruleset): 2028-01-01
    # 00:00 Shanghai. 30 days before, on 2027-12-02 00:00, they are not yet within; a day later they are.
    assert visit(shopper, clock=FixedClock(at("2027-12-01 12:00"))).expiring == []
    seen = visit(shopper, clock=FixedClock(at("2027-12-02 12:00")))
    assert [(e.expires_at, e.points) for e in seen.expiring] == [(at("2028-01-01 00:00"), 200)]
    assert seen.expiring_days == 30


def test_growth_history_is_newest_first_twenty_a_page(shopper, clock):
    for day in range(1, 24):  # 23 check-ins of 5 growth, one a day, in January 2027 (after o1, o2)
        moment = at(f"2027-01-{day + 4:02d} 08:00")
        act(f"c{day}", shopper, "check_in", moment, FixedClock(moment))
    first = growth_history(shopper, 1)
    assert (first.total, first.pages, first.page, len(first.entries)) == (25, 2, 1, 20)
    assert first.entries[0].occurred_at == at("2027-01-27 08:00") and first.entries[0].delta == 5
    last = growth_history(shopper, 2)
    assert [e.delta for e in last.entries] == [5, 5, 5, 100, 100]
    assert last.entries[-1].reference == "o1"
    assert growth_history(shopper, 9).page == 2  # past the end: the last page
