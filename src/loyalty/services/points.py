"""Spending and expiring points: redemption draws soonest-expiring lots first; expiry is daily.

Both never overdraw: lots shrink only under a `remaining >= taken` condition, and every
movement has a key, so a retried or re-run call changes nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import MAX_UNITS, plain_text, text_id
from loyalty.domain.periods import local_date
from loyalty.domain.points import draw
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.ledger import (
    Book,
    Posting,
    check_replay,
    live_lots,
    lock_member_ids,
    lock_members,
    payload_hash,
    take_from_lots,
)
from loyalty.store import raw
from loyalty.store.models import PointsLot, Redemption


@dataclass(frozen=True)
class RedemptionOutcome:
    redemption_id: str
    member: str
    points: int
    replayed: bool = False


def redeem_points(external_id: str, points: int, *, redemption_id: str, note: str = "",
                  clock: Clock = system_clock) -> RedemptionOutcome:
    if isinstance(points, bool) or not isinstance(points, int) or not 0 < points <= MAX_UNITS:
        raise InvalidInput(f"points must be a whole number from 1 to {MAX_UNITS:,}", field="points")
    text_id({"redemption_id": redemption_id}, "redemption_id")
    plain_text(note, "note", max_length=200)
    digest = payload_hash({"member": external_id, "points": points, "note": note})

    def redeem() -> RedemptionOutcome:
        with transaction.atomic():
            member = lock_members([external_id]).get(external_id)
            if member is None:
                raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
            # IMPORTANT: look for a replay only under the member's lock: a concurrent retry waits here.
            existing = Redemption.objects.filter(redemption_id=redemption_id).first()
            if existing is not None:
                check_replay(existing.payload_hash, digest, f"redemption {redemption_id}", "redemption_id")
                return RedemptionOutcome(redemption_id, external_id, existing.points, replayed=True)
            now = clock.now()
            takes, shortfall = draw(live_lots(member.id, now), points, now)
            if shortfall:
                raise Refused(f"not enough spendable points: {points - shortfall} of {points}", field="points",
                              code="insufficient_points")
            take_from_lots(takes)
            active = rulesets.in_force(now)
            book = Book(now)
            day = local_date(now, active.ruleset.timezone)
            posting = Posting("redemption", redemption_id, f"redemption:{redemption_id}", active.version, now, day)
            book.post(member.id, "points", -points, posting)
            book.flush()
            Redemption.objects.create(redemption_id=redemption_id, member_id=member.id, points=points, note=note,
                                      payload_hash=digest, created_at=now)
        return RedemptionOutcome(redemption_id, external_id, points)

    return retry_races(redeem)


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
