"""Price quotes: read the member, the ruleset in force at the quote's moment and the coupon named,
then let `domain.quotes` price the cart. A quote is a read: it locks nothing and writes nothing.

The coupon is looked up among the member's own coupons only, as redemption does: another
member's code answers `unknown_coupon` exactly as a code that does not exist. The member's tier
is the one stored now; the upgrade boost is previewed from the orders recorded so far.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from loyalty.clock import Clock, system_clock
from loyalty.domain.coupons import Terms
from loyalty.domain.errors import NotFound
from loyalty.domain.grants import is_after_upgrade
from loyalty.domain.quotes import Earnings, Quote, QuoteCoupon, QuoteRequest, earnings, price, quote_id
from loyalty.domain.rules import Ruleset
from loyalty.services import rulesets
from loyalty.services.members import get_member
from loyalty.store import sql
from loyalty.store.models import Coupon, Member


@dataclass(frozen=True)
class QuoteResult:
    quote_id: str
    member: str
    at: datetime
    ruleset_version: int
    tier: str
    quote: Quote
    earns: Earnings


def quote_cart(request: QuoteRequest, *, clock: Clock = system_clock) -> QuoteResult:
    """Price the member's cart at `request.at` (default: now). Raises `unknown_member`,
    `unknown_coupon` (404) and `no_ruleset_in_force`; a coupon the rules refuse is reported."""
    at = (request.at or clock.now()).astimezone(UTC)  # answered in UTC, as every stored time is
    member = get_member(request.member)
    active = rulesets.in_force(at)
    rules = active.ruleset
    coupon = _coupon(request.coupon, member) if request.coupon else None
    tier = rules.tier(member.tier).code  # a tier the ruleset no longer has counts as its base tier
    priced = price(request.lines, request.delivery_fee_fen, at, tier=tier, rules=rules, coupon=coupon)
    earned = earnings(priced, at, rules, birthday=member.birthday,
                      orders_since_upgrade=_orders_since_upgrade(member, tier, rules, at))
    signed = quote_id(request.canonical(at, active.version), settings.SECRET_KEY.encode())
    return QuoteResult(signed, member.external_id, at, active.version, tier, priced, earned)


def _coupon(code: str, member: Member) -> QuoteCoupon:
    coupon = Coupon.objects.filter(code=code, member_id=member.id).first()
    if coupon is None:
        raise NotFound(f"unknown coupon {code!r}", field="coupon", code="unknown_coupon")
    return QuoteCoupon(Terms(coupon.code, coupon.state, coupon.order_id, coupon.value_fen, coupon.min_spend_fen,
                             coupon.valid_from, coupon.valid_until), coupon.kind)


def _orders_since_upgrade(member: Member, tier: str, rules: Ruleset, at: datetime) -> int | None:
    """As the order path judges it: orders paid since the member's latest upgrade, when an order
    paid at `at` falls within the boost's time (None: no boost can apply)."""
    rule = rules.operations.after_upgrade
    if rule is None or member.tier_reached_at is None or tier == rules.base_tier.code \
            or not is_after_upgrade(rule, member.tier_reached_at, at):
        return None
    return sql.orders_since_upgrade([member.id]).get(member.id)
