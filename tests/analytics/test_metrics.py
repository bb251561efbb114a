"""Every metric against numbers worked out by hand on a four-member shop, no database.

The shop (Asia/Shanghai, tiers bronze < silver < gold), as of 2027-03-31 23:00:
    a  01-05 ¥100   01-20 ¥50   03-02 ¥20          bronze → silver 02-01 00:00 → gold 03-01 00:00
    b  01-10 ¥40 refunded in full   02-03 ¥60   02-10 ¥30 with ¥10 refunded   bronze → silver 03-01 00:00
    c  02-15 ¥80                                     bronze throughout
    d  03-20 ¥10                                     bronze throughout
Members register at their first order (b on 01-10, though that order is refunded in full).
Purchases (kept orders, net): a 10000, 5000, 2000; b 6000, 2000; c 8000; d 1000 fen.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from loyalty.analytics import metrics
from loyalty.analytics.frames import Frames
from loyalty.analytics.rounding import fen_average, rate_text
from tests.conftest import SHANGHAI, at

AS_OF = at("2027-03-31 23:00")
TIERS = ("bronze", "silver", "gold")


def shop() -> Frames:
    orders = pd.DataFrame(
        [("a", at("2027-01-05 10:00"), 10000, 0), ("a", at("2027-01-20 10:00"), 5000, 0),
         ("a", at("2027-03-02 10:00"), 2000, 0), ("b", at("2027-01-10 10:00"), 4000, 4000),
         ("b", at("2027-02-03 10:00"), 6000, 0), ("b", at("2027-02-10 10:00"), 3000, 1000),
         ("c", at("2027-02-15 10:00"), 8000, 0), ("d", at("2027-03-20 10:00"), 1000, 0)],
        columns=["member", "paid_at", "amount_fen", "refunded_fen"])
    changes = pd.DataFrame(
        [("a", "bronze", "silver", at("2027-02-01 00:00")), ("a", "silver", "gold", at("2027-03-01 00:00")),
         ("b", "bronze", "silver", at("2027-03-01 00:00"))], columns=["member", "from_tier", "to_tier", "changed_at"])
    frames = Frames.from_orders(orders, timezone=SHANGHAI, tier_order=TIERS, tier_changes=changes)
    ids = frames.members.set_index("external_id")["member_id"]
    coupons = pd.DataFrame(
        [(ids["a"], "monthly", "monthly:2027-02:a", 800, at("2027-02-01 00:00"), "redeemed", at("2027-02-10 10:00")),
         (ids["a"], "monthly", "monthly:2027-03:a", 800, at("2027-03-01 00:00"), "issued", None),
         (ids["b"], "welcome", "welcome:b", 500, at("2027-01-10 10:00"), "redeemed", at("2027-02-03 10:00")),
         (ids["c"], "welcome", "welcome:c", 500, at("2027-02-15 10:00"), "revoked", None),
         (ids["d"], "welcome", "welcome:d", 500, at("2027-03-20 10:00"), "redeemed", at("2027-04-02 10:00"))],
        columns=["member_id", "kind", "key", "value_fen", "issued_at", "state", "redeemed_at"])
    for name in ("issued_at", "redeemed_at"):
        coupons[name] = pd.to_datetime(coupons[name], utc=True)
    budgets = pd.DataFrame(
        [("2027-01", "gold", None, 0, 0, 0), ("2027-02", "gold", 160000, 1600, 1600, 800),
         ("2027-02", "silver", None, 500, 500, 0), ("2027-04", "gold", 160000, 0, 0, 0)],
        columns=["month", "tier", "budget_fen", "spent_fen", "issued_fen", "redeemed_fen"])
    liability = pd.DataFrame(
        [("2027-01", 0, 150, 0, 0, 0, 0, 0, 150), ("2027-02", 150, 80, 50, 0, 0, 0, 0, 180),
         ("2027-04", 180, 10, 0, 0, 0, 0, 0, 190)],
        columns=["period", "opening", "earned", "redeemed", "reversed", "expired", "adjusted", "written_off",
                 "outstanding"])
    return replace(frames, coupons=coupons, budgets=budgets, liability=liability)


def scope(**kw):
    return metrics.scope(shop(), as_of=AS_OF, **kw)


def test_rates_and_money_averages_round_half_up_in_integers():
    assert (rate_text(2, 3), rate_text(1, 8), rate_text(0, 0), rate_text(5, 5)) == ("0.6667", "0.1250", "0.0000",
                                                                                    "1.0000")
    assert rate_text(1, 20000) == "0.0001"  # 0.00005 rounds up
    assert (fen_average(5, 2), fen_average(7, 3), fen_average(0, 0)) == (3, 2, 0)  # 2.5 → 3, 2.33 → 2


def test_repeat_purchase_counts_buyers_with_two_kept_orders_in_the_period():
    # a (3 purchases) and b (2: the refunded order is not one) repeat; c and d bought once: 2 / 4.
    assert metrics.repeat_purchase(scope()) == {"buyers": 4, "repeat_buyers": 2, "rate": "0.5000"}
    # February: b twice, c once. March: a once, d once.
    assert metrics.repeat_purchase(scope(start=date(2027, 2, 1), end=date(2027, 2, 28)))["rate"] == "0.5000"
    assert metrics.repeat_purchase(scope(start=date(2027, 3, 1), end=date(2027, 3, 31))) == {
        "buyers": 2, "repeat_buyers": 0, "rate": "0.0000"}


def test_repurchase_within_k_days_only_counts_members_whose_first_purchase_is_k_days_old():
    # 30 days: first purchases a 01-05, b 02-03, c 02-15 are before 03-01 23:00; d (03-20) is too recent.
    # a's second came 15 days later, b's 7 days later, c has none: 2 / 3.
    assert metrics.repurchase_within(scope(), 30) == {"days": 30, "eligible": 3, "repurchased": 2, "rate": "0.6667"}
    # 10 days: all four are eligible (d's 03-20 10:00 is before 03-21 23:00); only b's 7 days count: 1 / 4.
    assert metrics.repurchase_within(scope(), 10) == {"days": 10, "eligible": 4, "repurchased": 1, "rate": "0.2500"}
    # Period February: only members first buying in February (b, c): b within 30 days, c not.
    within = metrics.repurchase_within(scope(start=date(2027, 2, 1), end=date(2027, 2, 28)), 30)
    assert (within["eligible"], within["repurchased"]) == (2, 1)


def test_cohort_retention_is_per_month_not_cumulative():
    # a: cohort January, buys in January and March, not February: 1, 0, 1.
    # b and c: cohort February (b's January order was refunded in full); both buy in February, neither in March.
    assert metrics.cohorts(scope()) == {"months": [0, 1, 2], "rows": [
        {"cohort": "2027-01", "size": 1, "retention": ["1.0000", "0.0000", "1.0000"]},
        {"cohort": "2027-02", "size": 2, "retention": ["1.0000", "0.0000"]},
        {"cohort": "2027-03", "size": 1, "retention": ["1.0000"]}]}


def test_arpu_and_frequency_by_tier_read_the_tier_held_at_each_months_start():
    # 1 January: nobody registered yet. 1 February: a silver (changed at 00:00 exactly), b bronze;
    # c (registered 02-15) is not counted, nor is its order. 1 March: a gold, b silver, c bronze.
    # February: b (bronze) paid 6000 + 2000 net in 2 purchases -> ARPU 8000, frequency 2.
    # March: a (gold) paid 2000 once; d registered 03-20 and is not counted.
    table = metrics.by_tier(scope())
    assert table["months"] == ["2027-01", "2027-02", "2027-03"]
    assert table["members"] == {"bronze": [0, 1, 1], "silver": [0, 1, 1], "gold": [0, 0, 1]}
    assert table["arpu_fen"] == {"bronze": [0, 8000, 0], "silver": [0, 0, 0], "gold": [0, 0, 2000]}
    assert table["frequency"] == {"bronze": ["0.0000", "2.0000", "0.0000"], "silver": ["0.0000"] * 3,
                                  "gold": ["0.0000", "0.0000", "1.0000"]}
    assert metrics.tier_distribution(scope())["counts"] == table["members"]


def test_tier_migration_counts_members_by_tier_at_the_periods_two_ends():
    # From 02-01 00:00 (a silver, b bronze; c and d not registered yet) to as_of (a gold, b silver).
    moved = metrics.tier_migration(scope(start=date(2027, 2, 1), end=date(2027, 3, 31)))
    assert moved == {"from": "2027-02-01", "to": "2027-03-31", "tiers": list(TIERS),
                     "matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]]}


def test_the_tier_filter_keeps_members_by_their_tier_at_the_periods_start():
    # At 02-01 00:00 only a is silver; in February–March a bought once (03-02).
    chosen = scope(start=date(2027, 2, 1), end=date(2027, 3, 31), tiers=["silver"])
    assert metrics.repeat_purchase(chosen) == {"buyers": 1, "repeat_buyers": 0, "rate": "0.0000"}
    assert metrics.by_tier(chosen)["members"] == {"bronze": [0, 0], "silver": [1, 0], "gold": [0, 1]}


def test_coupon_redemption_is_by_tier_held_at_issue_and_kind_without_revoked_coupons():
    # a's February coupon: silver at issue (02-01 00:00), redeemed; a's March coupon: gold, not redeemed.
    # welcome: b's (bronze: its first change comes later, from bronze) redeemed; c's revoked (left out);
    # d's redeemed on 04-02, after as_of: not yet. bronze welcome 1 / 2.
    assert metrics.coupons(scope())["rows"] == [
        {"tier": "bronze", "kind": "welcome", "issued": 2, "redeemed": 1, "rate": "0.5000"},
        {"tier": "silver", "kind": "monthly", "issued": 1, "redeemed": 1, "rate": "1.0000"},
        {"tier": "gold", "kind": "monthly", "issued": 1, "redeemed": 0, "rate": "0.0000"}]
    march = metrics.coupons(scope(start=date(2027, 3, 1), end=date(2027, 3, 31)))["rows"]
    assert [(r["tier"], r["kind"], r["issued"]) for r in march] == [("bronze", "welcome", 1), ("gold", "monthly", 1)]


def test_benefit_cost_and_liability_rows_are_the_services_rows_cut_to_the_period():
    cost = metrics.benefit_cost(scope(end=date(2027, 3, 31)))["rows"]
    assert cost == [{"month": "2027-01", "tier": "gold", "budget_fen": None, "issued_fen": 0, "redeemed_fen": 0},
                    {"month": "2027-02", "tier": "gold", "budget_fen": 160000, "issued_fen": 1600,
                     "redeemed_fen": 800},
                    {"month": "2027-02", "tier": "silver", "budget_fen": None, "issued_fen": 500, "redeemed_fen": 0}]
    silver = metrics.benefit_cost(scope(start=date(2027, 2, 1), tiers=["silver"]))["rows"]
    assert [(r["month"], r["tier"]) for r in silver] == [("2027-02", "silver")]
    liability = metrics.points_liability(scope(start=date(2027, 2, 1), end=date(2027, 3, 31)))["rows"]
    assert [(r["period"], r["earned"], r["redeemed"], r["outstanding"]) for r in liability] == [
        ("2027-02", 80, 50, 180)]


def test_summary_has_every_section_and_is_plain_json():
    import json

    result = metrics.summary(shop(), as_of=AS_OF, start=date(2027, 1, 1), end=date(2027, 3, 31), tiers=None)
    assert list(result) == ["period", "repeat_purchase", "repurchase_within", "cohorts", "by_tier",
                            "tier_distribution", "tier_migration", "coupons", "benefit_cost", "points_liability",
                            "rfm"]
    assert result["period"] == {"from": "2027-01-01", "to": "2027-03-31", "tiers": None,
                                "as_of": "2027-03-31T23:00:00+08:00"}
    assert json.loads(json.dumps(result)) == result


def test_transactions_are_the_kept_orders_net_of_refunds_by_external_id():
    frame = shop().transactions()
    assert list(frame.columns) == ["member", "at", "amount_fen"]
    assert str(frame["amount_fen"].dtype) == "int64"
    assert frame["at"].dt.tz is not None
    assert list(zip(frame["member"], frame["amount_fen"], strict=True)) == [
        ("a", 10000), ("a", 5000), ("b", 6000), ("b", 2000), ("c", 8000), ("a", 2000), ("d", 1000)]


@pytest.mark.parametrize("moment, expected", [
    ("2027-01-31 23:59", {"a": "bronze", "b": "bronze", "c": "bronze", "d": "bronze"}),
    ("2027-02-01 00:00", {"a": "silver", "b": "bronze", "c": "bronze", "d": "bronze"}),
    ("2027-03-15 00:00", {"a": "gold", "b": "silver", "c": "bronze", "d": "bronze"}),
])
def test_tier_at_a_moment_reads_the_tier_change_log(moment, expected):
    frames = shop()
    held = frames.tier_at(at(moment))
    names = frames.members.set_index("member_id")["external_id"]
    assert {names[i]: tier for i, tier in held.items()} == expected
