"""The backtest: a history replayed month by month through the rules engine, in memory.

`replay(ruleset, history)` decides every order, action, refund and redemption with the same
functions the services call (`order_growth`, `order_points`, `action_award`, `growth_to_reverse`,
`points_to_reverse`, `clawback`, `draw`, `settle_debts`, `evaluate`, `monthly_coupons`), in the
order the services would see them: each local day's orders, then its actions, its refunds and
its redemptions; at each month's end the tier evaluation, then the expiry of points, then the
next month's coupons. It writes nothing and reads no clock, so two rulesets can be compared
on one history (`compare`).

Window metrics are kept as running totals per window: each contribution is added when it
happens and taken out when the window's start passes it, so a month's evaluation costs the
month's events, not the members' whole history. Only members whose totals moved, or whose tier
expires, are evaluated again (an unchanged member cannot earn a different tier), unless the
score ranks members against each other (percentile), which moves everyone.

Not replayed: device and address limits, holds, adjustments, quotes and coupon redemptions
(the history carries none of them); birthday packs, sprint and recall coupons and budgets.
"""

from __future__ import annotations

import gc
import heapq
import zlib
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal

from loyalty.domain.conditions import Facts, MetricKey
from loyalty.domain.events import ActionEvent, OrderEvent, RefundEvent
from loyalty.domain.grants import after_upgrade_growth, is_after_upgrade, month_of, monthly_coupons
from loyalty.domain.growth import OrderGrowth, action_award, apply_daily_cap, growth_to_reverse, order_growth
from loyalty.domain.history import History, MemberState, MonthFigures, Newcomer, Replay, Spend
from loyalty.domain.periods import Window, add_months, local_date, start_of_day
from loyalty.domain.points import (
    clawback,
    draw,
    lot_available_at,
    lot_expires_at,
    order_points,
    points_to_reverse,
    settle_debts,
)
from loyalty.domain.replay_state import HeldLot, ReplayedMember, ReplayedOrder, WindowTotals
from loyalty.domain.rules import Ruleset
from loyalty.domain.tiers import Standing, evaluate, needed_metrics, with_score

__all__ = ["History", "MemberState", "MonthFigures", "Newcomer", "Replay", "Spend", "independent", "merge",
           "replay", "split"]

INTERACTIONS = ("review", "share")


def replay(ruleset: Ruleset, history: History, *, since: date | None = None, until: datetime | None = None
           ) -> Replay:
    """Every event of `history` under `ruleset`, month by month from the month of its first event
    (or of `since`) through the evaluation after its last month (or the one at `until`, a month
    start)."""
    with _without_cycle_collection():
        return _Replay(ruleset, history).run(since, until)


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The replay allocates millions of objects that all live until it returns; Python's cycle
    collector would walk them again and again as they accumulate (a third of the run time, and in
    a forked worker it would touch, and so copy, every inherited page). Nothing becomes garbage
    before the end, so the collector waits until then."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def independent(ruleset: Ruleset) -> bool:
    """Whether members can be replayed apart: nothing one member does changes what another gets
    (a percentile score ranks members against each other)."""
    return ruleset.score is None or ruleset.score.normalise != "percentile"


def split(history: History, parts: int) -> list[History]:
    """The history in `parts` by member (each member's events, refunds with their order's member),
    for replays in parallel of an `independent` ruleset; `merge` puts their outcomes together."""
    def part(member: str) -> int:
        return zlib.crc32(member.encode()) % parts

    owner = {order.order_id: part(order.member) for order in history.orders}
    shares: list[tuple[list[Newcomer], list[OrderEvent], list[RefundEvent], list[ActionEvent], list[Spend]]] = [
        ([], [], [], [], []) for _ in range(parts)]
    for newcomer in history.members:
        shares[part(newcomer.member)][0].append(newcomer)
    for order in history.orders:
        shares[owner[order.order_id]][1].append(order)
    for refund in history.refunds:
        shares[owner.get(refund.order_id, 0)][2].append(refund)
    for action in history.actions:
        shares[part(action.member)][3].append(action)
    for spend in history.spends:
        shares[part(spend.member)][4].append(spend)
    return [History(*share) for share in shares]


def merge(parts: Sequence[Replay]) -> Replay:
    """The outcomes of a split history's parts as one (every part replayed over the same months)."""
    months = []
    for figures in zip(*(p.months for p in parts), strict=True):
        total = MonthFigures(figures[0].month, figures[0].as_of)
        for month in figures:
            for name, value in vars(month).items():
                if isinstance(value, int):
                    setattr(total, name, getattr(total, name) + value)
            total.tiers.update(month.tiers)
            total.moves.update(month.moves)
        months.append(total)
    members = {key: state for p in parts for key, state in p.members.items()}
    return Replay(parts[0].ruleset, months, members, sum((p.refused for p in parts), Counter()))


# --- the replay ------------------------------------------------------------------------------


class _Replay:
    def __init__(self, ruleset: Ruleset, history: History):
        self.rules, self.zone = ruleset, ruleset.timezone
        self.base = ruleset.base_tier.code
        self.history = history
        self.members: dict[str, ReplayedMember] = {}
        for newcomer in sorted(history.members, key=lambda m: (m.registered_at, m.member)):
            self.members.setdefault(newcomer.member, ReplayedMember(newcomer, self.base))
        # The members-per-tier count: members known in advance join it once registered (latest last
        # here, so the next to join is popped from the end), members first seen in an order at once.
        self.waiting = sorted(self.members.values(), key=lambda m: m.registered_at, reverse=True)
        self.fresh: list[ReplayedMember] = []
        self.tier_counts: Counter[str] = Counter()
        self.orders: dict[str, ReplayedOrder] = {}
        self.refused: Counter[str] = Counter()
        self.ids = 0
        self.touched: set[ReplayedMember] = set()
        self.growth_today: Counter[tuple[ReplayedMember, date]] = Counter()
        self.per_day: Counter[tuple[ReplayedMember, str, date]] = Counter()
        self.per_ref: Counter[tuple[ReplayedMember, str, str]] = Counter()
        by_window: dict[str, set[str]] = defaultdict(set)
        for metric, key in needed_metrics(ruleset):
            by_window[key].add(metric)
        self.max_single = {key for key, metrics in by_window.items() if "max_single_order" in metrics}
        self.windows = [WindowTotals(Window.from_key(key), metrics, self.zone) for key, metrics in by_window.items()]
        self.order_windows = [w for w in self.windows if w.metrics & {"orders", "amount", "max_single_order"}]
        self.day_windows = [w for w in self.windows if "active_days" in w.metrics]
        self.metric_windows = {metric: [w for w in self.windows if metric in w.metrics]
                               for metric in ("growth", "points", "interactions")}
        self.expiries: dict[datetime, list[tuple[HeldLot, ReplayedMember]]] = defaultdict(list)
        self.expiry_times: list[datetime] = []  # a heap of the keys of `expiries`
        self.lot_terms: dict[date, tuple[datetime | None, timedelta]] = {}
        self.tier_ends: list[tuple[datetime, int, ReplayedMember]] = []  # a heap: members whose tier may expire
        self.immediate = ruleset.evaluation.immediate_upgrade
        # Free deliveries a month by tier (None: unlimited); tiers without any are left out.
        self.allowances = {code: b.free_delivery_per_month for code, b in ruleset.benefits.items()
                           if b.free_delivery_per_month != 0}
        self.percentile = ruleset.score is not None and ruleset.score.normalise == "percentile"
        self.month: MonthFigures | None = None

    def _next_id(self) -> int:
        self.ids += 1
        return self.ids

    # --- the calendar ---

    def run(self, since: date | None, until: datetime | None) -> Replay:
        days = self._by_day()
        if not days and since is None:
            return Replay(self.rules.name, [], self._states(), self.refused)
        first = since if since is not None else min(days)
        last = max(days) if days else first
        if until is not None:
            last = local_date(until, self.zone) - timedelta(days=1)
        month_first = first.replace(day=1)
        months: list[MonthFigures] = []
        while month_first <= last:
            next_first = add_months(month_first, 1)
            self.month = MonthFigures(f"{month_first:%Y-%m}", start_of_day(next_first, self.zone))
            buyers: set[ReplayedMember] = set()
            day = month_first
            while day < next_first:
                work = days.pop(day, None)
                if work is not None:
                    self._day(work, buyers)
                day += timedelta(days=1)
            self._month_end(self.month)
            months.append(self.month)
            month_first = next_first
        return Replay(self.rules.name, months, self._states(), self.refused)

    def _by_day(self) -> dict[date, tuple[list[OrderEvent], list[ActionEvent], list[RefundEvent], list[Spend]]]:
        days: dict[date, tuple[list[OrderEvent], list[ActionEvent], list[RefundEvent], list[Spend]]] = {}

        def put(moment: datetime, index: int, item: object) -> None:
            day = local_date(moment, self.zone)
            if day not in days:
                days[day] = ([], [], [], [])
            days[day][index].append(item)  # type: ignore[arg-type]

        for order in sorted(self.history.orders, key=lambda e: (e.paid_at, e.order_id)):
            put(order.paid_at, 0, order)
        for action in sorted(self.history.actions, key=lambda e: (e.at, e.event_id)):
            put(action.at, 1, action)
        for refund in sorted(self.history.refunds, key=lambda e: (e.refunded_at, e.refund_id)):
            put(refund.refunded_at, 2, refund)
        for spend in sorted(self.history.spends, key=lambda e: (e.at, e.redemption_id)):
            put(spend.at, 3, spend)
        return days

    def _day(self, work: tuple[list[OrderEvent], list[ActionEvent], list[RefundEvent], list[Spend]],
             buyers: set[ReplayedMember]) -> None:
        orders, actions, refunds, spends = work
        if orders:
            self._orders(orders, buyers)
        for action in actions:
            self._action(action)
        for refund in refunds:
            self._refund(refund)
        for spend in spends:
            self._spend(spend)

    # --- orders ---

    def _member(self, key: str, at: datetime) -> ReplayedMember:
        member = self.members.get(key)
        if member is None:  # registered as of the first order, as an import registers
            member = self.members[key] = ReplayedMember(Newcomer(key, at), self.base)
            self.fresh.append(member)
        return member

    def _orders(self, events: list[OrderEvent], buyers: set[ReplayedMember]) -> None:
        """A day's orders, as `orders._Batch.decide_one` decides each. The hottest loop of the
        replay: what it reads is held in locals, and what a ruleset does not use is skipped."""
        rules, month, zone, members, known = self.rules, self.month, self.zone, self.members, self.orders
        assert month is not None
        growth_rules, points_rules = rules.growth, rules.points
        rule = rules.operations.after_upgrade
        # As an order batch judges the boost: on the members as they stood when the day's batch began.
        boosted = {e.member for e in events if (m := members.get(e.member)) is not None and m.upgraded
                   and self._boost_candidate(m, e.paid_at)} if rule else set()
        capped, windows, touched = growth_rules.daily_cap is not None, self.order_windows, self.touched
        allowances, label = self.allowances, month.month
        immediate: set[ReplayedMember] = set()
        for event in events:
            if event.order_id in known:
                self.refused["duplicate_order"] += 1
                continue
            paid_at = event.paid_at
            member = members.get(event.member) or self._member(event.member, paid_at)
            day = paid_at.astimezone(zone).date()  # aware: checked when the event was parsed
            awarded = order_growth(event.lines, event.amount_fen, paid_at, growth_rules, zone)
            if boosted and event.member in boosted:
                awarded = self._after_upgrade(member, paid_at, awarded)
            if capped:
                awarded = self._cap(member, day, awarded)
            points = order_points(event.amount_fen, paid_at, member.birthday, points_rules, zone)
            order = known[event.order_id] = ReplayedOrder(member, paid_at, event.amount_fen, awarded, points)
            member.orders.append(order)
            if windows:
                order.positions = tuple(len(window.log) for window in windows)
                for window in windows:
                    window.add(day, "order", member, order, touched)
            if self.day_windows or self.immediate:
                self._days(day, member, paid_at)
            if awarded.base or awarded.bonus:
                self._growth(member, day, awarded.base + awarded.bonus, paid_at)
            if points:
                order.lot = self._award(member, day, points, paid_at)
            month.orders += 1
            if member not in buyers:
                buyers.add(member)
                month.buyers += 1
                month.retained += member.bought_before
            member.bought_before = True
            if allowances and member.tier in allowances:
                month.free_deliveries += self._free_delivery(member, label)
            if self.immediate:
                immediate.add(member)
        if immediate:
            as_of = events[-1].paid_at + timedelta(microseconds=1)
            for member in immediate:
                reason = self._decide(member, as_of, self._facts_at(member, as_of), upgrades_only=True)
                if reason is not None:
                    month.moves[reason] += 1

    def _boost_candidate(self, member: ReplayedMember, paid_at: datetime) -> bool:
        rule = self.rules.operations.after_upgrade
        return bool(rule and member.upgraded and member.tier != self.base
                    and is_after_upgrade(rule, member.reached_at, paid_at))

    def _after_upgrade(self, member: ReplayedMember, paid_at: datetime, earned: OrderGrowth) -> OrderGrowth:
        """As `orders._Batch._after_upgrade`: every order paid since the upgrade counts, boosted or not."""
        if paid_at < member.reached_at:
            return earned
        before = member.orders_since_upgrade
        member.orders_since_upgrade += 1
        rule = self.rules.operations.after_upgrade
        if rule is None or not is_after_upgrade(rule, member.reached_at, paid_at):
            return earned
        return after_upgrade_growth(earned, rule, before)

    def _cap(self, member: ReplayedMember, day: date, earned: OrderGrowth) -> OrderGrowth:
        return apply_daily_cap(earned, self.growth_today[(member, day)], self.rules.growth.daily_cap)

    def _free_delivery(self, member: ReplayedMember, month: str) -> int:
        """Whether this order's delivery was free: every one under an unlimited allowance, else the
        first N of the member's month (`member.tier` is in `allowances`)."""
        allowance = self.allowances[member.tier]
        if allowance is None:  # unlimited
            return 1
        if member.delivery_month != month:
            member.delivery_month, member.deliveries = month, 0
        member.deliveries += 1
        return 1 if member.deliveries <= allowance else 0

    # --- ledger movements ---

    def _growth(self, member: ReplayedMember, day: date, delta: int, at: datetime) -> None:
        member.growth += delta
        assert self.month is not None
        if delta > 0:
            if self.rules.growth.daily_cap is not None:  # what is left of the day's cap: read only under one
                self.growth_today[(member, day)] += delta
            self.month.growth_earned += delta
        else:
            self.month.growth_reversed -= delta
        if self.immediate or self.metric_windows["growth"]:
            self._contribute(day, "growth", member, delta, at)

    def _contribute(self, day: date, metric: str, member: ReplayedMember, value: int, at: datetime) -> None:
        if self.immediate:
            member.records.append((at, metric, value))
        for window in self.metric_windows[metric]:
            window.add(day, metric, member, value, self.touched)

    def _days(self, day: date, member: ReplayedMember, at: datetime) -> None:
        if self.immediate:
            member.records.append((at, "day", 1))
        for window in self.day_windows:
            window.add(day, "day", member, 1, self.touched)

    def _award(self, member: ReplayedMember, day: date, points: int, at: datetime) -> HeldLot | None:
        """+points: debts are paid first (oldest first), the rest becomes a lot."""
        member.points += points
        assert self.month is not None
        self.month.points_earned += points
        if self.immediate or self.metric_windows["points"]:
            self._contribute(day, "points", member, points, at)
        left = points
        if member.debts:
            payments, left = settle_debts([(debt[0], debt[1]) for debt in member.debts], points)
            paid = dict(payments)
            for debt in member.debts:
                debt[1] -= paid.get(debt[0], 0)
            member.debts = [debt for debt in member.debts if debt[1] > 0]
        if left <= 0:
            return None
        lot = HeldLot(self._next_id(), left, at, lot_available_at(at, self.rules.points), self._expires_at(at, day))
        member.lots.append(lot)
        if lot.expires_at is not None:
            bucket = self.expiries.get(lot.expires_at)
            if bucket is None:
                bucket = self.expiries[lot.expires_at] = []
                heapq.heappush(self.expiry_times, lot.expires_at)
            bucket.append((lot, member))
        return lot

    def _expires_at(self, at: datetime, day: date) -> datetime | None:
        """`lot_expires_at`, worked out once a day where the policy depends only on the day."""
        rules = self.rules.points
        if rules.expiry == "days_after_earning":
            return lot_expires_at(at, rules, self.zone)
        if day not in self.lot_terms:
            self.lot_terms[day] = (lot_expires_at(at, rules, self.zone), timedelta(0))
        return self.lot_terms[day][0]

    def _take(self, member: ReplayedMember, takes: Iterable[tuple[int, int]]) -> None:
        by_id = {lot.id: lot for lot in member.lots}
        for lot_id, taken in takes:
            by_id[lot_id].remaining -= taken
        member.lots = [lot for lot in member.lots if lot.remaining > 0]

    # --- actions, refunds, redemptions ---

    def _action(self, event: ActionEvent) -> None:
        member = self.members.get(event.member)
        if member is None:
            self.refused["unknown_member"] += 1
            return
        if event.type == "review":
            order = self.orders.get(event.ref)
            if order is None or order.member is not member:
                self.refused["unknown_order"] += 1
                return
        day = local_date(event.at, self.zone)
        award = action_award(self.rules.actions.get(event.type), done_today=self.per_day[(member, event.type, day)],
                             done_for_ref=self.per_ref[(member, event.type, event.ref)] if event.ref else 0,
                             earned_today=self.growth_today[(member, day)], daily_cap=self.rules.growth.daily_cap)
        self._days(day, member, event.at)
        if award.capped_reason:
            return
        self.per_day[(member, event.type, day)] += 1
        self.per_ref[(member, event.type, event.ref)] += 1
        if event.type in INTERACTIONS:
            self._contribute(day, "interactions", member, 1, event.at)
        if award.growth:
            self._growth(member, day, award.growth, event.at)
        if award.points:
            self._award(member, day, award.points, event.at)

    def _refund(self, event: RefundEvent) -> None:
        order = self.orders.get(event.order_id)
        if order is None:
            self.refused["unknown_order"] += 1
            return
        if event.amount_fen <= 0 or event.refunded_at < order.paid_at or event.amount_fen > order.net:
            self.refused["refund_refused"] += 1
            return
        member, rules, day = order.member, self.rules, local_date(event.refunded_at, self.zone)
        bonus = rules.growth.large_order_bonus
        growth = growth_to_reverse(OrderGrowth(order.base, order.bonus), order.amount, order.refunded,
                                   event.amount_fen, bonus.min_amount_fen if bonus else None)
        points = _points_to_reverse(order, event.amount_fen)
        if growth:
            self._growth(member, day, -growth, event.refunded_at)
        if points:
            self._claw(member, order, points, event, day)
        before = (order.counts, order.net)
        order.refunded += event.amount_fen
        order.growth_reversed += growth
        order.points_reversed += points
        for window, position in zip(self.order_windows, order.positions, strict=True):
            window.refunded(order, before, self.touched, position)

    def _claw(self, member: ReplayedMember, order: ReplayedOrder, points: int, event: RefundEvent, day: date) -> None:
        own = order.lot.id if order.lot is not None else None
        takes, shortfall = clawback([lot.frozen() for lot in member.lots], points, event.refunded_at, own)
        self._take(member, takes)
        clawed = points - shortfall
        if shortfall and self.rules.points.return_policy == "allow_debt":
            member.debts.append([self._next_id(), shortfall])
            clawed = points
        if clawed:
            member.points -= clawed
            assert self.month is not None
            self.month.points_reversed += clawed
            self._contribute(day, "points", member, -clawed, event.refunded_at)

    def _spend(self, spend: Spend) -> None:
        member = self.members.get(spend.member)
        if member is None:
            self.refused["unknown_member"] += 1
            return
        takes, shortfall = draw([lot.frozen() for lot in member.lots], spend.points, spend.at)
        if shortfall:
            self.refused["insufficient_points"] += 1
            return
        self._take(member, takes)
        member.points -= spend.points
        assert self.month is not None
        self.month.points_redeemed += spend.points

    # --- the month's end ---

    def _month_end(self, month: MonthFigures) -> None:
        as_of = month.as_of
        for window in self.windows:
            start, _ = window.window.bounds(as_of, self.zone)
            if start is not None:
                window.move_start(local_date(start, self.zone), self.touched)
        due = self.members.values() if self.percentile else self._due(as_of)
        population = self._population() if self.percentile else None
        for member in due:
            decision = self._decide(member, as_of, self._facts(member, as_of), population=population)
            if decision is not None:
                month.moves[decision] += 1
        self.touched = set()
        self._expire(as_of, month)
        self._count_registered(as_of)
        month.tiers = +self.tier_counts  # a copy, without the tiers nobody holds
        coupons = self._monthly_coupons(as_of)
        for tier, members in month.tiers.items():
            count, value_fen = coupons[tier]
            month.coupons += count * members
            month.coupon_value_fen += value_fen * members

    def _monthly_coupons(self, as_of: datetime) -> dict[str, tuple[int, int]]:
        """Each tier's monthly cash coupons (how many, their face value in all), free deliveries aside."""
        month = month_of(as_of, self.zone)
        coupons = {}
        for tier in self.rules.tiers:
            drafts = [d for d in monthly_coupons(self.rules.benefits.get(tier.code), month, 0)
                      if d.kind != "free_delivery"]
            coupons[tier.code] = (len(drafts), sum(d.value_fen for d in drafts))
        return coupons

    def _due(self, as_of: datetime) -> list[ReplayedMember]:
        """Members whose facts moved since the last evaluation, or whose tier expires: nobody
        else can be decided differently from last time."""
        due = set(self.touched)
        while self.tier_ends and self.tier_ends[0][0] <= as_of:
            ends, _, member = heapq.heappop(self.tier_ends)
            if member.expires_at == ends:  # not moved since
                due.add(member)
        return list(due)

    def _facts(self, member: ReplayedMember, as_of: datetime) -> Facts:
        metrics: dict[MetricKey, int | Decimal] = {}
        for window in self.windows:
            for metric, totals in window.totals.items():
                value = totals.get(member, 0)
                if value:
                    metrics[(metric, window.key)] = value
            if window.key in self.max_single:
                metrics[("max_single_order", window.key)] = self._max_single(member, window.window, as_of)
        return Facts(metrics, {"invited": member.invited})

    def _max_single(self, member: ReplayedMember, window: Window, as_of: datetime) -> int:
        start, end = window.bounds(as_of, self.zone)
        paid = [order.paid_at for order in member.orders]
        first = 0 if start is None else bisect_left(paid, start)
        return max((order.net for order in member.orders[first:] if order.paid_at < end), default=0)

    def _facts_at(self, member: ReplayedMember, as_of: datetime) -> Facts:
        """A member's facts at any moment, from their own records (the immediate upgrade's check)."""
        metrics: dict[MetricKey, int | Decimal] = {}
        for window in self.windows:
            start, end = window.window.bounds(as_of, self.zone)
            orders = [o for o in member.orders if (start is None or o.paid_at >= start) and o.paid_at < end]
            values = {"orders": sum(o.counts for o in orders), "amount": sum(o.net for o in orders),
                      "max_single_order": max((o.net for o in orders), default=0)}
            inside = [(at, metric, value) for at, metric, value in member.records
                      if (start is None or at >= start) and at < end]
            for _, metric, _ in inside:
                values.setdefault(metric, 0)
            for _, metric, value in inside:
                if metric == "day":
                    continue
                values[metric] += value
            if "active_days" in window.metrics:
                values["active_days"] = len({local_date(at, self.zone) for at, metric, _ in inside if metric == "day"})
            for metric in window.metrics:
                if metric in values:
                    metrics[(metric, window.key)] = values[metric]
        return Facts(metrics, {"invited": member.invited})

    def _population(self) -> dict[str, list[int | Decimal]]:
        key = self.rules.evaluation.window.key
        assert self.rules.score is not None
        population: dict[str, list[int | Decimal]] = {}
        for metric in self.rules.score.weights:
            window = next(w for w in self.windows if w.key == key)
            totals = window.totals.get(metric, {})
            population[metric] = sorted(totals.get(m, 0) for m in self.members.values())
        return population

    def _count_registered(self, as_of: datetime) -> None:
        """Members registered by `as_of` join the members-per-tier count, kept as tiers change
        (`_decide`) rather than counted over every member each month."""
        while self.waiting and self.waiting[-1].registered_at <= as_of:
            self._count(self.waiting.pop())
        for member in self.fresh:
            self._count(member)
        self.fresh = []

    def _count(self, member: ReplayedMember) -> None:
        if not member.counted:
            member.counted = True
            self.tier_counts[member.tier] += 1

    def _decide(self, member: ReplayedMember, as_of: datetime, facts: Facts, *, upgrades_only: bool = False,
                population: dict[str, list[int | Decimal]] | None = None) -> str | None:
        scored = with_score(facts, self.rules, population)
        decision = evaluate(self.rules, Standing(member.tier, member.expires_at), scored, as_of,
                            upgrades_only=upgrades_only)
        if not decision.changed:
            return None
        if member.counted:
            self.tier_counts[member.tier] -= 1
            self.tier_counts[decision.to_code] += 1
        member.tier, member.expires_at, member.reached_at = decision.to_code, decision.expires_at, as_of
        if decision.expires_at is not None:
            heapq.heappush(self.tier_ends, (decision.expires_at, self._next_id(), member))
        member.upgraded = decision.reason == "upgrade"
        member.orders_since_upgrade = 0
        return decision.reason

    def _expire(self, as_of: datetime, month: MonthFigures) -> None:
        emptied: set[ReplayedMember] = set()
        while self.expiry_times and self.expiry_times[0] <= as_of:
            for lot, member in self.expiries.pop(heapq.heappop(self.expiry_times)):
                if lot.remaining > 0:
                    lot.expired = lot.remaining
                    member.points -= lot.remaining
                    month.points_expired += lot.remaining
                    lot.remaining = 0
                    emptied.add(member)
        for member in emptied:
            member.lots = [kept for kept in member.lots if kept.remaining > 0]

    def _states(self) -> dict[str, MemberState]:
        return {key: MemberState(m.tier, m.expires_at, m.growth, m.points, m.debt) for key, m in self.members.items()}


def _points_to_reverse(order: ReplayedOrder, refund_fen: int) -> int:
    expired = order.lot.expired if order.lot is not None else 0
    return points_to_reverse(order.points, order.amount, order.refunded, refund_fen, expired=expired,
                             reversed_before=order.points_reversed)
