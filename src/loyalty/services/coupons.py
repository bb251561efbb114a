"""The coupon wallet, redemption on an order, and the return of a coupon whose order is fully
refunded (rules in `domain.coupons`).

Redemption locks the member, then the coupon: the order every writer takes its locks in. Two
redemptions of one coupon, or a redemption racing the refund of its order, so run one after the
other: exactly one redemption wins, and a refund never misses a coupon redeemed on its order.
A code is looked up among the named member's coupons only: another member's code answers as an
unknown one. Expiry is not stored by a job: an issued coupon past its validity is shown (and
filtered) as expired on read, so the wallet is right at every instant without a sweep.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from loyalty.clock import Clock, system_clock
from loyalty.domain.coupons import (
    EXPIRED,
    ISSUED,
    REDEEMED,
    STATES,
    Terms,
    check_redeemable,
    is_replay,
    shown_state,
    spend_of_recorded_order,
    state_after_refund,
)
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import text_id
from loyalty.services.batches import retry_races
from loyalty.services.ledger import lock_members
from loyalty.services.members import get_member
from loyalty.store.bulk import update_rows
from loyalty.store.models import Coupon, Order

MAX_PAGE = 200


@dataclass(frozen=True)
class CouponView:
    code: str
    kind: str
    value_fen: int
    min_spend_fen: int
    issued_at: datetime
    valid_from: datetime
    valid_until: datetime
    state: str  # as the member sees it at the moment of reading
    redeemed_at: datetime | None
    order_id: str | None


@dataclass(frozen=True)
class WalletPage:
    coupons: list[CouponView]
    next_cursor: int | None  # the id to read on from (older coupons); None on the last page


@dataclass(frozen=True)
class CouponRedemption:
    member: str
    coupon: CouponView
    replayed: bool = False


def _view(coupon: Coupon, as_of: datetime) -> CouponView:
    return CouponView(coupon.code, coupon.kind, coupon.value_fen, coupon.min_spend_fen, coupon.issued_at,
                      coupon.valid_from, coupon.valid_until, shown_state(coupon.state, coupon.valid_until, as_of),
                      coupon.redeemed_at, coupon.order_id or None)


def _shown_as(state: str, as_of: datetime) -> Q:
    """The rows shown in `state` at `as_of` (see `domain.coupons.shown_state`)."""
    if state == ISSUED:
        return Q(state=ISSUED, valid_until__gt=as_of)
    if state == EXPIRED:
        return Q(state=EXPIRED) | Q(state=ISSUED, valid_until__lte=as_of)
    return Q(state=state)


def wallet(external_id: str, *, state: str | None = None, before_id: int | None = None, limit: int = 50,
           clock: Clock = system_clock) -> WalletPage:
    """A member's coupons, newest first (in the order they were issued), a page at a time."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit must be from 1 to {MAX_PAGE}", field="limit")
    member = get_member(external_id)
    now = clock.now()
    rows = Coupon.objects.filter(member_id=member.id)
    if state is not None:
        rows = rows.filter(_shown_as(state, now))
    if before_id is not None:
        rows = rows.filter(id__lt=before_id)
    page = list(rows.order_by("-id")[:limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return WalletPage([_view(c, now) for c in page], page[-1].id if more else None)


def redeem_coupon(code: str, *, member: str, order_id: str, amount_fen: int | None = None,
                  clock: Clock = system_clock) -> CouponRedemption:
    """Redeem the member's coupon on an order. Idempotent on (code, order_id): a replay answers
    the first redemption. The spend judged against the minimum is the recorded order's (paid
    amount plus the face value) when the order is recorded, else `amount_fen` (the order's
    amount before this coupon), which a coupon with a minimum spend then requires."""
    text_id({"code": code}, "code")
    text_id({"member": member}, "member")
    text_id({"order_id": order_id}, "order_id")

    def redeem() -> CouponRedemption:
        with transaction.atomic():
            owner = lock_members([member]).get(member)
            coupon = None if owner is None else (
                Coupon.objects.select_for_update().filter(code=code, member_id=owner.id).first())
            if owner is None or coupon is None:
                raise NotFound(f"unknown coupon {code!r}", field="code", code="unknown_coupon")
            now = clock.now()
            terms = Terms(coupon.code, coupon.state, coupon.order_id, coupon.value_fen, coupon.min_spend_fen,
                          coupon.valid_from, coupon.valid_until)
            if is_replay(terms, order_id):
                return CouponRedemption(member, _view(coupon, now), replayed=True)
            order = Order.objects.filter(order_id=order_id).values_list("member_id", "amount_fen", "refunded_fen")
            spend = _spend(order.first(), owner.id, terms, amount_fen)
            check_redeemable(terms, order_id, spend, now)
            coupon.state, coupon.order_id, coupon.redeemed_at = REDEEMED, order_id, now
            coupon.save(update_fields=["state", "order_id", "redeemed_at"])
        return CouponRedemption(member, _view(coupon, now))

    return retry_races(redeem)


def _spend(order: tuple[Any, ...] | None, member_id: int, terms: Terms, amount_fen: int | None) -> int | None:
    """The spend before the coupon: the recorded order's, else what the client says."""
    if order is None:
        return amount_fen
    owner_id, paid_fen, refunded_fen = order
    if owner_id != member_id:
        raise Refused("the order was recorded for another member", field="order_id",
                      code="order_of_another_member")
    if refunded_fen >= paid_fen:
        raise Refused("the order was fully refunded", field="order_id", code="order_refunded")
    return spend_of_recorded_order(paid_fen, terms.value_fen)


class Returns:
    """The coupons redeemed on a refund batch's orders, locked as the batch loads, and those that
    go back to their member because their order is now fully refunded: issued while still
    valid, expired otherwise. Written in the refund's own transaction (`flush`: no reads)."""

    def __init__(self, member_ids: Sequence[int], order_ids: Sequence[str], now: datetime):
        self.now = now
        self.redeemed: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
        self.rows: list[tuple[Any, ...]] = []
        if not member_ids or not order_ids:
            return
        for coupon_id, order_id, valid_until in (
                Coupon.objects.select_for_update().filter(member_id__in=member_ids, order_id__in=order_ids,
                                                          state=REDEEMED)
                .order_by("id").values_list("id", "order_id", "valid_until")):
            self.redeemed[order_id].append((coupon_id, valid_until))

    def give_back(self, order_id: str) -> None:
        """The order is fully refunded: its coupons return (once, however often this is called)."""
        for coupon_id, valid_until in self.redeemed.pop(order_id, []):
            self.rows.append((state_after_refund(valid_until, self.now), "", None, coupon_id))

    def flush(self) -> None:
        update_rows(Coupon, ("state", "order_id", "redeemed_at"), ("id",), self.rows)
        self.rows = []
