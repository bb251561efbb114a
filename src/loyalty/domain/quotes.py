"""Price quotes: a member's cart priced with the member-day and tier discounts, a coupon and the
delivery fee, line by line in exact fen, and the growth and points the order would earn.

In this order (docs/quotes.md says every rule):
  1. each line's amount = unit price × quantity;
  2. the percentage discounts per line, each rounded to the fen by `pricing.rounding`:
     `better` applies the larger of the member-day and the tier rate, `both` takes the member
     day first and the tier rate on what is left;
  3. a cash coupon on the goods left after step 2 (its minimum spend judged on that sum), capped
     at it, allocated over the lines in proportion (largest remainder: the shares add up exactly);
     a `free_delivery` coupon waives the delivery fee instead;
  4. delivery: waived by a tier with unlimited free delivery, or by a free-delivery coupon.
Invariant: Σ line totals + delivery charged == total, and nothing is ever negative.

A Wednesday (Shanghai) cart of one ¥100.00 line for a gold member of seed 000 (5%) under
`better`: member day 12.00 off, tier 0.00, total 88.00; under `both`: 12.00 then 4.40 (5% of
88.00), total 83.60 = 100 × 0.88 × 0.95.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from loyalty.domain.coupons import Terms, check_redeemable
from loyalty.domain.errors import Conflict, InvalidInput, Refused
from loyalty.domain.events import iso, moment, plain_text, text_id
from loyalty.domain.grants import after_upgrade_growth, base32
from loyalty.domain.growth import Line, order_growth
from loyalty.domain.money import MAX_AMOUNT_FEN, parse_yuan
from loyalty.domain.periods import weekday_name
from loyalty.domain.points import order_points
from loyalty.domain.rules import Ruleset, TierBenefits

MAX_LINES = 500
MAX_QUANTITY = 9999
FREE_DELIVERY = "free_delivery"
QUOTE_PREFIX = "QT"
_ROUNDING = {"half_up": ROUND_HALF_UP, "floor": ROUND_FLOOR}


@dataclass(frozen=True)
class CartLine:
    sku: str
    category: str | None
    unit_price_fen: int
    quantity: int

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity


@dataclass(frozen=True)
class QuoteRequest:
    member: str
    at: datetime | None  # None: the server's clock decides
    lines: tuple[CartLine, ...]
    delivery_fee_fen: int
    coupon: str  # "" when none

    def canonical(self, at: datetime, version: int) -> str:
        """What the quote id signs: the request as the engine read it, its moment and ruleset."""
        return json.dumps({"member": self.member, "at": iso(at), "version": version,
                           "lines": [[x.sku, x.category, x.unit_price_fen, x.quantity] for x in self.lines],
                           "delivery_fee_fen": self.delivery_fee_fen, "coupon": self.coupon},
                          ensure_ascii=False, separators=(",", ":"))


def parse_quote_request(raw: Mapping[str, Any]) -> QuoteRequest:
    """The request, checked; raises InvalidInput naming the field (e.g. `lines[2].quantity`)."""
    items = raw.get("lines")
    if not isinstance(items, list) or not items:
        raise InvalidInput("lines must be a non-empty list", field="lines")
    if len(items) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} lines", field="lines")
    lines = tuple(_line(item, i) for i, item in enumerate(items))
    if sum(line.amount_fen for line in lines) > MAX_AMOUNT_FEN:
        raise InvalidInput("the cart's amount is implausibly large", field="lines")
    return QuoteRequest(
        member=text_id(raw, "member"),
        at=moment(raw, "at") if raw.get("at") is not None else None,
        lines=lines,
        delivery_fee_fen=parse_yuan(raw.get("delivery_fee"), field="delivery_fee", allow_zero=True),
        coupon=text_id(raw, "coupon", required=False),
    )


def _line(item: object, i: int) -> CartLine:
    path = f"lines[{i}]"
    if not isinstance(item, Mapping):
        raise InvalidInput("each line is an object with sku, category, unit_price and quantity", field=path)
    quantity = item.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be a whole number from 1 to {MAX_QUANTITY}", field=f"{path}.quantity")
    try:
        sku = text_id(item, "sku")
    except InvalidInput as error:
        raise InvalidInput(error.message, field=f"{path}.sku") from error
    category = plain_text(item.get("category") or "", f"{path}.category", max_length=64)
    price = parse_yuan(item.get("unit_price"), field=f"{path}.unit_price", allow_zero=True)
    return CartLine(sku, category or None, price, quantity)


def quote_id(canonical: str, secret: bytes) -> str:
    """`QT` and 24 base32 characters of HMAC-SHA256(secret, canonical request): the same request
    at the same moment under the same ruleset version always has the same id (120 bits)."""
    digest = hmac.new(secret, canonical.encode(), hashlib.sha256).digest()
    return QUOTE_PREFIX + base32(digest[:15])


@dataclass(frozen=True)
class QuoteCoupon:
    """The member's coupon named in the request, as stored."""

    terms: Terms
    kind: str


@dataclass(frozen=True)
class PricedLine:
    sku: str
    category: str | None
    quantity: int
    unit_price_fen: int
    member_day_fen: int
    tier_fen: int
    coupon_fen: int

    @property
    def amount_fen(self) -> int:
        return self.unit_price_fen * self.quantity

    @property
    def total_fen(self) -> int:
        return self.amount_fen - self.member_day_fen - self.tier_fen - self.coupon_fen


@dataclass(frozen=True)
class CouponOutcome:
    code: str
    kind: str
    applied: bool
    discount_fen: int = 0  # off the goods; a free delivery's saving shows as the delivery waived
    reason: str | None = None  # why not applied: coupon_expired, below_min_spend, ...
    message: str | None = None


@dataclass(frozen=True)
class Quote:
    lines: tuple[PricedLine, ...]
    member_day_rate: Decimal  # 0 when `at` is not the member day
    tier_rate: Decimal
    applied: str | None  # member_day | tier | both | None
    why: str
    delivery_fee_fen: int
    delivery_waived_by: str | None  # tier | coupon | None
    coupon: CouponOutcome | None

    def sum_of(self, part: str) -> int:
        return sum(getattr(line, part) for line in self.lines)

    @property
    def goods_total_fen(self) -> int:
        return self.sum_of("total_fen")

    @property
    def delivery_charged_fen(self) -> int:
        return 0 if self.delivery_waived_by else self.delivery_fee_fen

    @property
    def total_fen(self) -> int:
        return self.goods_total_fen + self.delivery_charged_fen


def discount_fen(amount_fen: int, rate: Decimal, rounding: str) -> int:
    """amount × rate rounded to the fen by the ruleset's `pricing.rounding` (never above the amount)."""
    exact = Decimal(amount_fen) * rate
    return min(amount_fen, int(exact.to_integral_value(rounding=_ROUNDING[rounding])))


def allocate(total_fen: int, weights: Sequence[int]) -> list[int]:
    """Split `total_fen` over lines in proportion to `weights`, by largest remainder: each line
    gets floor(total × weight ÷ Σ weights), and the fen left over go one each to the largest
    remainders (ties: the earlier line). Sums to `total_fen` exactly; with total ≤ Σ weights no
    line gets more than its weight."""
    whole = sum(weights)
    if whole <= 0 or total_fen <= 0:
        return [0] * len(weights)
    shares = [total_fen * w // whole for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total_fen * weights[i] % whole), i))
    for i in remainders[:total_fen - sum(shares)]:
        shares[i] += 1
    return shares


def rates(rules: Ruleset, tier: str, at: datetime) -> tuple[Decimal, Decimal]:
    """(member-day rate, tier rate) at `at`: the member day judged in the ruleset's timezone."""
    day = rules.member_day
    member_day = day[1] if day and weekday_name(at, rules.timezone) == day[0] else Decimal(0)
    return member_day, rules.benefits.get(tier, TierBenefits()).discount


def price(lines: Sequence[CartLine], delivery_fee_fen: int, at: datetime, *, tier: str, rules: Ruleset,
          coupon: QuoteCoupon | None = None) -> Quote:
    """The quote, decided: no I/O, no clock. `coupon` must already be the member's own."""
    member_day, tier_rate = rates(rules, tier, at)
    applied, why, md_rate, tier_used = _stacking(member_day, tier_rate, rules.pricing.stacking)
    rounding = rules.pricing.rounding
    parts = []
    for line in lines:
        md = discount_fen(line.amount_fen, md_rate, rounding)
        parts.append((line, md, discount_fen(line.amount_fen - md, tier_used, rounding)))
    after = [line.amount_fen - md - td for line, md, td in parts]
    unlimited = rules.benefits.get(tier, TierBenefits()).free_delivery_per_month is None
    waived_by = "tier" if unlimited and delivery_fee_fen > 0 else None
    outcome = None if coupon is None else _coupon(coupon, sum(after), delivery_fee_fen, waived_by, at)
    shares = allocate(outcome.discount_fen if outcome else 0, after)
    if outcome and outcome.applied and coupon and coupon.kind == FREE_DELIVERY:
        waived_by = "coupon"
    priced = tuple(PricedLine(line.sku, line.category, line.quantity, line.unit_price_fen, md, td, share)
                   for (line, md, td), share in zip(parts, shares, strict=True))
    return Quote(priced, member_day, tier_rate, applied, why, delivery_fee_fen, waived_by, outcome)


def _stacking(member_day: Decimal, tier: Decimal, stacking: str) -> tuple[str | None, str, Decimal, Decimal]:
    """(applied, why, member-day rate used, tier rate used). Equal rates under `better`: the tier's."""
    zero = Decimal(0)
    if member_day == 0 and tier == 0:
        return None, "not the member day, and the tier has no discount", zero, zero
    if tier == 0:
        return "member_day", f"member day {member_day}; the tier has no discount", member_day, zero
    if member_day == 0:
        return "tier", f"tier discount {tier}; not the member day", zero, tier
    if stacking == "both":
        return "both", f"member day {member_day}, then tier discount {tier} on the rest (stacking: both)", \
            member_day, tier
    if member_day > tier:
        return "member_day", f"member day {member_day} is larger than tier discount {tier} (stacking: better)", \
            member_day, zero
    return "tier", f"tier discount {tier} is at least member day {member_day} (stacking: better)", zero, tier


def _coupon(coupon: QuoteCoupon, goods_fen: int, delivery_fee_fen: int, waived_by: str | None,
            at: datetime) -> CouponOutcome:
    """Whether the coupon applies and for how much; a coupon the rules refuse is reported, not raised."""
    terms = coupon.terms
    try:
        # The same rules as redemption: state, validity at `at`, minimum spend on the goods after
        # the percentage discounts (the order's spend before this coupon).
        check_redeemable(terms, "", goods_fen, at)
    except (Conflict, Refused) as error:
        return CouponOutcome(terms.code, coupon.kind, False, reason=error.code, message=error.message)
    if coupon.kind == FREE_DELIVERY:
        if delivery_fee_fen == 0 or waived_by:
            return CouponOutcome(terms.code, coupon.kind, False, reason="delivery_already_free",
                                 message="the delivery is free without this coupon; it is kept for another order")
        return CouponOutcome(terms.code, coupon.kind, True)
    if terms.value_fen <= 0:
        return CouponOutcome(terms.code, coupon.kind, False, reason="not_a_price_coupon",
                             message=f"a {coupon.kind} coupon takes nothing off a price")
    return CouponOutcome(terms.code, coupon.kind, True, discount_fen=min(terms.value_fen, goods_fen))


@dataclass(frozen=True)
class Earnings:
    growth: int
    points: int


def earnings(quote: Quote, at: datetime, rules: Ruleset, *, birthday: date | None,
             orders_since_upgrade: int | None) -> Earnings:
    """What the order would earn if paid at `at` for the quote's goods (delivery earns nothing):
    the order path's own functions (category and day multipliers, the large-order bonus, the
    boost after an upgrade, the birthday multiplier), before any daily cap. `orders_since_upgrade`
    is None when no upgrade boost can apply."""
    paid_fen = quote.goods_total_fen
    if paid_fen <= 0:
        return Earnings(0, 0)
    lines = [Line(line.category, line.total_fen) for line in quote.lines if line.total_fen > 0]
    growth = order_growth(lines, paid_fen, at, rules.growth, rules.timezone)
    growth = after_upgrade_growth(growth, rules.operations.after_upgrade, orders_since_upgrade)
    return Earnings(growth.total, order_points(paid_fen, at, birthday, rules.points, rules.timezone))
