"""Invitations into the invitation-only tiers (black-gold in the default ruleset).

A member is invited once, by a member who holds an invitation-only tier now or by an operator.
The invitation row (one per member: a UNIQUE key) and `Member.invited` are written in one
transaction. Inviting again with the same inviter and note is a replay: it answers the first
invitation and changes nothing. Anyone else inviting an invited member is a Conflict
(`exists_with_different_payload`): the first inviter stays the one on record.

The invitation only opens the door: the tier's other conditions are judged at the next
evaluation (at once, under the ruleset's `immediate_upgrade`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from loyalty.clock import Clock, FixedClock, system_clock
from loyalty.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from loyalty.domain.events import plain_text
from loyalty.domain.rules import Ruleset
from loyalty.services import rulesets
from loyalty.services.batches import retry_races
from loyalty.services.ledger import payload_hash
from loyalty.services.tiers import evaluate_tiers
from loyalty.store.models import Invitation, Member

NOTE_MAX = 200
OPERATOR_MAX = 100


@dataclass(frozen=True)
class InvitationOutcome:
    member: str
    inviter: str | None  # the inviting member's external id
    operator: str  # the inviting operator; empty when a member invited
    note: str
    invited_at: datetime
    replayed: bool = False


def invite(external_id: str, *, inviter: str | None = None, operator: str = "", note: str = "",
           clock: Clock = system_clock) -> InvitationOutcome:
    """Invite a member, by another member (`inviter`, an external id) or by an operator (`operator`,
    a username): exactly one of the two. Raises Forbidden (`inviter_not_eligible`) when the
    inviting member does not hold an invitation-only tier now."""
    operator, note = operator.strip(), note.strip()
    _check(external_id, inviter, operator, note)
    digest = payload_hash({"inviter": inviter, "operator": operator, "note": note})
    return retry_races(lambda: _invite(external_id, inviter, operator, note, digest, clock))


def _invite(external_id: str, inviter: str | None, operator: str, note: str, digest: str,
            clock: Clock) -> InvitationOutcome:
    with transaction.atomic():
        wanted = [external_id, inviter] if inviter else [external_id]
        # IMPORTANT: both rows locked in primary-key order: a concurrent retry waits here, and the
        # inviter cannot lose the tier between the check and the write.
        found = {m.external_id: m for m in Member.objects.select_for_update().filter(external_id__in=wanted)
                 .order_by("id")}
        member = found.get(external_id)
        if member is None:
            raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
        existing = Invitation.objects.filter(member_id=member.id).select_related("inviter").first()
        if existing is not None:
            if _digest_of(existing) != digest:
                # Operators are named to nobody outside: the platform hears only that one invited.
                by = f"member {existing.inviter.external_id}" if existing.inviter else "an operator"
                raise Conflict(f"{external_id} was already invited, by {by} at {existing.created_at.isoformat()}; "
                               "a member is invited once", field="inviter", code="exists_with_different_payload")
            return _outcome(external_id, existing, replayed=True)
        now = clock.now()
        active = rulesets.in_force(now)
        if inviter:
            _check_inviter(found.get(inviter), inviter, active.ruleset, now)
        invitation = Invitation.objects.create(member=member, inviter=found.get(inviter) if inviter else None,
                                               operator=operator, note=note, created_at=now)
        Member.objects.filter(id=member.id).update(invited=True)
        if active.ruleset.evaluation.immediate_upgrade:
            evaluate_tiers(now, clock=FixedClock(now), member_ids=[member.id], upgrades_only=True)
    return _outcome(external_id, invitation)


def _check(external_id: str, inviter: str | None, operator: str, note: str) -> None:
    if bool(inviter) == bool(operator):
        raise InvalidInput("an invitation comes from a member (inviter) or an operator, exactly one",
                           field="inviter")
    if inviter == external_id:
        raise InvalidInput("a member cannot invite themselves", field="inviter")
    plain_text(operator, "operator", max_length=OPERATOR_MAX)
    plain_text(note, "note", max_length=NOTE_MAX)


def _check_inviter(inviter: Member | None, external_id: str, ruleset: Ruleset, now: datetime) -> None:
    if inviter is None:
        raise NotFound(f"unknown inviter {external_id!r}", field="inviter", code="unknown_member")
    current = inviter.tier_expires_at is None or inviter.tier_expires_at > now
    if not (ruleset.tier(inviter.tier).invitation_only and current):
        only = [t.code for t in ruleset.tiers if t.invitation_only]
        raise Forbidden(
            f"member {external_id!r} holds {inviter.tier!r}; only members of an invitation-only tier "
            f"({', '.join(only) or 'none in the ruleset in force'}) may invite",
            field="inviter", code="inviter_not_eligible")


def _digest_of(invitation: Invitation) -> str:
    inviter = invitation.inviter.external_id if invitation.inviter else None
    return payload_hash({"inviter": inviter, "operator": invitation.operator, "note": invitation.note})


def _outcome(external_id: str, invitation: Invitation, *, replayed: bool = False) -> InvitationOutcome:
    return InvitationOutcome(member=external_id,
                             inviter=invitation.inviter.external_id if invitation.inviter else None,
                             operator=invitation.operator, note=invitation.note, invited_at=invitation.created_at,
                             replayed=replayed)
