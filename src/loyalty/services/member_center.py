"""The member center's visit: what a member sees on /m/ and what is new to them since they last
looked (a growth rise, a tier upgrade to celebrate, benefits unlocked), remembered per member in
`MemberCenterView`.

Seen-state rules (each visit compares, then records, in one transaction):
  * growth rose      -> the page animates the bar from the last shown value to the current one;
  * tier rank rose   -> the full-screen celebration shows, once: the visit records the rank;
  * benefit unlocked -> its card carries a red dot on this visit; the visit records the benefits
                        shown, so the next visit shows no dot.
A member never seen before starts from the base tier as seen: growth 0, rank 0, the base tier's
benefits. So a member who reached silver before first opening the page is congratulated once;
the base tier's own benefits are not "new". Visiting again with nothing changed changes nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction

from loyalty.clock import Clock, system_clock
from loyalty.domain.entitlements import Entitlements, entitlements
from loyalty.domain.periods import Window
from loyalty.domain.rules import Ruleset, Tier
from loyalty.domain.tiers import Gap
from loyalty.services import rulesets
from loyalty.services.members import EntryView, MemberStatus, get_member, member_status
from loyalty.store import sql
from loyalty.store.models import LedgerEntry, MemberCenterView

HISTORY_PAGE = 20
FULL = 1000  # the progress bar, in permille


@dataclass(frozen=True)
class Benefit:
    """One benefit as a card shows it; `key` names it across tiers (refund priority is one benefit
    whichever tier grants it, so moving up does not make it new)."""

    kind: str  # coupon | free_delivery | discount | flag
    value_fen: int = 0  # coupon: face value
    count: int | None = 0  # coupon: how many a month; free_delivery: a month, None = unlimited
    min_spend_fen: int = 0  # coupon
    discount: Decimal = Decimal(0)  # discount: 0.05 = 5% off
    flag: str = ""  # flag: which

    @property
    def key(self) -> str:
        if self.kind == "coupon":
            return f"coupon:{self.value_fen}:{self.count}:{self.min_spend_fen}"
        if self.kind == "free_delivery":
            return f"free_delivery:{'unlimited' if self.count is None else self.count}"
        if self.kind == "discount":
            return f"discount:{self.discount}"
        return f"flag:{self.flag}"


def benefits_of(granted: Entitlements) -> list[Benefit]:
    cards = [Benefit("coupon", c.value_fen, c.count, c.min_spend_fen) for c in granted.monthly_coupons]
    if granted.free_delivery_per_month != 0:
        cards.append(Benefit("free_delivery", count=granted.free_delivery_per_month))
    if granted.discount:
        cards.append(Benefit("discount", discount=granted.discount))
    return cards + [Benefit("flag", flag=flag) for flag in granted.flags]


@dataclass(frozen=True)
class TierCard:
    tier: Tier
    benefits: list[Benefit]
    unlocked: bool  # the member's own tier; higher tiers are locked


@dataclass(frozen=True)
class Seen:
    """What the page showed on a visit (or shows now)."""

    growth: int
    progress: int  # permille
    rank: int
    benefits: frozenset[str]


@dataclass(frozen=True)
class News:
    growth_rose: bool
    progress_from: int  # permille the bar starts from: the last shown value, or 0 after a tier change
    celebrate: bool
    new_benefits: frozenset[str]


def what_is_new(before: Seen, now: Seen) -> News:
    rose = now.growth > before.growth
    start = before.progress if rose and before.rank == now.rank and before.progress <= now.progress else 0
    return News(rose, start if rose else now.progress, now.rank > before.rank, now.benefits - before.benefits)


def progress_permille(status: MemberStatus) -> int:
    """How full the bar to the next tier is: the closest unmet condition (any one suffices in an
    `any`), floored; full at the top tier or when the next tier's condition already holds."""
    if status.next_tier is None or not status.gaps:
        return FULL
    return max(_share(gap) for gap in status.gaps)


def _share(gap: Gap) -> int:
    if gap.needed <= 0:
        return FULL
    return min(FULL, max(0, math.floor(gap.current * FULL / gap.needed)))


@dataclass(frozen=True)
class ExpiringPoints:
    expires_at: datetime
    points: int


@dataclass(frozen=True)
class Visit:
    status: MemberStatus
    progress: int  # permille
    news: News
    growth_before: int  # the growth shown on the previous visit
    tiers: list[TierCard]  # the member's tier, then every higher one
    expiring: list[ExpiringPoints]  # soonest first
    expiring_days: int
    timezone: ZoneInfo  # the ruleset's: dates are shown in it
    evaluation_window: Window  # the ruleset's: what a condition naming no window counts


def visit(external_id: str, *, clock: Clock = system_clock) -> Visit:
    """Read the member's page and record it as seen (one transaction for the record)."""
    now = clock.now()
    status = member_status(external_id, clock=clock)
    ruleset = rulesets.in_force(now).ruleset
    member = get_member(external_id)
    shown = Seen(status.growth_balance, progress_permille(status), status.tier.rank,
                 frozenset(b.key for b in benefits_of(status.benefits)))
    before = _record(member.id, shown, ruleset, now)
    days = ruleset.operations.expiring_notice_days or 30
    return Visit(status, shown.progress, what_is_new(before, shown), before.growth, _tier_cards(ruleset, status.tier),
                 expiring_points(member.id, now, days), days, ruleset.timezone,
                 ruleset.evaluation.window)


def _record(member_id: int, shown: Seen, ruleset: Ruleset, now: datetime) -> Seen:
    """Swap what the member saw last for what they see now; returns the former."""
    try:
        with transaction.atomic():
            row = MemberCenterView.objects.select_for_update().filter(member_id=member_id).first()
            if row is None:
                base = benefits_of(entitlements(ruleset, ruleset.base_tier.code))
                before = Seen(0, 0, 0, frozenset(b.key for b in base))
                row = MemberCenterView(member_id=member_id)
            else:
                before = Seen(row.seen_growth, row.seen_progress, row.celebrated_rank, frozenset(row.seen_benefits))
            row.seen_growth, row.seen_progress, row.celebrated_rank = shown.growth, shown.progress, shown.rank
            row.seen_benefits, row.seen_at = sorted(shown.benefits), now
            row.save()
            return before
    except IntegrityError:  # the same member's first visit, twice at once: the other one recorded it
        return _record(member_id, shown, ruleset, now)


def _tier_cards(ruleset: Ruleset, held: Tier) -> list[TierCard]:
    return [TierCard(tier, benefits_of(entitlements(ruleset, tier.code)), tier.rank == held.rank)
            for tier in ruleset.tiers if tier.rank >= held.rank]


def expiring_points(member_id: int, now: datetime, days: int) -> list[ExpiringPoints]:
    """Points left in lots that expire within `days` from `now`, summed per expiry moment."""
    horizon = now + timedelta(days=days)
    totals: dict[datetime, int] = {}
    for _, remaining, _, _, expires_at in sql.open_lots(member_id):
        if expires_at is not None and now < expires_at <= horizon:
            totals[expires_at] = totals.get(expires_at, 0) + remaining
    return [ExpiringPoints(at, points) for at, points in sorted(totals.items())]


@dataclass(frozen=True)
class HistoryPage:
    entries: list[EntryView]
    page: int
    pages: int
    total: int


def growth_history(external_id: str, page: int = 1, *, per_page: int = HISTORY_PAGE) -> HistoryPage:
    """The member's growth entries, newest first; a page past the last shows the last."""
    rows = LedgerEntry.objects.filter(member_id=get_member(external_id).id, ledger="growth")
    total = rows.count()
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    chosen = rows.order_by("-occurred_at", "-id")[(page - 1) * per_page:page * per_page]
    entries = [EntryView(e.id, e.ledger, e.delta, e.source, e.reference, e.occurred_at) for e in chosen]
    return HistoryPage(entries, page, pages, total)
