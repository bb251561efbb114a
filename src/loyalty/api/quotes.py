"""Price quotes (docs/quotes.md): a member's cart with the member-day and tier discounts, a coupon
and the delivery fee applied, line by line, and what the order would earn. A read: a key with
`members:read`, or the member's own token (the member center shows its own prices)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import AwareDatetime, ConfigDict, Field
from pydantic.json_schema import JsonDict

from loyalty.api.auth import Bearer, own_member
from loyalty.api.replies import ERRORS
from loyalty.api.schemas import MEMBER_ID, NO_CONTROL, Amount, Out, money_field
from loyalty.domain.money import format_fen
from loyalty.domain.quotes import MAX_LINES, MAX_QUANTITY, PricedLine, parse_quote_request
from loyalty.services.quotes import QuoteResult, quote_cart

router = Router(tags=["quotes"])
ID_TEXT = r"^[^\s\x00-\x1f\x7f]+$"
QUOTE_EXAMPLE: JsonDict = {
    "member": "m-10001", "at": "2027-01-06T10:30:00+08:00", "delivery_fee": "8.00",
    "lines": [{"sku": "sku-42", "category": "fresh", "unit_price": "12.30", "quantity": 2},
              {"sku": "sku-7", "unit_price": "99.00", "quantity": 1}]}


class QuoteLineIn(Schema):
    sku: str = Field(min_length=1, max_length=64, pattern=ID_TEXT, examples=["sku-42"])
    category: str | None = Field(default=None, max_length=64, pattern=NO_CONTROL, examples=["fresh"],
                                 description="for the growth preview's category multipliers")
    unit_price: Amount = money_field("12.30")
    quantity: int = Field(ge=1, le=MAX_QUANTITY, strict=True, examples=[2])


class QuoteIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [QUOTE_EXAMPLE]})

    member: str = Field(min_length=1, max_length=64, pattern=MEMBER_ID, examples=["m-10001"])
    at: AwareDatetime | None = Field(default=None, description="when the order would be paid; default: now")
    lines: list[QuoteLineIn] = Field(min_length=1, max_length=MAX_LINES)
    delivery_fee: Amount = money_field("8.00")
    coupon: str | None = Field(default=None, min_length=1, max_length=32, pattern=MEMBER_ID,
                               description="one of the member's coupon codes")


class QuoteLineOut(Out):
    sku: str
    category: str | None
    quantity: int
    unit_price: str = Field(examples=["12.30"])
    amount: str = Field(examples=["24.60"], description="unit price × quantity")
    member_day_discount: str
    tier_discount: str
    coupon_discount: str
    total: str = Field(examples=["21.65"], description="amount less the three discounts")


class DiscountsOut(Out):
    member_day: str
    tier: str
    coupon: str
    delivery: str = Field(description="the delivery fee waived (0.00 when it is charged)")


class QuoteCouponOut(Out):
    code: str
    kind: str
    applied: bool
    discount: str = Field(description="taken off the goods (0.00 for a free delivery: see delivery_waived_by)")
    reason: str | None = Field(examples=["below_min_spend"], description="why it was not applied")
    message: str | None


class EarnsOut(Out):
    growth: int = Field(description="before any daily growth cap")
    points: int


class QuoteOut(Out):
    quote_id: str = Field(description="cite it as `quote_id` on the order event that follows")
    member: str
    tier: str
    at: datetime
    ruleset_version: int
    lines: list[QuoteLineOut]
    subtotal: str = Field(description="Σ line amounts, before any discount")
    discounts: DiscountsOut
    goods_total: str = Field(description="Σ line totals: what the order's items should say")
    delivery_fee: str
    delivery_waived: bool
    delivery_waived_by: Literal["tier", "coupon"] | None
    delivery_charged: str
    total: str = Field(description="goods_total + delivery_charged")
    applied: Literal["member_day", "tier", "both"] | None = Field(description="which percentage discount applied")
    why: str
    member_day_rate: str = Field(examples=["0.12"], description="0 when `at` is not the member day")
    tier_rate: str = Field(examples=["0.05"])
    coupon: QuoteCouponOut | None
    earns: EarnsOut


def _line(line: PricedLine) -> QuoteLineOut:
    return QuoteLineOut(sku=line.sku, category=line.category, quantity=line.quantity,
                        unit_price=format_fen(line.unit_price_fen), amount=format_fen(line.amount_fen),
                        member_day_discount=format_fen(line.member_day_fen), tier_discount=format_fen(line.tier_fen),
                        coupon_discount=format_fen(line.coupon_fen), total=format_fen(line.total_fen))


def _out(result: QuoteResult) -> QuoteOut:
    q, coupon = result.quote, result.quote.coupon
    waived = q.delivery_fee_fen - q.delivery_charged_fen
    return QuoteOut(
        quote_id=result.quote_id, member=result.member, tier=result.tier, at=result.at,
        ruleset_version=result.ruleset_version, lines=[_line(line) for line in q.lines],
        subtotal=format_fen(q.sum_of("amount_fen")),
        discounts=DiscountsOut(member_day=format_fen(q.sum_of("member_day_fen")), tier=format_fen(q.sum_of("tier_fen")),
                               coupon=format_fen(q.sum_of("coupon_fen")), delivery=format_fen(waived)),
        goods_total=format_fen(q.goods_total_fen), delivery_fee=format_fen(q.delivery_fee_fen),
        delivery_waived=q.delivery_waived_by is not None,
        delivery_waived_by=q.delivery_waived_by,  # type: ignore[arg-type]
        delivery_charged=format_fen(q.delivery_charged_fen), total=format_fen(q.total_fen),
        applied=q.applied, why=q.why,  # type: ignore[arg-type]
        member_day_rate=str(q.member_day_rate), tier_rate=str(q.tier_rate),
        coupon=None if coupon is None else QuoteCouponOut(
            code=coupon.code, kind=coupon.kind, applied=coupon.applied, discount=format_fen(coupon.discount_fen),
            reason=coupon.reason, message=coupon.message),
        earns=EarnsOut(growth=result.earns.growth, points=result.earns.points))


@router.post("/quotes", response={200: QuoteOut, **ERRORS}, auth=Bearer("members:read", members=True),
             summary="Price a member's cart: member day, tier discount, coupon, delivery, and what it would earn "
                     "(writes nothing)")
def quote(request: HttpRequest, payload: QuoteIn) -> QuoteOut:
    own_member(request, payload.member)
    return _out(quote_cart(parse_quote_request(payload.model_dump(exclude_none=True))))
