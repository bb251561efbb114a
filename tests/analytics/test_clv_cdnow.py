"""Acceptance on real data: BG/NBD and Gamma-Gamma on CDNOW_sample reproduce the published fits.

CDNOW_sample (shipped with lifetimes): 2,357 customers of the 1997-Q1 cohort, 78 weeks of purchases,
one line per customer-day (customer id, new id, YYYYMMDD, CDs, dollars). Calibration: purchases up
to 1997-09-30, time in weeks. Published figures: Fader, Hardie & Lee (2005), "Counting your
customers the easy way" (BG/NBD) and "RFM and CLV" (Gamma-Gamma, on the repeat purchases' mean).
"""

from __future__ import annotations

import importlib.resources
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from loyalty.analytics import clv

SHANGHAI = ZoneInfo("Asia/Shanghai")
CALIBRATION_END = datetime.combine(date(1997, 9, 30), time.max, tzinfo=SHANGHAI)  # the end of 30 September


def _fen(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 100 + int((fraction + "00")[:2])


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """The sample's purchases as the models read them: member, at (local midnight), amount_fen."""
    text = (importlib.resources.files("lifetimes") / "datasets" / "CDNOW_sample.txt").read_text(encoding="utf-8")
    rows = [line.split() for line in text.splitlines() if line.strip()]
    return pd.DataFrame({
        "member": [row[1] for row in rows],
        "at": pd.to_datetime([row[2] for row in rows], format="%Y%m%d").tz_localize(SHANGHAI),
        "amount_fen": pd.Series([_fen(row[4]) for row in rows], dtype="int64")})


@pytest.fixture(scope="module")
def calibration(cdnow: pd.DataFrame) -> pd.DataFrame:
    return clv.summarize(cdnow, as_of=CALIBRATION_END)


@pytest.fixture(scope="module")
def model(calibration: pd.DataFrame) -> clv.CustomerBaseModel:
    return clv.fit(calibration)


def test_the_calibration_summary_has_every_customer_and_the_papers_first_customer(calibration):
    assert len(calibration) == 2357
    # Customer 0001 bought on 1997-01-01, 01-18, 08-02 (and 12-12, after the calibration):
    # x = 2, t_x = 213 days / 7 = 30.43 weeks, T = 272 days / 7 = 38.86 weeks (Hardie's worked example);
    # repeat mean = (29.73 + 14.96) / 2 = 22.345 dollars; past value 29.33 + 29.73 + 14.96 = 74.02.
    first = calibration.loc["0001"]
    assert first["frequency"] == 2
    assert first["recency"] == pytest.approx(213 / 7)
    assert first["T"] == pytest.approx(272 / 7)
    assert first["monetary_value"] == pytest.approx(22.345)
    assert first["past_value_fen"] == 7402


def test_bgnbd_reproduces_the_published_parameters_and_log_likelihood(model):
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.005), name
    assert model.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert model.customers == 2357


def test_gamma_gamma_reproduces_the_published_parameters(model):
    assert model.gamma_gamma is not None
    assert model.gamma_gamma.p == pytest.approx(6.25, rel=0.005)
    assert model.gamma_gamma.q == pytest.approx(3.74, rel=0.005)
    assert model.gamma_gamma.v == pytest.approx(15.44, rel=0.005)


def test_the_first_customer_is_expected_to_buy_1_226_times_in_the_next_39_weeks(model, calibration):
    # The paper's worked example: x = 2, t_x = 30.43, T = 38.86 → E[Y(39)] = 1.226.
    predictions = clv.predict(model, calibration.loc[["0001"]], horizon_days=39 * 7)
    assert predictions.loc["0001", "expected_purchases"] == pytest.approx(1.226, abs=0.0005)
    # Gamma-Gamma's E[M] = (p·v + p·x·m̄) / (p·x + q − 1) = (6.2496·15.4435 + 6.2496·2·22.345)
    #                    / (6.2496·2 + 2.7442) = 375.81 / 15.2434 = 24.65 dollars.
    assert predictions.loc["0001", "expected_order_value"] == pytest.approx(24.65, abs=0.01)


def test_the_report_section_shows_the_fit_as_decimal_strings(cdnow):
    section = clv.summary_for_report(cdnow, as_of=CALIBRATION_END, top=3)
    assert section["model"] == {
        "bgnbd": {"r": "0.2426", "alpha": "4.4136", "a": "0.7929", "b": "2.4259", "log_likelihood": "-9582.4"},
        "gamma_gamma": {"p": "6.2496", "q": "3.7442", "v": "15.4435"}, "time_unit": "week", "customers": 2357,
        "penalizer": "0.000"}
    assert sum(section["p_alive_histogram"]["members"]) == 2357
    assert len(section["churn_risk"]) == 3
