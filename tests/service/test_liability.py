"""The points-liability report against a small shop computed by hand (docs/reports.md).

Rules: 1 point per yuan, pending 7 days, lots expire 30 days after earning; `allow_debt` until
2027-03-01, `within_balance` from then on (a refund follows the rules that awarded its order).
"""

from __future__ import annotations

from datetime import date

import pytest
from django.db.models import Sum

from loyalty.domain.errors import InvalidInput
from loyalty.services.adjustments import adjust
from loyalty.services.members import register_member
from loyalty.services.points import expire_points, redeem_points
from loyalty.services.reports import COLUMN_OF_SOURCE, LIABILITY_COLUMNS, points_liability
from loyalty.store.models import SOURCES, PointsDebt, PointsLot
from tests.conftest import at
from tests.service.support import ledger_problems_by_member, pay, refund

EXPIRY = {"expiry": {"policy": "days_after_earning", "days": 30}}

# period, opening, earned, redeemed, reversed, expired, adjusted, written_off, outstanding
BY_DAY = [
    ("2027-01-04", 0, 150, 0, 0, 0, 0, 0, 150),  # a ¥100, b ¥50
    ("2027-01-20", 150, 200, 30, 0, 0, 0, 0, 320),  # a redeems 30, a ¥200
    ("2027-02-01", 320, 80, 0, 0, 0, 0, 0, 400),  # b ¥80 at 07:00 Shanghai: still 31 January in UTC
    ("2027-02-02", 400, 0, 0, 50, 0, 0, 0, 350),  # a refunds ¥50 of ¥200
    ("2027-02-03", 350, 0, 0, 0, 120, 0, 0, 230),  # a's 70 left of 100 and b's 50 expire
    ("2027-02-10", 230, 0, 100, 0, 0, 15, 0, 145),  # +25 to a, −10 from b; a redeems 100
    ("2027-02-11", 145, 0, 0, 150, 0, 0, 0, -5),  # a refunds the other ¥150: 75 clawed, 75 a debt
    ("2027-03-01", -5, 40, 0, 0, 0, 0, 0, 35),  # a ¥40 pays 40 of the debt
    ("2027-03-02", 35, 60, 0, 0, 0, 0, 0, 95),  # b ¥60 (within_balance)
    ("2027-03-03", 95, 0, 0, 0, 70, 0, 0, 25),  # b's 70 left of 80 expire
    ("2027-03-10", 25, 0, 50, 0, 0, 0, 0, -25),  # b redeems 50
    ("2027-03-11", -25, 0, 0, 10, 0, 0, 50, -35),  # b refunds ¥60: 10 clawed, 50 written off
    ("2027-03-20", -35, 100, 0, 0, 0, 0, 0, 65),  # c ¥100
]
BY_MONTH = [
    ("2027-01", 0, 350, 30, 0, 0, 0, 0, 320),
    ("2027-02", 320, 80, 100, 200, 120, 15, 0, -5),
    ("2027-03", -5, 200, 50, 10, 70, 0, 50, 65),
]


def held() -> int:
    """Σ lots − Σ debts, from the lot and debt tables alone."""
    lots = PointsLot.objects.aggregate(t=Sum("remaining"))["t"] or 0
    debts = PointsDebt.objects.aggregate(t=Sum("remaining"))["t"] or 0
    return int(lots) - int(debts)


@pytest.fixture
def shop(publish, clock) -> dict[str, int]:
    """Build the shop of BY_DAY; answers Σ lots − Σ debts at the end of each day with movement."""
    publish("default", points=EXPIRY)
    publish("default", effective_from=at("2027-03-01 00:00"), points={**EXPIRY, "return_policy": "within_balance"})
    for name in ("a", "b", "c"):
        register_member(name, clock=clock)
    seen: dict[str, int] = {}

    def then(day: str, moment: str) -> None:
        clock.at = at(moment)
        seen[day] = held()

    pay("o1", "a", at("2027-01-04 10:00"), "100", clock)
    pay("o2", "b", at("2027-01-04 15:00"), "50", clock)
    then("2027-01-04", "2027-01-20 12:00")
    redeem_points("a", 30, redemption_id="x1", clock=clock)  # from o1: 70 left
    pay("o3", "a", at("2027-01-20 13:00"), "200", clock)
    then("2027-01-20", "2027-02-01 08:00")
    pay("o4", "b", at("2027-02-01 07:00"), "80", clock)
    then("2027-02-01", "2027-02-02 10:00")
    refund("r1", "o3", "50", clock.now(), clock)  # from o3's own lot: 150 left
    then("2027-02-02", "2027-02-04 00:00")
    assert expire_points(clock.now(), clock=clock) == 120  # o1 (70) at 02-03 10:00, o2 (50) at 02-03 15:00
    then("2027-02-03", "2027-02-10 10:00")
    adjust("a", "points", 25, reason="goodwill", actor="ops", adjustment_id="adj1", clock=clock)
    adjust("b", "points", -10, reason="correction", actor="ops", adjustment_id="adj2", clock=clock)
    redeem_points("a", 100, redemption_id="x2", clock=clock)  # o3 expires first: 50 left, adj1 25
    then("2027-02-10", "2027-02-11 10:00")
    outcome = refund("r2", "o3", "150", clock.now(), clock)
    assert (outcome.points_reversed, outcome.points_debt_created) == (150, 75)
    then("2027-02-11", "2027-03-01 10:00")
    pay("o5", "a", clock.now(), "40", clock)
    then("2027-03-01", "2027-03-02 10:00")
    pay("o6", "b", clock.now(), "60", clock)
    then("2027-03-02", "2027-03-04 00:00")
    assert expire_points(clock.now(), clock=clock) == 70  # o4 at 03-03 07:00
    then("2027-03-03", "2027-03-10 10:00")
    redeem_points("b", 50, redemption_id="x3", clock=clock)
    then("2027-03-10", "2027-03-11 10:00")
    outcome = refund("r3", "o6", "60", clock.now(), clock)
    assert (outcome.points_reversed, outcome.points_written_off) == (60, 50)
    then("2027-03-11", "2027-03-20 10:00")
    pay("o7", "c", clock.now(), "100", clock)
    then("2027-03-20", "2027-03-21 10:00")
    return seen


def cells(rows) -> list[tuple[object, ...]]:
    return [tuple(row.as_dict()[name] for name in LIABILITY_COLUMNS) for row in rows]


def test_every_cell_per_day_matches_the_hand_computed_table(shop):
    report = points_liability(by="day")
    assert cells(report.rows) == BY_DAY
    assert all(problems == [] for problems in ledger_problems_by_member().values())


def test_every_cell_per_month_matches_the_hand_computed_table(shop):
    report = points_liability(by="month")
    assert cells(report.rows) == BY_MONTH
    assert report.totals() == {"opening": 0, "earned": 630, "redeemed": 180, "reversed": 210, "expired": 190,
                               "adjusted": 15, "written_off": 50, "outstanding": 65}


def test_outstanding_each_day_equals_lots_minus_debts_at_the_end_of_that_day(shop):
    assert {row.period: row.outstanding for row in points_liability().rows} == shop


def test_the_check_compares_the_whole_ledger_with_lots_minus_debts(shop):
    check = points_liability().check
    assert (check.ledger_total, check.lots_remaining, check.debts_remaining, check.agrees) == (65, 100, 35, True)


def test_each_row_rolls_forward_and_the_written_off_memo_does_not_move_it(shop):
    for row in points_liability().rows:
        assert row.outstanding == (row.opening + row.earned - row.redeemed - row.reversed - row.expired
                                   + row.adjusted)


def test_a_range_opens_with_the_outstanding_before_it(shop):
    report = points_liability(by="day", first_day=date(2027, 2, 2), last_day=date(2027, 2, 10))
    assert cells(report.rows) == BY_DAY[3:6]
    assert (report.opening, report.closing) == (400, 145)
    assert cells(points_liability(by="month", first_day=date(2027, 2, 1), last_day=date(2027, 2, 28)).rows) == \
        [BY_MONTH[1]]


def test_a_month_cut_by_the_range_counts_only_the_days_inside_it(shop):
    report = points_liability(by="month", first_day=date(2027, 1, 20), last_day=date(2027, 3, 2))
    assert cells(report.rows) == [("2027-01", 150, 200, 30, 0, 0, 0, 0, 320), BY_MONTH[1],
                                  ("2027-03", -5, 100, 0, 0, 0, 0, 0, 95)]


def test_open_ended_ranges_and_a_day_with_only_a_write_off(shop):
    assert cells(points_liability(last_day=date(2027, 1, 31)).rows) == BY_DAY[:2]
    assert cells(points_liability(first_day=date(2027, 3, 11)).rows) == BY_DAY[-2:]
    only = points_liability(first_day=date(2027, 3, 11), last_day=date(2027, 3, 11))
    assert cells(only.rows) == [BY_DAY[-2]]


def test_a_range_without_movement_has_no_rows_and_keeps_its_opening(shop):
    report = points_liability(by="month", first_day=date(2027, 4, 1))
    assert (report.rows, report.opening, report.closing) == ([], 65, 65)


def test_an_empty_ledger_reports_nothing_and_agrees(default_rules):
    report = points_liability(by="month")
    assert (report.rows, report.closing, report.check.agrees) == ([], 0, True)


def test_a_reversed_range_or_an_unknown_period_is_invalid_input(default_rules):
    with pytest.raises(InvalidInput) as error:
        points_liability(first_day=date(2027, 2, 1), last_day=date(2027, 1, 1))
    assert error.value.field == "from"
    with pytest.raises(InvalidInput) as error:
        points_liability(by="week")
    assert error.value.field == "by"


def test_every_source_has_a_column():
    assert {source for source, _ in SOURCES} == set(COLUMN_OF_SOURCE)


def test_growth_entries_are_not_points_liability(default_rules, clock):
    register_member("a", clock=clock)
    pay("o1", "a", at("2027-01-04 10:00"), "400", clock)  # 450 growth (with the bonus), 400 points
    assert cells(points_liability().rows) == [("2027-01-04", 0, 400, 0, 0, 0, 0, 0, 400)]
