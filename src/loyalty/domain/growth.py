"""Growth value (成长值): earned per paid order and per action, never spent; it decides tiers.

Per order, in this order (SPEC "Growth per paid order"):
  1. each line: amount × per_yuan × category multiplier   (exact decimals)
  2. the sum × the day multiplier (weekday in the ruleset's timezone)
  3. floor to an integer, then add the large-order bonus (not multiplied)
  4. cap by what is left of the member's daily growth cap
A refund takes back floor(base × refunded / paid), cumulatively, and the whole bonus once the
amount kept drops below the bonus threshold; a full refund therefore takes back exactly all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from loyalty.domain.money import FEN_PER_YUAN, floor_int, proportion_floor
from loyalty.domain.periods import weekday_name
from loyalty.domain.rules import ActionRule, GrowthRules


@dataclass(frozen=True)
class Line:
    category: str | None
    amount_fen: int


@dataclass(frozen=True)
class OrderGrowth:
    """Growth an order earns, split so that refunds can take back each part exactly."""

    base: int
    bonus: int

    @property
    def total(self) -> int:
        return self.base + self.bonus


def order_growth(lines: Sequence[Line], paid_fen: int, paid_at: datetime,
                 rules: GrowthRules, zone: ZoneInfo) -> OrderGrowth:
    """Growth before any daily cap. `lines` must sum to `paid_fen` (the service checks)."""
    rates, per_yuan = rules.line_rates, rules.per_yuan
    # Σ fen × rate, then yuan once: exact like yuan_times_rate per line (Decimal sums and a division
    # by 100 round nothing at these magnitudes), with one division per order instead of one per line.
    weighted = sum((rates.get(line.category or "", per_yuan) * line.amount_fen for line in lines),
                   Decimal(0)) / FEN_PER_YUAN
    day_multiplier = rules.day_multipliers.get(weekday_name(paid_at, zone), Decimal(1))
    base = floor_int(weighted * day_multiplier)
    bonus = rules.large_order_bonus
    return OrderGrowth(base, bonus.growth if bonus and paid_fen >= bonus.min_amount_fen else 0)


def apply_daily_cap(earned: OrderGrowth, earned_today: int, daily_cap: int | None) -> OrderGrowth:
    """What is actually awarded under the cap. The cap trims the base first, then the bonus."""
    if daily_cap is None:
        return earned
    allowed = max(0, min(earned.total, daily_cap - earned_today))
    bonus = min(earned.bonus, allowed)
    return OrderGrowth(allowed - bonus, bonus)


def growth_to_reverse(awarded: OrderGrowth, paid_fen: int, refunded_before_fen: int,
                      refund_fen: int, bonus_min_fen: int | None) -> int:
    """Growth a refund takes back: the cumulative target after it minus the target before it."""
    def taken_back(refunded_fen: int) -> int:
        base = proportion_floor(awarded.base, refunded_fen, paid_fen)
        kept_fen = paid_fen - refunded_fen
        # A full refund keeps nothing, so it takes the bonus back even when the threshold is 0.
        below_bonus = kept_fen <= 0 or (bonus_min_fen is not None and kept_fen < bonus_min_fen)
        bonus = awarded.bonus if refunded_fen > 0 and below_bonus else 0
        return base + bonus

    return taken_back(refunded_before_fen + refund_fen) - taken_back(refunded_before_fen)


@dataclass(frozen=True)
class ActionAward:
    growth: int
    points: int
    capped_reason: str | None = None


def action_award(rule: ActionRule | None, *, done_today: int, done_for_ref: int,
                 earned_today: int, daily_cap: int | None) -> ActionAward:
    """Growth and points for one action, given how many of the same kind already counted."""
    if rule is None:
        return ActionAward(0, 0, "action_not_rewarded")
    if rule.per_day is not None and done_today >= rule.per_day:
        return ActionAward(0, 0, "per_day_limit")
    if rule.per_order is not None and done_for_ref >= rule.per_order:
        return ActionAward(0, 0, "per_order_limit")
    growth = rule.growth
    if daily_cap is not None:
        growth = max(0, min(growth, daily_cap - earned_today))
        if growth == 0 and rule.growth > 0:
            return ActionAward(0, 0, "daily_growth_cap")
    return ActionAward(growth, rule.points)
