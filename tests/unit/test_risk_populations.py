"""Honest populations are not flagged: the nightly rules and detector, run as of 03:00 every night
over the real CDNOW customers and over the demo's synthetic shop, flag at most 1% of the members
ever scored. Frames are built straight from the purchase logs (no replay through the engine);
growth per order is the default ruleset's. Run with -s to see the measured rates."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta

import numpy as np
import pandas as pd
import pytest

from loyalty.demo.sources import SHANGHAI, Purchase, cdnow_purchases, synthetic_purchases
from loyalty.demo.story import Event, birthdays, side_events
from loyalty.domain.documents import from_yaml
from loyalty.domain.growth import Line, order_growth
from loyalty.domain.risk import RiskRules
from loyalty.domain.risk_features import empty_frame, member_features
from loyalty.domain.rules import Ruleset, parse_ruleset
from loyalty.services.risk import assess

pytestmark = pytest.mark.slow


def _default() -> Ruleset:
    import importlib.resources
    return parse_ruleset(from_yaml((importlib.resources.files("loyalty") / "rulesets" / "default.yaml").read_text()))


def _frames(purchases: list[Purchase], events: list[Event], ruleset: Ruleset) -> dict[str, pd.DataFrame]:
    codes, _ = pd.factorize(pd.Series([p.member for p in purchases]))  # integer ids, as the database has
    paid_at = pd.to_datetime([p.paid_at for p in purchases], utc=True)
    growth = [order_growth(tuple(Line(c, f) for _, c, f in p.lines), p.amount_fen, p.paid_at, ruleset.growth,
                           ruleset.timezone).total for p in purchases]
    refunds = [e for e in events if e.kind == "refund"]
    return {
        "orders": pd.DataFrame({"member": codes, "order_id": [p.order_id for p in purchases], "paid_at": paid_at,
                                "amount_fen": [p.amount_fen for p in purchases]}),
        "growth": pd.DataFrame({"member": codes, "at": paid_at, "delta": growth}),
        "refunds": pd.DataFrame({"order_id": [e.ref for e in refunds],
                                 "refunded_at": pd.to_datetime([e.at for e in refunds], utc=True),
                                 "amount_fen": [e.amount_fen for e in refunds]}) if refunds else empty_frame("refunds"),
        "links": empty_frame("links"),
    }


def flagged_rate(frames: dict[str, pd.DataFrame], rules: RiskRules) -> tuple[float, int, dict[str, int]]:
    """Members flagged on any night ÷ members scored on any night, scanning every night at 03:00."""
    orders = frames["orders"]
    day = orders["paid_at"].min().tz_convert(SHANGHAI).date()
    last = orders["paid_at"].max().tz_convert(SHANGHAI).date() + timedelta(days=2)
    scored = np.zeros(int(orders["member"].max()) + 1, dtype=bool)
    flagged = np.zeros_like(scored)
    by_reason: dict[str, int] = {}
    while day <= last:
        as_of = datetime.combine(day, time(3), tzinfo=SHANGHAI)
        features = member_features(frames["orders"], frames["refunds"], frames["growth"], frames["links"], as_of,
                                   window_days=rules.refund_rate.window_days,
                                   history_days=rules.velocity.history_days)
        verdicts = assess(features, rules)
        scored[features.index.to_numpy()] = True
        flagged[features.index[verdicts.flagged].to_numpy()] = True
        for reasons in verdicts.reasons.values():
            for reason in reasons:
                by_reason[reason["code"]] = by_reason.get(reason["code"], 0) + 1
        day += timedelta(days=1)
    return flagged.sum() / scored.sum(), int(scored.sum()), by_reason


def test_at_most_one_percent_of_the_real_cdnow_customers_are_flagged() -> None:
    ruleset = _default()
    purchases, _ = cdnow_purchases(random.Random(7))
    rate, members, reasons = flagged_rate(_frames(purchases, [], ruleset), ruleset.risk)
    print(f"CDNOW: {rate:.2%} flagged of {members:,} customers (member-nights by reason: {reasons})")
    assert members > 23_000
    assert rate <= 0.01


def test_at_most_one_percent_of_the_synthetic_shop_is_flagged() -> None:
    ruleset = _default()
    rng = random.Random(7)  # built as `loyalty demo --synthetic 1500` builds it: purchases, birthdays, side events
    purchases = sorted(synthetic_purchases(1500, rng), key=lambda p: (p.paid_at, p.order_id))
    birthdays(sorted({p.member for p in purchases}), rng)
    rate, members, reasons = flagged_rate(_frames(purchases, side_events(purchases, rng), ruleset), ruleset.risk)
    print(f"synthetic shop: {rate:.2%} flagged of {members:,} members (member-nights by reason: {reasons})")
    assert members == 1500
    assert rate <= 0.01
