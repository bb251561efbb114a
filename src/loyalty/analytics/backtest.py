"""`loyalty simulate`: a candidate ruleset against the published one, on the shop's own history.

The history comes from the database (members, orders with their lines, refunds, actions and
point redemptions, as recorded) or from an orders CSV in the import format; both rulesets
replay it in memory through `domain.backtest` and nothing is written. The comparison sets the
two side by side month by month: tier distribution, growth and points issued, coupon and
delivery cost, who would end in another tier, and the benefit cost per retained member.

The history is the same for both: the backtest answers what the rules would have given the
members who behaved as they did, not how they would have behaved under other rules.
"""

from __future__ import annotations

import csv
import multiprocessing
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from loyalty.analytics.rounding import fen_average
from loyalty.domain.backtest import History, MonthFigures, Newcomer, Replay, Spend, independent, merge, replay, split
from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
from loyalty.domain.growth import Line
from loyalty.domain.money import format_fen
from loyalty.domain.periods import add_months, start_of_day
from loyalty.domain.rules import Ruleset
from loyalty.services import imports, rulesets
from loyalty.store.models import Action, Member, Order, OrderItem, Redemption, Refund


def history_from_db() -> History:
    """Everything recorded, as the services saw it. Credit held by a review is left out, as
    the tier windows leave it out; redemptions reversed by an operator are left out."""
    members = [Newcomer(external_id, registered_at, birthday, invited) for external_id, registered_at, birthday, invited
               in Member.objects.values_list("external_id", "registered_at", "birthday", "invited").iterator(10_000)]
    lines: dict[str, list[tuple[str, Line]]] = {}  # by order id (the items' key to their order)
    for order_ref, sku, category, amount_fen in OrderItem.objects.order_by("id").values_list(
            "order_id", "sku", "category", "amount_fen").iterator(50_000):
        lines.setdefault(str(order_ref), []).append((sku, Line(category or None, amount_fen)))
    orders = []
    for order_id, member, paid_at, amount_fen in Order.objects.filter(hold="").order_by("paid_at", "order_id") \
            .values_list("order_id", "member__external_id", "paid_at", "amount_fen").iterator(50_000):
        items = lines.get(order_id) or [("", Line(None, amount_fen))]
        orders.append(OrderEvent(order_id, member, paid_at, amount_fen, tuple(line for _, line in items),
                                 tuple(sku for sku, _ in items)))
    refunds = [RefundEvent(*row) for row in Refund.objects.values_list(
        "refund_id", "order__order_id", "amount_fen", "refunded_at").iterator(50_000)]
    actions = [ActionEvent(event_id, member, kind, at, ref) for event_id, member, kind, at, ref
               in Action.objects.filter(hold="").values_list("event_id", "member__external_id", "type", "at", "ref")
               .iterator(50_000)]
    spends = [Spend(redemption_id, member, points, at) for redemption_id, member, points, at
              in Redemption.objects.filter(state="completed").values_list(
                  "redemption_id", "member__external_id", "points", "created_at").iterator(50_000)]
    return History(members, orders, refunds, actions, spends)


def history_from_csv(path: str | Path) -> History:
    """Orders in the import format (docs: `loyalty import orders`), checked as the import checks
    them; members are registered as of their first order."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(enumerate(csv.DictReader(handle), start=2))
    return History((), [event for _, event in imports.parse_rows(rows)])


@dataclass(frozen=True)
class Costs:
    coupon_value_fen: int
    deliveries: int
    delivery_fen: int
    retained: int

    @property
    def total_fen(self) -> int:
        return self.coupon_value_fen + self.delivery_fen

    @property
    def per_retained_fen(self) -> int | None:
        """Benefit cost per retained member, half a fen up; None when nobody was retained."""
        return fen_average(self.total_fen, self.retained) if self.retained else None


def costs(months: Sequence[MonthFigures], delivery_fee_fen: int, retained: int) -> Costs:
    deliveries = sum(m.free_deliveries for m in months)
    return Costs(sum(m.coupon_value_fen for m in months), deliveries, deliveries * delivery_fee_fen, retained)


def compare(baseline: Replay, candidate: Replay, *, months: int | None = None, delivery_fee_fen: int = 0,
            listed: int = 20) -> dict[str, Any]:
    """The two replays side by side, as a JSON document (money as decimal strings in yuan)."""
    base_months, cand_months = _last(baseline.months, months), _last(candidate.months, months)
    retained = _retained(base_months)
    moved = sorted(key for key, state in candidate.members.items()
                   if key in baseline.members and baseline.members[key].tier != state.tier)
    matrix = Counter((baseline.members[key].tier, candidate.members[key].tier) for key in moved)
    return {
        "report": "backtest",
        "months": [_month_row(b, c) for b, c in zip(base_months, cand_months, strict=True)],
        "final_tiers": {"baseline": dict(baseline.final_tiers), "candidate": dict(candidate.final_tiers)},
        "moved": {"members": len(moved),
                  "by_move": [{"from": f, "to": t, "members": n} for (f, t), n in sorted(matrix.items())],
                  "examples": [{"member": key, "baseline": baseline.members[key].tier,
                                "candidate": candidate.members[key].tier} for key in moved[:listed]]},
        "totals": {side: _totals(side_months, delivery_fee_fen, retained)
                   for side, side_months in (("baseline", base_months), ("candidate", cand_months))},
        "delivery_fee": format_fen(delivery_fee_fen),
        "refused": {"baseline": dict(baseline.refused), "candidate": dict(candidate.refused)},
    }


def replay_parallel(ruleset: Ruleset, history: History, *, workers: int | None = None,
                    min_orders: int | None = None) -> Replay:
    """`replay`, the members split over processes (one per core) when the ruleset lets members be
    replayed apart and the history is large enough to be worth it; the same outcome either way."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(history.orders) < (PARALLEL_FROM if min_orders is None else min_orders) \
            or not independent(ruleset):
        return replay(ruleset, history)
    days = [event.paid_at for event in history.orders]
    zone = ruleset.timezone
    since = min(days).astimezone(zone).date()
    last = max([*days, *(r.refunded_at for r in history.refunds), *(a.at for a in history.actions),
                *(s.at for s in history.spends)]).astimezone(zone).date()
    until = start_of_day(add_months(last.replace(day=1), 1), zone)
    global _shared
    _shared = (ruleset, split(history, workers), since, until)
    try:
        # Forked: the parts are inherited, not pickled; only the outcomes come back.
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return merge(pool.map(_replay_part, range(workers)))
    finally:
        _shared = None


PARALLEL_FROM = 50_000  # orders: below this a process costs more than it saves
_shared: tuple[Ruleset, list[History], date, datetime] | None = None


def _replay_part(index: int) -> Replay:
    assert _shared is not None
    ruleset, parts, since, until = _shared
    return replay(ruleset, parts[index], since=since, until=until)


def simulate(candidate: Ruleset, baseline: Ruleset, history: History, **options: Any) -> dict[str, Any]:
    document = compare(replay_parallel(baseline, history), replay_parallel(candidate, history), **options)
    document["rulesets"] = {"baseline": baseline.name, "candidate": candidate.name}
    document["tiers"] = list(dict.fromkeys([t.code for t in baseline.tiers] + [t.code for t in candidate.tiers]))
    return document


def ruleset_named(spec: str, now: datetime) -> Ruleset:
    """`published` (the version in force at `now`) or a ruleset file, validated."""
    if spec == "published":
        return rulesets.in_force(now).ruleset
    return rulesets.validate(rulesets.read_document(spec))


def _last(months: list[MonthFigures], count: int | None) -> list[MonthFigures]:
    return months[-count:] if count else months


def _retained(months: Sequence[MonthFigures]) -> int:
    """Members retained in the period: buyers of a month who had bought in an earlier month,
    counted once per month they came back (the replay does not keep members' names per month)."""
    return sum(m.retained for m in months)


def _month_row(base: MonthFigures, cand: MonthFigures) -> dict[str, Any]:
    def side(m: MonthFigures) -> dict[str, Any]:
        return {"tiers": dict(m.tiers), "moves": dict(m.moves), "growth_earned": m.growth_earned,
                "growth_reversed": m.growth_reversed, "points_earned": m.points_earned,
                "points_redeemed": m.points_redeemed, "points_reversed": m.points_reversed,
                "points_expired": m.points_expired, "coupons": m.coupons,
                "coupon_value": format_fen(m.coupon_value_fen), "free_deliveries": m.free_deliveries}

    return {"month": base.month, "evaluated_at": base.as_of.isoformat(), "orders": base.orders,
            "buyers": base.buyers, "retained": base.retained, "baseline": side(base), "candidate": side(cand)}


def _totals(months: Sequence[MonthFigures], delivery_fee_fen: int, retained: int) -> dict[str, Any]:
    cost = costs(months, delivery_fee_fen, retained)
    per = cost.per_retained_fen
    return {"growth_earned": sum(m.growth_earned for m in months),
            "points_earned": sum(m.points_earned for m in months),
            "coupons": sum(m.coupons for m in months), "coupon_value": format_fen(cost.coupon_value_fen),
            "free_deliveries": cost.deliveries, "delivery_cost": format_fen(cost.delivery_fen),
            "benefit_cost": format_fen(cost.total_fen), "retained": retained,
            "cost_per_retained": None if per is None else format_fen(per)}


@dataclass(frozen=True)
class Shown:
    """A comparison as rows of text, for the command's tables and the admin's page alike:
    each figure as "baseline → candidate" where the two differ."""

    tiers: list[tuple[str, list[str]]]  # month, members per tier (in `document["tiers"]` order)
    flows: list[list[str]]  # month, orders, growth, points, coupons (¥), free deliveries
    totals: list[tuple[str, str, str]]  # what, baseline, candidate


TOTALS = ("growth_earned", "points_earned", "coupons", "coupon_value", "free_deliveries", "delivery_cost",
          "benefit_cost", "retained", "cost_per_retained")


def shown(document: dict[str, Any]) -> Shown:
    tiers, flows = [], []
    for row in document["months"]:
        base, cand = row["baseline"], row["candidate"]
        tiers.append((row["month"], [beside(base["tiers"].get(code, 0), cand["tiers"].get(code, 0))
                                     for code in document["tiers"]]))
        flows.append([row["month"], text(row["orders"]), beside(base["growth_earned"], cand["growth_earned"]),
                      beside(base["points_earned"], cand["points_earned"]),
                      beside(base["coupon_value"], cand["coupon_value"]),
                      beside(base["free_deliveries"], cand["free_deliveries"])])
    totals = [(key.replace("_", " "), text(document["totals"]["baseline"][key]),
               text(document["totals"]["candidate"][key])) for key in TOTALS]
    return Shown(tiers, flows, totals)


def text(value: object) -> str:
    if value is None:
        return "—"
    return f"{value:,}" if isinstance(value, int) else str(value)


def beside(base: object, candidate: object) -> str:
    return text(base) if base == candidate else f"{text(base)} → {text(candidate)}"
