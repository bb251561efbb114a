"""Members: registration, status (tier, balances, progress), the ledger, member tokens,
invitations into the invitation-only tiers, and operator adjustments (points redemption is in
`api.rewards`)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache

from django.http import HttpRequest, HttpResponse
from ninja import Body, Query, Router, Schema, Status
from pydantic import Field

from loyalty.api.auth import Bearer, caller, issue_member_token, own_member
from loyalty.api.errors import ApiError
from loyalty.api.replies import ERRORS, rendered, replayed
from loyalty.api.schemas import (
    AdjustmentIn,
    AdjustmentOut,
    BenefitsOut,
    EntryOut,
    GapOut,
    InvitationIn,
    InvitationOut,
    LedgerOut,
    MemberIn,
    MemberOut,
    MemberPath,
    StatusOut,
    TokenIn,
    TokenOut,
)
from loyalty.domain.conditions import AMOUNT_METRICS
from loyalty.domain.entitlements import Entitlements
from loyalty.domain.money import format_fen
from loyalty.domain.tiers import Gap
from loyalty.services.adjustments import adjust
from loyalty.services.invitations import invite
from loyalty.services.members import EntryView, get_member, member_status, register_member
from loyalty.store.models import LedgerEntry

router = Router(tags=["members"])
MAX_PAGE = 200
DEFAULT_TOKEN = TokenIn()  # no body (or an empty one): the default lifetime


def _figure(metric: str, value: Decimal) -> str:
    return format_fen(int(value)) if metric in AMOUNT_METRICS else str(value)


def _entry(entry: EntryView | LedgerEntry) -> EntryOut:
    return EntryOut(id=entry.id, ledger=entry.ledger, delta=entry.delta, source=entry.source,
                    reference=entry.reference, occurred_at=entry.occurred_at)


def _gap(gap: Gap) -> GapOut:
    missing = max(gap.needed - gap.current, Decimal(0))
    return GapOut(metric=gap.metric, window=gap.window, needed=_figure(gap.metric, gap.needed),
                  current=_figure(gap.metric, gap.current), missing=_figure(gap.metric, missing))


@lru_cache(maxsize=256)
def _benefits(benefits: Entitlements) -> BenefitsOut:
    """Built once per tier and ruleset: every status read shows one of a handful (BENCHMARKS.md, 8a)."""
    delivery = benefits.free_delivery_per_month
    return BenefitsOut.model_validate({
        "monthly_coupons": [{"value": format_fen(c.value_fen), "count": c.count,
                             "min_spend": format_fen(c.min_spend_fen)} for c in benefits.monthly_coupons],
        "free_delivery_per_month": "unlimited" if delivery is None else delivery,
        "discount": str(benefits.discount), "flags": list(benefits.flags)})


@router.post("/members", response={201: MemberOut, **ERRORS}, auth=Bearer("members:write"),
             summary="Register a member (idempotent on external_id)")
def register(request: HttpRequest, payload: MemberIn, response: HttpResponse) -> Status[MemberOut]:
    registration = register_member(payload.external_id, birthday=payload.birthday, welcome=True)
    member = registration.member
    replayed(response, not registration.created)
    return Status(201, MemberOut(external_id=member.external_id, birthday=member.birthday,
                                 registered_at=member.registered_at))


@router.get("/members/{external_id}", response={200: StatusOut, **ERRORS},
            auth=Bearer("members:read", members=True),
            summary="A member's tier, expiry, balances and progress to the next tier")
def status(request: HttpRequest, external_id: MemberPath) -> HttpResponse:
    own_member(request, external_id)
    seen = member_status(external_id)
    # One dict validated at once (in pydantic's Rust core) rather than a dozen objects built one by
    # one, and rendered here rather than validated again by Ninja: this is the member center's
    # every page view.
    return rendered(StatusOut.model_validate({
        "external_id": seen.external_id, "tier": {"code": seen.tier.code, "name": seen.tier.name},
        "benefits": _benefits(seen.benefits),
        "tier_expires_at": seen.tier_expires_at, "growth_balance": seen.growth_balance,
        "points_balance": seen.points_balance, "points_spendable": seen.points_spendable,
        "points_debt": seen.points_debt, "growth_held": seen.growth_held, "points_held": seen.points_held,
        "next_tier": {"code": seen.next_tier.code, "name": seen.next_tier.name,
                      "benefits": _benefits(seen.next_benefits)} if seen.next_tier and seen.next_benefits else None,
        "progress": [_gap(gap) for gap in seen.gaps],
        "recent": [{"id": e.id, "ledger": e.ledger, "delta": e.delta, "source": e.source, "reference": e.reference,
                    "occurred_at": e.occurred_at} for e in seen.recent]}))


class LedgerQuery(Schema):
    ledger: str | None = Field(default=None, pattern="^(growth|points)$")
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    cursor: str | None = Field(default=None, max_length=20, pattern="^[0-9]+$",
                               description="from the previous page's next_cursor")


@router.get("/members/{external_id}/ledger", response={200: LedgerOut, **ERRORS},
            auth=Bearer("members:read", members=True),
            summary="A member's ledger entries, newest first, a page at a time")
def ledger(request: HttpRequest, external_id: MemberPath, query: Query[LedgerQuery]) -> LedgerOut:
    own_member(request, external_id)
    member = get_member(external_id)
    rows = LedgerEntry.objects.filter(member_id=member.id)
    if query.ledger:
        rows = rows.filter(ledger=query.ledger)
    if query.cursor:
        rows = rows.filter(id__lt=int(query.cursor))
    page = list(rows.order_by("-id")[:query.limit + 1])
    more = len(page) > query.limit
    page = page[:query.limit]
    return LedgerOut(entries=[_entry(e) for e in page], next_cursor=str(page[-1].id) if more else None)


@router.post("/members/{external_id}/token", response={201: TokenOut, **ERRORS}, auth=Bearer("members:write"),
             summary="Issue a short-lived token that lets the member-center page read this member only")
def token(request: HttpRequest, external_id: MemberPath, payload: Body[TokenIn] = DEFAULT_TOKEN) -> Status[TokenOut]:
    get_member(external_id)
    ttl = timedelta(seconds=payload.ttl_seconds)
    text, expires_at = issue_member_token(external_id, ttl=ttl)
    return Status(201, TokenOut(token=text, expires_at=expires_at))


@router.post("/members/{external_id}/adjustments", response={201: AdjustmentOut, **ERRORS},
             auth=Bearer("members:write"),
             summary="An operator's correction of growth or points, with its reason (idempotent on adjustment_id)")
def adjustment(request: HttpRequest, external_id: MemberPath, payload: AdjustmentIn, response: HttpResponse
               ) -> Status[AdjustmentOut]:
    who = caller(request)
    if who.key is None:  # pragma: no cover (Bearer admits only keys here)
        raise ApiError("an API key is required", code="forbidden", status=403)
    outcome = adjust(external_id, payload.ledger, payload.delta, reason=payload.reason, actor=who.actor,
                     adjustment_id=payload.adjustment_id)
    replayed(response, outcome.replayed)
    return Status(201, AdjustmentOut(adjustment_id=outcome.adjustment_id, member=outcome.member,
                                     ledger=outcome.ledger, delta=outcome.delta))


@router.post("/members/{external_id}/invitations", response={201: InvitationOut, **ERRORS},
             auth=Bearer("members:write"),
             summary="Invite a member into the invitation-only tiers, by a member who holds one (a replay "
                     "answers the first invitation; another inviter is a 409; an inviter below those tiers a 403)")
def invitation(request: HttpRequest, external_id: MemberPath, payload: InvitationIn, response: HttpResponse
               ) -> Status[InvitationOut]:
    outcome = invite(external_id, inviter=payload.inviter, note=payload.note)
    replayed(response, outcome.replayed)
    return Status(201, InvitationOut(member=outcome.member, inviter=payload.inviter, note=outcome.note,
                                     invited_at=outcome.invited_at))
