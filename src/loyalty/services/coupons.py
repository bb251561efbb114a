"""The coupon wallet, redemption on an order, and the return of a coupon whose order is fully
refunded (rules in `domain.coupons`).

Redemption locks the member, then the coupon: the order every writer takes its locks in. Two
redemptions of one coupon, or a redemption racing the refund of its order, so run one after the
other: exactly one redemption wins, and a refund never misses a coupon redeemed on its order.
A code is looked up among the named member's coupons only: another member's code answers as an
unknown one. Expiry is not stored by a job: an issued coupon past its validity is shown (and
filtered) as expired on read, so the wallet is right at every instant without a sweep.

Redeeming, returning and revoking a coupon each emit their event (`coupon.redeemed`,
`coupon.returned`, `coupon.revoked`) in the same transaction, keyed by the change.
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
    REVOKED,
    STATES,
    Terms,
    check_combinable,
    check_redeemable,
    check_revocable,
    is_replay,
    needs_template_check,
    shown_state,
    spend_of_recorded_order,
    state_after_refund,
)
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import text_id
from loyalty.domain.money import format_fen
from loyalty.services.batches import retry_races
from loyalty.services.ledger import lock_member_ids, lock_members
from loyalty.services.members import get_member
from loyalty.services.outbox import Emission, emit, emit_many
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
    template: str = ""
    stacking_group: str = ""
    usage: str = "single"


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
                      coupon.redeemed_at, coupon.order_id or None, coupon.template, coupon.stacking_group, coupon.usage)


def _terms(coupon: Coupon) -> Terms:
    return Terms(coupon.code, coupon.state, coupon.order_id, coupon.value_fen, coupon.min_spend_fen,
                 coupon.valid_from, coupon.valid_until, coupon.template, coupon.stacking_group, coupon.usage)


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
            terms = _terms(coupon)
            if is_replay(terms, order_id):
                return CouponRedemption(member, _view(coupon, now), replayed=True)
            order = Order.objects.filter(order_id=order_id).values_list("member_id", "amount_fen", "refunded_fen")
            spend = _spend(order.first(), owner.id, terms, amount_fen)
            check_redeemable(terms, order_id, spend, now)
            # The member is locked: no other redemption of theirs can slip in between these reads.
            check_combinable(terms, order_id, template_used=_template_used(coupon),
                             groups_on_order=_groups_on(coupon, order_id))
            coupon.state, coupon.order_id, coupon.redeemed_at = REDEEMED, order_id, now
            coupon.save(update_fields=["state", "order_id", "redeemed_at"])
            emit(owner.id, "coupon.redeemed", f"{code}:{order_id}", {
                **_event_data(member, coupon), "order_id": order_id, "redeemed_at": now}, now)
        return CouponRedemption(member, _view(coupon, now))

    return retry_races(redeem)


def _template_used(coupon: Coupon) -> bool:
    """Whether the member holds another redeemed coupon of this coupon's `once_per_member` template."""
    if not needs_template_check(_terms(coupon)):
        return False
    return Coupon.objects.filter(member_id=coupon.member_id, template=coupon.template, state=REDEEMED).exclude(
        id=coupon.id).exists()


def _groups_on(coupon: Coupon, order_id: str) -> set[str]:
    """The stacking groups of the member's other coupons redeemed on the order (`coupons_member_order`)."""
    if not coupon.stacking_group:
        return set()
    return set(Coupon.objects.filter(member_id=coupon.member_id, order_id=order_id, state=REDEEMED).exclude(
        id=coupon.id).values_list("stacking_group", flat=True))


def _event_data(member: str, coupon: Coupon) -> dict[str, Any]:
    return {"member": member, "code": coupon.code, "kind": coupon.kind, "value": format_fen(coupon.value_fen),
            "template": coupon.template}


@dataclass(frozen=True)
class CouponRevocation:
    member: str
    coupon: CouponView
    replayed: bool = False


def revoke_coupon(code: str, *, reason: str, by: str, clock: Clock = system_clock) -> CouponRevocation:
    """Take an unredeemed coupon back (issued, or expired): it can no longer be redeemed, and a
    `coupon.revoked` event says who did it and why. A redeemed coupon cannot be revoked (409
    `coupon_already_redeemed`); revoking a revoked coupon again answers the first revocation."""
    text_id({"code": code}, "code")
    reason, by = reason.strip(), by.strip()
    if not reason or len(reason) > 200:
        raise InvalidInput("a reason of 1 to 200 characters is required", field="reason")
    if not by or len(by) > 100:
        raise InvalidInput("who revokes the coupon (1 to 100 characters) is required", field="by")

    def revoke() -> CouponRevocation:
        with transaction.atomic():
            owner_id = Coupon.objects.filter(code=code).values_list("member_id", flat=True).first()
            if owner_id is None:
                raise NotFound(f"unknown coupon {code!r}", field="code", code="unknown_coupon")
            lock_member_ids([owner_id])  # the member, then the coupon: the lock order of every writer
            coupon = Coupon.objects.select_for_update().select_related("member").get(code=code)
            now = clock.now()
            external_id = coupon.member.external_id
            if coupon.state == REVOKED:
                return CouponRevocation(external_id, _view(coupon, now), replayed=True)
            check_revocable(_terms(coupon))
            revoke_locked(coupon, external_id, reason=reason, by=by, now=now)
        return CouponRevocation(external_id, _view(coupon, now))

    return retry_races(revoke)


def revoke_locked(coupon: Coupon, external_id: str, *, reason: str, by: str, now: datetime) -> None:
    """Revoke a coupon whose member and row the caller holds locked, in the caller's transaction:
    the state, who and why, and the `coupon.revoked` event. The one way a coupon is revoked, by an
    operator (`revoke_coupon`) or with the reward redemption that issued it (`redemptions`)."""
    coupon.state, coupon.revoked_at, coupon.revoked_by, coupon.revoke_reason = REVOKED, now, by, reason
    coupon.save(update_fields=["state", "revoked_at", "revoked_by", "revoke_reason"])
    emit(coupon.member_id, "coupon.revoked", coupon.code, {
        **_event_data(external_id, coupon), "reason": reason, "by": by, "revoked_at": now}, now)


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
        self.redeemed: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
        self.rows: list[tuple[Any, ...]] = []
        self.events: list[Emission] = []
        if not member_ids or not order_ids:
            return
        for row in (Coupon.objects.select_for_update().filter(
                member_id__in=member_ids, order_id__in=order_ids, state=REDEEMED).order_by("id")
                .values_list("id", "order_id", "valid_until", "member_id", "member__external_id", "code", "kind",
                             "value_fen", "template")):
            self.redeemed[row[1]].append(row)

    def give_back(self, order_id: str) -> None:
        """The order is fully refunded: its coupons return (once, however often this is called),
        each with a `coupon.returned` event."""
        for coupon_id, _, valid_until, member_id, external_id, code, kind, value_fen, template in (
                self.redeemed.pop(order_id, [])):
            state = state_after_refund(valid_until, self.now)
            self.rows.append((state, "", None, coupon_id))
            self.events.append(Emission(member_id, "coupon.returned", f"{code}:{order_id}", {
                "member": external_id, "code": code, "kind": kind, "value": format_fen(value_fen),
                "template": template, "order_id": order_id, "state": state}, self.now))

    def flush(self) -> None:
        update_rows(Coupon, ("state", "order_id", "redeemed_at"), ("id",), self.rows)
        if self.events:
            emit_many(self.events)
        self.rows, self.events = [], []
