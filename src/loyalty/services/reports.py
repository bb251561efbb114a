"""Read-only summaries the demo and the console print: issued value, refunds, repeat purchase,
and the points-liability report for accounting (`loyalty report liability`, docs/reports.md).

The liability report rolls forward: per period, opening + earned − redeemed − reversed − expired
+ adjusted = outstanding, and the outstanding after the last entry is Σ lots − Σ debts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q, Sum

from loyalty.domain.errors import InvalidInput
from loyalty.domain.periods import local_date
from loyalty.services import rulesets
from loyalty.store import raw
from loyalty.store.models import LedgerEntry, Order, PointsDebt, PointsLot, Refund


def issued_by_source() -> list[tuple[str, str, int, int]]:
    """(ledger, source, entries, total delta) for every ledger and source, largest first."""
    rows = (LedgerEntry.objects.values_list("ledger", "source")
            .annotate(n=Count("id"), total=Sum("delta")).order_by("ledger", "-total"))
    return [(ledger, source, int(n), int(total or 0)) for ledger, source, n, total in rows]


@dataclass(frozen=True)
class RefundTotals:
    refunds: int
    amount_fen: int
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int


def refund_totals() -> RefundTotals:
    totals = Refund.objects.aggregate(
        n=Count("id"), amount=Sum("amount_fen"), growth=Sum("growth_reversed"), points=Sum("points_reversed"),
        debt=Sum("points_debt_created"), written_off=Sum("points_written_off"))
    return RefundTotals(*(int(totals[k] or 0) for k in ("n", "amount", "growth", "points", "debt", "written_off")))


@dataclass(frozen=True)
class RepeatPurchase:
    buyers: int
    repeat_buyers: int

    @property
    def rate_percent(self) -> str:
        """As a percentage with one decimal, computed in integers (no float)."""
        if not self.buyers:
            return "0.0"
        tenths = (self.repeat_buyers * 1000 + self.buyers // 2) // self.buyers
        return f"{tenths // 10}.{tenths % 10}"


def repeat_purchase() -> RepeatPurchase:
    """Members with at least one order kept (not refunded in full), and those with two or more."""
    counts = (Order.objects.filter(amount_fen__gt=F("refunded_fen")).values("member_id")
              .annotate(n=Count("id")).values_list("n", flat=True))
    buyers = repeat = 0
    for n in counts.iterator(chunk_size=10_000):
        buyers += 1
        repeat += n >= 2
    return RepeatPurchase(buyers, repeat)


# Which column each points source moves. Outflows are shown as positive numbers (−Σ delta).
EARNED_SOURCES = ("order", "check_in", "review", "share", "task", "campaign")
COLUMN_OF_SOURCE = {**{source: "earned" for source in EARNED_SOURCES}, "redemption": "redeemed",
                    "refund": "reversed", "expiry": "expired", "adjustment": "adjusted"}
OUTFLOWS = ("redeemed", "reversed", "expired")
MOVEMENTS = ("earned", "redeemed", "reversed", "expired", "adjusted", "written_off")
PERIODS = ("day", "month")


@dataclass(frozen=True)
class LiabilityRow:
    """One day ("2027-01-04") or month ("2027-01") of the points liability, in points.
    `written_off` is a memo: it was never in the ledger, so it does not move `outstanding`."""

    period: str
    opening: int
    earned: int
    redeemed: int
    reversed: int
    expired: int
    adjusted: int
    written_off: int
    outstanding: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


LIABILITY_COLUMNS = tuple(field.name for field in fields(LiabilityRow))


@dataclass(frozen=True)
class LiabilityCheck:
    """The whole ledger now, read in one statement: Σ points entries against Σ lots − Σ debts."""

    ledger_total: int
    lots_remaining: int
    debts_remaining: int

    @property
    def agrees(self) -> bool:
        return self.ledger_total == self.lots_remaining - self.debts_remaining


@dataclass(frozen=True)
class LiabilityReport:
    by: str
    first_day: date | None
    last_day: date | None
    opening: int  # the outstanding before the first day of the range
    rows: list[LiabilityRow]
    check: LiabilityCheck

    @property
    def closing(self) -> int:
        return self.rows[-1].outstanding if self.rows else self.opening

    def totals(self) -> dict[str, int]:
        sums = {name: sum(getattr(row, name) for row in self.rows) for name in MOVEMENTS}
        return {"opening": self.opening, **sums, "outstanding": self.closing}

    def as_json(self) -> dict[str, Any]:
        return {
            "report": "points_liability", "by": self.by, "unit": "points",
            "from": self.first_day and self.first_day.isoformat(), "to": self.last_day and self.last_day.isoformat(),
            "columns": list(LIABILITY_COLUMNS), "rows": [row.as_dict() for row in self.rows],
            "totals": self.totals(),
            "check": {**asdict(self.check), "agrees": self.check.agrees},
        }


def points_liability(*, by: str = "day", first_day: date | None = None, last_day: date | None = None
                     ) -> LiabilityReport:
    """Earned, redeemed, reversed, expired, adjusted and written off per business day or month of
    [first_day, last_day] (None: open-ended), with the outstanding liability rolled forward.
    Periods without any movement are left out."""
    if by not in PERIODS:
        raise InvalidInput(f"by must be one of {', '.join(PERIODS)}, not {by!r}", field="by")
    if first_day and last_day and first_day > last_day:
        raise InvalidInput(f"from ({first_day}) is after to ({last_day})", field="from")
    with transaction.atomic():  # one view of the ledger where the database gives it (SQLite, MariaDB)
        opening = _points_before(first_day)
        days = _movements_by_day(first_day, last_day)
        for day, points in _written_off_by_day(first_day, last_day):
            days[day]["written_off"] += points
        check = liability_check()
    return LiabilityReport(by, first_day, last_day, opening, _roll_forward(opening, days, by), check)


def liability_check() -> LiabilityCheck:
    sql = (f"SELECT (SELECT COALESCE(SUM(delta), 0) FROM {LedgerEntry._meta.db_table} WHERE ledger = 'points'), "
           f"(SELECT COALESCE(SUM(remaining), 0) FROM {PointsLot._meta.db_table}), "
           f"(SELECT COALESCE(SUM(remaining), 0) FROM {PointsDebt._meta.db_table})")
    ledger_total, lots, debts = raw.fetch(sql, [])[0]
    return LiabilityCheck(int(ledger_total), int(lots), int(debts))


def _points_before(first_day: date | None) -> int:
    if first_day is None:
        return 0
    total = LedgerEntry.objects.filter(ledger="points", business_date__lt=first_day).aggregate(t=Sum("delta"))["t"]
    return int(total or 0)


def _day_range(first_day: date | None, last_day: date | None) -> Q:
    bounds = Q()
    if first_day is not None:
        bounds &= Q(business_date__gte=first_day)
    if last_day is not None:
        bounds &= Q(business_date__lte=last_day)
    return bounds


def _movements_by_day(first_day: date | None, last_day: date | None) -> defaultdict[date, dict[str, int]]:
    """GROUP BY business_date, source over the points ledger, folded into the report's columns."""
    rows = (LedgerEntry.objects.filter(_day_range(first_day, last_day), ledger="points")
            .values_list("business_date", "source").annotate(total=Sum("delta")).order_by())
    days: defaultdict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(MOVEMENTS, 0))
    for day, source, total in rows:
        # A source the report does not name yet still moves the liability: it shows as adjusted.
        column = COLUMN_OF_SOURCE.get(source, "adjusted")
        days[day][column] += -int(total) if column in OUTFLOWS else int(total)
    return days


def _written_off_by_day(first_day: date | None, last_day: date | None) -> Iterable[tuple[date, int]]:
    """Refunds' write-offs (`within_balance`), dated like their refund entries: the local date of
    `refunded_at` in the timezone of the rules that awarded the order. A fully written-off refund
    posts no points entry, so the dates are worked out here; the SQL bounds are a day wider."""
    bounds = Q()
    if first_day is not None:
        bounds &= Q(refunded_at__gte=datetime.combine(first_day - timedelta(days=1), time(), tzinfo=UTC))
    if last_day is not None:
        bounds &= Q(refunded_at__lt=datetime.combine(last_day + timedelta(days=2), time(), tzinfo=UTC))
    rows = Refund.objects.filter(bounds, points_written_off__gt=0).values_list(
        "refunded_at", "points_written_off", "order__ruleset_version")
    book = rulesets.rulebook()
    for refunded_at, points, version in rows:
        day = local_date(refunded_at, book.by_version(version).ruleset.timezone)
        if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
            yield day, int(points)


def _roll_forward(opening: int, days: dict[date, dict[str, int]], by: str) -> list[LiabilityRow]:
    periods: dict[str, dict[str, int]] = {}
    for day in sorted(days):
        period = day.isoformat() if by == "day" else f"{day:%Y-%m}"
        sums = periods.setdefault(period, dict.fromkeys(MOVEMENTS, 0))
        for name, value in days[day].items():
            sums[name] += value
    rows, balance = [], opening
    for period, m in periods.items():
        closing = balance + m["earned"] - m["redeemed"] - m["reversed"] - m["expired"] + m["adjusted"]
        rows.append(LiabilityRow(period, balance, m["earned"], m["redeemed"], m["reversed"], m["expired"],
                                 m["adjusted"], m["written_off"], closing))
        balance = closing
    return rows
