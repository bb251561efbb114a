"""The backtest on a history small enough to follow by hand, under the default ruleset.

One member, all orders on Mondays (no weekend double), category grocery (no fresh bonus):
    2027-01-04 ¥250   growth 250, points 250 (pending until 01-11)
    2027-01-05 spend 100 points: refused, the only lot is still pending
    2027-01-11 ¥100   growth 100, points 100
    2027-01-20 spend 200 points: from the 01-04 lot (both expire at the year's end; the older first)
  02-01 00:00 evaluation: 2 orders -> silver (1 × ¥5 coupon for February)
    2027-02-01 ¥300   the first order after the upgrade: floor(300 × 1.5) = 450, + 50 bonus (≥ ¥300)
  03-01 00:00 evaluation: 3 orders -> gold (2 × ¥8 coupons and 1 free delivery a month)
    2027-03-01 ¥100   after the upgrade: 150; its delivery is March's free one
    2027-03-08 ¥100   after the upgrade: 150; no free delivery left
    2027-03-09 the 03-08 order refunded in full: -150 growth, -100 points
  04-01 00:00 evaluation: 4 kept orders, ¥750 -> gold stays (platinum needs 6 or ¥2000)
Growth 250 + 100 + 500 + 150 + 150 - 150 = 1000; points 250 + 100 + 300 + 100 + 100 - 100 - 200 = 550.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.analytics.backtest import compare
from loyalty.domain.backtest import History, Newcomer, Spend, replay
from loyalty.domain.events import OrderEvent, RefundEvent
from loyalty.domain.growth import Line
from loyalty.domain.rules import CouponGrant, parse_ruleset
from tests.conftest import at
from tests.unit.presets import preset, preset_document

RULES = preset("default")


def order(order_id: str, when: datetime, yuan: int, member: str = "m1") -> OrderEvent:
    return OrderEvent(order_id, member, when, yuan * 100, (Line("grocery", yuan * 100),), ("sku",))


HISTORY = History(
    members=[Newcomer("m1", at("2027-01-04 09:00"))],
    orders=[order("o1", at("2027-01-04 10:00"), 250), order("o2", at("2027-01-11 10:00"), 100),
            order("o3", at("2027-02-01 10:00"), 300), order("o4", at("2027-03-01 10:00"), 100),
            order("o5", at("2027-03-08 10:00"), 100)],
    refunds=[RefundEvent("r5", "o5", 10000, at("2027-03-09 10:00"))],
    spends=[Spend("s1", "m1", 100, at("2027-01-05 10:00")), Spend("s2", "m1", 200, at("2027-01-20 10:00"))],
)


def test_a_members_year_replayed_as_worked_out_by_hand() -> None:
    done = replay(RULES, HISTORY)

    state = done.members["m1"]
    assert (state.tier, state.tier_expires_at, state.growth, state.points, state.points_debt) == (
        "gold", at("2028-03-01 00:00"), 1000, 550, 0)
    assert done.refused == Counter({"insufficient_points": 1})
    jan, feb, mar = done.months
    assert [m.month for m in done.months] == ["2027-01", "2027-02", "2027-03"]
    assert (jan.as_of, jan.orders, jan.buyers, jan.retained) == (at("2027-02-01 00:00"), 2, 1, 0)
    assert (jan.growth_earned, jan.points_earned, jan.points_redeemed) == (350, 350, 200)
    assert (jan.tiers, jan.moves, jan.coupons, jan.coupon_value_fen) == (
        Counter(silver=1), Counter(upgrade=1), 1, 500)
    assert (feb.growth_earned, feb.retained, feb.tiers, feb.coupons, feb.coupon_value_fen) == (
        500, 1, Counter(gold=1), 2, 1600)
    assert (mar.growth_earned, mar.growth_reversed, mar.points_earned, mar.points_reversed) == (300, 150, 200, 100)
    assert (mar.free_deliveries, mar.retained, mar.tiers, mar.moves) == (1, 1, Counter(gold=1), Counter())


def test_the_comparison_sets_costs_side_by_side_and_names_who_moves() -> None:
    richer_gold = replace(RULES.benefits["gold"], monthly_coupons=(CouponGrant(1000, 2),))
    candidate = replace(RULES, name="richer gold", benefits={**RULES.benefits, "gold": richer_gold})
    document = compare(replay(RULES, HISTORY), replay(candidate, HISTORY), delivery_fee_fen=600)

    # Baseline: coupons 500 + 1600 + 1600, one free delivery at ¥6: 4300 fen over 2 retained
    # member-months (February and March) = 2150 fen each. Candidate: 500 + 2000 + 2000 + 600 = 5100.
    base, cand = document["totals"]["baseline"], document["totals"]["candidate"]
    assert (base["coupon_value"], base["delivery_cost"], base["benefit_cost"], base["cost_per_retained"]) == (
        "37.00", "6.00", "43.00", "21.50")
    assert (cand["coupon_value"], cand["benefit_cost"], cand["cost_per_retained"]) == ("45.00", "51.00", "25.50")
    assert document["moved"] == {"members": 0, "by_move": [], "examples": []}
    assert [row["candidate"]["coupon_value"] for row in document["months"]] == ["5.00", "20.00", "20.00"]
    free = compare(replay(RULES, HISTORY), replay(RULES, HISTORY))  # deliveries at ¥0: coupons alone, 3700 / 2
    assert free["totals"]["baseline"] == base | {"delivery_cost": "0.00", "benefit_cost": "37.00",
                                                 "cost_per_retained": "18.50"}


def test_a_candidate_with_a_higher_bar_keeps_the_member_lower() -> None:
    document = preset_document("default")
    document["tiers"][2]["when"] = {"any": [{"orders": ">= 5"}, {"amount": ">= 800"}]}
    candidate = parse_ruleset(document)
    compared = compare(replay(RULES, HISTORY), replay(candidate, HISTORY), months=1)

    assert compared["moved"]["by_move"] == [{"from": "gold", "to": "silver", "members": 1}]
    assert compared["moved"]["examples"] == [{"member": "m1", "baseline": "gold", "candidate": "silver"}]
    assert [row["month"] for row in compared["months"]] == ["2027-03"]  # the last month only


@st.composite
def histories(draw: st.DrawFn) -> History:
    members = [f"m{n}" for n in range(draw(st.integers(1, 4)))]
    orders, refunds, spends = [], [], []
    for number in range(draw(st.integers(1, 25))):
        day = draw(st.integers(0, 150))
        paid_at = at("2027-01-01 10:00").replace(hour=draw(st.integers(8, 22))) + day * (at("2027-01-02 00:00")
                                                                                          - at("2027-01-01 00:00"))
        yuan = draw(st.integers(1, 900))
        event = order(f"o{number}", paid_at, yuan, draw(st.sampled_from(members)))
        orders.append(event)
        if draw(st.booleans()):
            refunds.append(RefundEvent(f"r{number}", event.order_id, draw(st.integers(1, yuan * 100)),
                                       paid_at + draw(st.integers(1, 40)) * (at("2027-01-02 00:00")
                                                                             - at("2027-01-01 00:00"))))
        if draw(st.booleans()):
            spends.append(Spend(f"s{number}", event.member, draw(st.integers(1, 500)),
                                paid_at + draw(st.integers(0, 60)) * (at("2027-01-02 00:00")
                                                                      - at("2027-01-01 00:00"))))
    return History([], orders, refunds, (), spends)


@pytest.mark.parametrize("policy", ["allow_debt", "within_balance"])
@settings(max_examples=60, deadline=None)
@given(history=histories())
def test_the_months_add_up_to_the_members_balances(policy: str, history: History) -> None:
    """Whatever happens, the month figures roll forward to the balances, points never go below
    zero under `within_balance`, and a replay is the same every time."""
    document = preset_document("default")
    document["points"]["return_policy"] = policy
    document["points"]["expiry"] = {"policy": "days_after_earning", "days": 45}
    rules = parse_ruleset(document)
    done = replay(rules, history)

    months = done.months
    assert sum(s.growth for s in done.members.values()) == sum(m.growth_earned - m.growth_reversed for m in months)
    assert sum(s.points for s in done.members.values()) == sum(
        m.points_earned - m.points_redeemed - m.points_reversed - m.points_expired for m in months)
    for state in done.members.values():
        assert state.points_debt >= 0
        if policy == "within_balance":
            assert state.points >= 0 and state.points_debt == 0
    again = replay(rules, history)
    assert (again.members, [vars(m) for m in again.months]) == (done.members, [vars(m) for m in months])


def test_an_unlimited_free_delivery_covers_every_order_of_the_month() -> None:
    # ¥5,000 in January: diamond on 02-01 (free delivery unlimited, five ¥20 coupons a month).
    history = History([], [order("d1", at("2027-01-04 10:00"), 5000), order("d2", at("2027-02-01 10:00"), 20),
                           order("d3", at("2027-02-02 10:00"), 20), order("d4", at("2027-02-03 10:00"), 20)])
    jan, feb = replay(RULES, history).months
    assert (jan.tiers, jan.coupons, jan.coupon_value_fen, jan.free_deliveries) == (Counter(diamond=1), 5, 10000, 0)
    assert feb.free_deliveries == 3
