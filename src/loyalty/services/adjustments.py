"""Operator adjustments: a manual credit or debit with a mandatory reason and who made it.

Adjustments never overdraw: a debit larger than the spendable points, or one that would make
growth negative, is refused. A credit of points becomes a lot under the ruleset's expiry.
A points adjustment emits one `points.adjusted` webhook event, in its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.errors import InvalidInput, NotFound, Refused
from loyalty.domain.events import MAX_UNITS, plain_text, text_id
from loyalty.domain.periods import local_date
from loyalty.domain.points import draw, lot_expires_at
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.ledger import (
    Book,
    Posting,
    check_replay,
    live_lots,
    lock_members,
    payload_hash,
    take_from_lots,
)
from loyalty.services.outbox import emit
from loyalty.store.models import Adjustment


@dataclass(frozen=True)
class AdjustmentOutcome:
    adjustment_id: str
    member: str
    ledger: str
    delta: int
    replayed: bool = False


def adjust(external_id: str, ledger: str, delta: int, *, reason: str, actor: str, adjustment_id: str,
           clock: Clock = system_clock) -> AdjustmentOutcome:
    _check(ledger, delta, reason, actor, adjustment_id)
    digest = payload_hash({"member": external_id, "ledger": ledger, "delta": delta, "reason": reason.strip()})

    def apply() -> AdjustmentOutcome:
        with transaction.atomic():
            member = lock_members([external_id]).get(external_id)
            if member is None:
                raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
            # IMPORTANT: look for a replay only under the member's lock: a concurrent retry waits here.
            existing = Adjustment.objects.filter(adjustment_id=adjustment_id).first()
            if existing is not None:
                check_replay(existing.payload_hash, digest, f"adjustment {adjustment_id}", "adjustment_id")
                return AdjustmentOutcome(adjustment_id, external_id, existing.ledger, existing.delta, replayed=True)
            now = clock.now()
            active = rulesets.in_force(now)
            posting = Posting("adjustment", adjustment_id, f"adjustment:{adjustment_id}", active.version, now,
                              local_date(now, active.ruleset.timezone))
            book = Book(now)
            if ledger == "growth":
                if member.growth_balance + delta < 0:
                    raise Refused("growth cannot go below zero", field="delta", code="insufficient_growth")
                book.post(member.id, "growth", delta, posting)
            elif delta > 0:
                book.award_points(member, delta, posting, available_at=now,
                                  expires_at=lot_expires_at(now, active.ruleset.points, active.ruleset.timezone))
            else:
                takes, shortfall = draw(live_lots(member.id, now), -delta, now)
                if shortfall:
                    raise Refused("not enough spendable points for this debit", field="delta",
                                  code="insufficient_points")
                take_from_lots(takes)
                book.post(member.id, "points", delta, posting)
            book.flush()
            Adjustment.objects.create(adjustment_id=adjustment_id, member_id=member.id, ledger=ledger, delta=delta,
                                      reason=reason.strip(), actor=actor, payload_hash=digest, created_at=now)
            if ledger == "points":  # the platform hears of it, exactly when the adjustment commits
                emit(member.id, "points.adjusted", f"adjustment:{adjustment_id}", {
                    "member": external_id, "adjustment_id": adjustment_id, "delta": delta,
                    "reason": reason.strip(), "actor": actor}, now)
        return AdjustmentOutcome(adjustment_id, external_id, ledger, delta)

    return retry_races(apply)


def _check(ledger: str, delta: int, reason: str, actor: str, adjustment_id: str) -> None:
    if ledger not in ("growth", "points"):
        raise InvalidInput("ledger must be growth or points", field="ledger")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_UNITS:
        raise InvalidInput(f"delta must be a non-zero whole number within ±{MAX_UNITS:,}", field="delta")
    if not plain_text(reason, "reason", max_length=1000).strip():
        raise InvalidInput("an adjustment needs a reason", field="reason")
    if not plain_text(actor, "actor", max_length=100).strip():
        raise InvalidInput("an adjustment needs the operator who made it", field="actor")
    text_id({"adjustment_id": adjustment_id}, "adjustment_id")
