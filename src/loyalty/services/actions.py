"""Member actions: daily check-in, order reviews, shares. Caps come from the ruleset.

A capped action is still recorded, with the reason, and credits nothing: the platform learns
why, and a replay answers the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from django.db import transaction
from django.db.models import Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import NotFound
from loyalty.domain.events import ActionEvent
from loyalty.domain.growth import ActionAward, action_award
from loyalty.domain.periods import local_date
from loyalty.domain.points import lot_available_at, lot_expires_at
from loyalty.domain.rules import Ruleset
from loyalty.services import rulesets
from loyalty.services.ledger import Book, Posting, check_replay, lock_members, payload_hash
from loyalty.store.models import Action, LedgerEntry, Member, Order


@dataclass(frozen=True)
class ActionOutcome:
    event_id: str
    member: str
    type: str
    growth: int
    points: int
    capped_reason: str
    replayed: bool = False


def record_action(event: ActionEvent, *, clock: Clock = system_clock) -> ActionOutcome:
    digest = payload_hash(event.fingerprint())
    with transaction.atomic():
        existing = Action.objects.filter(event_id=event.event_id).first()
        if existing is not None:
            check_replay(existing.payload_hash, digest, f"action {event.event_id}", "event_id")
            return ActionOutcome(existing.event_id, event.member, existing.type, existing.growth,
                                 existing.points, existing.capped_reason, replayed=True)
        member = lock_members([event.member]).get(event.member)
        if member is None:
            raise NotFound(f"unknown member {event.member!r}", field="member", code="unknown_member")
        active = rulesets.in_force(event.at)
        day = local_date(event.at, active.ruleset.timezone)
        if event.type == "review" and not Order.objects.filter(order_id=event.ref, member_id=member.id).exists():
            raise NotFound(f"member has no order {event.ref!r} to review", field="ref", code="unknown_order")
        award = _award(member, event, day, active.ruleset)
        _post(member, event, award, day, active.version, active.ruleset, clock)
        Action.objects.create(
            event_id=event.event_id, member=member, type=event.type, at=event.at, business_date=day,
            ref=event.ref, growth=award.growth, points=award.points, capped_reason=award.capped_reason or "",
            ruleset_version=active.version, payload_hash=digest, recorded_at=clock.now())
    return ActionOutcome(event.event_id, event.member, event.type, award.growth, award.points,
                         award.capped_reason or "")


def _award(member: Member, event: ActionEvent, day: date, rules: Ruleset) -> ActionAward:
    counted = Action.objects.filter(member_id=member.id, type=event.type, capped_reason="")
    done_today = counted.filter(business_date=day).count()
    done_for_ref = counted.filter(ref=event.ref).count() if event.ref else 0
    earned_today = 0
    if rules.growth.daily_cap is not None:
        earned_today = int(LedgerEntry.objects.filter(
            member_id=member.id, ledger="growth", business_date=day, delta__gt=0,
        ).aggregate(total=Sum("delta"))["total"] or 0)
    return action_award(rules.actions.get(event.type), done_today=done_today, done_for_ref=done_for_ref,
                        earned_today=earned_today, daily_cap=rules.growth.daily_cap)


def _post(member: Member, event: ActionEvent, award: ActionAward, day: date, version: int,
          rules: Ruleset, clock: Clock) -> None:
    book = Book(clock.now())
    posting = Posting(event.type, event.event_id, f"action:{event.event_id}", version, event.at, day)
    if award.growth:
        book.post(member.id, "growth", award.growth, replace(posting, key=posting.key + ":growth"))
    if award.points:
        book.award_points(member, award.points, replace(posting, key=posting.key + ":points"),
                          available_at=lot_available_at(event.at, rules.points),
                          expires_at=lot_expires_at(event.at, rules.points, rules.timezone))
    book.flush()
