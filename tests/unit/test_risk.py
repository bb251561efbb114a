"""The rules that flag and the detector's score, on hand-built frames: no database."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain import anomaly
from loyalty.domain.errors import RulesetInvalid
from loyalty.domain.risk import RiskRules, rule_hits
from loyalty.domain.risk_features import FEATURES, empty_frame, member_features
from loyalty.domain.rules import parse_ruleset

T = datetime(2027, 3, 10, 3, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def _orders(rows: list[tuple[int, str, float, int]]) -> pd.DataFrame:
    """(member, order_id, days before T, amount_fen)."""
    return pd.DataFrame({"member": [r[0] for r in rows], "order_id": [r[1] for r in rows],
                         "paid_at": pd.to_datetime([T - timedelta(days=r[2]) for r in rows], utc=True),
                         "amount_fen": [r[3] for r in rows]})


def _features(orders: pd.DataFrame, refunds: pd.DataFrame | None = None, growth: pd.DataFrame | None = None,
              links: pd.DataFrame | None = None) -> pd.DataFrame:
    return member_features(orders, refunds if refunds is not None else empty_frame("refunds"),
                           growth if growth is not None else empty_frame("growth"),
                           links if links is not None else empty_frame("links"), T, window_days=30, history_days=90)


def test_features_by_hand() -> None:
    orders = _orders([(1, "a", 2, 10000), (1, "b", 10, 20000), (1, "c", 50, 5000), (1, "d", 80, 5000),
                      (2, "e", 0.5, 30000)])
    refunds = pd.DataFrame({"order_id": ["b", "b"], "amount_fen": [5000, 1000],
                            "refunded_at": pd.to_datetime([T - timedelta(days=5), T + timedelta(days=1)], utc=True)})
    growth = pd.DataFrame({"member": [2, 1], "delta": [350, 100],
                           "at": pd.to_datetime([T - timedelta(hours=12), T - timedelta(days=2)], utc=True)})
    links = pd.DataFrame({"member": [1, 2, 3], "kind": ["device"] * 3, "value": ["x", "x", "x"]})
    f = _features(orders, refunds, growth, links)
    one, two = f.loc[1], f.loc[2]
    # member 1: a and b in the 30-day window (¥300), ¥50 refunded by T (the ¥10 after T is not seen)
    assert (one["orders"], one["paid_fen"], one["refunded_fen"]) == (2, 30000, 5000)
    assert one["refund_rate"] == pytest.approx(5000 / 30000) and one["refunded_order_rate"] == 0.5
    # a in the last 7 days; b, c, d in (T − 90, T − 7]: 3 ÷ (83 ÷ 7) = 0.253 a week; 1 ÷ max(0.253, 1) = 1
    assert one["orders_7d"] == 1 and one["weekly_before"] == pytest.approx(3 / (83 / 7)) and one["velocity"] == 1
    assert one["growth_day"] == 0 and two["growth_day"] == 350
    assert one["shared_members"] == 3 and 3 not in f.index  # linked but not active: not scored
    assert list(f.columns) == list(FEATURES)


def _row(**values: float) -> dict[str, float]:
    return {name: values.get(name, 0) for name in FEATURES}


@pytest.mark.parametrize(("values", "rule", "hit"), [
    # refund_rate: > 0.5 on both rates with >= 5 orders
    ({"orders": 5, "refund_rate": 0.6, "refunded_order_rate": 0.6}, "refund_rate", True),
    ({"orders": 5, "refund_rate": 0.5, "refunded_order_rate": 0.6}, "refund_rate", False),  # not above
    ({"orders": 4, "refund_rate": 1, "refunded_order_rate": 1}, "refund_rate", False),  # too few orders
    ({"orders": 10, "refund_rate": 0.9, "refunded_order_rate": 0.1}, "refund_rate", False),  # one big return
    # velocity: >= 10 orders in 7 days and >= 5 × max(weekly average, 1)
    ({"orders_7d": 10, "velocity": 5}, "velocity", True),
    ({"orders_7d": 9, "velocity": 9}, "velocity", False),
    ({"orders_7d": 20, "velocity": 4.99}, "velocity", False),
    ({"shared_members": 5}, "shared_device", True),
    ({"shared_members": 4}, "shared_device", False),
])
def test_each_rule_at_its_threshold(values: dict[str, float], rule: str, hit: bool) -> None:
    frame = pd.DataFrame([_row(**values)], index=[1])
    assert bool(rule_hits(frame, RiskRules()).loc[1, rule]) is hit


def test_growth_spike_is_judged_against_the_median_earner_of_the_day() -> None:
    # earners 100, 100, 120 and the member: median of (100, 100, 120, 1200) = 110; 1200 >= 10 × 110
    frame = pd.DataFrame([_row(growth_day=g) for g in (100, 100, 120, 1200, 0)], index=[1, 2, 3, 4, 5])
    assert rule_hits(frame, RiskRules())["growth_spike"].tolist() == [False, False, False, True, False]
    frame.loc[4, "growth_day"] = 1099  # 10 × the median (100, 100, 120, 1099 → 110) = 1100
    assert not rule_hits(frame, RiskRules()).loc[4, "growth_spike"]


def test_the_score_by_hand() -> None:
    # orders 1, 1, 2, 3, 20: x = log1p = 0.693, 0.693, 1.099, 1.386, 3.045; median 1.099;
    # MAD 0.405, scale max(1.4826 × 0.405, 0.5) = 0.601; z(20) = (3.045 − 1.099) / 0.601 = 3.237
    frame = pd.DataFrame([_row(orders=n) for n in (1, 1, 2, 3, 20)], index=range(5))
    scores = anomaly.scores(frame)
    assert scores.iloc[4] == pytest.approx((math.log(21) - math.log(3)) / (1.4826 * (math.log(3) - math.log(2))),
                                           rel=1e-4)
    assert scores.iloc[4] == pytest.approx(3.237, abs=1e-3)
    assert scores.iloc[:3].tolist() == [0, 0, 0]  # at or below the median: one-sided
    assert anomaly.milli(scores.iloc[4]) == 3237


def test_a_sparse_feature_is_judged_among_the_members_who_have_it() -> None:
    # growth 0 for 97 members; 100, 100, 100 for three: median log1p(100), scale the floor 0.5
    frame = pd.DataFrame([_row(growth_day=0)] * 97 + [_row(growth_day=100)] * 3, index=range(100))
    assert anomaly.scores(frame).max() == 0
    frame.loc[99, "growth_day"] = 10_000  # (log1p(10000) − log1p(100)) / 0.5 = 9.19
    assert anomaly.scores(frame).loc[99] == pytest.approx((math.log1p(10_000) - math.log1p(100)) / 0.5)


population = st.lists(st.fixed_dictionaries({name: st.integers(0, 500) for name in anomaly.DETECTOR_FEATURES}),
                      min_size=1, max_size=30)


@given(population, st.integers(0, 2**31))
def test_the_score_does_not_depend_on_the_order_of_the_members(rows: list[dict[str, int]], seed: int) -> None:
    frame = pd.DataFrame(rows, index=range(len(rows)))
    shuffled = frame.sample(frac=1, random_state=seed)
    before, after = anomaly.scores(frame), anomaly.scores(shuffled).sort_index()
    assert before.round(9).tolist() == after.round(9).tolist()


@given(population, st.sampled_from(anomaly.DETECTOR_FEATURES), st.integers(0, 1000))
def test_the_score_rises_with_each_feature(rows: list[dict[str, int]], feature: str, more: int) -> None:
    frame = pd.DataFrame(rows, index=range(len(rows)))
    reference = anomaly.fit(frame)
    raised = frame.copy()
    raised.loc[0, feature] += more
    assert anomaly.scores(raised, reference).loc[0] >= anomaly.scores(frame, reference).loc[0]


def test_the_ruleset_validates_risk_flags_with_paths() -> None:
    document = {"tiers": [{"code": "bronze"}],
                "risk": {"flags": {"refund_rate": {"above": "1.5", "colour": 1}, "velocity": {"factor": 0.5},
                                   "bogus": {}}, "detector": {"threshold": "-1"}}}
    with pytest.raises(RulesetInvalid) as caught:
        parse_ruleset(document)
    problems = "\n".join(caught.value.problems)
    for path in ("risk.flags.bogus", "risk.flags.refund_rate.colour", "risk.flags.refund_rate.above",
                 "risk.flags.velocity.factor", "risk.detector.threshold"):
        assert path in problems
    assert parse_ruleset({"tiers": [{"code": "bronze"}]}).risk == RiskRules()
