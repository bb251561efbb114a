"""The models read the database through `Frames.transactions()`: orders net of refunds, fully refunded
orders dropped, days cut in the ruleset's timezone (Asia/Shanghai)."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.analytics import clv
from loyalty.analytics.frames import load_frames
from loyalty.clock import FixedClock
from loyalty.domain.errors import Refused
from loyalty.services.members import register_member
from tests.conftest import at
from tests.service.support import pay, refund

AS_OF = at("2026-12-31 23:59:59.999999")  # the end of 2026


@pytest.fixture
def purchases(default_rules):
    clock = FixedClock(at("2026-12-31 12:00"))
    for name in ("ann", "bob"):
        register_member(name, clock=clock, registered_at=at("2026-11-01 09:00"))
    pay("o-1", "ann", at("2026-12-01 10:00"), "100.00", clock)
    pay("o-2", "ann", at("2026-12-02 00:30"), "50.00", clock)  # 1 December in UTC, 2 December in Shanghai
    pay("o-3", "ann", at("2026-12-10 10:00"), "80.00", clock)
    refund("r-1", "o-3", "30.00", at("2026-12-11 10:00"), clock)  # o-3 counts 50.00
    pay("o-4", "bob", at("2026-12-05 10:00"), "60.00", clock)
    refund("r-2", "o-4", "60.00", at("2026-12-06 10:00"), clock)  # refunded in full: not a purchase
    pay("o-5", "bob", at("2026-12-20 10:00"), "40.00", clock)
    pay("o-6", "bob", at("2027-01-01 00:00"), "10.00", clock)  # after as_of


def test_the_summary_of_the_database_is_net_of_refunds_in_local_days(purchases):
    frames = load_frames(as_of=AS_OF)
    summary = clv.summarize(frames.transactions(), as_of=AS_OF, timezone=frames.timezone)
    # ann: local days 12-01 (100.00), 12-02 (50.00), 12-10 (80.00 − 30.00) → x = 2, t_x = 9 days,
    # T = 12-01 → 12-31 = 30 days; repeat mean (50.00 + 50.00) / 2 = 50 yuan; past value 20000 fen.
    assert summary.loc["ann"].to_dict() == {"frequency": 2, "recency": 9 / 7, "T": 30 / 7, "monetary_value": 50.0,
                                            "past_value_fen": 20000, "last_purchase_on": date(2026, 12, 10)}
    # bob: o-4 refunded in full, o-6 after as_of → one day, 12-20; T = 11 days.
    assert summary.loc["bob"].to_dict() == {"frequency": 0, "recency": 0.0, "T": 11 / 7, "monetary_value": 0.0,
                                            "past_value_fen": 4000, "last_purchase_on": date(2026, 12, 20)}


def test_the_churn_report_of_a_shop_with_one_repeat_buyer_is_refused(purchases):
    with pytest.raises(Refused) as refused:
        clv.churn_report(AS_OF)
    assert refused.value.code == "too_few_repeat_buyers"
