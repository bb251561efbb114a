"""Points redemption: spending points on a reward of the catalogue (or on an amount the platform
prices itself), and the catalogue an operator keeps (rules in `domain.rewards`).

One redemption is one transaction that locks the member, then the reward (the lock order of
every writer, so two redemptions of one member run one after the other and stock never
oversells), draws the soonest-expiring spendable lots, posts one `redemption` entry, issues a
coupon reward's coupons and emits `points.redeemed` (and `coupon.issued`). It is idempotent on
`redemption_id`: the same request again answers the first answer from what was stored; another
request under that id is a 409. Nothing changes when it is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound, Refused
from loyalty.domain.events import MAX_UNITS, plain_text, text_id
from loyalty.domain.grants import CouponDraft, coupon_code
from loyalty.domain.money import format_fen
from loyalty.domain.periods import local_date
from loyalty.domain.points import Lot, draw
from loyalty.domain.rewards import MAX_QUANTITY, RewardTerms, check_redeemable, cost, coupon_key, coupons_for
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.ledger import Book, Posting, check_replay, live_lots, lock_members, payload_hash, take_from_lots
from loyalty.services.outbox import emit, utc_text
from loyalty.store.models import Coupon, Member, Redemption, Reward


@dataclass(frozen=True)
class LotDrawn:
    lot_id: int
    expires_at: datetime | None
    points: int


@dataclass(frozen=True)
class IssuedCoupon:
    code: str
    value_fen: int
    min_spend_fen: int
    valid_from: datetime
    valid_until: datetime


@dataclass(frozen=True)
class RedemptionView:
    """A redemption as its first answer gave it (`balance_after` is None only for redemptions
    recorded before lots and balances were kept)."""

    redemption_id: str
    member: str
    reward: str | None
    quantity: int
    points: int
    lots: list[LotDrawn]
    balance_after: int | None
    coupons: list[IssuedCoupon]
    redeemed_at: datetime
    replayed: bool = False


def terms_of(reward: Reward) -> RewardTerms:
    return RewardTerms(reward.code, reward.kind, reward.points_cost, reward.value_fen, reward.min_spend_fen,
                       reward.valid_days, reward.stock, reward.per_member_limit, reward.active,
                       reward.available_from, reward.available_until)


def catalogue(*, clock: Clock = system_clock) -> list[Reward]:
    """The rewards a member may pick now: active, inside their window, in stock; by cost, then code."""
    now = clock.now()
    return list(Reward.objects.filter(active=True).filter(Q(available_from__isnull=True) | Q(available_from__lte=now))
                .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
                .filter(Q(stock__isnull=True) | Q(stock__gt=0)).order_by("points_cost", "code"))


def save_reward(reward: Reward, changed: list[str] | None, *, clock: Clock = system_clock) -> None:
    """Save an operator's reward. On a change only the fields the operator changed are written,
    so a form opened before a redemption cannot put back the stock that redemption took."""
    now = clock.now()
    reward.updated_at = now
    if changed is None:
        reward.created_at = now
        reward.save()
        return
    reward.save(update_fields=[*changed, "updated_at"])


def redeem(external_id: str, redemption_id: str, *, reward: str | None = None, quantity: int = 1,
           points: int | None = None, note: str = "", clock: Clock = system_clock) -> RedemptionView:
    """Spend points on `quantity` units of `reward`, or spend `points` (exactly one of the two)."""
    digest = payload_hash(_fingerprint(external_id, redemption_id, reward, quantity, points, note))

    def apply() -> RedemptionView:
        with transaction.atomic():
            member = lock_members([external_id]).get(external_id)
            if member is None:
                raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
            # IMPORTANT: look for a replay only under the member's lock: a concurrent retry waits here.
            existing = Redemption.objects.filter(redemption_id=redemption_id).select_related("reward").first()
            if existing is not None:
                check_replay(existing.payload_hash, digest, f"redemption {redemption_id}", "redemption_id")
                return _view(existing, external_id, replayed=True)
            now = clock.now()
            row = _locked_reward(reward, member.id, quantity, now) if reward is not None else None
            spend = cost(terms_of(row), quantity) if row is not None else int(points or 0)
            lots = {lot.id: lot for lot in live_lots(member.id, now)}
            takes, shortfall = draw(list(lots.values()), spend, now)
            if shortfall:
                raise Refused(f"not enough spendable points: {spend - shortfall} of {spend}",
                              field="points" if row is None else "reward", code="insufficient_points")
            take_from_lots(takes)
            active = rulesets.in_force(now)
            posting = Posting("redemption", redemption_id, f"redemption:{redemption_id}", active.version, now,
                              local_date(now, active.ruleset.timezone))
            book = Book(now)
            book.post(member.id, "points", -spend, posting)
            book.flush()
            if row is not None and row.stock is not None:
                _take_stock(row, quantity)
            drafts = coupons_for(terms_of(row), redemption_id, quantity, now, active.ruleset.timezone) if row else []
            stored = Redemption.objects.create(
                redemption_id=redemption_id, member_id=member.id, points=spend, note=note, payload_hash=digest,
                created_at=now, reward=row, quantity=quantity, lots=_drawn(takes, lots),
                balance_after=Member.objects.filter(id=member.id).values_list("points_balance", flat=True).get(),
                ruleset_version=active.version)
            _issue(member.id, drafts, now, active.version)
            view = _view(stored, external_id)
            _announce(member.id, view)
        return view

    return retry_races(apply)


def _fingerprint(external_id: str, redemption_id: str, reward: str | None, quantity: int, points: int | None,
                 note: str) -> dict[str, Any]:
    """Checks the request, field by field; a spend of points keeps the fingerprint it always had."""
    if (reward is None) == (points is None):
        raise InvalidInput("give either reward (with quantity) or points, not both", field="reward")
    if reward is None:
        if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_UNITS:
            raise InvalidInput(f"points must be a whole number from 1 to {MAX_UNITS:,}", field="points")
        if quantity != 1:
            raise InvalidInput("quantity goes with a reward, not with points", field="quantity")
    else:
        text_id({"reward": reward}, "reward")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
            raise InvalidInput(f"quantity must be a whole number from 1 to {MAX_QUANTITY}", field="quantity")
    text_id({"redemption_id": redemption_id}, "redemption_id")
    plain_text(note, "note", max_length=200)
    if reward is None:
        return {"member": external_id, "points": points, "note": note}
    return {"member": external_id, "reward": reward, "quantity": quantity, "note": note}


def _locked_reward(code: str, member_id: int, quantity: int, now: datetime) -> Reward:
    """The reward, locked (after the member), once the rules allow this redemption of it."""
    row = Reward.objects.select_for_update().filter(code=code).first()
    if row is None:
        raise NotFound(f"unknown reward {code!r}", field="reward", code="unknown_reward")
    held = Redemption.objects.filter(member_id=member_id, reward_id=row.id, state="completed").aggregate(
        n=Sum("quantity"))["n"]
    check_redeemable(terms_of(row), quantity, int(held or 0), now)
    return row


def _take_stock(row: Reward, quantity: int) -> None:
    # The row is locked; the condition makes an overselling update impossible all the same.
    if Reward.objects.filter(id=row.id, stock__gte=quantity).update(stock=F("stock") - quantity) != 1:
        raise Conflict("the reward's stock changed underneath this request; retry", code="concurrent_update")


def _drawn(takes: list[tuple[int, int]], lots: dict[int, Lot]) -> list[list[Any]]:
    """What was drawn, in draw order, as stored: [lot id, expires_at (UTC text) or None, points]."""
    return [[lot_id, _text(lots[lot_id].expires_at), taken] for lot_id, taken in takes]


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else utc_text(moment)


def _issue(member_id: int, drafts: list[CouponDraft], now: datetime, version: int) -> None:
    secret = settings.SECRET_KEY.encode()
    Coupon.objects.bulk_create([
        Coupon(member_id=member_id, code=coupon_code(d.key, secret), key=d.key, kind=d.kind, value_fen=d.value_fen,
               min_spend_fen=d.min_spend_fen, issued_at=now, valid_from=d.valid_from, valid_until=d.valid_until,
               ruleset_version=version) for d in drafts])


def issued_coupons(redemption: Redemption) -> list[IssuedCoupon]:
    if redemption.reward is None or redemption.reward.kind != "coupon":
        return []
    keys = [coupon_key(redemption.redemption_id, n) for n in range(1, redemption.quantity + 1)]
    rows = {c.key: c for c in Coupon.objects.filter(key__in=keys)}
    return [IssuedCoupon(c.code, c.value_fen, c.min_spend_fen, c.valid_from, c.valid_until)
            for c in (rows[key] for key in keys if key in rows)]


def _view(row: Redemption, external_id: str, *, replayed: bool = False) -> RedemptionView:
    lots = [LotDrawn(int(lot_id), None if expires is None else datetime.fromisoformat(expires), int(taken))
            for lot_id, expires, taken in row.lots]
    return RedemptionView(row.redemption_id, external_id, row.reward.code if row.reward else None, row.quantity,
                          row.points, lots, row.balance_after, issued_coupons(row), row.created_at.astimezone(UTC),
                          replayed)


def _announce(member_id: int, view: RedemptionView) -> None:
    """`points.redeemed`, and `coupon.issued` for a coupon reward's coupons, in this transaction."""
    key = f"redemption:{view.redemption_id}"
    coupons = [{"code": c.code, "kind": "reward", "value": format_fen(c.value_fen),
                "min_spend": format_fen(c.min_spend_fen)} for c in view.coupons]
    emit(member_id, "points.redeemed", key, {
        "member": view.member, "redemption_id": view.redemption_id, "reward": view.reward,
        "quantity": view.quantity, "points": view.points, "balance_after": view.balance_after,
        "coupons": [c["code"] for c in coupons]}, view.redeemed_at)
    if coupons:
        first = view.coupons[0]
        emit(member_id, "coupon.issued", key, {
            "member": view.member, "reason": "reward", "redemption_id": view.redemption_id,
            "valid_from": first.valid_from, "valid_until": first.valid_until, "coupons": coupons},
             view.redeemed_at)
