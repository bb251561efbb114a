"""Refunds reverse an order's growth and points, proportionally and cumulatively (floor).

Refunding more than was paid, before the order was paid, or an unknown order is refused and
changes nothing. Points already spent are never silently lost: under `allow_debt` the shortfall
becomes a debt that later awards pay first; under `within_balance` it is written off. The
rules that awarded an order are the rules that reverse it (its recorded ruleset version). The
refund that completes an order's refund gives back the coupons redeemed on it (`coupons.Returns`).

Like orders, refunds are decided a batch at a time in memory against locked rows and written
set-based; a single refund is a batch of one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, LoyaltyError, NotFound, Refused
from loyalty.domain.events import RefundEvent
from loyalty.domain.growth import OrderGrowth, growth_to_reverse
from loyalty.domain.periods import local_date
from loyalty.domain.points import Lot, clawback, points_to_reverse
from loyalty.services import coupons, rulesets
from loyalty.services.batches import EventBatch, only, run_batch
from loyalty.services.ledger import Posting, check_replay, lock_member_ids, payload_hash, take_from_lots
from loyalty.store.bulk import insert_rows, update_rows
from loyalty.store.models import LedgerEntry, Order, PointsDebt, PointsLot, Refund

REFUND_FIELDS = ("refund_id", "order", "member", "amount_fen", "refunded_at", "growth_reversed", "points_reversed",
                 "points_debt_created", "points_written_off", "payload_hash", "recorded_at")
DEBT_FIELDS = ("member", "key", "reference", "amount", "remaining", "created_at")


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    order_id: str
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int
    replayed: bool = False


def record_refund(event: RefundEvent, *, clock: Clock = system_clock) -> RefundOutcome:
    """Record one refund; raises the event's error."""
    return only(record_refunds([event], clock=clock))


def record_refunds(events: Sequence[RefundEvent], *, clock: Clock = system_clock) -> list[RefundOutcome | LoyaltyError]:
    """Record a batch in one transaction; one outcome or error per event, in order."""
    return run_batch(lambda: _Batch(clock.now()), events)


@dataclass
class _Order:
    """The locked order as the batch sees it, with what earlier refunds in the batch changed."""

    row: Mapping[str, Any]
    refunded_fen: int
    growth_reversed: int
    points_reversed: int
    touched: bool = False


class _Batch(EventBatch[RefundEvent, RefundOutcome]):
    def __init__(self, now: datetime):
        super().__init__(now)
        self.refunds: list[tuple[Any, ...]] = []
        self.debts: list[tuple[Any, ...]] = []

    def load(self, events: Sequence[RefundEvent]) -> None:
        """Lock the members, then their orders; read replays, live lots and the entries to reverse."""
        self.rules = rulesets.rulebook()
        order_ids = sorted({e.order_id for e in events})
        self.members = lock_member_ids(Order.objects.filter(order_id__in=order_ids).values_list("member_id", flat=True))
        self.orders = {row["order_id"]: _Order(row, row["refunded_fen"], row["growth_reversed"], row["points_reversed"])
                       for row in Order.objects.select_for_update().filter(order_id__in=order_ids).values()}
        # IMPORTANT: read replays only once the orders are locked, so a concurrent retry of the same
        # refund waits for the first and then answers as its replay.
        replays = Refund.objects.filter(refund_id__in=[e.refund_id for e in events]).values_list(
            "refund_id", "payload_hash", "order_id", "growth_reversed", "points_reversed", "points_debt_created",
            "points_written_off")
        self.existing: dict[str, tuple[Any, ...]] = {row[0]: row for row in replays}
        self.lots: dict[int, dict[int, Lot]] = defaultdict(dict)
        self.lot_ids: dict[str, int] = {}
        for lot_id, member_id, key, remaining, earned, available, expires in PointsLot.objects.filter(
                member_id__in=self.members, remaining__gt=0).values_list(
                "id", "member_id", "key", "remaining", "earned_at", "available_at", "expires_at"):
            self.lots[member_id][lot_id] = Lot(lot_id, remaining, earned, available, expires)
            self.lot_ids[key] = lot_id
        keys = [f"order:{o}:{ledger}" for o in order_ids for ledger in ("growth", "points")]
        self.entries = dict(LedgerEntry.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", "id"))
        expiries = [f"expiry:order:{o}:points" for o in order_ids]
        self.expired = {key: -delta for key, delta in LedgerEntry.objects.filter(idempotency_key__in=expiries)
                        .values_list("idempotency_key", "delta")}
        self.coupons = coupons.Returns(self.members, order_ids, self.now)  # redeemed on these orders, locked

    def decide_one(self, event: RefundEvent) -> RefundOutcome:
        digest = payload_hash(event.fingerprint())
        if event.refund_id in self.existing:
            refund_id, stored, order_id, growth, points, debt, written_off = self.existing[event.refund_id]
            check_replay(stored, digest, f"refund {refund_id}", "refund_id")
            return RefundOutcome(refund_id, order_id, growth, points, debt, written_off, replayed=True)
        order = self.orders.get(event.order_id)
        if order is None:
            raise NotFound(f"unknown order {event.order_id!r}", field="order_id", code="unknown_order")
        _check(order, event)
        outcome = self._reverse(order, event)
        self.existing[event.refund_id] = (event.refund_id, digest, event.order_id, outcome.growth_reversed,
                                          outcome.points_reversed, outcome.points_debt_created,
                                          outcome.points_written_off)
        self.refunds.append((event.refund_id, event.order_id, order.row["member_id"], event.amount_fen,
                             event.refunded_at, outcome.growth_reversed, outcome.points_reversed,
                             outcome.points_debt_created, outcome.points_written_off, digest, self.now))
        return outcome

    def _reverse(self, order: _Order, event: RefundEvent) -> RefundOutcome:
        row, member_id = order.row, order.row["member_id"]
        rules = self.rules.by_version(row["ruleset_version"]).ruleset
        bonus = rules.growth.large_order_bonus
        growth = growth_to_reverse(OrderGrowth(row["growth_base"], row["growth_bonus"]), row["amount_fen"],
                                   order.refunded_fen, event.amount_fen, bonus.min_amount_fen if bonus else None)
        points = points_to_reverse(row["points"], row["amount_fen"], order.refunded_fen, event.amount_fen,
                                   expired=self.expired.get(f"expiry:order:{event.order_id}:points", 0),
                                   reversed_before=order.points_reversed)
        posting = Posting("refund", event.refund_id, f"refund:{event.refund_id}", row["ruleset_version"],
                          event.refunded_at, local_date(event.refunded_at, rules.timezone))
        key = f"order:{event.order_id}"
        debt = written_off = 0
        # A held or forfeited order's credit was never posted: the refund posts nothing and only
        # lowers, through the order's reversed amounts below, what an approval would post.
        if not row["hold"]:
            if growth:
                self.book.post(member_id, "growth", -growth, replace(posting, key=f"{posting.key}:growth"),
                               reverses_id=self.entries.get(f"{key}:growth"))
            debt, written_off = self._claw(member_id, points, event, posting, rules.points.return_policy,
                                           self.entries.get(f"{key}:points"))
        self.book.add_totals(member_id, refunded_fen=event.amount_fen)
        order.refunded_fen += event.amount_fen
        order.growth_reversed += growth
        order.points_reversed += points
        order.touched = True
        if order.refunded_fen == row["amount_fen"]:  # fully refunded (a cancellation too): coupons go back
            self.coupons.give_back(event.order_id)
        return RefundOutcome(event.refund_id, event.order_id, growth, points, debt, written_off)

    def _claw(self, member_id: int, points: int, event: RefundEvent, posting: Posting, policy: str,
              original_id: int | None) -> tuple[int, int]:
        """Take back `points` from the member's lots (the order's own first); returns (debt, written off)."""
        if points == 0:
            return 0, 0
        lots = self.lots[member_id]
        own = self.lot_ids.get(f"order:{event.order_id}:points")
        takes, shortfall = clawback(list(lots.values()), points, event.refunded_at, own)
        for lot_id, taken in takes:
            lots[lot_id] = replace(lots[lot_id], remaining=lots[lot_id].remaining - taken)
        # Now, not in the flush: each conditional update must report the one row it changed,
        # which a pipelined flush cannot wait for.
        take_from_lots(takes)
        clawed = points - shortfall
        if shortfall and policy == "allow_debt":
            self.debts.append((member_id, f"{posting.key}:debt", posting.reference, shortfall, shortfall, self.now))
            self.book.add_totals(member_id, points_debt=shortfall)
            clawed = points
        if clawed:
            self.book.post(member_id, "points", -clawed, replace(posting, key=f"{posting.key}:points"),
                           reverses_id=original_id)
        debt = shortfall if policy == "allow_debt" else 0
        return debt, shortfall - debt

    def flush(self) -> None:
        insert_rows(PointsDebt, DEBT_FIELDS, self.debts)
        self.book.flush()
        update_rows(Order, ("refunded_fen", "growth_reversed", "points_reversed"), ("order_id",),
                    [(o.refunded_fen, o.growth_reversed, o.points_reversed, o.row["order_id"])
                     for o in self.orders.values() if o.touched])
        insert_rows(Refund, REFUND_FIELDS, self.refunds)
        self.coupons.flush()


def _check(order: _Order, event: RefundEvent) -> None:
    if event.amount_fen <= 0:
        raise InvalidInput("a refund amount must be positive", field="amount")
    if event.refunded_at < order.row["paid_at"]:
        raise InvalidInput("a refund cannot precede the order's payment", field="refunded_at")
    left = order.row["amount_fen"] - order.refunded_fen
    if event.amount_fen > left:
        raise Refused(f"refund exceeds what is left to refund on order {event.order_id} "
                      f"({left} fen of {order.row['amount_fen']})", field="amount", code="refund_exceeds_paid")
