"""Refunds reverse an order's growth and points, proportionally and cumulatively (floor).

Refunding more than was paid, before the order was paid, or an unknown order is refused and
changes nothing. Points already spent are never silently lost: under `allow_debt` the shortfall
becomes a debt that later awards pay first; under `within_balance` it is written off.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import RefundEvent
from loyalty.domain.growth import OrderGrowth, growth_to_reverse
from loyalty.domain.periods import local_date
from loyalty.domain.points import clawback, points_to_reverse
from loyalty.services import rulesets
from loyalty.services.ledger import (
    Book,
    Posting,
    check_replay,
    live_lots,
    payload_hash,
    take_from_lots,
)
from loyalty.store.models import LedgerEntry, Member, Order, PointsDebt, PointsLot, Refund


@dataclass(frozen=True)
class RefundOutcome:
    refund_id: str
    order_id: str
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int
    replayed: bool = False


def _outcome(refund: Refund, replayed: bool) -> RefundOutcome:
    return RefundOutcome(refund.refund_id, refund.order_id, refund.growth_reversed, refund.points_reversed,
                         refund.points_debt_created, refund.points_written_off, replayed)


def record_refund(event: RefundEvent, *, clock: Clock = system_clock) -> RefundOutcome:
    digest = payload_hash(event.fingerprint())
    with transaction.atomic():
        existing = Refund.objects.filter(refund_id=event.refund_id).first()
        if existing is not None:
            check_replay(existing.payload_hash, digest, f"refund {event.refund_id}", "refund_id")
            return _outcome(existing, replayed=True)
        found = Order.objects.filter(order_id=event.order_id).values_list("member_id", flat=True).first()
        if found is None:
            raise NotFound(f"unknown order {event.order_id!r}", field="order_id", code="unknown_order")
        member = Member.objects.select_for_update().get(id=found)
        order = Order.objects.select_for_update().get(order_id=event.order_id)
        _check(order, event)
        refund = _reverse(order, member, event, digest, clock)
    return _outcome(refund, replayed=False)


def _check(order: Order, event: RefundEvent) -> None:
    if event.refunded_at < order.paid_at:
        raise InvalidInput("a refund cannot precede the order's payment", field="refunded_at")
    left = order.amount_fen - order.refunded_fen
    if event.amount_fen > left:
        raise Refused(f"refund exceeds what is left to refund on order {order.order_id} "
                      f"({left} fen of {order.amount_fen})", field="amount", code="refund_exceeds_paid")


def _reverse(order: Order, member: Member, event: RefundEvent, digest: str, clock: Clock) -> Refund:
    active = rulesets.by_version(order.ruleset_version)  # the rules that awarded are the rules that reverse
    rules = active.ruleset
    bonus = rules.growth.large_order_bonus
    growth = growth_to_reverse(OrderGrowth(order.growth_base, order.growth_bonus), order.amount_fen,
                               order.refunded_fen, event.amount_fen, bonus.min_amount_fen if bonus else None)
    points = points_to_reverse(order.points, order.amount_fen, order.refunded_fen, event.amount_fen)
    day = local_date(event.refunded_at, rules.timezone)
    posting = Posting("refund", event.refund_id, f"refund:{event.refund_id}", order.ruleset_version,
                      event.refunded_at, day)
    book = Book(clock.now())
    key = f"order:{order.order_id}"
    originals = dict(LedgerEntry.objects.filter(idempotency_key__in=[f"{key}:growth", f"{key}:points"])
                     .values_list("ledger", "id"))
    if growth:
        book.post(member.id, "growth", -growth, posting, key_suffix=":growth", reverses_id=originals.get("growth"))
    debt, written_off = _claw_points(member, order, points, posting, book, originals.get("points"),
                                     rules.points.return_policy, event)
    book.add_totals(member.id, refunded_fen=event.amount_fen)
    book.flush()
    Order.objects.filter(id=order.id).update(
        refunded_fen=order.refunded_fen + event.amount_fen, growth_reversed=order.growth_reversed + growth,
        points_reversed=order.points_reversed + points)
    return Refund.objects.create(
        refund_id=event.refund_id, order_id=order.order_id, member=member, amount_fen=event.amount_fen,
        refunded_at=event.refunded_at, growth_reversed=growth, points_reversed=points,
        points_debt_created=debt, points_written_off=written_off, payload_hash=digest, recorded_at=clock.now())


def _claw_points(member: Member, order: Order, points: int, posting: Posting, book: Book,
                 original_id: int | None, policy: str, event: RefundEvent) -> tuple[int, int]:
    """Take back `points`; returns (debt created, written off)."""
    if points == 0:
        return 0, 0
    own = PointsLot.objects.filter(key=f"order:{order.order_id}:points").values_list("id", flat=True).first()
    takes, shortfall = clawback(live_lots(member.id, event.refunded_at), points, event.refunded_at, own)
    take_from_lots(takes)
    if shortfall and policy == "allow_debt":
        PointsDebt.objects.create(member=member, key=f"{posting.key}:debt", reference=posting.reference,
                                  amount=shortfall, remaining=shortfall, created_at=book.recorded_at)
        book.add_totals(member.id, points_debt=shortfall)
        book.post(member.id, "points", -points, posting, key_suffix=":points", reverses_id=original_id)
        return shortfall, 0
    book.post(member.id, "points", -(points - shortfall), posting, key_suffix=":points", reverses_id=original_id)
    return 0, shortfall
