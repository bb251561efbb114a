"""Recording paid orders: growth and points per SPEC, once per order id, in batches or one by one.

`record_orders` is the one code path: a single order is a batch of one. Decisions for a whole
batch are made in memory against the locked members, then written set-based; an event that
fails (unknown member, conflicting replay) is answered with its error and writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db.models import Sum

from loyalty.clock import Clock, FixedClock, system_clock
from loyalty.domain.errors import InvalidInput, LoyaltyError, NotFound
from loyalty.domain.events import OrderEvent
from loyalty.domain.grants import after_upgrade_growth, is_after_upgrade
from loyalty.domain.growth import OrderGrowth, apply_daily_cap, order_growth
from loyalty.domain.limits import shared_reason
from loyalty.domain.periods import local_date
from loyalty.domain.points import lot_available_at, lot_expires_at, order_points
from loyalty.domain.rules import AfterUpgrade, Ruleset
from loyalty.services import rulesets
from loyalty.services.batches import EventBatch, only, run_batch
from loyalty.services.ledger import Posting, check_replay, payload_hash
from loyalty.services.links import Links
from loyalty.services.tiers import evaluate_tiers
from loyalty.store import sql
from loyalty.store.bulk import insert_rows
from loyalty.store.models import LedgerEntry, Order, OrderItem
from loyalty.store.sql import MemberRow

ORDER_FIELDS = ("order_id", "member", "paid_at", "business_date", "amount_fen", "growth_base",
                "growth_bonus", "points", "ruleset_version", "payload_hash", "recorded_at", "quote_id", "hold",
                "capped_reason", "device_id", "ip", "address_hash")
ITEM_FIELDS = ("order", "member", "sku", "category", "amount_fen")


@dataclass(frozen=True)
class OrderOutcome:
    order_id: str
    member: str
    growth: int
    points: int
    ruleset_version: int
    capped_reason: str = ""  # why it credited nothing: device_shared, address_shared (docs/abuse.md)
    replayed: bool = False


def record_order(event: OrderEvent, *, clock: Clock = system_clock) -> OrderOutcome:
    """Record one paid order; raises the event's error."""
    return only(record_orders([event], clock=clock))


def record_orders(events: Sequence[OrderEvent], *, clock: Clock = system_clock) -> list[OrderOutcome | LoyaltyError]:
    """Record a batch in one transaction; answers one outcome or error per event, in order."""
    return run_batch(lambda: _Batch(clock.now()), events)


class _Batch(EventBatch[OrderEvent, OrderOutcome]):
    def __init__(self, now: datetime):
        super().__init__(now)
        self.members: dict[str, MemberRow] = {}
        self.existing: dict[str, tuple] = {}
        self.orders: list[tuple] = []
        self.items: list[tuple] = []
        self.growth_today: dict[tuple[int, date], int] = {}
        self.upgrade_members: set[int] = set()
        self.latest_paid_at = now
        self.upgrades: dict[int, list[Any]] = {}  # member -> [upgraded_at, orders paid since]
        self.links = Links()

    def load(self, events: Sequence[OrderEvent]) -> None:
        """Lock the batch's members and find the orders already recorded (replays)."""
        stamp, members, replays = sql.order_batch_reads(sorted({e.member for e in events}),
                                                        sorted({e.order_id for e in events}))
        self.rules = rulesets.rulebook(stamp)
        self.members = {member.external_id: member for member in members}
        external = {member.id: member.external_id for member in members}
        # A conflicting replay may belong to a member outside the batch: it is refused before its
        # member is ever named, so an unknown id stays empty.
        self.existing = {row[0]: (*row[:2], external.get(row[2], ""), *row[3:]) for row in replays}
        self.links.load((event.origin for event in events), list(external))
        self.upgrades = self._recent_upgrades(events)

    def _recent_upgrades(self, events: Sequence[OrderEvent]) -> dict[int, list[Any]]:
        """Members whose orders may earn the extra growth after an upgrade: [upgraded at, orders
        paid since]. Judged first on the locked rows (a tier above the base, reached recently
        enough, under rules that reward it), so most batches send no query for it."""
        candidates: dict[int, datetime] = {}
        for event in events:
            member = self.members.get(event.member)
            if member is None or member.tier_reached_at is None:
                continue
            try:
                rules = self.rules.in_force(event.paid_at).ruleset
            except NotFound:  # answered as the event's own error in decide_one
                continue
            rule = rules.operations.after_upgrade
            if rule and member.tier != rules.base_tier.code and is_after_upgrade(rule, member.tier_reached_at,
                                                                                   event.paid_at):
                candidates[member.id] = member.tier_reached_at
        return {member_id: [candidates[member_id], orders]
                for member_id, orders in sql.orders_since_upgrade(sorted(candidates)).items()}

    def decide_one(self, event: OrderEvent) -> OrderOutcome:
        digest = payload_hash(event.fingerprint())
        if event.order_id in self.existing:
            order_id, stored, member, base, bonus, points, version, reason = self.existing[event.order_id]
            check_replay(stored, digest, f"order {order_id}", "order_id")
            return OrderOutcome(order_id, member, base + bonus, points, version, reason, replayed=True)
        if event.amount_fen <= 0 or sum(line.amount_fen for line in event.lines) != event.amount_fen:
            raise InvalidInput("an order needs a positive amount that its lines add up to", field="amount")
        member = self.members.get(event.member)
        if member is None:
            raise NotFound(f"unknown member {event.member!r}; register the member first",
                           field="member", code="unknown_member")
        active = self.rules.in_force(event.paid_at)
        rules, zone = active.ruleset, active.ruleset.timezone
        day = local_date(event.paid_at, zone)
        earned = order_growth(event.lines, event.amount_fen, event.paid_at, rules.growth, zone)
        earned = self._after_upgrade(member.id, event.paid_at, earned, rules.operations.after_upgrade)
        reason = shared_reason(self.links.take_seats(member.id, event.origin, event.paid_at), rules.limits)
        if reason:  # still a purchase (totals, tier windows, refunds), but it earns nothing: docs/abuse.md
            awarded, points = OrderGrowth(0, 0), 0
        else:
            awarded = self._cap(member.id, day, earned, rules.growth.daily_cap)
            points = order_points(event.amount_fen, event.paid_at, member.birthday, rules.points, zone)
        # A member under review: the order is recorded, its credit withheld (services.holds).
        hold = "held" if member.held_since is not None and not reason else ""
        self._post(member, event, active.version, day, awarded, points, rules, held=bool(hold))
        if rules.evaluation.immediate_upgrade and not hold:
            self.upgrade_members.add(member.id)
            self.latest_paid_at = max(self.latest_paid_at, event.paid_at + timedelta(microseconds=1))
        self.existing[event.order_id] = (event.order_id, digest, member.external_id, awarded.base,
                                         awarded.bonus, points, active.version, reason)
        self.orders.append((event.order_id, member.id, event.paid_at, day, event.amount_fen, awarded.base,
                            awarded.bonus, points, active.version, digest, self.now, event.quote_id, hold,
                            reason, event.origin.device_id, event.origin.ip, event.origin.address_hash))
        self.items.extend((event.order_id, member.id, sku, line.category or "", line.amount_fen)
                          for sku, line in zip(event.skus, event.lines, strict=True))
        return OrderOutcome(event.order_id, member.external_id, awarded.total, points, active.version, reason)

    def _after_upgrade(self, member_id: int, paid_at: datetime, earned: OrderGrowth,
                       rule: AfterUpgrade | None) -> OrderGrowth:
        """Extra growth for the first orders paid after the member's latest upgrade, counted in
        the order they are recorded (every order paid since counts, boosted or not)."""
        upgrade = self.upgrades.get(member_id)
        if upgrade is None or paid_at < upgrade[0]:
            return earned
        orders_before = upgrade[1]
        upgrade[1] += 1
        if rule is None or not is_after_upgrade(rule, upgrade[0], paid_at):
            return earned
        return after_upgrade_growth(earned, rule, orders_before)

    def _cap(self, member_id: int, day: date, earned: OrderGrowth, cap: int | None) -> OrderGrowth:
        if cap is None:
            return earned
        key = (member_id, day)
        if key not in self.growth_today:
            total = LedgerEntry.objects.filter(member_id=member_id, ledger="growth", business_date=day,
                                               delta__gt=0).aggregate(total=Sum("delta"))["total"]
            self.growth_today[key] = int(total or 0)
        awarded = apply_daily_cap(earned, self.growth_today[key], cap)
        self.growth_today[key] += awarded.total
        return awarded

    def _post(self, member: MemberRow, event: OrderEvent, version: int, day: date,
              awarded: OrderGrowth, points: int, rules: Ruleset, *, held: bool) -> None:
        key = f"order:{event.order_id}"
        self.book.add_totals(member.id, orders_count=1, paid_fen=event.amount_fen)
        if held:  # posted, under these same keys, if the review approves it
            return
        if awarded.total:
            self.book.post(member.id, "growth", awarded.total,
                           Posting("order", event.order_id, f"{key}:growth", version, event.paid_at, day))
        if points:
            self.book.award_points(
                member, points, Posting("order", event.order_id, f"{key}:points", version, event.paid_at, day),
                available_at=lot_available_at(event.paid_at, rules.points),
                expires_at=lot_expires_at(event.paid_at, rules.points, rules.timezone))

    def has_finish_work(self) -> bool:
        return bool(self.upgrade_members)

    def finish(self) -> None:
        """Under `immediate_upgrade`, members who just qualified move up now, not on the 1st."""
        if self.upgrade_members:
            # The later of now and the newest order, so that the orders just recorded count.
            as_of = max(self.now, self.latest_paid_at)
            evaluate_tiers(as_of, clock=FixedClock(self.now), member_ids=sorted(self.upgrade_members),
                           upgrades_only=True)

    def flush(self) -> None:
        insert_rows(Order, ORDER_FIELDS, self.orders)
        insert_rows(OrderItem, ITEM_FIELDS, self.items)
        self.links.flush()
        self.book.flush()
