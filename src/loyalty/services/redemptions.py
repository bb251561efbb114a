"""An operator's reversal of a redemption (a goods reward cancelled, say): the points go back to
the member and the units back to the reward's stock, once.

The points return as new lots with the expiry of the lots they were drawn from, so a reversal
never lengthens a point's life; points whose lot has expired since are forfeited (they would
have expired in the member's hands, and giving them back would post an expiry in the past).
Returned points pay the member's debts first, like every award. A coupon reward is reversed
only while none of its coupons has been redeemed; its coupons are then revoked. Locks: the
member, then the redemption, then the reward (the order every writer takes).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from django.db import transaction
from django.db.models import F, Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import plain_text, text_id
from loyalty.domain.periods import local_date
from loyalty.domain.rewards import coupon_key, to_give_back
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.coupons import revoke_locked
from loyalty.services.ledger import Book, Posting, lock_members
from loyalty.services.outbox import emit
from loyalty.store.models import Coupon, LedgerEntry, Redemption, Reward


@dataclass(frozen=True)
class Reversal:
    redemption_id: str
    member: str
    points_returned: int
    points_forfeited: int
    coupons_revoked: list[str]
    replayed: bool = False


def reverse_redemption(redemption_id: str, *, actor: str, clock: Clock = system_clock) -> Reversal:
    """Reverse a completed redemption; a reversed one answers its reversal again (replayed)."""
    text_id({"redemption_id": redemption_id}, "redemption_id")
    if not plain_text(actor, "actor", max_length=100).strip():
        raise InvalidInput("a reversal needs the operator who made it", field="actor")

    def apply() -> Reversal:
        with transaction.atomic():
            owner = Redemption.objects.filter(redemption_id=redemption_id).values_list(
                "member__external_id", flat=True).first()
            member = lock_members([owner]).get(owner) if owner is not None else None
            if owner is None or member is None:
                raise NotFound(f"unknown redemption {redemption_id!r}", field="redemption_id",
                               code="unknown_redemption")
            # No join under FOR UPDATE (PostgreSQL refuses it on a nullable side): the reward is read after.
            row = Redemption.objects.select_for_update().get(redemption_id=redemption_id)
            keys = [coupon_key(redemption_id, n) for n in range(1, row.quantity + 1)] if row.reward else []
            if row.state == "reversed":
                return _replay(row, owner, keys)
            now = clock.now()
            revoked = _revoke(keys, owner, f"redemption {redemption_id} reversed", actor.strip(), now)
            if row.reward is not None and row.reward.stock is not None:
                Reward.objects.filter(id=row.reward.id).update(stock=F("stock") + row.quantity)
            drawn = [(int(lot), None if at is None else datetime.fromisoformat(at), int(n)) for lot, at, n in row.lots]
            back, forfeited = to_give_back(drawn, now)
            active = rulesets.in_force(now)
            posting = Posting("redemption", redemption_id, f"redemption:{redemption_id}:reversal", active.version,
                              now, local_date(now, active.ruleset.timezone))
            original = LedgerEntry.objects.filter(idempotency_key=f"redemption:{redemption_id}").values_list(
                "id", flat=True).first()
            book = Book(now)
            for n, (expires_at, points) in enumerate(back, start=1):
                book.award_points(member, points, replace(posting, key=f"{posting.key}:{n}"), available_at=now,
                                  expires_at=expires_at, reverses_id=original)
            book.flush()
            row.state, row.reversed_at, row.reversed_by = "reversed", now, actor.strip()
            row.save(update_fields=["state", "reversed_at", "reversed_by"])
            outcome = Reversal(redemption_id, owner, sum(points for _, points in back), forfeited, revoked)
            emit(row.member_id, "points.redemption_reversed", f"redemption:{redemption_id}", {
                "member": owner, "redemption_id": redemption_id, "reward": row.reward.code if row.reward else None,
                "quantity": row.quantity, "points_returned": outcome.points_returned, "points_forfeited": forfeited,
                "coupons_revoked": revoked, "actor": actor.strip()}, now)
        return outcome

    return retry_races(apply)


def _revoke(keys: list[str], owner: str, reason: str, by: str, now: datetime) -> list[str]:
    """Revoke a coupon reward's coupons (locked; each with its `coupon.revoked` event), or refuse
    when one was spent already."""
    coupons = list(Coupon.objects.select_for_update().filter(key__in=keys).order_by("id"))
    used = [c.code for c in coupons if c.state == "redeemed"]
    if used:
        raise Refused(f"coupon {used[0]} of this reward was redeemed already; refund its order first",
                      field="redemption_id", code="reward_coupon_used")
    issued = [coupon for coupon in coupons if coupon.state == "issued"]
    for coupon in issued:
        revoke_locked(coupon, owner, reason=reason, by=by, now=now)
    return [coupon.code for coupon in issued]


def _replay(row: Redemption, owner: str, keys: list[str]) -> Reversal:
    # By member (an indexed read of the member's entries), not by a key prefix (a scan).
    returned = LedgerEntry.objects.filter(member_id=row.member_id, ledger="points", source="redemption",
                                          reference=row.redemption_id, delta__gt=0).aggregate(n=Sum("delta"))["n"]
    revoked = list(Coupon.objects.filter(key__in=keys, state="revoked").order_by("id").values_list("code", flat=True))
    returned = int(returned or 0)
    return Reversal(row.redemption_id, owner, returned, row.points - returned, revoked, replayed=True)
