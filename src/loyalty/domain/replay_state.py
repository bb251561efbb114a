"""The replay's working state: members with their lots, debts and orders, and each window's
running totals (contributions enter when they happen and leave when the window's start passes
them). Mutable and private to `domain.backtest`; `__slots__` because a replay holds millions."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime

from loyalty.domain.growth import OrderGrowth
from loyalty.domain.history import Newcomer
from loyalty.domain.periods import Window
from loyalty.domain.points import Lot


class HeldLot:
    __slots__ = ("available_at", "earned_at", "expired", "expires_at", "id", "remaining")

    def __init__(self, lot_id: int, points: int, earned_at: datetime, available_at: datetime,
                 expires_at: datetime | None):
        self.id, self.remaining, self.expired = lot_id, points, 0
        self.earned_at, self.available_at, self.expires_at = earned_at, available_at, expires_at

    def frozen(self) -> Lot:
        return Lot(self.id, self.remaining, self.earned_at, self.available_at, self.expires_at)


class ReplayedOrder:
    __slots__ = ("amount", "base", "bonus", "growth_reversed", "lot", "member", "paid_at", "points",
                 "points_reversed", "positions", "refunded")

    def __init__(self, member: ReplayedMember, paid_at: datetime, amount: int, awarded: OrderGrowth, points: int):
        self.member, self.paid_at, self.amount = member, paid_at, amount
        self.base, self.bonus, self.points = awarded.base, awarded.bonus, points
        self.refunded = self.growth_reversed = self.points_reversed = 0
        self.lot: HeldLot | None = None
        self.positions: tuple[int, ...] = ()  # where the order entered each window's log

    @property
    def counts(self) -> int:
        return 1 if self.amount > self.refunded else 0

    @property
    def net(self) -> int:
        return self.amount - self.refunded


class ReplayedMember:
    __slots__ = ("birthday", "bought_before", "counted", "debts", "deliveries", "delivery_month", "expires_at",
                 "growth", "invited", "key", "lots", "orders", "orders_since_upgrade", "points", "reached_at",
                 "records", "registered_at", "tier", "upgraded")

    def __init__(self, newcomer: Newcomer, base: str):
        self.key, self.registered_at = newcomer.member, newcomer.registered_at
        self.birthday, self.invited = newcomer.birthday, newcomer.invited
        self.tier, self.reached_at = base, newcomer.registered_at
        self.expires_at: datetime | None = None
        self.counted = False  # in the replay's members-per-tier count (registered by the last month's end)
        self.upgraded = False  # whether `reached_at` was an upgrade (the extra growth after one)
        self.orders_since_upgrade = 0
        self.growth = self.points = 0
        self.lots: list[HeldLot] = []
        self.debts: list[list[int]] = []  # [debt id, remaining]
        self.orders: list[ReplayedOrder] = []
        self.records: list[tuple[datetime, str, int]] = []  # (at, metric, value): kept for immediate upgrades
        self.bought_before = False
        self.delivery_month, self.deliveries = "", 0  # orders in the month, for the free-delivery allowance

    @property
    def debt(self) -> int:
        return sum(remaining for _, remaining in self.debts)




class WindowTotals:
    """One window's totals per member: contributions enter when they happen and leave when the
    window's start passes their local day (starts fall on local midnights: month and year starts)."""

    def __init__(self, window: Window, metrics: set[str], zone: object):
        self.window, self.metrics, self.key = window, metrics, window.key
        self.totals: dict[str, dict[ReplayedMember, int]] = {metric: defaultdict(int) for metric in metrics}
        self.days: Counter[tuple[ReplayedMember, date]] = Counter()
        self.log: list[tuple[date, str, ReplayedMember, object]] = []
        self.next = 0  # log entries before it have left the window

    def add(self, day: date, metric: str, member: ReplayedMember, value: object, touched: set[ReplayedMember]) -> None:
        if metric == "order":
            order = value
            assert isinstance(order, ReplayedOrder)
            self._order(member, order.counts, order.net)
        elif metric == "day":
            self.days[(member, day)] += 1
            if self.days[(member, day)] == 1:
                self.totals["active_days"][member] += 1
        else:
            assert isinstance(value, int)
            self.totals[metric][member] += value
        self.log.append((day, metric, member, value))
        touched.add(member)

    def _order(self, member: ReplayedMember, count: int, amount: int) -> None:
        if "orders" in self.totals:
            self.totals["orders"][member] += count
        if "amount" in self.totals:
            self.totals["amount"][member] += amount

    def refunded(self, order: ReplayedOrder, before: tuple[int, int], touched: set[ReplayedMember],
                 position: int) -> None:
        """An order's net changed: its totals move while the order is still inside the window."""
        if position < self.next:
            return
        self._order(order.member, order.counts - before[0], order.net - before[1])
        touched.add(order.member)

    def move_start(self, start_day: date, touched: set[ReplayedMember]) -> None:
        log, position = self.log, self.next
        while position < len(log) and log[position][0] < start_day:
            day, metric, member, value = log[position]
            if metric == "order":
                assert isinstance(value, ReplayedOrder)
                self._order(member, -value.counts, -value.net)
            elif metric == "day":
                self.days[(member, day)] -= 1
                if not self.days[(member, day)]:
                    del self.days[(member, day)]
                    self.totals["active_days"][member] -= 1
            else:
                assert isinstance(value, int)
                self.totals[metric][member] -= value
            touched.add(member)
            position += 1
        self.next = position
