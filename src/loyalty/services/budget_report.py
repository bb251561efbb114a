"""The budget view: per tier, one local month's benefit budget against what the grant jobs
issued, what of it was redeemed, and the grants deferred (`loyalty report budgets`, the admin,
the ops dashboards). Read-only; rules in docs/benefits.md, Budgets.

`spent` is what the budget counted (the `BudgetSpend` row the grant jobs and releases lock and
charge); `issued` is read from the coupons themselves: the face value of the cash coupons the
grant jobs issued in the month (keys monthly:, birthday:, recall:, sprint:) to members of the
tier, the tier a member held when the coupon was issued (from the tier-change log), and
`redeemed` the part of it redeemed now. The two agree for a tier whose budget was set all month.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Count, F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound
from loyalty.domain.grants import month_of
from loyalty.domain.money import format_fen
from loyalty.domain.periods import add_months, start_of_day
from loyalty.services import rulesets
from loyalty.services.budgets import alert_key
from loyalty.services.outbox import utc_text
from loyalty.store.models import BudgetSpend, Coupon, DeferredGrant, OpsAlert, TierChange

GRANTS = ("monthly", "birthday", "recall", "sprint")  # the jobs whose coupons a budget caps, by key prefix
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class TierBudget:
    """One tier in one month, money in fen. `remaining` is budget − spent: negative only when a
    budget was lowered below what the month had already spent; None without a budget."""

    tier: str
    month: str
    budget_fen: int | None
    spent_fen: int
    remaining_fen: int | None
    issued_fen: int
    redeemed_fen: int
    deferred: int  # grants deferred in the month, still waiting
    deferred_value_fen: int  # their face value
    released: int  # grants deferred in the month, issued since
    lapsed: int  # grants deferred in the month whose validity passed first
    alerted_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """Money as decimal yuan strings (None stays None), the alert time in UTC (as webhooks show it)."""
        row = asdict(self)
        shown: dict[str, Any] = {}
        for name, value in row.items():
            if name.endswith("_fen"):
                shown[name.removesuffix("_fen")] = None if value is None else format_fen(value)
            elif isinstance(value, datetime):
                shown[name] = utc_text(value)
            else:
                shown[name] = value
        return shown


BUDGET_COLUMNS = tuple(f.name.removesuffix("_fen") for f in fields(TierBudget))


@dataclass(frozen=True)
class BudgetReport:
    month: str
    timezone: str
    rows: list[TierBudget]

    def as_json(self) -> dict[str, Any]:
        return {"report": "budgets", "month": self.month, "timezone": self.timezone, "unit": "yuan",
                "columns": list(BUDGET_COLUMNS), "rows": [row.as_dict() for row in self.rows]}


def budget_report(month: str | None = None, *, clock: Clock = system_clock) -> BudgetReport:
    """Every tier with a budget, a spend, a deferral or issued coupons in `month` ("2027-02";
    default: the current local month), in the ruleset's tier order. The budget shown is the one
    in force at the month's last instant, or now while the month runs."""
    now = clock.now()
    zone = rulesets.in_force(now).ruleset.timezone
    label = month or month_of(now, zone).label
    first = _first_day(label)
    start, end = start_of_day(first, zone), start_of_day(add_months(first, 1), zone)
    try:
        ruleset = rulesets.in_force(max(start, min(now, end - TICK))).ruleset
    except NotFound:
        ruleset = rulesets.in_force(now).ruleset
        limits: dict[str, int] = {}
    else:
        limits = dict(ruleset.operations.budgets)
    spends = {row.tier: row for row in BudgetSpend.objects.filter(month=label)}
    coupons = issued_by_tier(start, end)
    deferrals = _deferrals(label)
    alerts = dict(OpsAlert.objects.filter(key__in=[alert_key(tier, label) for tier in {*limits, *spends}])
                  .values_list("key", "created_at"))
    order = [tier.code for tier in ruleset.tiers]
    tiers = {*limits, *spends, *coupons, *deferrals}
    rows = []
    for tier in sorted(tiers, key=lambda t: (order.index(t) if t in order else len(order), t)):
        budget, spent = limits.get(tier), spends[tier].spent_fen if tier in spends else 0
        issued, redeemed = coupons.get(tier, (0, 0))
        waiting, waiting_fen, released, lapsed = deferrals.get(tier, (0, 0, 0, 0))
        alerted = spends[tier].alerted_at if tier in spends else None
        rows.append(TierBudget(tier, label, budget, spent, None if budget is None else budget - spent, issued,
                               redeemed, waiting, waiting_fen, released, lapsed,
                               alerted or alerts.get(alert_key(tier, label))))
    return BudgetReport(label, zone.key, rows)


def _first_day(label: str) -> date:
    found = MONTH.match(label)
    if found is None:
        raise InvalidInput(f"month must be YYYY-MM, e.g. 2027-02; got {label!r}", field="month")
    return date(int(found[1]), int(found[2]), 1)


def issued_by_tier(start: datetime, end: datetime) -> dict[str, tuple[int, int]]:
    """tier -> (face value issued in [start, end), of it redeemed), by the tier held at issue:
    the latest tier change at or before `issued_at`, else the tier the first later change left,
    else the member's tier now (it never changed)."""
    changes = TierChange.objects.filter(member=OuterRef("member"))
    held = Coalesce(
        Subquery(changes.filter(changed_at__lte=OuterRef("issued_at")).order_by("-changed_at", "-id")
                 .values("to_tier")[:1]),
        Subquery(changes.filter(changed_at__gt=OuterRef("issued_at")).order_by("changed_at", "id")
                 .values("from_tier")[:1]),
        F("member__tier"))
    granted = Q()
    for prefix in GRANTS:
        granted |= Q(key__startswith=f"{prefix}:")
    rows = (Coupon.objects.filter(granted, issued_at__gte=start, issued_at__lt=end, value_fen__gt=0)
            .annotate(held=held).values("held")
            .annotate(issued=Sum("value_fen"), redeemed=Sum("value_fen", filter=Q(state="redeemed"))).order_by())
    return {row["held"]: (int(row["issued"] or 0), int(row["redeemed"] or 0)) for row in rows}


def _deferrals(month: str) -> dict[str, tuple[int, int, int, int]]:
    """tier -> (waiting, their face value, released, lapsed) of the grants deferred in `month`."""
    found: dict[str, list[int]] = {}
    rows = (DeferredGrant.objects.filter(month=month).values_list("tier", "state")
            .annotate(n=Count("id"), fen=Sum("cost_fen")).order_by())
    for tier, state, n, fen in rows:
        sums = found.setdefault(tier, [0, 0, 0, 0])
        if state == "deferred":
            sums[0], sums[1] = int(n), int(fen)
        else:
            sums[2 if state == "released" else 3] = int(n)
    return {tier: (a, b, c, d) for tier, (a, b, c, d) in found.items()}
