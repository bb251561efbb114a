"""The API's request and response shapes, as documented in the OpenAPI schema.

Money is a decimal string ("123.45") or a JSON number with at most two decimals; the body is
parsed with exact decimals (`parser.ExactJSON`), never through a float. These shapes check
types and presence; the engine's own parsers (`loyalty.domain.events`) then apply the rules
(positive, at most two decimals, lines adding up) and name the field of any mistake.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Path, Schema
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from pydantic.json_schema import JsonDict

MAX_BATCH = 1000
Id = Field(min_length=1, max_length=64, examples=["m-10001"])
Amount = Decimal


# A member's id as a path segment. Registration accepts neither '/' nor control characters (NUL
# above all, which PostgreSQL refuses in text: a 500 otherwise), so such a path is a 422 at once.
MEMBER_ID = r"^[^\x00-\x1f\x7f/]+$"
MemberPath = Annotated[str, Path(min_length=1, max_length=64, pattern=MEMBER_ID,
                                 examples=["m-10001"], description="the member's external_id")]
NO_CONTROL = r"^[^\x00-\x1f\x7f]*$"
RULESET_NAME_MAX = 100  # RulesetVersion.name


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return isinstance(value, list) and any(_holds_nul(item) for item in value)


def money_field(example: str = "128.00") -> Any:
    return Field(description="yuan, a decimal string with at most two decimals", examples=[example])


# The documented examples (one per request body), valid against the default ruleset and each other.
ORDER_EXAMPLE: JsonDict = {
    "order_id": "o-20270104-001", "member": "m-10001", "paid_at": "2027-01-04T10:30:00+08:00",
    "amount": "128.00", "items": [{"sku": "sku-42", "category": "fresh", "amount": "128.00"}]}
REFUND_EXAMPLE: JsonDict = {
    "refund_id": "r-1", "order_id": "o-20270104-001", "amount": "28.00", "refunded_at": "2027-01-05T09:00:00+08:00"}
ACTION_EXAMPLE: JsonDict = {
    "event_id": "a-1", "member": "m-10001", "type": "check_in", "at": "2027-01-04T08:00:00+08:00"}
RULESET_EXAMPLE: JsonDict = {
    "document": {"name": "two-tiers", "timezone": "Asia/Shanghai", "tiers": [
        {"code": "bronze", "name": "青铜"},
        {"code": "silver", "name": "白银", "when": {"any": [{"orders": ">= 1"}, {"amount": ">= 200"}]}}]},
    # Fewer tiers make them harder to keep: inside the notice period only an operator's `force`
    # (with the reason) publishes it.
    "effective_from": "2027-02-01T00:00:00+08:00", "reason": "a simpler ladder from February, announced in November",
    "force": True}


class Out(BaseModel):
    """A response shape. Plain pydantic, not Ninja's `Schema`: the endpoints build these from
    their own values, and `Schema`'s per-object Django getter made a status read's ten entries
    cost more than its SQL."""

    model_config = ConfigDict(from_attributes=True)


class Error(Out):
    code: str = Field(examples=["invalid_input"])
    message: str
    field: str | None = Field(default=None, examples=["amount"])


class ErrorOut(Out):
    error: Error


class MemberIn(Schema):
    # IMPORTANT: no "/": the id is a path segment (/members/{external_id}), and a member whose id
    # held one could be registered but never read, tokenised or redeemed from again.
    external_id: str = Field(min_length=1, max_length=64, pattern="^[^/]+$", examples=["m-10001"],
                             description="the shop's own member id: 1–64 characters, no spaces and no '/'")
    birthday: date | None = Field(default=None, examples=["1990-05-17"])


class MemberOut(Out):
    external_id: str
    birthday: date | None
    registered_at: datetime


class TierOut(Out):
    code: str = Field(examples=["gold"])
    name: str = Field(examples=["黄金"])


class MonthlyCouponOut(Out):
    value: str = Field(examples=["8.00"], description="face value in yuan")
    count: int = Field(examples=[2], description="coupons of this value a month")
    min_spend: str = Field(examples=["0.00"])


class BenefitsOut(Out):
    """A tier's entitlements under the ruleset in force (docs/benefits.md)."""

    monthly_coupons: list[MonthlyCouponOut]
    free_delivery_per_month: int | Literal["unlimited"] = Field(examples=[1, "unlimited"])
    discount: str = Field(examples=["0.05"], description="the tier discount as a fraction (0.05 = 5% off)")
    flags: list[str] = Field(examples=[["birthday_pack", "priority_delivery"]],
                             description="welcome_pack, birthday_pack, priority_delivery, dedicated_service, "
                                         "custom_service, exclusive_events, offline_invitations, refund_priority")


class NextTierOut(TierOut):
    benefits: BenefitsOut = Field(description="what the next tier would give")


class GapOut(Out):
    metric: str = Field(examples=["amount"])
    window: str = Field(examples=["12m"])
    needed: str = Field(examples=["5000.00"])
    current: str = Field(examples=["3120.50"])
    missing: str = Field(examples=["1879.50"])


class EntryOut(Out):
    id: int
    ledger: str = Field(examples=["growth"], description="growth or points")
    delta: int
    source: str
    reference: str
    occurred_at: datetime


class StatusOut(Out):
    external_id: str
    tier: TierOut
    benefits: BenefitsOut = Field(description="what the current tier gives")
    tier_expires_at: datetime | None
    growth_balance: int
    points_balance: int
    points_spendable: int
    points_debt: int
    growth_held: int = Field(description="growth withheld while the member is under review: in no balance")
    points_held: int = Field(description="points withheld while the member is under review: not spendable")
    next_tier: NextTierOut | None
    progress: list[GapOut] = Field(description="what the next tier still needs, per condition not yet met")
    recent: list[EntryOut]


class LedgerOut(Out):
    entries: list[EntryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null on the last")


class TokenIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [{"ttl_seconds": 900}]})

    ttl_seconds: int = Field(default=900, ge=60, le=86400, strict=True)


class TokenOut(Out):
    token: str
    expires_at: datetime


class ItemIn(Schema):
    sku: str | None = Field(default=None, max_length=64, examples=["sku-42"])
    category: str | None = Field(default=None, max_length=64, examples=["fresh"])
    amount: Amount = money_field("64.00")


def device_field() -> Any:
    return Field(default=None, max_length=128, pattern=NO_CONTROL, examples=["dev-7f3a9c"],
                 description="the member's device, as the platform identifies it (docs/abuse.md)")


def ip_field() -> Any:
    return Field(default=None, max_length=64, examples=["203.0.113.7"],
                 description="the member's client IP, IPv4 or IPv6; stored in canonical form")


def address_field() -> Any:
    return Field(default=None, max_length=128, pattern=NO_CONTROL, examples=["9f86d081884c7d65"],
                 description="a hash of the delivery address, made by the platform (the address never reaches us)")


class OrderIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [ORDER_EXAMPLE]})

    order_id: str = Field(min_length=1, max_length=64)
    member: str = Field(min_length=1, max_length=64)
    paid_at: AwareDatetime
    amount: Amount = money_field()
    items: list[ItemIn] = Field(default_factory=list, max_length=500)
    quote_id: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$",
                                 examples=["QTMFRGGZDFMZTWQ2LKNNWG23TP"],
                                 description="the price quote (POST /quotes) the order follows; stored on the order")
    device_id: str | None = device_field()
    ip: str | None = ip_field()
    address_hash: str | None = address_field()


class OrderOut(Out):
    order_id: str
    member: str
    growth: int
    points: int
    ruleset_version: int
    capped_reason: str = Field(default="", description="why the order credited nothing ('' when it credited): "
                                                       "device_shared, address_shared")


class RefundIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [REFUND_EXAMPLE]})

    refund_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    amount: Amount = money_field("28.00")
    refunded_at: AwareDatetime


class RefundOut(Out):
    refund_id: str
    order_id: str
    growth_reversed: int
    points_reversed: int
    points_debt_created: int
    points_written_off: int


class ActionIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [ACTION_EXAMPLE]})

    event_id: str = Field(min_length=1, max_length=64)
    member: str = Field(min_length=1, max_length=64)
    type: Literal["check_in", "review", "share"]
    at: AwareDatetime
    ref: str | None = Field(default=None, max_length=64, description="the reviewed order id, for a review")
    device_id: str | None = device_field()
    ip: str | None = ip_field()
    address_hash: str | None = address_field()


class ActionOut(Out):
    event_id: str
    member: str
    type: str
    growth: int
    points: int
    capped_reason: str = Field(description="why the action credited nothing ('' when it credited): per_day_limit, "
                                           "per_order_limit, daily_growth_cap, action_not_rewarded, device_shared, "
                                           "address_shared")


class BatchIn(Schema):
    """Up to 1,000 events; each is checked on its own, so one bad event does not refuse the rest."""

    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH)


class OrdersBatchIn(BatchIn):
    """Up to 1,000 orders, each shaped as for POST /events/orders."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [ORDER_EXAMPLE]}]})


class RefundsBatchIn(BatchIn):
    """Up to 1,000 refunds, each shaped as for POST /events/refunds."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [REFUND_EXAMPLE]}]})


class ActionsBatchIn(BatchIn):
    """Up to 1,000 actions, each shaped as for POST /events/actions."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [ACTION_EXAMPLE]}]})


class BatchResult(Out):
    status: Literal["applied", "replayed", "error"]
    id: str | None = Field(description="the event's own id, when it could be read")
    result: dict[str, Any] | None
    error: Error | None


class BatchOut(Out):
    applied: int
    replayed: int
    failed: int
    results: list[BatchResult]


class AdjustmentIn(Schema):
    adjustment_id: str = Field(min_length=1, max_length=64, examples=["adj-1"])
    ledger: Literal["growth", "points"]
    delta: int = Field(strict=True, examples=[-200])
    reason: str = Field(min_length=1, max_length=1000, examples=["goodwill for a late delivery"])


class AdjustmentOut(Out):
    adjustment_id: str
    member: str
    ledger: str
    delta: int


class InvitationIn(Schema):
    inviter: str = Field(min_length=1, max_length=64, pattern=MEMBER_ID, examples=["m-888"],
                         description="the inviting member's external_id; they must hold an invitation-only tier")
    note: str = Field(default="", max_length=200, pattern=NO_CONTROL)


class InvitationOut(Out):
    member: str
    inviter: str
    note: str
    invited_at: datetime


class RulesetIn(Schema):
    model_config = ConfigDict(json_schema_extra={"examples": [RULESET_EXAMPLE]})

    document: dict[str, Any] = Field(description="the ruleset, as in docs/rulesets.md")
    effective_from: AwareDatetime
    reason: str = Field(default="", max_length=1000, pattern=NO_CONTROL)
    force: bool = Field(default=False, strict=True,
                        description="publish a version that makes tiers harder inside the notice period "
                                    "(publishing.notice_days); needs a reason")

    @field_validator("document")
    @classmethod
    def _storable(cls, document: dict[str, Any]) -> dict[str, Any]:
        # IMPORTANT: the name becomes a varchar(100) column, and PostgreSQL refuses NUL in text
        # and over-long values (a 500 otherwise). The ruleset validator does not check either yet.
        if _holds_nul(document):
            raise ValueError("text in a ruleset must not contain NUL characters")
        if len(str(document.get("name", ""))) > RULESET_NAME_MAX:
            raise ValueError(f"name: at most {RULESET_NAME_MAX} characters")
        return document


class RulesetOut(Out):
    version: int
    name: str
    checksum: str
    effective_from: datetime
    published_at: datetime
    published_by: str
    reason: str


class RulesetDetailOut(RulesetOut):
    document: dict[str, Any]
