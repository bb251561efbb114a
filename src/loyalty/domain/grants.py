"""Periodic grants, decided: which coupons and notices a member is entitled to, and for when.

Pure functions of a ruleset, a member's facts and the job's due moment (never a clock). Each
grant carries a key that names it once per member and period; the services store it under a
UNIQUE constraint, so a re-run finds it and issues nothing twice:

    monthly:2027-02:coupon:2:<member id>          the 2nd monthly cash coupon of February 2027
    monthly:2027-02:free_delivery:1:<member id>   February's 1st free delivery
    birthday:2027:coupon:<member id>              2027's birthday coupon (and :pack: the pack)
    recall:2028-02-01:<member id>                 the recall coupon before the drop on 1 Feb 2028
    sprint:2027-02:<member id>                    February's sprint coupon
    welcome:coupon:1:<member id>                  the 1st coupon of the welcome pack (once ever)

A coupon's code is derived from its key (HMAC-SHA256 under the server's secret, base32), so a
crashed and re-run job writes byte-identical rows.
"""

from __future__ import annotations

import calendar
import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from loyalty.domain.conditions import AllOf, AnyOf, Condition, Facts, Flag, holds
from loyalty.domain.growth import OrderGrowth
from loyalty.domain.money import floor_int
from loyalty.domain.periods import Window, add_months, local_date, start_of_day
from loyalty.domain.rules import AfterUpgrade, CouponGrant, CouponOffer, Ruleset, Sprint, Tier, TierBenefits
from loyalty.domain.templates import DELIVERY
from loyalty.domain.tiers import earned_tier

CODE_PREFIX = "LY"
CODE_LENGTH = 16  # base32 characters after the prefix: 80 bits
BIRTHDAY_VALID_DAYS = 30
WELCOME_VALID_DAYS = 30


def coupon_code(key: str, secret: bytes) -> str:
    """The code a member shows at checkout: the same key always gives the same code.

    80 random-looking bits: among n coupons the chance that any two codes collide is about
    n² / 2^81, e.g. 4 × 10⁻⁷ for a billion coupons. A collision cannot duplicate or lose a
    grant silently: the code is UNIQUE, so the chunk holding it fails and says so."""
    mac = _keyed(secret).copy()
    mac.update(key.encode())
    return CODE_PREFIX + base32(mac.digest()[:CODE_LENGTH * 5 // 8])


@lru_cache(maxsize=4)
def _keyed(secret: bytes) -> hmac.HMAC:
    """The HMAC state after the secret: each code then hashes only its key (a monthly run makes millions)."""
    return hmac.new(secret, digestmod=hashlib.sha256)


_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BASE32_PAIRS = tuple(first + second for first in _BASE32 for second in _BASE32)


def base32(data: bytes) -> str:
    """RFC 4648 base32 of a multiple of 5 bytes, as `base64.b32encode` writes it, several times
    faster: two characters (10 bits) per table lookup."""
    if len(data) % 5:
        raise ValueError("base32 here takes a multiple of 5 bytes (no padding)")
    number, pairs = int.from_bytes(data, "big"), len(data) * 4 // 5
    return "".join([_BASE32_PAIRS[(number >> (10 * index)) & 1023] for index in range(pairs - 1, -1, -1)])


@dataclass(frozen=True)
class CouponDraft:
    """A coupon to issue; `valid_until` is the instant it stops being valid (exclusive)."""

    key: str
    kind: str
    value_fen: int
    min_spend_fen: int
    valid_from: datetime
    valid_until: datetime
    template: str = ""  # what the coupon records of its template (`domain.templates`)
    stacking_group: str = "cash"
    usage: str = "single"


def draft(key: str, kind: str, offer: CouponOffer, valid_from: datetime, valid_until: datetime) -> CouponDraft:
    """A coupon on the terms of `offer`; the template's `kind`, when it names one, replaces the grant's."""
    return CouponDraft(key, offer.kind or kind, offer.value_fen, offer.min_spend_fen, valid_from, valid_until,
                       offer.template, offer.stacking_group, offer.usage)


@dataclass(frozen=True)
class Month:
    label: str  # "2027-02"
    start: datetime  # 00:00 local on the 1st
    end: datetime  # 00:00 local on the next month's 1st


def month_of(moment: datetime, zone: ZoneInfo) -> Month:
    """The local calendar month that contains `moment`."""
    first = local_date(moment, zone).replace(day=1)
    return Month(f"{first:%Y-%m}", start_of_day(first, zone), start_of_day(add_months(first, 1), zone))


def add_days_at(moment: datetime, days: int, zone: ZoneInfo) -> datetime:
    """The same local wall-clock time `days` calendar days later."""
    local = moment.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=days), local.timetz().replace(tzinfo=None), tzinfo=zone)


def is_within(expires_at: datetime, due_at: datetime, days: int, zone: ZoneInfo) -> bool:
    """Whether `expires_at` is after `due_at` and at most `days` local days later."""
    return due_at < expires_at <= add_days_at(due_at, days, zone)


def monthly_coupons(benefits: TierBenefits | None, month: Month, member_id: int) -> list[CouponDraft]:
    """A tier's monthly coupons and free deliveries, valid for the month. An unlimited
    free-delivery benefit issues nothing: checkout reads it from the tier's benefits."""
    if benefits is None:
        return []
    drafts = []
    offers = [grant.terms for grant in benefits.monthly_coupons for _ in range(grant.count)]
    for n, offer in enumerate(offers, start=1):  # a template's valid_days is not read: valid for the month
        drafts.append(draft(f"monthly:{month.label}:coupon:{n}:{member_id}", "monthly", offer, month.start, month.end))
    for n in range(1, (benefits.free_delivery_per_month or 0) + 1):
        drafts.append(CouponDraft(f"monthly:{month.label}:free_delivery:{n}:{member_id}", "free_delivery", 0, 0,
                                  month.start, month.end, stacking_group=DELIVERY))
    return drafts


def welcome_coupons(pack: tuple[CouponGrant, ...], registered_at: datetime, zone: ZoneInfo,
                    member_id: int) -> list[CouponDraft]:
    """The welcome pack (`operations.welcome_pack`), valid from the registration for the pack's
    `valid_days` (default 30) to the same local time of day. The ruleset gives every coupon of a
    pack one validity (`parse_ruleset` checks it), so the pack is one `coupon.issued` event."""
    offers = [grant.terms for grant in pack for _ in range(grant.count)]
    if not offers:
        return []
    until = add_days_at(registered_at, offers[0].valid_days or WELCOME_VALID_DAYS, zone)
    return [draft(f"welcome:coupon:{n}:{member_id}", "welcome", offer, registered_at, until)
            for n, offer in enumerate(offers, start=1)]


def birthdays_on(day: date) -> tuple[tuple[int, int], ...]:
    """The (month, day) birthdays celebrated on `day`: 29 February is kept on 28 February in
    common years (and on the 29th in leap years, not twice)."""
    if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
        return ((2, 28), (2, 29))
    return ((day.month, day.day),)


def birthday_gifts(offer: CouponOffer | None, pack: bool, day: date, zone: ZoneInfo,
                   member_id: int) -> list[CouponDraft]:
    """The birthday coupon (when the ruleset offers one) and the birthday pack (when the tier
    has it), valid from the birthday's 00:00 for the coupon's `valid_days` (default 30)."""
    days = offer.valid_days if offer and offer.valid_days else BIRTHDAY_VALID_DAYS
    start, end = start_of_day(day, zone), start_of_day(day + timedelta(days=days), zone)
    drafts = []
    if offer is not None:
        drafts.append(draft(f"birthday:{day.year}:coupon:{member_id}", "birthday", offer, start, end))
    if pack:  # a gift, not a discount: in no stacking group
        drafts.append(CouponDraft(f"birthday:{day.year}:pack:{member_id}", "birthday_pack", 0, 0, start, end,
                                  stacking_group=""))
    return drafts


def recall_coupon(offer: CouponOffer | None, due_at: datetime, expires_at: datetime, zone: ZoneInfo,
                  member_id: int) -> CouponDraft | None:
    """The recall coupon: valid from the warning until the tier would drop (or `valid_days`)."""
    if offer is None:
        return None
    until = add_days_at(due_at, offer.valid_days, zone) if offer.valid_days else expires_at
    return draft(f"recall:{local_date(expires_at, zone)}:{member_id}", "recall", offer, due_at, until)


def sprint_is_on(day: date, sprint: Sprint) -> bool:
    """Whether `day` is a sprint day. A day past the month's end means its last day (as in job
    schedules): [25, 30] runs 25–28 February, [29, 31] runs on 28 February."""
    last = calendar.monthrange(day.year, day.month)[1]
    return min(sprint.first_day, last) <= day.day <= min(sprint.last_day, last)


def sprint_coupon(offer: CouponOffer | None, month: Month, due_at: datetime, zone: ZoneInfo,
                  member_id: int) -> CouponDraft | None:
    """The sprint boost: valid from the notice to the month's end (the next evaluation), or `valid_days`."""
    if offer is None:
        return None
    until = add_days_at(due_at, offer.valid_days, zone) if offer.valid_days else month.end
    return draft(f"sprint:{month.label}:{member_id}", "sprint", offer, due_at, until)


def is_near(node: Condition, facts: Facts, window: Window, within_percent: Decimal) -> bool:
    """Whether the condition would hold if every `>=`/`>` comparison within `within_percent`
    of its threshold were met: close on one branch of an `any`, on every part of an `all`.
    Flags must hold as they are (an invitation cannot be sprinted for)."""
    if isinstance(node, AnyOf):
        return any(is_near(part, facts, window, within_percent) for part in node.parts)
    if isinstance(node, AllOf):
        return all(is_near(part, facts, window, within_percent) for part in node.parts)
    if isinstance(node, Flag):
        return holds(node, facts, window)
    if holds(node, facts, window):
        return True
    if node.op not in (">=", ">") or node.threshold <= 0:
        return False
    missing = node.threshold - Decimal(facts.value(node.key(window)))
    return missing * 100 <= node.threshold * within_percent


def sprint_target(ruleset: Ruleset, tier_code: str, facts: Facts, sprint: Sprint) -> Tier | None:
    """The tier a member could sprint for: the one above both the tier held and the tier the
    facts already earn (the 1st's evaluation grants that one anyway), when the member is near it."""
    rank = max(ruleset.tier(tier_code).rank, earned_tier(ruleset, facts).rank)
    if rank + 1 >= len(ruleset.tiers):
        return None
    target = ruleset.tiers[rank + 1]
    if (sprint.tiers and target.code not in sprint.tiers) or target.when is None:
        return None
    return target if is_near(target.when, facts, ruleset.evaluation.window, sprint.within_percent) else None


def is_after_upgrade(rule: AfterUpgrade, upgraded_at: datetime, paid_at: datetime) -> bool:
    """Whether an order paid at `paid_at` falls in the boost's time: at or after the upgrade, and
    within `within_days` of it when the ruleset limits it."""
    if paid_at < upgraded_at:
        return False
    return rule.within_days is None or paid_at < upgraded_at + timedelta(days=rule.within_days)


def after_upgrade_growth(earned: OrderGrowth, rule: AfterUpgrade | None, orders_before: int | None) -> OrderGrowth:
    """Growth of an order paid after the member's latest upgrade, `orders_before` orders into it
    (None: no upgrade applies). One of the first `rule.orders`: the base × the multiplier,
    floored; the large-order bonus is not multiplied, as with the day multiplier. Refunds take
    back shares of what is recorded, so they stay exact."""
    if rule is None or orders_before is None or orders_before >= rule.orders:
        return earned
    return OrderGrowth(floor_int(earned.base * rule.growth_multiplier), earned.bonus)
