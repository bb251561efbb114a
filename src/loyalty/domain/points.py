"""Points (积分): earned, spent and expiring, held as lots.

Each award is a lot with an expiry (ruleset policy) that may be pending for N days before it can
be spent. Spending draws on the soonest-expiring available lots first. A refund claws back its
order's points, from the order's own lot first; what cannot be clawed back becomes a debt
(`allow_debt`, paid off first by later awards) or is written off (`within_balance`).

Invariant the services keep: Σ lots.remaining − Σ debts.remaining == Σ points entries == balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from loyalty.domain.money import floor_int, proportion_floor, yuan_times_rate
from loyalty.domain.periods import add_months, is_birthday, local_date, start_of_day
from loyalty.domain.rules import PointsRules


def order_points(paid_fen: int, paid_at: datetime, birthday: date | None,
                 rules: PointsRules, zone: ZoneInfo) -> int:
    """floor(yuan × per_yuan), then × the birthday multiplier (floored) on the member's birthday."""
    points = floor_int(yuan_times_rate(paid_fen, rules.per_yuan))
    if is_birthday(paid_at, birthday, zone):
        points = floor_int(points * rules.birthday_multiplier)
    return points


def points_to_reverse(awarded: int, paid_fen: int, refunded_before_fen: int, refund_fen: int,
                      *, expired: int = 0, reversed_before: int = 0) -> int:
    """Cumulative proportional take-back (floor), so a full refund takes back exactly all.

    Points of the order that already expired are gone once and never taken a second time: a
    refund takes its share, but no more than the award less what expired and what earlier
    refunds took (so the points spent before the expiry are what is left to take back)."""
    before = proportion_floor(awarded, refunded_before_fen, paid_fen)
    share = proportion_floor(awarded, refunded_before_fen + refund_fen, paid_fen) - before
    return min(share, max(0, awarded - expired - reversed_before))


def lot_available_at(earned_at: datetime, rules: PointsRules) -> datetime:
    return earned_at + timedelta(days=rules.pending_days)


def lot_expires_at(earned_at: datetime, rules: PointsRules, zone: ZoneInfo) -> datetime | None:
    """When a lot earned at `earned_at` expires (the instant it stops counting), or None."""
    if rules.expiry == "never":
        return None
    if rules.expiry == "days_after_earning":
        assert rules.expiry_days is not None
        return earned_at + timedelta(days=rules.expiry_days)
    day = local_date(earned_at, zone)
    if rules.expiry == "end_of_month":
        return start_of_day(add_months(day.replace(day=1), 1), zone)
    return start_of_day(date(day.year + 1, 1, 1), zone)  # end_of_year


@dataclass(frozen=True)
class Lot:
    id: int
    remaining: int
    earned_at: datetime
    available_at: datetime
    expires_at: datetime | None

    def is_live(self, as_of: datetime) -> bool:
        return self.remaining > 0 and (self.expires_at is None or self.expires_at > as_of)

    def is_spendable(self, as_of: datetime) -> bool:
        return self.is_live(as_of) and self.available_at <= as_of


Take = tuple[int, int]  # (lot id, points taken)


def _draw_order(lot: Lot) -> tuple[bool, datetime, datetime, int]:
    # Soonest expiry first; lots that never expire last; ties by age then id (deterministic).
    return (lot.expires_at is None, lot.expires_at or lot.earned_at, lot.earned_at, lot.id)


def _take(lots: Iterable[Lot], points: int) -> tuple[list[Take], int]:
    takes, left = [], points
    for lot in lots:
        if left == 0:
            break
        taken = min(lot.remaining, left)
        takes.append((lot.id, taken))
        left -= taken
    return takes, left


def spendable_balance(lots: Iterable[Lot], as_of: datetime) -> int:
    return sum(lot.remaining for lot in lots if lot.is_spendable(as_of))


def draw(lots: Sequence[Lot], points: int, as_of: datetime) -> tuple[list[Take], int]:
    """Spend `points` from spendable lots, soonest-expiring first. Returns takes and the shortfall."""
    return _take(sorted((lot for lot in lots if lot.is_spendable(as_of)), key=_draw_order), points)


def clawback(lots: Sequence[Lot], points: int, as_of: datetime, own_lot_id: int | None) -> tuple[list[Take], int]:
    """Take back a refund's points: the order's own lot first (even if pending), then any live lot."""
    live = sorted((lot for lot in lots if lot.is_live(as_of)), key=_draw_order)
    live.sort(key=lambda lot: lot.id != own_lot_id)  # stable: own lot first, the rest keep draw order
    return _take(live, points)


def expiring(lots: Iterable[Lot], as_of: datetime) -> list[Lot]:
    """Lots whose expiry has passed and still hold points: the daily expiry job's work."""
    return [lot for lot in lots if lot.remaining > 0 and lot.expires_at is not None and lot.expires_at <= as_of]


def settle_debts(debts: Sequence[tuple[int, int]], points: int) -> tuple[list[Take], int]:
    """An award pays outstanding debts (id, remaining) oldest first; returns payments and the rest."""
    payments, left = [], points
    for debt_id, remaining in sorted(debts):
        if left == 0:
            break
        paid = min(remaining, left)
        payments.append((debt_id, paid))
        left -= paid
    return payments, left
