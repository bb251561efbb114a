"""Members: registration (idempotent on external id), the status a member sees, and the member-id
ranges that parallel jobs split members into (invitations: `services.invitations`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Max, Min

from loyalty.clock import Clock, system_clock
from loyalty.domain.conditions import Facts
from loyalty.domain.entitlements import Entitlements, entitlements
from loyalty.domain.errors import InvalidInput, NotFound
from loyalty.domain.events import text_id
from loyalty.domain.grants import welcome_coupons
from loyalty.domain.rules import Tier
from loyalty.domain.tiers import Gap, gaps, next_tier, with_score
from loyalty.services import holds, rulesets
from loyalty.services.grants import Award, issue_now
from loyalty.services.ledger import check_replay, payload_hash
from loyalty.services.tiers import window_facts
from loyalty.store import raw, sql
from loyalty.store.bulk import insert_rows
from loyalty.store.models import Member


def _check_external_id(external_id: str) -> None:
    if text_id({"external_id": external_id}, "external_id") != external_id:
        raise InvalidInput("external_id must not start or end with spaces", field="external_id")


def _registration_hash(external_id: str, birthday: date | None) -> str:
    return payload_hash({"external_id": external_id, "birthday": birthday.isoformat() if birthday else None})


@dataclass(frozen=True)
class Registration:
    member: Member
    created: bool


def register_member(external_id: str, *, birthday: date | None = None, clock: Clock = system_clock,
                    registered_at: datetime | None = None, welcome: bool = False) -> Registration:
    """Create the member in the base tier of the ruleset in force; a replay returns the same member
    and issues nothing. `welcome`: a sign-up (the API's registration), which also issues the
    ruleset's welcome pack, in the same transaction."""
    _check_external_id(external_id)
    at = registered_at or clock.now()
    digest = _registration_hash(external_id, birthday)
    existing = Member.objects.filter(external_id=external_id).first()
    if existing is not None:
        check_replay(existing.payload_hash, digest, f"member {external_id}", "external_id")
        return Registration(existing, created=False)
    active = rulesets.in_force(at)
    try:
        with transaction.atomic():
            member = Member.objects.create(external_id=external_id, tier=active.ruleset.base_tier.code,
                                           tier_reached_at=at, birthday=birthday, registered_at=at,
                                           payload_hash=digest)
            if welcome:
                _welcome(member, active, at)
    except IntegrityError:  # a concurrent registration of the same id won the race
        if not Member.objects.filter(external_id=external_id).exists():
            raise  # something else (never retried: it would fail again)
        return register_member(external_id, birthday=birthday, clock=clock, registered_at=registered_at,
                               welcome=welcome)
    return Registration(member, created=True)


def _welcome(member: Member, active: rulesets.ActiveRuleset, at: datetime) -> None:
    """The welcome pack of the ruleset in force (`operations.welcome_pack`), in the registration's
    transaction: it commits, or rolls back, with the member. Keyed `welcome:<member id>`."""
    ruleset = active.ruleset
    pack = welcome_coupons(ruleset.operations.welcome_pack, at, ruleset.timezone, member.id)
    if pack:
        issue_now(Award(member.id, member.external_id, "welcome", f"welcome:{member.id}", pack), at, active.version)


def register_many(first_seen: Mapping[str, datetime], *, birthdays: Mapping[str, date] | None = None,
                  clock: Clock = system_clock) -> int:
    """Register, set-based, every external id not yet known, as of the given time; returns how many.
    Imports of customers the shop already had: no welcome pack (see docs/benefits.md)."""
    birthdays = birthdays or {}
    ids = list(first_seen)
    known: set[str] = set()
    for start in range(0, len(ids), 5000):
        known.update(Member.objects.filter(external_id__in=ids[start:start + 5000])
                     .values_list("external_id", flat=True))
    rows = []
    book = rulesets.rulebook()
    for external_id, at in first_seen.items():
        if external_id in known:
            continue
        _check_external_id(external_id)
        base = book.in_force(at).ruleset.base_tier.code
        birthday = birthdays.get(external_id)
        rows.append((external_id, base, at, at, birthday, _registration_hash(external_id, birthday)))
    insert_rows(Member, ("external_id", "tier", "tier_reached_at", "registered_at", "birthday", "payload_hash"), rows)
    return len(rows)


def id_ranges(size: int) -> list[tuple[int, int]]:
    """Half-open member-id ranges (lo <= id < hi) of `size` ids each, from the lowest id to the
    highest: the shares of a job that parallel workers take. By id, not by count: where ids
    have gaps, a range holds fewer members."""
    if size < 1:
        raise InvalidInput("a range holds at least one member id", field="chunk")
    bounds = Member.objects.aggregate(lo=Min("id"), hi=Max("id"))
    if bounds["lo"] is None:
        return []
    end = bounds["hi"] + 1
    return [(lo, min(lo + size, end)) for lo in range(bounds["lo"], end, size)]


def get_member(external_id: str) -> Member:
    member = Member.objects.filter(external_id=external_id).first()
    if member is None:
        raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
    return member


@dataclass(frozen=True)
class EntryView:
    id: int
    ledger: str
    delta: int
    source: str
    reference: str
    occurred_at: datetime


@dataclass(frozen=True)
class MemberStatus:
    """What a member (or an operator) sees: tier, balances, progress to the next tier."""

    external_id: str
    tier: Tier
    tier_expires_at: datetime | None
    growth_balance: int
    points_balance: int
    points_spendable: int
    points_debt: int
    next_tier: Tier | None
    gaps: list[Gap]
    recent: list[EntryView]
    benefits: Entitlements  # of the tier held, under the ruleset in force
    next_benefits: Entitlements | None  # of the next tier
    # Withheld while the member is under review (services.holds): in no balance above.
    growth_held: int = 0
    points_held: int = 0


def member_status(external_id: str, *, clock: Clock = system_clock, entries: int = 10) -> MemberStatus:
    """Read on every visit to the member center: plain statements (`store.sql`), no ORM, in one
    read snapshot, so balances, lots and entries agree with one another."""
    with raw.snapshot():
        return _status(external_id, clock.now(), entries)


def _status(external_id: str, now: datetime, entries: int) -> MemberStatus:
    member = sql.member_for_status(external_id, now)
    if member is None:
        raise NotFound(f"unknown member {external_id!r}", field="member", code="unknown_member")
    ruleset = rulesets.in_force(now).ruleset
    facts = Facts(window_facts(ruleset, now, [member.id]).get(member.id, {}), {"invited": member.invited})
    facts = with_score(facts, ruleset)
    upcoming = next_tier(ruleset, member.tier)
    held = holds.held_totals(member.id) if member.held_since is not None else None
    return MemberStatus(
        external_id=member.external_id, tier=ruleset.tier(member.tier), tier_expires_at=member.tier_expires_at,
        growth_balance=member.growth_balance, points_balance=member.points_balance,
        points_spendable=member.points_spendable, points_debt=member.points_debt,
        next_tier=upcoming, gaps=gaps(upcoming, facts, ruleset) if upcoming else [],
        recent=[EntryView(*row) for row in sql.latest_entries(member.id, entries)],
        benefits=entitlements(ruleset, member.tier),
        next_benefits=entitlements(ruleset, upcoming.code) if upcoming else None,
        growth_held=held.growth if held else 0, points_held=held.points if held else 0)
