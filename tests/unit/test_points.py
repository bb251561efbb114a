"""Points: per order, the birthday, proportional take-back, lots (draw, pending, clawback, expiry)
and debts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty.domain.points import (
    Lot,
    clawback,
    draw,
    expiring,
    lot_available_at,
    lot_expires_at,
    order_points,
    points_to_reverse,
    settle_debts,
    spendable_balance,
)
from loyalty.domain.rules import PointsRules
from tests.unit.presets import SHANGHAI, at, fen, preset

DEFAULT = preset("default")
NOW = at("2027-06-15 12:00")


def points_for(amount: str, paid_at: datetime, birthday: date | None) -> int:
    return order_points(fen(amount), paid_at, birthday, DEFAULT.points, DEFAULT.timezone)


# --- earning -----------------------------------------------------------------------------------


def test_one_point_per_yuan_floors_the_fen() -> None:
    assert points_for("99.99", at("2027-03-10 10:00"), None) == 99


def test_points_are_doubled_on_the_members_birthday() -> None:
    assert points_for("100", at("2027-03-15 10:00"), date(1990, 3, 15)) == 200


def test_the_birthday_is_judged_in_shanghai_not_utc() -> None:
    paid_at = datetime(2027, 3, 14, 16, 30, tzinfo=UTC)  # 15 March 00:30 in Shanghai
    assert points_for("100", paid_at, date(1990, 3, 15)) == 200
    assert points_for("100", datetime(2027, 3, 15, 16, 30, tzinfo=UTC), date(1990, 3, 15)) == 100


@pytest.mark.parametrize(
    ("paid_on", "points"),
    [
        pytest.param("2027-02-28 10:00", 200, id="28-feb-in-a-common-year-is-the-birthday"),
        pytest.param("2027-03-01 10:00", 100, id="1-march-in-a-common-year-is-not"),
        pytest.param("2028-02-28 10:00", 100, id="28-feb-in-a-leap-year-is-not"),
        pytest.param("2028-02-29 10:00", 200, id="29-feb-in-a-leap-year-is-the-birthday"),
    ],
)
def test_a_29_february_birthday_falls_on_28_february_in_common_years(
    paid_on: str, points: int
) -> None:
    assert points_for("100", at(paid_on), date(2000, 2, 29)) == points


def test_a_member_without_a_birthday_never_gets_double_points() -> None:
    assert points_for("100", at("2027-02-28 10:00"), None) == 100


def test_a_fractional_birthday_multiplier_floors_after_multiplying() -> None:
    rules = replace(DEFAULT.points, birthday_multiplier=Decimal("1.5"))
    assert order_points(fen("11"), at("2027-03-15 10:00"), date(1990, 3, 15), rules, SHANGHAI) == 16


# --- refunds -----------------------------------------------------------------------------------


def test_partial_refund_takes_back_points_in_proportion_floored() -> None:
    assert points_to_reverse(400, fen("400"), 0, fen("100.50")) == 100


def test_several_partial_refunds_take_back_exactly_the_award() -> None:
    awarded, paid_fen = 7, fen("3")
    before, taken = 0, []
    for part in ("1", "1", "1"):
        taken.append(points_to_reverse(awarded, paid_fen, before, fen(part)))
        before += fen(part)
    assert taken == [2, 2, 3]
    assert sum(taken) == awarded


# --- lots --------------------------------------------------------------------------------------


def lot(
    lot_id: int,
    remaining: int,
    *,
    expires: str | None,
    earned: str = "2027-01-10 10:00",
    available: str | None = None,
) -> Lot:
    return Lot(
        lot_id, remaining, at(earned), at(available or earned), at(expires) if expires else None
    )


def test_spending_draws_the_soonest_expiring_lot_first() -> None:
    lots = [
        lot(1, 100, expires="2027-12-31 00:00"),
        lot(2, 100, expires="2027-07-01 00:00"),
        lot(3, 100, expires=None),
    ]
    assert draw(lots, 150, NOW) == ([(2, 100), (1, 50)], 0)


def test_lots_that_never_expire_are_spent_last() -> None:
    lots = [
        lot(1, 100, expires=None, earned="2026-01-01 00:00"),
        lot(2, 10, expires="2028-01-01 00:00"),
    ]
    assert draw(lots, 50, NOW) == ([(2, 10), (1, 40)], 0)


def test_lots_expiring_together_are_spent_oldest_first() -> None:
    lots = [
        lot(1, 10, expires="2028-01-01 00:00", earned="2027-05-01 10:00"),
        lot(2, 10, expires="2028-01-01 00:00", earned="2027-02-01 10:00"),
    ]
    assert draw(lots, 15, NOW) == ([(2, 10), (1, 5)], 0)


def test_pending_lots_cannot_be_spent() -> None:
    pending = lot(1, 500, expires=None, earned="2027-06-14 10:00", available="2027-06-21 10:00")
    ready = lot(2, 40, expires=None)
    assert spendable_balance([pending, ready], NOW) == 40
    assert draw([pending, ready], 100, NOW) == ([(2, 40)], 60)


def test_a_lot_becomes_spendable_the_instant_its_pending_days_end() -> None:
    earned_at = at("2027-06-08 12:00")
    available_at = lot_available_at(earned_at, DEFAULT.points)  # default: 7 pending days
    assert available_at == NOW
    assert spendable_balance([Lot(1, 30, earned_at, available_at, None)], NOW) == 30
    assert (
        spendable_balance([Lot(1, 30, earned_at, available_at, None)], NOW - timedelta(seconds=1))
        == 0
    )


def test_expired_lots_cannot_be_spent() -> None:
    lots = [lot(1, 100, expires="2027-06-15 12:00"), lot(2, 5, expires=None)]
    assert draw(lots, 10, NOW) == ([(2, 5)], 5)


def test_drawing_more_than_is_spendable_reports_the_shortfall() -> None:
    assert draw([lot(1, 30, expires=None)], 100, NOW) == ([(1, 30)], 70)


def test_drawing_nothing_takes_nothing() -> None:
    assert draw([lot(1, 30, expires=None)], 0, NOW) == ([], 0)


def test_clawback_takes_the_orders_own_lot_first_even_while_pending() -> None:
    own = lot(
        5, 30, expires="2028-01-01 00:00", earned="2027-06-14 10:00", available="2027-06-21 10:00"
    )
    older = lot(1, 100, expires="2027-07-01 00:00")
    assert clawback([older, own], 50, NOW, own_lot_id=5) == ([(5, 30), (1, 20)], 0)


def test_clawback_beyond_the_live_lots_leaves_a_shortfall_for_a_debt() -> None:
    lots = [lot(1, 10, expires=None), lot(2, 99, expires="2027-06-01 00:00")]  # lot 2 has expired
    assert clawback(lots, 50, NOW, own_lot_id=None) == ([(1, 10)], 40)


def test_the_expiry_job_finds_only_lots_past_expiry_that_still_hold_points() -> None:
    lots = [
        lot(1, 10, expires="2027-06-15 12:00"),
        lot(2, 0, expires="2027-01-01 00:00"),
        lot(3, 10, expires="2027-06-15 12:01"),
        lot(4, 10, expires=None),
    ]
    assert [found.id for found in expiring(lots, NOW)] == [1]


# --- expiry policies, judged in the ruleset's timezone -----------------------------------------


def rules(policy: str, days: int | None = None) -> PointsRules:
    return PointsRules(expiry=policy, expiry_days=days)


@pytest.mark.parametrize(
    ("policy", "days", "earned_at", "expires_at"),
    [
        pytest.param("never", None, at("2027-03-10 10:00"), None, id="never"),
        pytest.param(
            "days_after_earning",
            30,
            at("2027-03-10 10:00"),
            at("2027-04-09 10:00"),
            id="30-days-after-earning",
        ),
        pytest.param(
            "end_of_month",
            None,
            at("2027-01-31 23:59"),
            at("2027-02-01 00:00"),
            id="end-of-month-last-minute-of-january",
        ),
        pytest.param(
            "end_of_month",
            None,
            datetime(2027, 1, 31, 16, 30, tzinfo=UTC),
            at("2027-03-01 00:00"),
            id="end-of-month-utc-january-is-february-in-shanghai",
        ),
        pytest.param(
            "end_of_month",
            None,
            at("2027-12-05 10:00"),
            at("2028-01-01 00:00"),
            id="end-of-month-december-rolls-into-the-next-year",
        ),
        pytest.param(
            "end_of_year",
            None,
            datetime(2027, 12, 31, 15, 59, 59, tzinfo=UTC),
            at("2028-01-01 00:00"),
            id="end-of-year-last-second-of-2027-in-shanghai",
        ),
        pytest.param(
            "end_of_year",
            None,
            datetime(2027, 12, 31, 16, 0, tzinfo=UTC),
            at("2029-01-01 00:00"),
            id="end-of-year-utc-2027-is-2028-in-shanghai",
        ),
    ],
)
def test_lot_expiry_follows_the_rulesets_policy_in_its_timezone(
    policy: str,
    days: int | None,
    earned_at: datetime,
    expires_at: datetime | None,
) -> None:
    assert lot_expires_at(earned_at, rules(policy, days), SHANGHAI) == expires_at


def test_the_default_preset_expires_points_at_the_end_of_the_year() -> None:
    assert lot_expires_at(at("2027-06-15 12:00"), DEFAULT.points, DEFAULT.timezone) == at(
        "2028-01-01 00:00"
    )


# --- debts -------------------------------------------------------------------------------------


def test_an_award_pays_the_oldest_debt_first() -> None:
    assert settle_debts([(7, 30), (3, 50)], 60) == ([(3, 50), (7, 10)], 0)


def test_an_award_larger_than_the_debts_keeps_the_rest() -> None:
    assert settle_debts([(7, 30), (3, 50)], 100) == ([(3, 50), (7, 30)], 20)


def test_an_award_without_debts_keeps_everything() -> None:
    assert settle_debts([], 100) == ([], 100)
