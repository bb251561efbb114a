"""Holds and the review queue: a flagged member's new credit waits for an operator.

`place_holds` (called by the flagging rules and the detector) opens a review case and holds the
member. While held, the member's new orders and actions are recorded as usual but their credit
is withheld: the rows carry `hold = "held"` and their computed growth and points, and no ledger
entry, lot or debt payment is written, so balances, spendable points and tier windows never see
them. An operator then decides the case, once: `approve` posts the withheld credit under the
rows' own idempotency keys (so it can never be posted twice), `reject` forfeits it. Either way
the hold is released and the decision (who, why, the amounts) stays on the case. The rules,
exactly: docs/abuse.md, Holds and review.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Sum

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import Conflict, InvalidInput, NotFound
from loyalty.domain.events import plain_text
from loyalty.domain.points import lot_available_at, lot_expires_at
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.ledger import Book, Posting
from loyalty.services.outbox import Emission, canonical_json, emit, emit_many
from loyalty.store import sql
from loyalty.store.models import Action, LedgerEntry, Member, Order, ReviewCase

MAX_REASON = 64
MAX_NOTE = 500
MEMBERS_PER_CHUNK = 500  # members locked per statement when placing holds
DECISIONS = {"approve": "approved", "reject": "rejected"}


def place_holds(member_ids: Sequence[int], *, reason: str, details: Mapping[int, Mapping[str, Any]],
                at: datetime) -> int:
    """Open a review case for each member without an open one, holding the member from `at`,
    and emit `member.held`; a member already under review gets `reason` added to its open case
    (no second case, no second event). Unknown ids are skipped. Answers how many holds were
    newly placed. Runs in the caller's transaction when there is one."""
    reason = _reason(reason)
    if at.tzinfo is None:
        raise InvalidInput("the hold's time must be timezone-aware", field="at")
    ids = sorted(set(member_ids))
    placed = 0
    with transaction.atomic():
        for start in range(0, len(ids), MEMBERS_PER_CHUNK):
            placed += _place(ids[start:start + MEMBERS_PER_CHUNK], reason, details, at)
    return placed


def _reason(reason: str) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text or len(text) > MAX_REASON:
        raise InvalidInput(f"a hold needs a reason of 1 to {MAX_REASON} characters", field="reason")
    return text


def _place(ids: list[int], reason: str, details: Mapping[int, Mapping[str, Any]], at: datetime) -> int:
    # IMPORTANT: members locked first, in id order (as every writer does); a member has an open
    # case exactly while `held_since` is set, and both change only under this lock.
    members = dict(Member.objects.select_for_update().filter(id__in=ids).order_by("id")
                   .values_list("id", "external_id"))
    open_cases = {case.member_id: case for case in ReviewCase.objects.filter(member_id__in=list(members),
                                                                              state="open")}
    emissions = []
    for member_id, external_id in members.items():
        found = json.loads(canonical_json(dict(details.get(member_id, {}))))
        case = open_cases.get(member_id)
        if case is not None:
            if reason not in case.reasons:
                case.reasons = [*case.reasons, reason]
            case.details = {**case.details, reason: found}
            case.save(update_fields=["reasons", "details"])
            continue
        case = ReviewCase.objects.create(member_id=member_id, reasons=[reason], details={reason: found},
                                         opened_at=at)
        emissions.append(Emission(member_id, "member.held", f"review:{case.id}",
                                  {"member": external_id, "case": case.id, "reason": reason, "held_since": at}, at))
    new = [emission.member_id for emission in emissions]
    Member.objects.filter(id__in=new).update(held_since=at)
    emit_many(emissions, new=True)
    return len(new)


@dataclass(frozen=True)
class Decision:
    """A decided case: what was released (approved) or forfeited (rejected)."""

    case_id: int
    member: str
    decision: str  # approved | rejected
    by: str
    note: str
    growth: int
    points: int
    orders: int
    actions: int
    decided_at: datetime


def approve(case_id: int, *, by: str, note: str, clock: Clock = system_clock) -> Decision:
    """Post the case's withheld credit now, close the case and release the hold."""
    return _decide(case_id, "approve", by, note, clock)


def reject(case_id: int, *, by: str, note: str, clock: Clock = system_clock) -> Decision:
    """Forfeit the case's withheld credit, close the case and release the hold."""
    return _decide(case_id, "reject", by, note, clock)


def _decide(case_id: int, verb: str, by: str, note: str, clock: Clock) -> Decision:
    by = plain_text(by, "by", max_length=100).strip()
    note = plain_text(note, "note", max_length=MAX_NOTE).strip()
    if not by:
        raise InvalidInput("say who decides", field="by")
    if not note:
        raise InvalidInput("a decision needs a note saying why", field="note")

    def apply() -> Decision:
        with transaction.atomic():
            owner = (ReviewCase.objects.filter(id=case_id).values_list("member__external_id", flat=True)
                     .first())
            if owner is None:
                raise NotFound(f"unknown review case {case_id}", field="case", code="unknown_case")
            (member,) = sql.lock_members([owner])
            case = ReviewCase.objects.select_for_update().get(id=case_id)
            if case.state != "open":
                raise Conflict(f"review case {case_id} was already {case.state} by {case.decided_by}",
                               field="case", code="case_decided")
            now = clock.now()
            book = Book(now)
            orders, actions = _withheld(member.id)
            if verb == "approve":
                _post(book, member, orders, actions)
            state = DECISIONS[verb]
            Order.objects.filter(member_id=member.id, hold="held").update(hold="" if verb == "approve" else "rejected")
            Action.objects.filter(member_id=member.id, hold="held").update(hold="" if verb == "approve" else "rejected")
            growth = sum(row.growth for row in orders + actions)
            points = sum(row.points for row in orders + actions)
            ReviewCase.objects.filter(id=case.id).update(
                state=state, decided_at=now, decided_by=by, note=note, growth=growth, points=points,
                orders=len(orders), actions=len(actions))
            Member.objects.filter(id=member.id).update(held_since=None)
            book.flush()
            emit(member.id, "member.review_decided", f"review:{case.id}",
                 {"member": member.external_id, "case": case.id, "decision": state, "reason": note, "by": by,
                  "reasons": list(case.reasons), "growth": growth, "points": points}, now)
            return Decision(case.id, member.external_id, state, by, note, growth, points, len(orders),
                            len(actions), now)

    return retry_races(apply)


@dataclass(frozen=True)
class _Withheld:
    """One held order's or action's credit, as an approval would post it."""

    kind: str  # the entry's source: order, or the action's type
    reference: str
    key: str  # the idempotency key prefix the row would have posted under
    growth: int
    points: int
    ruleset_version: int
    at: datetime
    business_date: Any


def _withheld(member_id: int) -> tuple[list[_Withheld], list[_Withheld]]:
    """The member's held orders (net of refunds recorded while held) and actions, locked."""
    orders = [_Withheld("order", o, f"order:{o}", base + bonus - growth_back, points - points_back, v, paid, day)
              for o, base, bonus, growth_back, points, points_back, v, paid, day in
              Order.objects.select_for_update().filter(member_id=member_id, hold="held").order_by("paid_at", "id")
              .values_list("order_id", "growth_base", "growth_bonus", "growth_reversed", "points",
                           "points_reversed", "ruleset_version", "paid_at", "business_date")]
    actions = [_Withheld(kind, e, f"action:{e}", growth, points, v, moment, day)
               for e, kind, growth, points, v, moment, day in
               Action.objects.select_for_update().filter(member_id=member_id, hold="held").order_by("at", "id")
               .values_list("event_id", "type", "growth", "points", "ruleset_version", "at", "business_date")]
    return orders, actions


def _post(book: Book, member: sql.MemberRow, orders: list[_Withheld], actions: list[_Withheld]) -> None:
    """Post what the rows would have posted when recorded: the same keys, the earning time and
    business date, lots with the expiry of the ruleset version each row recorded. An entry that
    exists already is never written again."""
    rows = orders + actions
    keys = [f"{row.key}:{ledger}" for row in rows for ledger in ("growth", "points")]
    posted = set(LedgerEntry.objects.filter(idempotency_key__in=keys).values_list("idempotency_key", flat=True))
    book_of_rules = rulesets.rulebook()
    for row in rows:
        if row.growth > 0 and f"{row.key}:growth" not in posted:
            book.post(member.id, "growth", row.growth, _posting(row, "growth"))
        if row.points > 0 and f"{row.key}:points" not in posted:
            rules = book_of_rules.by_version(row.ruleset_version).ruleset
            book.award_points(member, row.points, _posting(row, "points"),
                              available_at=lot_available_at(row.at, rules.points),
                              expires_at=lot_expires_at(row.at, rules.points, rules.timezone))


def _posting(row: _Withheld, ledger: str) -> Posting:
    return Posting(row.kind, row.reference, f"{row.key}:{ledger}", row.ruleset_version, row.at, row.business_date)


@dataclass(frozen=True)
class Held:
    growth: int
    points: int
    orders: int
    actions: int


def held_totals(member_id: int) -> Held:
    """What is withheld from the member now: their held orders (net of refunds) and their held
    actions. Read by the status page only while the member is held, and by the review queue."""
    orders = Order.objects.filter(member_id=member_id, hold="held").aggregate(
        growth=Sum(F("growth_base") + F("growth_bonus") - F("growth_reversed")),
        points=Sum(F("points") - F("points_reversed")), count=Count("id"))
    actions = Action.objects.filter(member_id=member_id, hold="held").aggregate(
        growth=Sum("growth"), points=Sum("points"), count=Count("id"))
    return Held(int(orders["growth"] or 0) + int(actions["growth"] or 0),
                int(orders["points"] or 0) + int(actions["points"] or 0), orders["count"], actions["count"])
