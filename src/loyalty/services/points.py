"""Spending and expiring points: redemption draws soonest-expiring lots first; expiry is daily.

Both never overdraw: lots shrink only under a `remaining >= taken` condition, and every
movement has a key, so a retried or re-run call changes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.periods import local_date
from loyalty.services import rewards, rulesets
from loyalty.services.ledger import Book, Posting, lock_member_ids
from loyalty.store import raw
from loyalty.store.models import PointsLot


@dataclass(frozen=True)
class RedemptionOutcome:
    redemption_id: str
    member: str
    points: int
    replayed: bool = False


def redeem_points(external_id: str, points: int, *, redemption_id: str, note: str = "",
                  clock: Clock = system_clock) -> RedemptionOutcome:
    """Spend `points` on something the platform prices itself (`rewards.redeem` without a reward)."""
    view = rewards.redeem(external_id, redemption_id, points=points, note=note, clock=clock)
    return RedemptionOutcome(view.redemption_id, view.member, view.points, replayed=view.replayed)


def expire_points(as_of: datetime, *, clock: Clock = system_clock, chunk: int = 5000) -> int:
    """Expire every lot whose expiry has passed; returns the points expired. Safe to re-run."""
    expired_total = 0
    due = PointsLot.objects.filter(remaining__gt=0, expires_at__lte=as_of)
    after = 0  # keyset: each chunk reads on from the last member done, not from the start again
    while True:
        with transaction.atomic():
            raw.asynchronous_commit()  # a resumable job's chunk: see raw.asynchronous_commit
            # IMPORTANT: members first, in primary-key order, then their lots: the order every
            # writer takes its locks in, so expiry never deadlocks with a redemption or a refund.
            member_ids = sorted(set(due.filter(member_id__gt=after).order_by("member_id")
                                    .values_list("member_id", flat=True)[:chunk]))
            if not member_ids:
                return expired_total
            locked = set(lock_member_ids(member_ids))
            first, after = member_ids[0], member_ids[-1]
            # Every due lot of these members, read by range (no list of ids to send): the range
            # holds no other member with a due lot, and one that gained a lot since is left alone.
            lots = [lot for lot in due.select_for_update().filter(member_id__gte=first, member_id__lte=after)
                    .order_by("member_id", "id") if lot.member_id in locked]
            expired_total += _expire(lots, as_of, clock)


def _expire(lots: list[PointsLot], as_of: datetime, clock: Clock) -> int:
    active = rulesets.in_force(as_of)
    book = Book(clock.now())
    for lot in lots:
        assert lot.expires_at is not None
        posting = Posting("expiry", lot.key, f"expiry:{lot.key}", active.version, lot.expires_at,
                          local_date(lot.expires_at, active.ruleset.timezone))
        book.post(lot.member_id, "points", -lot.remaining, posting)
    PointsLot.objects.filter(id__in=[lot.id for lot in lots]).update(remaining=0)  # rows locked above
    book.flush()
    return sum(lot.remaining for lot in lots)
