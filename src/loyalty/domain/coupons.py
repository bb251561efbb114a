"""Coupon decisions: the state a member sees, whether a coupon may be redeemed on an order, and
what it becomes when that order is fully refunded. Pure: the moment comes in as `as_of`.

A coupon is valid from `valid_from` (inclusive) to `valid_until` (exclusive): a monthly coupon
valid "to the next 1st at 00:00" cannot be used at that instant. Its stored state moves
issued -> redeemed -> issued (returned on a full refund) | expired | revoked; an issued coupon
whose validity has passed *is* expired, whether or not anything has written that down yet.

E.g. a January monthly coupon (valid 2027-01-01 00:00 to 2027-02-01 00:00, Shanghai) shows
`issued` at 2027-01-31 23:59 and `expired` at 2027-02-01 00:00, and a redemption then is
refused as `coupon_expired`. Redeemed on an order of 90.00 paid (100.00 before its 10.00), it
meets a minimum spend of 100.00; that order fully refunded on 31 January, it is `issued` again;
refunded on 1 February, it is `expired`.

Templates add two rules, judged on what the coupon recorded when it was issued: a coupon of a
`once_per_member` template cannot be redeemed while another of that template is redeemed by
the member (a returned one frees it), and an order carries at most one coupon per stacking
group (a ¥8 `cash` coupon and a `delivery` coupon combine; two `cash` coupons do not).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from loyalty.domain.errors import Conflict, InvalidInput, Refused
from loyalty.domain.money import format_fen
from loyalty.domain.templates import ONCE_PER_MEMBER, SINGLE

ISSUED, REDEEMED, EXPIRED, REVOKED = "issued", "redeemed", "expired", "revoked"
STATES = (ISSUED, REDEEMED, EXPIRED, REVOKED)


@dataclass(frozen=True)
class Terms:
    """What a redemption is judged on: the coupon as stored."""

    code: str
    state: str
    order_id: str
    value_fen: int
    min_spend_fen: int
    valid_from: datetime
    valid_until: datetime
    template: str = ""
    stacking_group: str = ""  # "": combines with any coupon
    usage: str = SINGLE


def shown_state(state: str, valid_until: datetime, as_of: datetime) -> str:
    """The state a member sees: an issued coupon past its validity is expired."""
    return EXPIRED if state == ISSUED and as_of >= valid_until else state


def is_replay(terms: Terms, order_id: str) -> bool:
    """The same coupon on the same order again: the first redemption's answer stands."""
    return terms.state == REDEEMED and terms.order_id == order_id


def check_redeemable(terms: Terms, order_id: str, spend_fen: int | None, as_of: datetime) -> None:
    """Raise why `terms` cannot pay for `order_id` at `as_of`, given the order's spend before
    this coupon (None: not known). Checked in this order: state, validity, minimum spend."""
    if terms.state == REDEEMED:
        raise Conflict(f"coupon {terms.code} was already redeemed on another order", field="code",
                       code="coupon_already_redeemed")
    if terms.state == REVOKED:
        raise Refused(f"coupon {terms.code} was revoked", field="code", code="coupon_revoked")
    if shown_state(terms.state, terms.valid_until, as_of) == EXPIRED:
        raise Refused(f"coupon {terms.code} expired at {terms.valid_until.isoformat()}", field="code",
                      code="coupon_expired")
    if as_of < terms.valid_from:
        raise Refused(f"coupon {terms.code} is valid only from {terms.valid_from.isoformat()}", field="code",
                      code="coupon_not_yet_valid")
    if terms.min_spend_fen > 0 and spend_fen is None:
        raise InvalidInput(f"amount is required: coupon {terms.code} needs a spend of "
                           f"{format_fen(terms.min_spend_fen)} and order {order_id} is not recorded yet",
                           field="amount")
    if spend_fen is not None and spend_fen < terms.min_spend_fen:
        raise Refused(f"coupon {terms.code} needs a spend of {format_fen(terms.min_spend_fen)}; the order's is "
                      f"{format_fen(spend_fen)}", field="amount", code="below_min_spend")


def needs_template_check(terms: Terms) -> bool:
    """Whether redeeming needs to know if the member has a redeemed coupon of the template."""
    return terms.usage == ONCE_PER_MEMBER and bool(terms.template)


def check_combinable(terms: Terms, order_id: str, *, template_used: bool, groups_on_order: Collection[str]) -> None:
    """Raise why `terms` cannot join `order_id`: its `once_per_member` template is already used
    by the member (`template_used`), or the order already carries a coupon of its stacking
    group (`groups_on_order`: the groups of the coupons redeemed on it)."""
    if template_used and needs_template_check(terms):
        raise Conflict(f"coupon {terms.code} is of template {terms.template!r}, which a member may use once, and "
                       f"another coupon of it was already redeemed", field="code", code="template_already_used")
    if terms.stacking_group and terms.stacking_group in groups_on_order:
        raise Conflict(f"order {order_id} already carries a coupon of stacking group {terms.stacking_group!r}; "
                       f"coupons of one group do not combine", field="code", code="stacking_conflict")


def check_revocable(terms: Terms) -> None:
    """A redeemed coupon paid for an order: it is not taken back by revoking it."""
    if terms.state == REDEEMED:
        raise Conflict(f"coupon {terms.code} was redeemed on order {terms.order_id} and cannot be revoked",
                       field="code", code="coupon_already_redeemed")


def spend_of_recorded_order(paid_fen: int, value_fen: int) -> int:
    """A recorded order's spend before the coupon: its paid amount is what is left after the
    coupon's discount, so the face value is added back (满100减10 paid 90.00 spent 100.00)."""
    return paid_fen + value_fen


def state_after_refund(valid_until: datetime, as_of: datetime) -> str:
    """A coupon whose order was fully refunded goes back to the member while still valid."""
    return ISSUED if as_of < valid_until else EXPIRED
