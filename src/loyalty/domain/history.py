"""What a backtest reads and what it answers: the history (members, orders, refunds, actions,
redemptions) and, per month and per member, what the replay found. Plain data, no behaviour."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent


@dataclass(frozen=True)
class Newcomer:
    """A member as the history knows them: registered at, birthday, invited to the invitation-only tiers."""

    member: str
    registered_at: datetime
    birthday: date | None = None
    invited: bool = False


@dataclass(frozen=True)
class Spend:
    """Points spent on something the platform priced (a redemption of `points`)."""

    redemption_id: str
    member: str
    points: int
    at: datetime


@dataclass(frozen=True)
class History:
    members: Sequence[Newcomer]
    orders: Sequence[OrderEvent]
    refunds: Sequence[RefundEvent] = ()
    actions: Sequence[ActionEvent] = ()
    spends: Sequence[Spend] = ()


@dataclass
class MonthFigures:
    """One month of the replay: what happened in it, and the evaluation at its end (`as_of`)."""

    month: str  # "2027-01"
    as_of: datetime  # 00:00 on the next month's 1st: the evaluation after the month
    orders: int = 0
    buyers: int = 0
    retained: int = 0  # buyers of the month who had bought in an earlier month
    growth_earned: int = 0
    growth_reversed: int = 0
    points_earned: int = 0
    points_redeemed: int = 0
    points_reversed: int = 0
    points_expired: int = 0
    free_deliveries: int = 0  # orders of the month that a tier's free delivery covered
    tiers: Counter[str] = field(default_factory=Counter)  # members per tier after the evaluation
    moves: Counter[str] = field(default_factory=Counter)  # upgrade | renew | downgrade
    coupons: int = 0  # issued at `as_of` for the next month
    coupon_value_fen: int = 0


@dataclass(frozen=True)
class MemberState:
    tier: str
    tier_expires_at: datetime | None
    growth: int
    points: int
    points_debt: int


@dataclass
class Replay:
    ruleset: str
    months: list[MonthFigures]
    members: dict[str, MemberState]
    refused: Counter[str] = field(default_factory=Counter)  # what the services would have refused, by code

    @property
    def final_tiers(self) -> Counter[str]:
        return Counter(state.tier for state in self.members.values())
