"""Member actions: daily check-in, order reviews, shares. Caps come from the ruleset.

A capped action is still recorded, with the reason, and credits nothing: the platform learns
why, and a replay answers the same. Like orders, actions are decided a batch at a time against
counters loaded once, so a day's check-ins for a million members is a few statements.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from django.db.models import Count, Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import LoyaltyError, NotFound
from loyalty.domain.events import ActionEvent
from loyalty.domain.growth import ActionAward, action_award
from loyalty.domain.limits import shared_reason
from loyalty.domain.periods import local_date
from loyalty.domain.points import lot_available_at, lot_expires_at
from loyalty.services import rulesets
from loyalty.services.batches import EventBatch, only, run_batch
from loyalty.services.ledger import Posting, check_replay, lock_members, payload_hash
from loyalty.services.links import Links
from loyalty.store.bulk import insert_rows
from loyalty.store.models import Action, LedgerEntry, Order
from loyalty.store.sql import MemberRow

ACTION_FIELDS = ("event_id", "member", "type", "at", "business_date", "ref", "growth", "points", "capped_reason",
                 "ruleset_version", "payload_hash", "recorded_at", "hold", "device_id", "ip", "address_hash")


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
    """Record one action; raises the event's error."""
    return only(record_actions([event], clock=clock))


def record_actions(events: Sequence[ActionEvent], *, clock: Clock = system_clock
                   ) -> list[ActionOutcome | LoyaltyError]:
    """Record a batch in one transaction; one outcome or error per event, in order."""
    return run_batch(lambda: _Batch(clock.now()), events)


class _Batch(EventBatch[ActionEvent, ActionOutcome]):
    def __init__(self, now: datetime):
        super().__init__(now)
        self.rows: list[tuple] = []
        self.links = Links()

    def load(self, events: Sequence[ActionEvent]) -> None:
        """Lock members, then read every counter the caps need for these members and days."""
        self.rules = rulesets.rulebook()
        self.members: dict[str, MemberRow] = lock_members(sorted({e.member for e in events}))
        ids = [m.id for m in self.members.values()]
        self.links.load((e.origin for e in events), ids)
        days = sorted({day for day in (self._local_day(e) for e in events) if day is not None})
        refs = sorted({e.ref for e in events if e.ref})
        self.existing = {row[0]: row for row in Action.objects.filter(
            event_id__in=[e.event_id for e in events]).values_list(
            "event_id", "payload_hash", "member__external_id", "type", "growth", "points", "capped_reason")}
        counted = Action.objects.filter(member_id__in=ids, capped_reason="")
        self.per_day = Counter({(m, t, d): n for m, t, d, n in counted.filter(business_date__in=days)
                                .values_list("member_id", "type", "business_date").annotate(n=Count("id"))})
        self.per_ref = Counter({(m, t, r): n for m, t, r, n in counted.filter(ref__in=refs)
                                .values_list("member_id", "type", "ref").annotate(n=Count("id"))})
        self.order_owner = dict(Order.objects.filter(order_id__in=refs).values_list("order_id", "member_id"))
        self.growth_today = Counter({(m, d): int(t) for m, d, t in LedgerEntry.objects.filter(
            member_id__in=ids, ledger="growth", business_date__in=days, delta__gt=0)
            .values_list("member_id", "business_date").annotate(t=Sum("delta"))})

    def _local_day(self, event: ActionEvent) -> date | None:
        # An event with no ruleset in force is answered with that error by `decide`, alone:
        # it must not fail the whole batch here.
        try:
            return local_date(event.at, self.rules.in_force(event.at).ruleset.timezone)
        except LoyaltyError:
            return None

    def decide_one(self, event: ActionEvent) -> ActionOutcome:
        digest = payload_hash(event.fingerprint())
        if event.event_id in self.existing:
            event_id, stored, member_id, kind, growth, points, reason = self.existing[event.event_id]
            check_replay(stored, digest, f"action {event_id}", "event_id")
            return ActionOutcome(event_id, member_id, kind, growth, points, reason, replayed=True)
        member = self.members.get(event.member)
        if member is None:
            raise NotFound(f"unknown member {event.member!r}", field="member", code="unknown_member")
        if event.type == "review" and self.order_owner.get(event.ref) != member.id:
            raise NotFound(f"member has no order {event.ref!r} to review", field="ref", code="unknown_order")
        active = self.rules.in_force(event.at)
        rules = active.ruleset
        day = local_date(event.at, rules.timezone)
        # Judged first: a member beyond a shared device's limit earns nothing, whatever the action.
        shared = shared_reason(self.links.take_seats(member.id, event.origin, event.at), rules.limits)
        award = ActionAward(0, 0, shared) if shared else action_award(
            rules.actions.get(event.type), done_today=self.per_day[(member.id, event.type, day)],
            done_for_ref=self.per_ref[(member.id, event.type, event.ref)] if event.ref else 0,
            earned_today=self.growth_today[(member.id, day)], daily_cap=rules.growth.daily_cap)
        reason = award.capped_reason or ""
        if not reason:
            self.per_day[(member.id, event.type, day)] += 1
            self.per_ref[(member.id, event.type, event.ref)] += 1
            self.growth_today[(member.id, day)] += award.growth
        posting = Posting(event.type, event.event_id, f"action:{event.event_id}", active.version, event.at, day)
        # A member under review: recorded, its credit withheld (posted under these keys if approved).
        hold = "held" if member.held_since is not None and not reason else ""
        if award.growth and not hold:
            self.book.post(member.id, "growth", award.growth, replace(posting, key=posting.key + ":growth"))
        if award.points and not hold:
            self.book.award_points(member, award.points, replace(posting, key=posting.key + ":points"),
                                   available_at=lot_available_at(event.at, rules.points),
                                   expires_at=lot_expires_at(event.at, rules.points, rules.timezone))
        self.existing[event.event_id] = (event.event_id, digest, member.external_id, event.type, award.growth,
                                         award.points, reason)
        self.rows.append((event.event_id, member.id, event.type, event.at, day, event.ref, award.growth,
                          award.points, reason, active.version, digest, self.now, hold,
                          event.origin.device_id, event.origin.ip, event.origin.address_hash))
        return ActionOutcome(event.event_id, member.external_id, event.type, award.growth, award.points, reason)

    def flush(self) -> None:
        insert_rows(Action, ACTION_FIELDS, self.rows)
        self.links.flush()
        self.book.flush()
