"""The API's request and response shapes, as documented in the OpenAPI schema.

Money is a decimal string ("123.45") or a JSON number with at most two decimals; the body is
parsed with exact decimals (`parser.ExactJSON`), never through a float. These shapes check
types and presence; the engine's own parsers (`loyalty.domain.events`) then apply the rules
(positive, at most two decimals, lines adding up) and name the field of any mistake.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import AwareDatetime, ConfigDict, Field

MAX_BATCH = 1000
Id = Field(min_length=1, max_length=64, examples=["m-10001"])
Amount = Decimal


def money_field(example: str = "128.00") -> Any:
    return Field(description="yuan, a decimal string with at most two decimals", examples=[example])


class Error(Schema):
    code: str = Field(examples=["invalid_input"])
    message: str
    field: str | None = Field(default=None, examples=["amount"])


class ErrorOut(Schema):
    error: Error


class MemberIn(Schema):
    external_id: str = Field(min_length=1, max_length=64, examples=["m-10001"])
    birthday: date | None = Field(default=None, examples=["1990-05-17"])


class MemberOut(Schema):
    external_id: str
    birthday: date | None
    registered_at: datetime


class TierOut(Schema):
    code: str = Field(examples=["gold"])
    name: str = Field(examples=["黄金"])


class GapOut(Schema):
    metric: str = Field(examples=["amount"])
    window: str = Field(examples=["12m"])
    needed: str = Field(examples=["5000.00"])
    current: str = Field(examples=["3120.50"])
    missing: str = Field(examples=["1879.50"])


class EntryOut(Schema):
    id: int
    ledger: str = Field(examples=["growth"], description="growth or points")
    delta: int
    source: str
    reference: str
    occurred_at: datetime


class StatusOut(Schema):
    external_id: str
    tier: TierOut
    tier_expires_at: datetime | None
    growth_balance: int
    points_balance: int
    points_spendable: int
    points_debt: int
    next_tier: TierOut | None
    progress: list[GapOut] = Field(description="what the next tier still needs, per condition not yet met")
    recent: list[EntryOut]


class LedgerOut(Schema):
    entries: list[EntryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null on the last")


class TokenIn(Schema):
    ttl_seconds: int = Field(default=900, ge=60, le=86400)


class TokenOut(Schema):
    token: str
    expires_at: datetime


class ItemIn(Schema):
    sku: str | None = Field(default=None, max_length=64, examples=["sku-42"])
    category: str | None = Field(default=None, max_length=64, examples=["fresh"])
    amount: Amount = money_field("64.00")


class OrderIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order_id": "o-20270104-001", "member": "m-10001", "paid_at": "2027-01-04T10:30:00+08:00",
        "amount": "128.00", "items": [{"sku": "sku-42", "category": "fresh", "amount": "128.00"}]}]})

    order_id: str = Field(min_length=1, max_length=64)
    member: str = Field(min_length=1, max_length=64)
    paid_at: AwareDatetime
    amount: Amount = money_field()
    items: list[ItemIn] = Field(default_factory=list, max_length=500)


class OrderOut(Schema):
    order_id: str
    member: str
    growth: int
    points: int
    ruleset_version: int


class RefundIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "refund_id": "r-1", "order_id": "o-20270104-001", "amount": "28.00",
        "refunded_at": "2027-01-05T09:00:00+08:00"}]})

    refund_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    amount: Amount = money_field("28.00")
    refunded_at: AwareDatetime


class RefundOut(Schema):
    refund_id: str
    order_id: str
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int


class ActionIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "event_id": "a-1", "member": "m-10001", "type": "check_in", "at": "2027-01-04T08:00:00+08:00"}]})

    event_id: str = Field(min_length=1, max_length=64)
    member: str = Field(min_length=1, max_length=64)
    type: Literal["check_in", "review", "share"]
    at: AwareDatetime
    ref: str | None = Field(default=None, max_length=64, description="the reviewed order id, for a review")


class ActionOut(Schema):
    event_id: str
    member: str
    type: str
    growth: int
    points: int
    capped_reason: str


class BatchIn(Schema):
    """Up to 1,000 events; each is checked on its own, so one bad event does not refuse the rest."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResult(Schema):
    status: Literal["applied", "replayed", "error"]
    id: str | None = Field(description="the event's own id, when it could be read")
    result: dict[str, Any] | None
    error: Error | None


class BatchOut(Schema):
    applied: int
    replayed: int
    failed: int
    results: list[BatchResult]


class RedeemIn(Schema):
    redemption_id: str = Field(min_length=1, max_length=64, examples=["rd-1"])
    points: int = Field(gt=0, examples=[500])
    note: str = Field(default="", max_length=200)


class RedeemOut(Schema):
    redemption_id: str
    member: str
    points: int


class AdjustmentIn(Schema):
    adjustment_id: str = Field(min_length=1, max_length=64, examples=["adj-1"])
    ledger: Literal["growth", "points"]
    delta: int = Field(examples=[-200])
    reason: str = Field(min_length=1, max_length=1000, examples=["goodwill for a late delivery"])


class AdjustmentOut(Schema):
    adjustment_id: str
    member: str
    ledger: str
    delta: int


class RulesetIn(Schema):
    document: dict[str, Any] = Field(description="the ruleset, as in docs/rulesets.md")
    effective_from: AwareDatetime
    reason: str = Field(default="", max_length=1000)


class RulesetOut(Schema):
    version: int
    name: str
    checksum: str
    effective_from: datetime
    published_at: datetime
    published_by: str
    reason: str


class RulesetDetailOut(RulesetOut):
    document: dict[str, Any]
