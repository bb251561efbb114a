"""Grant rules: who is entitled to which coupon or notice, keyed once per member and period."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.conditions import Facts
from loyalty.domain.grants import (
    CODE_LENGTH,
    CODE_PREFIX,
    CouponDraft,
    add_days_at,
    after_upgrade_growth,
    birthday_gifts,
    birthdays_on,
    coupon_code,
    is_after_upgrade,
    is_near,
    is_within,
    month_of,
    monthly_coupons,
    recall_coupon,
    sprint_coupon,
    sprint_is_on,
    sprint_target,
)
from loyalty.domain.growth import OrderGrowth
from loyalty.domain.rules import AfterUpgrade, CouponOffer, Sprint
from tests.unit.presets import SHANGHAI, at, preset, window_facts

DEFAULT = preset("default")
SPRINT = DEFAULT.operations.sprint
assert SPRINT is not None


def test_a_coupon_code_is_derived_from_its_key_and_the_secret() -> None:
    code = coupon_code("monthly:2027-02:coupon:1:7", b"secret")
    assert code == coupon_code("monthly:2027-02:coupon:1:7", b"secret")
    assert code.startswith(CODE_PREFIX) and len(code) == len(CODE_PREFIX) + CODE_LENGTH
    assert set(code[len(CODE_PREFIX):]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert code != coupon_code("monthly:2027-02:coupon:2:7", b"secret")
    assert code != coupon_code("monthly:2027-02:coupon:1:7", b"another secret")


def test_the_month_is_the_local_one_even_when_utc_is_still_in_the_previous_month() -> None:
    month = month_of(datetime(2027, 1, 31, 16, 0, tzinfo=UTC), SHANGHAI)  # 00:00 on 1 Feb in Shanghai
    assert (month.label, month.start, month.end) == ("2027-02", at("2027-02-01 00:00"), at("2027-03-01 00:00"))
    assert month_of(datetime(2027, 1, 31, 15, 59, tzinfo=UTC), SHANGHAI).label == "2027-01"


@pytest.mark.parametrize(("year", "days"), [(2027, 28), (2028, 29), (2100, 28), (2000, 29)])
def test_february_runs_to_the_1st_of_march_in_common_and_leap_years(year: int, days: int) -> None:
    month = month_of(at(f"{year}-02-10 12:00"), SHANGHAI)
    assert month.end - month.start == timedelta(days=days)


def test_each_tier_gets_its_monthly_coupons_and_free_deliveries_keyed_per_month() -> None:
    month = month_of(at("2027-02-01 00:00"), SHANGHAI)
    gold = monthly_coupons(DEFAULT.benefits["gold"], month, 7)
    assert [(c.key, c.kind, c.value_fen) for c in gold] == [
        ("monthly:2027-02:coupon:1:7", "monthly", 800),
        ("monthly:2027-02:coupon:2:7", "monthly", 800),
        ("monthly:2027-02:free_delivery:1:7", "free_delivery", 0),
    ]
    assert {(c.valid_from, c.valid_until) for c in gold} == {(at("2027-02-01 00:00"), at("2027-03-01 00:00"))}
    platinum = monthly_coupons(DEFAULT.benefits["platinum"], month, 7)
    assert [c.kind for c in platinum] == ["monthly"] * 3 + ["free_delivery"] * 3


def test_unlimited_free_delivery_and_a_tier_without_benefits_issue_no_coupon_rows() -> None:
    month = month_of(at("2027-02-01 00:00"), SHANGHAI)
    diamond = monthly_coupons(DEFAULT.benefits["diamond"], month, 7)
    assert [(c.kind, c.value_fen) for c in diamond] == [("monthly", 2000)] * 5
    assert monthly_coupons(DEFAULT.benefits["black_gold"], month, 7) == []
    assert monthly_coupons(DEFAULT.benefits["bronze"], month, 7) == []
    assert monthly_coupons(None, month, 7) == []


def test_29_february_birthdays_are_kept_on_28_february_in_common_years_only() -> None:
    assert birthdays_on(date(2027, 2, 28)) == ((2, 28), (2, 29))
    assert birthdays_on(date(2028, 2, 28)) == ((2, 28),)
    assert birthdays_on(date(2028, 2, 29)) == ((2, 29),)
    assert birthdays_on(date(2100, 2, 28)) == ((2, 28), (2, 29))  # 2100 is not a leap year
    assert birthdays_on(date(2027, 3, 1)) == ((3, 1),)


@pytest.mark.parametrize("year", [2027, 2028, 2100, 2000])
def test_every_birthday_is_celebrated_exactly_once_a_year(year: int) -> None:
    days = [date(year, 1, 1) + timedelta(days=n) for n in range(366 if calendar.isleap(year) else 365)]
    celebrated: dict[tuple[int, int], int] = {}
    for day in days:
        for birthday in birthdays_on(day):
            celebrated[birthday] = celebrated.get(birthday, 0) + 1
    every_birthday = {(d.month, d.day) for d in (date(2028, 1, 1) + timedelta(days=n) for n in range(366))}
    assert celebrated == dict.fromkeys(every_birthday, 1)


def test_the_birthday_coupon_and_pack_are_valid_30_days_from_the_birthday() -> None:
    gifts = birthday_gifts(CouponOffer(1000), True, date(2027, 5, 20), SHANGHAI, 7)
    assert gifts == [
        CouponDraft("birthday:2027:coupon:7", "birthday", 1000, 0, at("2027-05-20 00:00"), at("2027-06-19 00:00")),
        CouponDraft("birthday:2027:pack:7", "birthday_pack", 0, 0, at("2027-05-20 00:00"), at("2027-06-19 00:00"),
                    stacking_group=""),  # a gift: in no stacking group
    ]
    assert [g.kind for g in birthday_gifts(None, True, date(2027, 5, 20), SHANGHAI, 7)] == ["birthday_pack"]
    assert birthday_gifts(None, False, date(2027, 5, 20), SHANGHAI, 7) == []
    short = birthday_gifts(CouponOffer(1000, valid_days=7), False, date(2027, 5, 20), SHANGHAI, 7)
    assert short[0].valid_until == at("2027-05-27 00:00")


def test_within_n_days_is_judged_on_the_local_calendar() -> None:
    expiry = at("2028-02-01 00:00")
    assert not is_within(expiry, at("2028-01-01 00:00"), 30, SHANGHAI)
    assert is_within(expiry, at("2028-01-02 00:00"), 30, SHANGHAI)
    assert is_within(expiry, at("2028-01-31 23:59"), 30, SHANGHAI)
    assert not is_within(expiry, expiry, 30, SHANGHAI)  # at expiry it is no longer ahead
    assert add_days_at(at("2027-12-02 00:00"), 30, SHANGHAI) == at("2028-01-01 00:00")


def test_the_recall_coupon_lasts_until_the_drop_and_the_sprint_coupon_until_the_month_ends() -> None:
    recall = recall_coupon(CouponOffer(1000), at("2028-01-02 00:00"), at("2028-02-01 00:00"), SHANGHAI, 7)
    assert recall == CouponDraft("recall:2028-02-01:7", "recall", 1000, 0, at("2028-01-02 00:00"),
                                 at("2028-02-01 00:00"))
    assert recall_coupon(None, at("2028-01-02 00:00"), at("2028-02-01 00:00"), SHANGHAI, 7) is None
    month = month_of(at("2028-02-25 00:00"), SHANGHAI)
    sprint = sprint_coupon(CouponOffer(500), month, at("2028-02-25 00:00"), SHANGHAI, 7)
    assert sprint == CouponDraft("sprint:2028-02:7", "sprint", 500, 0, at("2028-02-25 00:00"), at("2028-03-01 00:00"))


def test_sprint_days_are_the_configured_range_and_a_short_month_has_fewer() -> None:
    assert [d for d in range(1, 29) if sprint_is_on(date(2027, 2, d), SPRINT)] == [25, 26, 27, 28]
    assert [d for d in range(1, 32) if sprint_is_on(date(2027, 1, d), SPRINT)] == [25, 26, 27, 28, 29, 30]
    month_end = Sprint(29, 31, Decimal(20))  # a day past the month's end means its last day
    assert [d for d in range(1, 29) if sprint_is_on(date(2027, 2, d), month_end)] == [28]
    assert [d for d in range(1, 30) if sprint_is_on(date(2028, 2, d), month_end)] == [29]
    assert [d for d in range(1, 31) if sprint_is_on(date(2027, 4, d), month_end)] == [29, 30]


def facts(orders: int = 0, yuan: str = "0", invited: bool = False) -> Facts:
    return window_facts(orders=orders, amount=yuan, invited=invited)


def test_near_means_within_the_percentage_on_one_branch_of_an_any() -> None:
    gold = DEFAULT.tiers[2].when  # orders >= 3 or amount >= 800
    assert gold is not None
    window, twenty = DEFAULT.evaluation.window, Decimal(20)
    assert is_near(gold, facts(yuan="640"), window, twenty)  # 160 of 800 missing: 20%
    assert not is_near(gold, facts(yuan="639.99"), window, twenty)
    assert not is_near(gold, facts(orders=2), window, twenty)  # 1 of 3 missing: 33%
    assert is_near(gold, facts(orders=2), window, Decimal(34))


def test_an_invitation_cannot_be_sprinted_for() -> None:
    black_gold = DEFAULT.tiers[5].when
    assert black_gold is not None
    window, twenty = DEFAULT.evaluation.window, Decimal(20)
    assert not is_near(black_gold, facts(orders=20), window, twenty)
    assert is_near(black_gold, facts(orders=20, invited=True), window, twenty)


def test_the_sprint_targets_the_tier_above_what_the_member_already_earns() -> None:
    # Silver, 5 orders: gold is earned already (the 1st grants it), platinum needs 6: 1 of 6 missing.
    target = sprint_target(DEFAULT, "silver", facts(orders=5), SPRINT)
    assert target is not None and target.code == "platinum"
    assert sprint_target(DEFAULT, "gold", facts(orders=4), SPRINT) is None  # 2 of 6 missing: 33%
    # Near gold, but the default sprint is for platinum and diamond only (冲刺铂金/钻石).
    assert sprint_target(DEFAULT, "silver", facts(yuan="700"), SPRINT) is None
    anyone = Sprint(25, 30, Decimal(20))
    target = sprint_target(DEFAULT, "silver", facts(yuan="700"), anyone)
    assert target is not None and target.code == "gold"
    assert sprint_target(DEFAULT, "black_gold", facts(orders=99, invited=True), anyone) is None


def test_the_first_orders_after_an_upgrade_multiply_the_base_growth_but_not_the_bonus() -> None:
    rule = AfterUpgrade(3, Decimal("1.5"))
    earned = OrderGrowth(301, 50)
    assert [after_upgrade_growth(earned, rule, n) for n in range(5)] == [OrderGrowth(451, 50)] * 3 + [earned] * 2
    assert after_upgrade_growth(earned, None, 0) == earned
    assert after_upgrade_growth(earned, rule, None) == earned


def test_the_boost_is_for_orders_paid_from_the_upgrade_and_within_its_days() -> None:
    upgraded = at("2027-02-01 00:00")
    limited, unlimited = AfterUpgrade(3, Decimal("1.5"), within_days=30), AfterUpgrade(3, Decimal("1.5"))
    assert not is_after_upgrade(limited, upgraded, at("2027-01-31 23:59"))
    assert is_after_upgrade(limited, upgraded, upgraded)
    assert is_after_upgrade(limited, upgraded, at("2027-03-02 23:59"))
    assert not is_after_upgrade(limited, upgraded, at("2027-03-03 00:00"))  # 30 days later
    assert is_after_upgrade(unlimited, upgraded, at("2028-01-31 23:59"))


@given(base=st.integers(0, 10**9), bonus=st.integers(0, 1000), before=st.integers(0, 10),
       orders=st.integers(1, 5), multiplier=st.decimals("1", "5", places=2))
def test_after_upgrade_growth_is_the_floored_multiple_of_the_base_for_the_first_orders_only(
        base: int, bonus: int, before: int, orders: int, multiplier: Decimal) -> None:
    boosted = after_upgrade_growth(OrderGrowth(base, bonus), AfterUpgrade(orders, multiplier), before)
    assert boosted.bonus == bonus
    if before < orders:
        assert boosted.base <= base * multiplier < boosted.base + 1
    else:
        assert boosted.base == base
