"""The nightly risk scan on a real database: each simulated attack is caught by its rule among an
honest population, the scores are stored once per night, and the newly flagged are held."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from loyalty.clock import FixedClock
from loyalty.domain.events import parse_order
from loyalty.domain.risk_features import member_features
from loyalty.services import jobs, members, risk
from loyalty.services.orders import record_orders
from loyalty.services.refunds import record_refunds
from loyalty.store.models import Member, ReviewCase, RiskScore
from tests.conftest import at
from tests.service.support import refund_event

AS_OF = at("2027-03-10 03:00")  # a Wednesday: no weekend multiplier in the last day


def _order(order_id: str, member: str, paid_at: datetime, amount: str, **origin: str) -> Any:
    return parse_order({"order_id": order_id, "member": member, "paid_at": paid_at.isoformat(), "amount": amount,
                        **origin})


def _record(events: list[Any], clock: FixedClock) -> None:
    for start in range(0, len(events), 200):
        outcomes = record_orders(events[start:start + 200], clock=clock)
        assert not [o for o in outcomes if isinstance(o, Exception)]


def _shop(clock: FixedClock) -> None:
    """40 honest members (1 to 4 orders over the last 80 days, 20 of them buying in the last day)
    and the four attacks of the issue."""
    events = []
    for n in range(40):
        for k in range(1 + n % 4):
            events.append(_order(f"h{n}-{k}", f"honest-{n}", AS_OF - timedelta(days=5 + 19 * k, hours=n % 7),
                                 f"{60 + 7 * n}.00"))
        if n < 20:  # the day's earners: ¥90 to ¥128 (growth 90 to 128)
            events.append(_order(f"h{n}-day", f"honest-{n}", AS_OF - timedelta(hours=2 + n % 5), f"{90 + 2 * n}.00"))
    # (a) 100 small orders, then refunds of all of them
    events += [_order(f"a-{k}", "refunder", AS_OF - timedelta(days=5, minutes=k), "10.00") for k in range(100)]
    # (b) 50 accounts on one device
    events += [_order(f"b-{k}", f"device-{k}", AS_OF - timedelta(days=10, minutes=k), "50.00",
                      device_id="phone-1") for k in range(50)]
    # (c) one order a month for three months, then 30 orders in 2 days
    events += [_order(f"c-old-{k}", "burst", AS_OF - timedelta(days=85 - 30 * k), "80.00") for k in range(3)]
    events += [_order(f"c-{k}", "burst", AS_OF - timedelta(days=3, hours=k * 1.5), "30.00") for k in range(30)]
    # (d) one member earning 20× the population's daily growth (median 110) in the last day
    events.append(_order("d-1", "spiker", AS_OF - timedelta(hours=5), "2200.00"))
    members.register_many({e.member: AS_OF - timedelta(days=200) for e in events}, clock=clock)
    _record(sorted(events, key=lambda e: e.paid_at), clock)
    refunds = [refund_event(f"ra-{k}", f"a-{k}", "10.00", AS_OF - timedelta(days=2, minutes=k)) for k in range(100)]
    assert not [o for o in record_refunds(refunds, clock=clock) if isinstance(o, Exception)]


@pytest.fixture
def shop(default_rules: Any) -> FixedClock:
    clock = FixedClock(AS_OF)
    _shop(clock)
    return clock


def _flags() -> dict[str, set[str]]:
    rows = RiskScore.objects.filter(as_of=AS_OF, flagged=True).select_related("member")
    return {row.member.external_id: {reason["code"] for reason in row.reasons} for row in rows}


def test_each_attack_is_caught_by_its_rule_and_no_honest_member_is_flagged(shop: FixedClock) -> None:
    result = risk.scan(AS_OF, clock=shop)
    flags = _flags()
    assert "refund_rate" in flags.pop("refunder")
    assert "velocity" in flags.pop("burst")
    assert "growth_spike" in flags.pop("spiker")
    devices = {f"device-{k}" for k in range(50)}
    assert all("shared_device" in flags.pop(name) for name in devices)
    assert flags == {}, "honest members flagged"
    assert (result.scored, result.flagged, result.newly_flagged) == (40 + 1 + 50 + 1 + 1, 53, 53)
    assert result.held == 53
    assert ReviewCase.objects.filter(state="open").count() == 53


def test_the_reasons_carry_the_numbers_that_tripped_them(shop: FixedClock) -> None:
    risk.scan(AS_OF, clock=shop)
    row = RiskScore.objects.get(as_of=AS_OF, member__external_id="refunder")
    refund = next(reason for reason in row.reasons if reason["code"] == "refund_rate")
    # 100 orders of ¥10, all refunded in full: 1000.00 / 1000.00
    assert refund == {"code": "refund_rate", "orders": 100, "paid_fen": 100_000, "refunded_fen": 100_000,
                      "rate": "1.000", "order_rate": "1.000", "above": "0.5"}
    assert row.features["orders"] == 100 and row.features["refund_rate"] == "1.000"
    burst = RiskScore.objects.get(as_of=AS_OF, member__external_id="burst")
    velocity = next(reason for reason in burst.reasons if reason["code"] == "velocity")
    # 30 orders in the last 7 days; 3 in the 83 days before: 3 / (83 / 7) = 0.253 a week; 30 / max(0.253, 1) = 30
    assert velocity == {"code": "velocity", "orders_7d": 30, "weekly_before": "0.253", "ratio": "30.000",
                        "factor": "5"}
    spike = next(reason for reason in RiskScore.objects.get(as_of=AS_OF, member__external_id="spiker").reasons
                 if reason["code"] == "growth_spike")
    # ¥2200 on a Wednesday: 2200 + the large-order bonus 50. The day's 21 earners are 90, 92, ..., 128
    # and the spiker's 2250: the median is the 11th, 110; 2250 >= 10 × 110 and >= 500.
    assert spike == {"code": "growth_spike", "growth_day": 2250, "population_median": "110.000", "factor": "10"}


def test_a_rerun_for_the_same_night_writes_nothing_new_and_holds_nobody_twice(shop: FixedClock) -> None:
    first = risk.scan(AS_OF, clock=shop)
    rows = list(RiskScore.objects.order_by("id").values_list("id", "member_id", "score_milli", "flagged"))
    again = risk.scan(AS_OF, clock=shop)
    assert list(RiskScore.objects.order_by("id").values_list("id", "member_id", "score_milli", "flagged")) == rows
    assert (again.flagged, again.newly_flagged, again.held) == (first.flagged, first.newly_flagged, 0)
    assert ReviewCase.objects.count() == first.held


def test_a_dry_run_writes_nothing(shop: FixedClock) -> None:
    result = risk.scan(AS_OF, clock=shop, dry_run=True)
    assert result.flagged == 53 and result.held == 0
    assert not RiskScore.objects.exists() and not ReviewCase.objects.exists()


def test_the_nightly_job_runs_at_three_and_counts_from_the_stored_rows(shop: FixedClock) -> None:
    assert "risk_scan" in jobs.JOBS
    counts = jobs.JOBS["risk_scan"].run(AS_OF, clock=shop, dry_run=False)
    assert counts == {"flagged": 53, "newly_flagged": 53, "scored": 93}
    assert jobs.JOBS["risk_scan"].run(AS_OF, clock=shop, dry_run=False) == counts  # resumed: the same answer
    due = jobs.moments(jobs.JOBS["risk_scan"], AS_OF - timedelta(days=1), AS_OF, jobs.rulesets.rulebook())
    assert due == [AS_OF]


def test_a_member_flagged_the_night_before_is_not_newly_flagged(shop: FixedClock) -> None:
    risk.scan(AS_OF - timedelta(days=1), clock=shop)
    flagged_before = set(RiskScore.objects.filter(flagged=True).values_list("member_id", flat=True))
    result = risk.scan(AS_OF, clock=shop)
    tonight = set(RiskScore.objects.filter(as_of=AS_OF, flagged=True).values_list("member_id", flat=True))
    assert flagged_before and result.newly_flagged == len(tonight - flagged_before)


def test_features_read_from_the_database_match_the_frames_they_come_from(shop: FixedClock) -> None:
    rules = risk.rulesets.in_force(AS_OF).ruleset.risk
    found = risk.frames(AS_OF, rules)
    features = member_features(found["orders"], found["refunds"], found["growth"], found["links"], AS_OF,
                               window_days=30, history_days=90)
    by_name = dict(Member.objects.values_list("id", "external_id"))
    named = features.rename(index=by_name)
    assert named.loc["honest-3", "orders"] == 3  # orders at 5, 24, 43 days back, the 30-day window holds 2 + the day's
    assert named.loc["device-7", "shared_members"] == 50
    assert named.loc["refunder", "refunded_fen"] == 100_000
    assert named.loc["burst", "orders_7d"] == 30
