"""load_frames and summary over a shop recorded through the services (SQLite by default).

Three members registered on 2027-01-04; the default ruleset (silver from one order a year,
¥5 monthly coupon for silver). January: a pays ¥100 (01-05) and ¥50 (01-20); b pays ¥40 (01-10)
and gets it all back (01-11); c pays ¥30 (01-15). The evaluation of 1 February makes a and c
silver (b has no kept order); the monthly grant gives each of them one ¥5 coupon. On 02-03 a
pays ¥60 and redeems the coupon on that order. As of 2027-02-28 12:00.
"""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.analytics import metrics
from loyalty.analytics.frames import load_frames
from loyalty.clock import FixedClock
from loyalty.services import grants, reports
from loyalty.services.coupons import redeem_coupon
from loyalty.services.members import register_member
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import Coupon
from tests.conftest import at
from tests.service.support import pay, refund

AS_OF = at("2027-02-28 12:00")
FEB_2027 = at("2027-02-01 00:00")


@pytest.fixture
def recorded(default_rules, clock):
    for name in ("a", "b", "c"):
        register_member(name, clock=clock)
    pay("a1", "a", at("2027-01-05 10:00"), "100", clock)
    pay("a2", "a", at("2027-01-20 10:00"), "50", clock)
    pay("b1", "b", at("2027-01-10 10:00"), "40", clock)
    refund("rb1", "b1", "40", at("2027-01-11 10:00"), clock)
    pay("c1", "c", at("2027-01-15 10:00"), "30", clock)
    evaluate_tiers(FEB_2027, clock=FixedClock(FEB_2027))
    grants.monthly_benefits(FEB_2027, clock=FixedClock(FEB_2027))
    later = FixedClock(at("2027-02-03 11:00"))
    pay("a3", "a", at("2027-02-03 10:00"), "60", later)
    code = Coupon.objects.get(member__external_id="a", kind="monthly").code
    redeem_coupon(code, member="a", order_id="a3", clock=later)


def test_frames_hold_every_order_with_its_refund_and_the_tier_log(recorded):
    frames = load_frames(as_of=AS_OF)
    assert sorted(frames.members["external_id"]) == ["a", "b", "c"]
    assert frames.tier_order[0] == "bronze" and str(frames.timezone) == "Asia/Shanghai"
    orders = frames.orders.assign(net=frames.orders["amount_fen"] - frames.orders["refunded_fen"])
    assert orders["net"].tolist() == [10000, 4000 - 4000, 3000, 5000, 6000]  # a1, b1 refunded, c1, a2, a3
    assert [str(d.date()) for d in orders["business_date"]] == ["2027-01-05", "2027-01-10", "2027-01-15",
                                                                 "2027-01-20", "2027-02-03"]
    assert frames.tier_changes[["from_tier", "to_tier"]].values.tolist() == [["bronze", "silver"]] * 2
    assert frames.transactions()["amount_fen"].tolist() == [10000, 3000, 5000, 6000]


def test_summary_of_the_recorded_shop_matches_the_hand_count_and_the_services(recorded):
    frames = load_frames(as_of=AS_OF)
    result = metrics.summary(frames, as_of=AS_OF)
    # Buyers a (3 kept orders) and c (1); b's only order was refunded in full. As the service counts.
    assert result["repeat_purchase"] == {"buyers": 2, "repeat_buyers": 1, "rate": "0.5000"}
    service = reports.repeat_purchase()
    assert (service.buyers, service.repeat_buyers) == (2, 1)
    # 1 January: nobody registered yet; 1 February 00:00: a and c silver, b bronze.
    # February: a (silver) paid 6000 once; silver ARPU 6000 / 2 members = 3000, frequency 1 / 2.
    by_tier = result["by_tier"]
    assert by_tier["months"] == ["2027-01", "2027-02"]
    assert (by_tier["members"]["bronze"], by_tier["members"]["silver"]) == ([0, 1], [0, 2])
    assert (by_tier["arpu_fen"]["silver"], by_tier["frequency"]["silver"]) == ([0, 3000], ["0.0000", "0.5000"])
    assert result["tier_distribution"]["counts"]["silver"] == [0, 2]
    # Cohort January: a and c (b's first kept order never came); both bought in January, a in February.
    assert result["cohorts"]["rows"] == [{"cohort": "2027-01", "size": 2, "retention": ["1.0000", "0.5000"]}]
    # Two ¥5 silver coupons issued on 1 February, a's redeemed.
    assert result["coupons"]["rows"] == [
        {"tier": "silver", "kind": "monthly", "issued": 2, "redeemed": 1, "rate": "0.5000"}]
    assert result["benefit_cost"]["rows"] == [
        {"month": "2027-02", "tier": "silver", "budget_fen": None, "issued_fen": 1000, "redeemed_fen": 500}]
    liability = reports.points_liability(by="month")
    assert result["points_liability"]["rows"] == [row.as_dict() for row in liability.rows]


def test_a_period_and_a_tier_filter_reach_the_database_read_and_the_summary_alike(recorded):
    start, end = date(2027, 1, 5), date(2027, 2, 28)
    # From 01-05 00:00 (all three bronze) to as_of: a and c moved up to silver, b stayed.
    moved = metrics.summary(load_frames(start=start, end=end, as_of=AS_OF), as_of=AS_OF, start=start,
                            end=end)["tier_migration"]
    assert (moved["from"], moved["to"]) == ("2027-01-05", "2027-02-28")
    assert moved["matrix"][0][:2] == [1, 2] and sum(map(sum, moved["matrix"])) == 3
    # Silver on 1 February: a and c. In February only a bought.
    feb = date(2027, 2, 1)
    frames = load_frames(start=feb, end=end, tiers=["silver"], as_of=AS_OF)
    assert sorted(frames.members["external_id"]) == ["a", "c"]
    result = metrics.summary(frames, as_of=AS_OF, start=feb, end=end, tiers=["silver"])
    assert result["repeat_purchase"] == {"buyers": 1, "repeat_buyers": 0, "rate": "0.0000"}
    assert result["rfm"]["segments"][0]["members"] == 1
