"""Rules that flag a member for review, from the ruleset's `risk.flags` and `risk.detector`.

Each rule reads one night's per-member features (`domain/risk_features.py`) and, when it trips,
says why with a reason code and the numbers that tripped it. Defaults (docs/abuse.md)::

    risk:
      flags:
        refund_rate:  {above: "0.5", min_orders: 5, window_days: 30}
        velocity:     {factor: 5, min_orders: 10, history_days: 90}
        shared_device: {members: 5}
        growth_spike: {factor: 10, min_growth: 500}
      detector: {threshold: "8"}

A member with 6 orders worth ¥600 in the last 30 days, ¥400 of it refunded, has a refund rate
of 400 / 600 = 0.667 > 0.5; if 4 of the 6 orders were refunded (0.667 > 0.5 too) with 6 >= 5
orders, it is flagged `refund_rate`. One large refund among many orders is not enough.
Rates are exact decimals in the ruleset; the comparisons run on the features' floats, which is
exact enough for a review flag (it moves no money).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from loyalty.domain.rules import _Reader

REASONS = ("refund_rate", "velocity", "shared_device", "growth_spike", "anomaly")


@dataclass(frozen=True)
class RefundRateRule:
    above: Decimal = Decimal("0.5")  # both refunded amount ÷ paid and refunded orders ÷ orders, in the window
    min_orders: int = 5
    window_days: int = 30  # also the window of every other feature, and of who is scored


@dataclass(frozen=True)
class VelocityRule:
    factor: Decimal = Decimal(5)  # orders in the last 7 days ÷ max(own weekly average before, 1)
    min_orders: int = 10  # in the last 7 days
    history_days: int = 90  # the weekly average is over the days before the last 7


@dataclass(frozen=True)
class SharedDeviceRule:
    members: int = 5  # distinct members on one device, address or ip, the member included


@dataclass(frozen=True)
class GrowthSpikeRule:
    factor: Decimal = Decimal(10)  # growth in the last day ÷ the median of the day's earners
    min_growth: int = 500


@dataclass(frozen=True)
class RiskRules:
    refund_rate: RefundRateRule = field(default_factory=RefundRateRule)
    velocity: VelocityRule = field(default_factory=VelocityRule)
    shared_device: SharedDeviceRule = field(default_factory=SharedDeviceRule)
    growth_spike: GrowthSpikeRule = field(default_factory=GrowthSpikeRule)
    threshold: Decimal = Decimal(8)  # the detector's score above which a member is flagged


def parse_risk_rules(r: _Reader, risk: Mapping[str, Any]) -> RiskRules:
    """`risk.flags` and `risk.detector`; absent keys take the defaults above."""
    flags = r.mapping(risk.get("flags"), "risk.flags")
    r.only(flags, "risk.flags", {"refund_rate", "velocity", "shared_device", "growth_spike"})
    detector = r.mapping(risk.get("detector"), "risk.detector")
    r.only(detector, "risk.detector", {"threshold"})
    d = RiskRules()
    refund = _section(r, flags, "refund_rate", {"above", "min_orders", "window_days"})
    velocity = _section(r, flags, "velocity", {"factor", "min_orders", "history_days"})
    shared = _section(r, flags, "shared_device", {"members"})
    spike = _section(r, flags, "growth_spike", {"factor", "min_growth"})
    rules = RiskRules(
        refund_rate=RefundRateRule(
            r.decimal(refund.get("above", d.refund_rate.above), "risk.flags.refund_rate.above"),
            r.integer(refund.get("min_orders", d.refund_rate.min_orders), "risk.flags.refund_rate.min_orders",
                      minimum=1),
            r.integer(refund.get("window_days", d.refund_rate.window_days), "risk.flags.refund_rate.window_days",
                      minimum=8)),
        velocity=VelocityRule(
            r.decimal(velocity.get("factor", d.velocity.factor), "risk.flags.velocity.factor", minimum=Decimal(1)),
            r.integer(velocity.get("min_orders", d.velocity.min_orders), "risk.flags.velocity.min_orders", minimum=1),
            r.integer(velocity.get("history_days", d.velocity.history_days), "risk.flags.velocity.history_days",
                      minimum=14)),
        shared_device=SharedDeviceRule(
            r.integer(shared.get("members", d.shared_device.members), "risk.flags.shared_device.members", minimum=2)),
        growth_spike=GrowthSpikeRule(
            r.decimal(spike.get("factor", d.growth_spike.factor), "risk.flags.growth_spike.factor",
                      minimum=Decimal(1)),
            r.integer(spike.get("min_growth", d.growth_spike.min_growth), "risk.flags.growth_spike.min_growth")),
        threshold=r.decimal(detector.get("threshold", d.threshold), "risk.detector.threshold"),
    )
    if rules.refund_rate.above >= 1:
        r.fail("risk.flags.refund_rate.above", "a rate below 1 (0.5 = half the paid amount refunded)")
    return rules


def _section(r: _Reader, flags: Mapping[str, Any], name: str, keys: set[str]) -> Mapping[str, Any]:
    section = r.mapping(flags.get(name), f"risk.flags.{name}")
    r.only(section, f"risk.flags.{name}", keys)
    return section


def rule_hits(features: pd.DataFrame, rules: RiskRules) -> pd.DataFrame:
    """One boolean column per rule, one row per member (the features' index)."""
    f = features
    growth_reference = day_growth_reference(f)
    return pd.DataFrame({
        "refund_rate": (f["orders"] >= rules.refund_rate.min_orders)
        & (f["refund_rate"] > float(rules.refund_rate.above))
        & (f["refunded_order_rate"] > float(rules.refund_rate.above)),
        "velocity": (f["orders_7d"] >= rules.velocity.min_orders) & (f["velocity"] >= float(rules.velocity.factor)),
        "shared_device": f["shared_members"] >= rules.shared_device.members,
        "growth_spike": (f["growth_day"] >= rules.growth_spike.min_growth)
        & (f["growth_day"] >= float(rules.growth_spike.factor) * growth_reference),
    }, index=f.index)


def day_growth_reference(features: pd.DataFrame) -> float:
    """The population's daily growth: the median growth of the members who earned any in the
    last day (0 when nobody did, so the spike rule falls back to `min_growth` alone)."""
    earners = features.loc[features["growth_day"] > 0, "growth_day"]
    return float(earners.median()) if len(earners) else 0.0


def reasons(row: Mapping[str, Any], hits: Mapping[str, bool], rules: RiskRules, growth_reference: float,
            score: float) -> list[dict[str, Any]]:
    """Why a member was flagged: a reason code per rule that tripped, with its numbers."""
    found: list[dict[str, Any]] = []
    if hits.get("refund_rate"):
        found.append({"code": "refund_rate", "orders": int(row["orders"]), "paid_fen": int(row["paid_fen"]),
                      "refunded_fen": int(row["refunded_fen"]), "rate": _round(row["refund_rate"]),
                      "order_rate": _round(row["refunded_order_rate"]),
                      "above": str(rules.refund_rate.above)})
    if hits.get("velocity"):
        found.append({"code": "velocity", "orders_7d": int(row["orders_7d"]),
                      "weekly_before": _round(row["weekly_before"]), "ratio": _round(row["velocity"]),
                      "factor": str(rules.velocity.factor)})
    if hits.get("shared_device"):
        found.append({"code": "shared_device", "members": int(row["shared_members"]),
                      "limit": rules.shared_device.members})
    if hits.get("growth_spike"):
        found.append({"code": "growth_spike", "growth_day": int(row["growth_day"]),
                      "population_median": _round(growth_reference), "factor": str(rules.growth_spike.factor)})
    if hits.get("anomaly"):
        found.append({"code": "anomaly", "score": _round(score), "threshold": str(rules.threshold)})
    return found


def _round(value: object) -> str:
    """A float shown as a 3-place decimal string: what a reviewer reads, never a float in JSON."""
    return f"{float(value):.3f}"  # type: ignore[arg-type]
