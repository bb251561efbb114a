"""The reward catalogue's rules: what a reward must say, whether a member may redeem it now, what
it costs, the coupons a coupon reward issues, and what a reversal gives back.

Pure: the services pass the reward as stored, the member's units held and the moment. The
checks run in a fixed order, so a request with several faults always answers the same one:

    unknown_reward (404) → reward_inactive → reward_not_yet_available → reward_ended
    → redemption_limit_reached → out_of_stock → insufficient_points (the service's, 422)

Worked example: a coupon reward "c8" (800 points, ¥8 off, valid 30 days) redeemed ×2 at
2027-01-04 09:00 Shanghai costs 1,600 points and issues the coupons `reward:rd-1:1` and
`reward:rd-1:2`, valid from 2027-01-04 09:00 until 2027-02-03 09:00 (exclusive) local time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from loyalty.domain.errors import Refused
from loyalty.domain.grants import CouponDraft, add_days_at

KINDS = ("goods", "coupon")
MAX_QUANTITY = 100  # units in one redemption: more is a client mistake, not a purchase
MAX_VALID_DAYS = 3660
COUPON_KIND = "reward"  # the kind of the coupons a coupon reward issues


@dataclass(frozen=True)
class RewardTerms:
    """A reward as stored: `stock` and `per_member_limit` None mean unlimited."""

    code: str
    kind: str
    points_cost: int
    value_fen: int = 0
    min_spend_fen: int = 0
    valid_days: int | None = None
    stock: int | None = None
    per_member_limit: int | None = None
    active: bool = True
    available_from: datetime | None = None
    available_until: datetime | None = None  # exclusive


def problems(terms: RewardTerms) -> dict[str, str]:
    """What is wrong with a reward an operator is saving, by field (empty: nothing)."""
    found: dict[str, str] = {}
    if terms.kind not in KINDS:
        found["kind"] = f"kind must be one of {', '.join(KINDS)}"
    if terms.points_cost <= 0:
        found["points_cost"] = "a reward costs at least one point"
    if terms.stock is not None and terms.stock < 0:
        found["stock"] = "stock cannot be negative (leave it empty for unlimited)"
    if terms.per_member_limit is not None and terms.per_member_limit <= 0:
        found["per_member_limit"] = "a limit is at least one (leave it empty for none)"
    if terms.available_from and terms.available_until and terms.available_until <= terms.available_from:
        found["available_until"] = "the window must end after it starts"
    if terms.kind == "coupon":
        if terms.value_fen <= 0:
            found["value_fen"] = "a coupon reward needs a face value above zero"
        if terms.min_spend_fen < 0:
            found["min_spend_fen"] = "a minimum spend cannot be negative"
        if terms.valid_days is None or not 0 < terms.valid_days <= MAX_VALID_DAYS:
            found["valid_days"] = f"a coupon reward is valid for 1 to {MAX_VALID_DAYS} days"
    return found


def check_redeemable(terms: RewardTerms, quantity: int, held: int, as_of: datetime) -> None:
    """Refuse what the reward does not allow now; `held` is the member's units of it not reversed."""
    if not terms.active:
        raise Refused(f"reward {terms.code!r} is not offered any more", field="reward", code="reward_inactive")
    if terms.available_from is not None and as_of < terms.available_from:
        raise Refused(f"reward {terms.code!r} is offered from {terms.available_from.isoformat()}", field="reward",
                      code="reward_not_yet_available")
    if terms.available_until is not None and as_of >= terms.available_until:
        raise Refused(f"reward {terms.code!r} was offered until {terms.available_until.isoformat()}",
                      field="reward", code="reward_ended")
    if terms.per_member_limit is not None and held + quantity > terms.per_member_limit:
        raise Refused(f"at most {terms.per_member_limit} of reward {terms.code!r} per member; "
                      f"{held} held, {quantity} asked", field="quantity", code="redemption_limit_reached")
    if terms.stock is not None and quantity > terms.stock:
        raise Refused(f"only {terms.stock} of reward {terms.code!r} left, {quantity} asked", field="quantity",
                      code="out_of_stock")


def cost(terms: RewardTerms, quantity: int) -> int:
    """Points for `quantity` units: the unit cost × quantity, exact (integers)."""
    return terms.points_cost * quantity


def coupon_key(redemption_id: str, n: int) -> str:
    return f"reward:{redemption_id}:{n}"


def coupons_for(terms: RewardTerms, redemption_id: str, quantity: int, issued_at: datetime,
                zone: ZoneInfo) -> list[CouponDraft]:
    """A coupon reward's coupons, one per unit, valid from the redemption to the same local time
    `valid_days` calendar days later (exclusive). Goods issue none."""
    if terms.kind != "coupon":
        return []
    assert terms.valid_days is not None
    until = add_days_at(issued_at, terms.valid_days, zone)
    return [CouponDraft(coupon_key(redemption_id, n), COUPON_KIND, terms.value_fen, terms.min_spend_fen,
                        issued_at, until) for n in range(1, quantity + 1)]


Drawn = tuple[int, datetime | None, int]  # (lot id, its expiry or None, points taken from it)


def to_give_back(drawn: Sequence[Drawn], as_of: datetime) -> tuple[list[tuple[datetime | None, int]], int]:
    """A reversal's lots: the points drawn, grouped by the expiry of the lot they came from (in
    draw order), and the points forfeited because that expiry has passed by `as_of` (they would
    have expired in the member's hands; giving them back would post an expiry in the past)."""
    back: dict[datetime | None, int] = {}
    forfeited = 0
    for _lot, expires_at, points in drawn:
        if expires_at is not None and expires_at <= as_of:
            forfeited += points
        else:
            back[expires_at] = back.get(expires_at, 0) + points
    return list(back.items()), forfeited
