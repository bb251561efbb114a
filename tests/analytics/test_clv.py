"""The customer-base models on small cases checked by hand: the summary of a transaction log, the
closed forms at fixed parameters, fen rounding, the refusal on too little data, the churn list."""

from __future__ import annotations

import json
from datetime import date, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from loyalty.analytics import clv
from loyalty.domain.errors import InvalidInput, Refused
from tests.analytics.clv_shop import shop

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def log(*rows: tuple[str, str, int]) -> pd.DataFrame:
    """Transactions as the models read them: member, at (aware, stored as UTC), amount_fen."""
    frame = pd.DataFrame(rows, columns=["member", "at", "amount_fen"])
    frame["at"] = pd.to_datetime([at(text) for text in frame["at"]], utc=True)
    frame["amount_fen"] = frame["amount_fen"].astype("int64")
    return frame


def test_the_summary_counts_local_days_and_the_repeat_purchases_mean():
    transactions = log(
        ("ann", "2027-01-01 10:00", 10000), ("ann", "2027-01-01 20:00", 5000),  # one day: 150.00
        ("ann", "2027-01-08 09:00", 3000), ("ann", "2027-01-15 09:00", 4000),
        ("bob", "2027-01-21 00:30", 2000), ("bob", "2027-01-21 23:00", 1000),  # two UTC days, one local day
        ("ann", "2027-01-29 00:00", 9900))  # after as_of: not counted
    summary = clv.summarize(transactions, as_of=at("2027-01-28 23:59:59.999999"))  # the end of 28 January
    # ann: days 01-01, 01-08, 01-15 → x = 2; t_x = 14 days = 2 weeks; T = 01-01 → 01-28 = 27 days;
    # repeat mean = (30.00 + 40.00) / 2 = 35.00 yuan; past value 15000 + 3000 + 4000 = 22000 fen.
    assert summary.loc["ann"].to_dict() == {"frequency": 2, "recency": 2.0, "T": 27 / 7, "monetary_value": 35.0,
                                            "past_value_fen": 22000, "last_purchase_on": date(2027, 1, 15)}
    # bob: one local day (21 January, Shanghai) → x = 0, recency 0, T = 7 days = 1 week, no repeat mean.
    assert summary.loc["bob"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 1.0, "monetary_value": 0.0,
                                            "past_value_fen": 3000, "last_purchase_on": date(2027, 1, 21)}


def test_a_naive_as_of_is_refused():
    with pytest.raises(InvalidInput):
        clv.summarize(log(("ann", "2027-01-01 10:00", 100)), as_of=datetime(2027, 2, 1))


@pytest.mark.parametrize(("yuan", "fen"), [(12.345, 1235), (12.344, 1234), (2.675, 268), (0.005, 1), (0.0, 0)])
def test_yuan_become_fen_rounded_half_up_on_their_decimal_form(yuan, fen):
    # 2.675 is 2.67499999… in binary; its decimal form 2.675 is what is rounded: 267.5 → 268.
    assert clv.fen_from_yuan(yuan) == fen


def test_p_alive_at_fixed_parameters_matches_the_closed_form():
    model = clv.CustomerBaseModel(r=1.0, alpha=1.0, a=2.0, b=3.0, log_likelihood=0.0, customers=3,
                                  gamma_gamma=clv.GammaGamma(p=2.0, q=3.0, v=10.0))
    summary = pd.DataFrame({"frequency": [0, 1, 1], "recency": [0.0, 3.0, 1.0], "T": [3.0, 3.0, 3.0],
                            "monetary_value": [0.0, 30.0, 30.0], "past_value_fen": [3000, 6000, 6000],
                            "last_purchase_on": [date(2027, 1, 1)] * 3},
                           index=pd.Index(["once", "recent", "lapsed"], name="member"))
    predicted = clv.predict(model, summary, horizon_days=28)
    # P(alive) = 1 / (1 + [x>0] a/(b+x−1) · ((α+T)/(α+t_x))^(r+x)):
    #   once:   x = 0                                 → 1
    #   recent: 1 / (1 + 2/3 · (4/4)^2) = 1 / (5/3)    → 3/5
    #   lapsed: 1 / (1 + 2/3 · (4/2)^2) = 1 / (11/3)   → 3/11
    assert predicted["p_alive"].tolist() == pytest.approx([1.0, 3 / 5, 3 / 11])
    # E[M] = (p·v + p·x·m̄) / (p·x + q − 1): once (20 + 0) / 2 = 10 yuan; the others (20 + 60) / 4 = 20 yuan.
    assert predicted["expected_order_value"].tolist() == pytest.approx([10.0, 20.0, 20.0])
    # Expected value = expected purchases × E[M], in fen, half up.
    for member in summary.index:
        row = predicted.loc[member]
        assert row["expected_value_fen"] == clv.fen_from_yuan(row["expected_purchases"] * row["expected_order_value"])
    assert predicted.loc["recent", "expected_purchases"] > predicted.loc["lapsed", "expected_purchases"]


def test_fewer_than_20_repeat_buyers_is_refused_with_a_domain_error():
    rows = [(f"m{i}", f"2027-01-0{1 + i % 2} 10:00", 1000) for i in range(40)]  # 40 buyers, one day each
    rows += [(f"m{i}", "2027-01-05 10:00", 1000) for i in range(19)]  # 19 of them come back
    with pytest.raises(Refused) as refused:
        clv.fit(clv.summarize(log(*rows), as_of=at("2027-02-01 00:00")))
    assert refused.value.code == "too_few_repeat_buyers"
    assert "at least 20 members who bought on two different days; there are 19 (of 40 buyers)" in refused.value.message
    with pytest.raises(Refused):
        clv.summary_for_report(log(*rows[:0]), as_of=at("2027-02-01 00:00"))


def test_the_churn_list_keeps_repeat_buyers_below_the_threshold_largest_value_at_risk_first():
    predictions = pd.DataFrame(
        {"frequency": [3, 1, 2, 5, 0, 2], "p_alive": [0.1, 0.2, 0.2, 0.9, 1.0, 0.5],
         "expected_purchases": [0.05, 0.1, 0.1, 2.0, 0.3, 0.6], "expected_value_fen": [500, 300, 300, 9000, 800, 1500],
         "past_value_fen": [50000, 10000, 10000, 90000, 80000, 70000],
         "last_purchase_on": [date(2027, 1, d) for d in (2, 3, 4, 5, 6, 7)]},
        index=pd.Index(["gone-big", "gone-small", "tie", "alive", "once", "edge"], name="member"))
    risks = clv.churn_risk(predictions, threshold=0.5)
    # value at risk = past value × (1 − p_alive): 50000 × 0.9 = 45000; 10000 × 0.8 = 8000 (twice: ties go by
    # p_alive, then member id). Not listed: alive (0.9), once (a single purchase day), edge (0.5 is not below 0.5).
    assert [(r.member, r.value_at_risk_fen) for r in risks] == [("gone-big", 45000), ("gone-small", 8000),
                                                                ("tie", 8000)]
    assert risks[0].as_dict() == {"member": "gone-big", "p_alive": "0.1000", "expected_purchases": "0.05",
                                  "expected_value_fen": 500, "past_value_fen": 50000, "value_at_risk_fen": 45000,
                                  "last_purchase_on": "2027-01-02"}
    assert [r.member for r in clv.churn_risk(predictions, min_past_value_fen=20000)] == ["gone-big"]


def _floats(value: object) -> list[object]:
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list):
        return [f for v in value for f in _floats(v)]
    return [value] if isinstance(value, float) else []


def test_the_report_section_adds_up_and_holds_no_floats():
    transactions = shop()
    as_of = at("2026-07-01 00:00")
    section = clv.summary_for_report(transactions, as_of=as_of, horizon_days=90, top=5)
    assert _floats(section) == []
    json.dumps(section)
    assert set(section) == {"model", "horizon_days", "expected_purchases_total", "expected_value_fen_total",
                            "p_alive_histogram", "churn_risk"}
    assert section["model"]["customers"] == transactions["member"].nunique()
    assert sum(section["p_alive_histogram"]["members"]) == section["model"]["customers"]
    summary = clv.summarize(transactions, as_of=as_of)
    predictions = clv.predict(clv.fit(summary), summary, horizon_days=90)
    assert section["expected_value_fen_total"] == predictions["expected_value_fen"].sum()
    at_risk = section["churn_risk"]
    assert len(at_risk) == 5
    assert set(at_risk[0]) == {"member", "p_alive", "expected_purchases", "expected_value_fen", "past_value_fen"}
    assert all(float(row["p_alive"]) < clv.CHURN_THRESHOLD for row in at_risk)
    # A frequent buyer who stopped months ago is more likely gone than one who bought last week.
    recent = predictions[(predictions["frequency"] >= 2)
                         & (predictions["last_purchase_on"] >= date(2026, 6, 20))]["p_alive"]
    lapsed = predictions[(predictions["frequency"] >= 2)
                         & (predictions["last_purchase_on"] <= date(2026, 3, 1))]["p_alive"]
    assert len(recent) and len(lapsed) and recent.min() > lapsed.max()


def test_p_alive_histogram_bins_are_closed_on_the_left_and_the_last_holds_one():
    histogram = clv.p_alive_histogram(np.array([0.0, 0.05, 0.1, 0.3, 0.95, 1.0]))
    assert histogram["bins"][0] == "0.0-0.1" and histogram["bins"][-1] == "0.9-1.0"
    assert histogram["members"] == [2, 1, 0, 1, 0, 0, 0, 0, 0, 2]


def test_a_shop_too_regular_for_the_plain_fit_is_fitted_with_the_weakest_penalty_that_converges():
    # 40 members, each buying ¥50 every week for ten weeks (on Monday, Tuesday or Wednesday):
    # nobody has left, so BG/NBD's dropout parameters are undetermined without a penalty.
    rows = [(f"m{m}", f"2027-01-{4 + m % 3:02d} 10:00", 5000) for m in range(40)]
    for week in range(1, 10):
        rows += [(f"m{m}", (at(f"2027-01-{4 + m % 3:02d} 10:00") + pd.Timedelta(days=7 * week)).strftime(
            "%Y-%m-%d %H:%M"), 5000) for m in range(40)]
    summary = clv.summarize(log(*rows), as_of=at("2027-03-31 23:00"))
    assert clv._fit_bgnbd(*(summary[c].to_numpy() for c in ("frequency", "recency", "T")), 0.0) is None

    model = clv.fit(summary)
    assert model.penalizer == 0.001 and clv.model_as_json(model)["penalizer"] == "0.001"
    predicted = clv.predict(model, summary, horizon_days=28)
    # Everyone is alive, and buys about once a week: r / alpha ≈ 0.74 purchases a week by this fit.
    assert predicted["p_alive"].min() > 0.99
    assert predicted["expected_purchases"].between(2.5, 3.5).all()
